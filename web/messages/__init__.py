"""Messages: ``/api/v1/mailboxes/{mailbox_id}/messages`` and ``/api/v1/messages/{id}/...``."""

from web.messages.routes import blp

__all__ = ["blp"]
