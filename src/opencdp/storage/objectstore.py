"""One interface over a local folder (the embedded default) and any fsspec store (S3, ...).

Objects are addressed by keys: '/'-separated paths relative to the store's base. Writes are
atomic on every backend: a reader sees either no object or the whole object, never a part.
- Local folder: the bytes go to a hidden temporary file in the target folder, are fsync'd,
  then linked (create-only) or renamed (overwrite) into place, and the folder is fsync'd.
- Object stores: an object becomes visible only when its upload completes, so the bytes
  are staged in a local temporary file and uploaded in one put once the writer succeeds.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs

from opencdp.errors import (
    AlreadyExistsError,
    ConfigError,
    MissingDependencyError,
    NotFoundError,
    StorageUnavailableError,
)
from opencdp.logs import redact_text

if TYPE_CHECKING:
    from opencdp.settings import Settings

# Hidden temporary files in the local store start with this prefix; listings skip them.
_TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


def check_key(key: str) -> str:
    """Refuse keys that could escape the store's base or name a folder."""
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or key.endswith("/")
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise ConfigError(
            f"invalid object key {key!r}", hint="use a relative path like 'raw/t/p/f'"
        )
    return key


class ObjectStore(ABC):
    """Reads go through fsspec on every backend; only the write path differs."""

    def __init__(self, fs: AbstractFileSystem, base: str, url: str) -> None:
        self.fs = fs
        self.base = base.rstrip("/")
        self.url = url.rstrip("/")

    def path(self, key: str) -> str:
        """The backend path of `key` (for libraries that take an fsspec filesystem + path)."""
        return f"{self.base}/{check_key(key)}"

    def uri(self, key: str) -> str:
        """The full URL of `key`, e.g. file:///root/raw/... or s3://bucket/raw/..."""
        return f"{self.url}/{check_key(key)}"

    @abstractmethod
    def writer(
        self, key: str, *, overwrite: bool = False
    ) -> contextlib.AbstractContextManager[IO[bytes]]:
        """A binary file to write `key` into; the object appears only when the block exits
        without an exception. Without `overwrite`, an existing object is never replaced."""

    def write(self, key: str, data: bytes, *, overwrite: bool = False) -> None:
        with self.writer(key, overwrite=overwrite) as f:
            f.write(data)

    def read(self, key: str) -> bytes:
        with self.open(key) as f:
            return f.read()

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[IO[bytes]]:
        path = self.path(key)
        with self._errors(key):
            f = self.fs.open(path, "rb")
        try:
            yield f
        finally:
            f.close()

    def exists(self, key: str) -> bool:
        with self._errors(key):
            return bool(self.fs.exists(self.path(key)))

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object under `prefix` (a folder key, or '' for all), sorted by key."""
        root = self.base if not prefix else self.path(prefix.rstrip("/"))
        with self._errors(prefix):
            if not self.fs.exists(root):
                return []
            found: dict[str, Any] = self.fs.find(root, detail=True)
        start = len(self.base) + 1
        infos = [
            ObjectInfo(key=_strip_protocol(name)[start:], size=int(meta.get("size") or 0))
            for name, meta in found.items()
            if not Path(name).name.startswith(_TMP_PREFIX)
        ]
        return sorted(infos, key=lambda i: i.key)

    def delete(self, key: str) -> None:
        with self._errors(key):
            self.fs.rm_file(self.path(key))

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError as e:
            raise NotFoundError(f"no object {key!r} in {redact_text(self.url)}") from e
        except (OSError, TimeoutError) as e:
            raise StorageUnavailableError(
                f"object store {redact_text(self.url)} failed on {key!r}: {e}",
                hint="check that the store is reachable and the credentials are valid",
            ) from e


def _strip_protocol(name: str) -> str:
    return name.split("://", 1)[1] if "://" in name else name


class LocalObjectStore(ObjectStore):
    """A folder on a local filesystem: temporary file, fsync, then link or rename."""

    @contextlib.contextmanager
    def writer(self, key: str, *, overwrite: bool = False) -> Iterator[IO[bytes]]:
        target = Path(self.path(key))
        target.parent.mkdir(parents=True, exist_ok=True)
        if not overwrite and target.exists():
            raise AlreadyExistsError(f"object {key!r} exists and is never overwritten")
        tmp = target.parent / f"{_TMP_PREFIX}{target.name}.{uuid.uuid4().hex}"
        try:
            with tmp.open("xb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            if overwrite:
                tmp.replace(target)
            else:
                try:
                    # link() fails if the target exists: create-only, atomically.
                    os.link(tmp, target)
                except FileExistsError as e:
                    raise AlreadyExistsError(
                        f"object {key!r} exists and is never overwritten"
                    ) from e
                tmp.unlink()
            _fsync_dir(target.parent)
        finally:
            tmp.unlink(missing_ok=True)


class RemoteObjectStore(ObjectStore):
    """An object store through fsspec: stage locally, then upload in one put."""

    @contextlib.contextmanager
    def writer(self, key: str, *, overwrite: bool = False) -> Iterator[IO[bytes]]:
        path = self.path(key)
        if not overwrite and self.exists(key):
            # Object stores have no portable create-only put; a concurrent writer of the
            # same key could still win. Raw-zone keys carry unique batch ids, so it cannot.
            raise AlreadyExistsError(f"object {key!r} exists and is never overwritten")
        with tempfile.NamedTemporaryFile(prefix="opencdp-upload-") as staged:
            yield staged
            staged.flush()
            with self._errors(key):
                self.fs.put_file(staged.name, path)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_object_store(url: str, options: dict[str, Any] | None = None) -> ObjectStore:
    """The object store at `url`: a local path or file:// URL, or any fsspec URL."""
    try:
        fs, base = url_to_fs(url, **(options or {}))
    except ImportError as e:
        scheme = url.split("://", 1)[0]
        package = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "az": "adlfs"}.get(scheme, scheme)
        raise MissingDependencyError(f"the {scheme}:// object store", package, "s3") from e
    except ValueError as e:
        raise ConfigError(f"unsupported object store URL {redact_text(url)!r}: {e}") from e
    if "file" in _protocols(fs):
        local = Path(base).resolve()
        local.mkdir(parents=True, exist_ok=True)
        return LocalObjectStore(fs, str(local), local.as_uri())
    return RemoteObjectStore(fs, base, url)


def _protocols(fs: AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def store_for(settings: Settings) -> ObjectStore:
    """The configured object store: the data root folder, or `storage.url`."""
    return open_object_store(settings.storage_url, settings.storage.options)
