"""Gzip-compressed NDJSON built in memory, then committed to the object store in one write.

Compression is by ISA-L (igzip), which writes standard gzip several times faster than
zlib at a few points less saving (docs/decisions/0002-raw-zone-compression.md). It
releases the GIL, so with an executor the compression of one chunk runs on another core
while the caller prepares the next lines.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from typing import Any

import orjson
from isal import isal_zlib

# Lines are compressed in chunks of this many lines (about 1 MB of typical records): one
# compression call per chunk, not per line.
_CHUNK_LINES = 1024
# ISA-L level 2: on generated customer data it saves as much as level 3 (86.5% of the
# bytes) at four times its speed.
GZIP_LEVEL = 2


class GzipLines:
    """Accumulates NDJSON lines as one gzip member; `finish()` returns the file's bytes."""

    __slots__ = ("_compressor", "_executor", "_out", "_pending", "lines", "raw_bytes")

    def __init__(self, level: int = GZIP_LEVEL, executor: Executor | None = None) -> None:
        # wbits=31: a gzip header and trailer around the deflate stream.
        self._compressor = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)
        # A single-worker executor keeps the chunks of one stream in order.
        self._executor = executor
        self._out: list[Future[bytes] | bytes] = []
        self._pending: list[bytes] = []
        self.lines = 0  # lines compressed so far (all of them after finish())
        self.raw_bytes = 0

    def add(self, line: bytes) -> int:
        """Add one JSON document (without its newline); return the lines added so far."""
        pending = self._pending
        pending.append(line)
        waiting = len(pending)
        if waiting < _CHUNK_LINES:
            return self.lines + waiting
        self._compress_pending()
        return self.lines

    def add_json(self, value: Any) -> int:
        return self.add(orjson.dumps(value))

    def _compress_pending(self) -> None:
        if not self._pending:
            return
        self._pending.append(b"")
        chunk = b"\n".join(self._pending)
        self.lines += len(self._pending) - 1
        self.raw_bytes += len(chunk)
        self._pending = []
        if self._executor is None:
            self._out.append(self._compressor.compress(chunk))
        else:
            self._out.append(self._executor.submit(self._compressor.compress, chunk))

    def finish(self) -> bytes:
        self._compress_pending()
        parts = [p if isinstance(p, bytes) else p.result() for p in self._out]
        self._out = []
        return b"".join([*parts, self._compressor.flush()])


def read_lines(data: bytes) -> Iterator[Any]:
    """The JSON documents of an NDJSON.gz file's bytes."""
    for line in gzip.decompress(data).splitlines():
        if line.strip():
            yield orjson.loads(line)
