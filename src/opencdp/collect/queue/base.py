"""The event queue between the collection service and the batcher: interface and registry.

Items are `bytes`, each one complete raw-zone envelope line (DESIGN.md §3). The HTTP
service awaits `put` and answers only once it returns: the items are then durable. The
batcher, in a thread or process of its own, `read`s batches, writes them to the raw zone
and `ack`s them; an item leaves the queue only when acknowledged, so a reader that dies
gets its unacknowledged items again (at-least-once; the batcher drops the duplicates).

Backends are chosen by URL (`open_queue`); each is imported only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from opencdp.errors import ConfigError, TerminalError, TransientError
from opencdp.logs import redact_text


class QueueUnavailableError(TransientError):
    """The queue could not store or hand out items (a disk or network failure)."""


class QueueBusyError(TransientError):
    """Another batcher is reading this queue (the embedded queue has a single reader)."""


class QueueClosedError(TerminalError):
    """The queue was closed in this process."""


class ItemTooLargeError(TerminalError):
    """An item is larger than the backend accepts; nothing of the `put` was stored."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Items handed to a reader, and what the backend needs to acknowledge them."""

    items: Sequence[bytes]
    receipt: object = None  # opaque: only the queue that made the batch reads it

    def __len__(self) -> int:
        return len(self.items)


class EventQueue(Protocol):
    """A durable, at-least-once queue of envelope lines."""

    @property
    def lease_seconds(self) -> float | None:
        """How long a read item stays reserved for its reader before it is handed out
        again (None: until it is acknowledged or the reader restarts). A reader must
        acknowledge well within it."""
        ...

    async def put(self, items: Sequence[bytes]) -> None:
        """Store `items`; return once all are durable. Never blocks the event loop."""
        ...

    def read(self, max_items: int, timeout: float) -> Batch:
        """Up to `max_items` items, waiting up to `timeout` seconds for the first one
        (an empty batch when none came). Blocking: call it from the reader's thread."""
        ...

    def ack(self, *batches: Batch) -> None:
        """The batches' items are safely elsewhere: remove them from the queue. Needs
        only their receipts (a batch whose items were dropped to save memory will do)."""
        ...

    def depth(self) -> int:
        """About how many items are stored and not yet acknowledged (for monitoring)."""
        ...

    def close(self) -> None:
        """Finish pending writes and release files, threads and connections."""
        ...


# scheme -> "module:function" taking (url, root, options); imported only when used.
_BACKENDS: dict[str, str] = {
    "": "opencdp.collect.queue.disk:open_disk_queue",
    "file": "opencdp.collect.queue.disk:open_disk_queue",
    "sqs": "opencdp.collect.queue.sqs:open_sqs_queue",
    "https": "opencdp.collect.queue.sqs:open_sqs_queue",
    "http": "opencdp.collect.queue.sqs:open_sqs_queue",
}


def open_queue(url: str | None, root: Path, options: Mapping[str, Any] | None = None) -> EventQueue:
    """The queue at `url`.

    - None: the embedded disk queue under `{root}/state/queue`; `file:///path`: one in
      that folder. Options: see `DiskQueueOptions`.
    - `sqs://queue-name`, or a queue URL (`https://sqs.us-east-1.amazonaws.com/123/name`):
      Amazon SQS through boto3. Options: see `SqsQueueOptions`; the other keys are
      passed to `boto3.client("sqs", ...)` (region_name, endpoint_url, ...).
    """
    scheme = urlsplit(url).scheme.lower() if url else ""
    target = _BACKENDS.get(scheme)
    if target is None:
        raise ConfigError(
            f"unsupported queue URL {redact_text(url or '')!r}",
            hint="leave collect.queue_url unset for the embedded disk queue, or use "
            "file:///folder, sqs://queue-name or an SQS queue URL (https://sqs.REGION."
            "amazonaws.com/ACCOUNT/NAME)",
        )
    module, function = target.split(":")
    opener: Callable[[str | None, Path, Mapping[str, Any]], EventQueue] = getattr(
        importlib.import_module(module), function
    )
    return opener(url, root, options or {})


OptionsT = TypeVar("OptionsT", bound=BaseModel)


def parse_options(model: type[OptionsT], options: Mapping[str, Any], backend: str) -> OptionsT:
    """`options` validated into `model`, with one clear error for every bad key."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'options'}: {err['msg']}"
            for err in e.errors()
        )
        raise ConfigError(
            f"invalid {backend} queue options: {problems}",
            hint="check collect.queue_options in opencdp.yaml",
        ) from e
