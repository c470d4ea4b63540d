"""Fleet's domain: aggregates, events and rules. Pure: no Flask, no SQL, no marshmallow."""
