"""The reliability suite's machinery: real multi-worker servers, recorded HTTP clients,
and checks of what the event log and the projections hold afterwards.

One module per responsibility, imported by the tests directly:

- ``cluster``: gunicorn (several workers) and the projector as real processes, started,
  stopped, killed;
- ``store``: the store reached directly, to hold its write lock and to read its log back;
- ``journal``: every request a client sent, and what came back (``Client``, ``Journal``);
- ``traffic``: client threads issuing a weighted mix of commands and reads;
- ``invariants``: the checks afterwards (nothing acknowledged lost, no 5xx, projections
  equal to a rebuild, ...);
- ``report``: the figures of a run, printed and written to var/reliability/;
- ``sizing``: durations and counts, bounded in `make test`, longer under `make soak`.
"""
