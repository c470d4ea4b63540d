"""Event store: the library's recorders plus Fleet's event index, in one transaction."""

from application.store.query import EventFilter, IndexedEvent

__all__ = ["EventFilter", "IndexedEvent"]
