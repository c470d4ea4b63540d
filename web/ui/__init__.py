"""The operator console: server-rendered pages under ``/ui/`` over the same Fleet."""

from web.ui.views import blueprint, init_app

__all__ = ["blueprint", "init_app"]
