"""The thin I/O layer: the output folder, one open file per stream, the ground truth.

Each file is written as `<name>.part` and renamed when the whole tenant is done, so a folder
with a manifest.json is complete, and an interrupted run leaves no file that looks finished.
"""

from __future__ import annotations

import csv
import json
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from opencdp.errors import AlreadyExistsError, ConfigError
from opencdp.generate.records import (
    GROUND_TRUTH,
    GROUND_TRUTH_COLUMNS,
    MANIFEST,
    STREAMS,
    Record,
    StreamFile,
)

_BUFFER = 1 << 20


def prepare_output(out: Path, *, force: bool) -> None:
    """Make sure `out` is a folder that can be written, and empty unless `force`."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder", hint="choose a folder path")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise AlreadyExistsError(
            f"the output folder {out} is not empty",
            hint="choose another folder, or pass --force to overwrite the generated files",
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"cannot create the output folder {out}: {e.strerror or e}",
            hint="choose a folder you can write to",
        ) from e


class _Sink(ABC):
    """One output file, written as `<name>.part` until the tenant is complete."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.part = final.with_name(final.name + ".part")
        self.count = 0
        final.parent.mkdir(parents=True, exist_ok=True)

    @abstractmethod
    def write(self, data: dict[str, Any] | list[str]) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def discard(self) -> None:
        self.close()
        self.part.unlink(missing_ok=True)


class _JsonLines(_Sink):
    # orjson writes compact UTF-8 JSON (as the APIs send it) an order of magnitude faster
    # than the json module; encoding is most of the cost of a generated record.
    def __init__(self, final: Path) -> None:
        super().__init__(final)
        self.file = self.part.open("wb", buffering=_BUFFER)

    def write(self, data: dict[str, Any] | list[str]) -> None:
        self.count += 1
        self.file.write(orjson.dumps(data, option=orjson.OPT_APPEND_NEWLINE))

    def close(self) -> None:
        self.file.close()


class _Csv(_Sink):
    def __init__(self, final: Path, columns: tuple[str, ...]) -> None:
        super().__init__(final)
        self.file = self.part.open("w", encoding="utf-8", newline="", buffering=_BUFFER)
        self.writer = csv.writer(self.file, lineterminator="\n")
        self.writer.writerow(columns)

    def write(self, data: dict[str, Any] | list[str]) -> None:
        self.count += 1
        self.writer.writerow(data)

    def close(self) -> None:
        self.file.close()


def _sink(final: Path, columns: tuple[str, ...] | None) -> _Sink:
    return _Csv(final, columns) if columns else _JsonLines(final)


class TenantWriter:
    """Writes records to their stream files and a ground-truth row for each."""

    def __init__(self, out: Path, streams: tuple[StreamFile, ...] = STREAMS) -> None:
        self.out = out
        sinks: dict[tuple[str, str], _Sink] = {}
        try:
            for stream in streams:
                sinks[stream.source, stream.stream] = _sink(out / stream.path, stream.columns)
            truth = _Csv(out / GROUND_TRUTH, GROUND_TRUTH_COLUMNS)
        except OSError as e:
            for sink in sinks.values():
                sink.discard()
            raise ConfigError(
                f"cannot write to the output folder {out}: {e.strerror or e}",
                hint="choose a folder you can write to",
            ) from e
        self._sinks, self._truth = sinks, truth

    def write(self, record: Record) -> None:
        self._sinks[record.source, record.stream].write(record.data)
        # Names, ids and kinds never hold a comma, quote or newline: no CSV quoting needed,
        # and a plain write is several times faster than csv.writer on this hot path.
        self._truth.file.write(
            f"{record.source},{record.stream},{record.record_id},{record.person_id},"
            f"{';'.join(record.variations)}\n"
        )

    @property
    def counts(self) -> dict[tuple[str, str], int]:
        """Records written so far, per (source, stream)."""
        return {key: sink.count for key, sink in self._sinks.items()}

    def commit(self, manifest: dict[str, Any]) -> None:
        """Close every file, move them into place, and write the manifest last."""
        sinks = [*self._sinks.values(), self._truth]
        for sink in sinks:
            sink.close()
        for sink in sinks:
            sink.part.replace(sink.final)
        part = self.out / f"{MANIFEST}.part"
        part.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")
        part.replace(self.out / MANIFEST)

    def abort(self) -> None:
        for sink in [*self._sinks.values(), self._truth]:
            sink.discard()

    def __enter__(self) -> TenantWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
