"""Event store: the library's recorders plus Fleet's event index, written in the same transaction."""

from application.store.query import EventFilter, IndexedEvent

__all__ = ["EventFilter", "IndexedEvent"]
