"""Compression of stored event and snapshot state (the library's ``COMPRESSOR_TOPIC``).

Compression applies to what is written from then on: stored rows are immutable, so a
store holds plain and compressed rows side by side. Both compressors here read both
(a plain state is a JSON object and starts with ``{``; zlib's header byte never is), so
compression can be turned on or off at any time without losing a row.
"""

from __future__ import annotations

import zlib

from eventsourcing.compressor import ZlibCompressor as LibraryZlibCompressor
from eventsourcing.persistence import Compressor

PLAIN_TOPIC = "application.store.compression:PlainCompressor"
ZLIB_TOPIC = "application.store.compression:ZlibCompressor"
# The library's own zlib settings are read as Fleet's, which also read plain rows.
ZLIB_ALIASES = ("eventsourcing.compressor:ZlibCompressor", "zlib", ZLIB_TOPIC)


def _decompress(data: bytes) -> bytes:
    return data if data[:1] == b"{" else zlib.decompress(data)


class ZlibCompressor(LibraryZlibCompressor):
    """The library's zlib compressor for new rows; reads rows stored uncompressed too."""

    def decompress(self, data: bytes) -> bytes:
        return _decompress(data)


class PlainCompressor(Compressor):
    """Stores uncompressed; still reads rows written while compression was on."""

    def compress(self, data: bytes) -> bytes:
        return data

    def decompress(self, data: bytes) -> bytes:
        return _decompress(data)


def compressor_topic(configured: str | None) -> str:
    """The topic Fleet uses for a ``COMPRESSOR_TOPIC`` setting (unset: plain)."""
    if not configured or not configured.strip():
        return PLAIN_TOPIC
    if configured.strip() in ZLIB_ALIASES:
        return ZLIB_TOPIC
    return configured.strip()
