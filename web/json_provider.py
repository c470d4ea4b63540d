"""Response bodies written by orjson: the values Flask's encoder would write, faster.

Flask writes JSON with the standard library's encoder, a third of the serialisation of a
100-event ``GET /events`` page (cProfile); with orjson that page's p50 fell by about a
tenth under gunicorn (bench/findings.md, sixth session). What orjson would write
differently goes to Flask's own ``default`` as before (datetimes as HTTP dates,
dataclasses, ``Decimal``), ``sort_keys`` is honoured, and anything orjson refuses (a key
that is not a string, an integer past 64 bits) is written by Flask's encoder.

Two differences remain, both JSON of the same values: non-ASCII text is written as UTF-8
rather than as ``\\u`` escapes, and a float may be spelled differently (``1e16`` for
``1e+16``). Indented output (debug mode) stays the standard library's.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

COMPACT = (",", ":")  # what Flask asks for outside debug mode
OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class OrjsonProvider(DefaultJSONProvider):
    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs.get("separators", COMPACT) == COMPACT and kwargs.keys() <= {"separators"}:
            try:
                options = OPTIONS | (orjson.OPT_SORT_KEYS if self.sort_keys else 0)
                return orjson.dumps(obj, default=self.default, option=options).decode()
            except TypeError:  # a non-string key, a huge integer: Flask's encoder writes it
                pass
        return super().dumps(obj, **kwargs)
