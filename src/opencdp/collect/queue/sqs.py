"""Amazon SQS as the event queue (scale-out), through boto3.

- `put` sends with `send_message_batch` (at most 10 messages and `max_message_bytes` per
  call) on a thread pool, so the event loop never waits on the network; it returns once
  SQS has accepted every item (SQS stores a message redundantly before it answers).
- `read` long-polls `receive_message`; the messages then stay invisible to other readers
  for `visibility_timeout` seconds (`lease_seconds`), which must exceed the batcher's
  `max_age` plus the time to write a batch, or they are delivered again meanwhile.
- `ack` deletes with `delete_message_batch`.

An item is sent as the message body when it is text SQS accepts (UTF-8 without the
control characters XML forbids, which JSON lines never hold); anything else is sent
base64-encoded with the message attribute `encoding=base64`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from opencdp.collect.queue.base import (
    Batch,
    ItemTooLargeError,
    QueueClosedError,
    QueueUnavailableError,
    parse_options,
)
from opencdp.errors import ConfigError, MissingDependencyError
from opencdp.logs import get_logger, redact_text

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import (
        DeleteMessageBatchRequestEntryTypeDef,
        MessageAttributeValueTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

log = get_logger(__name__)

SQS_BATCH = 10  # messages per send/receive/delete call: the SQS maximum
_LONG_POLL_MAX = 20  # seconds: the SQS maximum for WaitTimeSeconds
_ENCODING = "encoding"
# Characters SQS refuses in a message body (outside XML's allowed set).
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# SQS answers these when the request itself is wrong: retrying cannot help.
_TERMINAL_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidParameterValue",
        "BatchRequestTooLong",
        "InvalidMessageContents",
    }
)


@dataclass(slots=True)
class _Ticket:
    """One put waiting for its messages to be sent."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    remaining: int
    error: BaseException | None = None

    def settle(self) -> None:  # on the put's event loop
        if self.future.done():  # the request was cancelled meanwhile
            return
        if self.error is None:
            self.future.set_result(None)
        else:
            self.future.set_exception(self.error)


class SqsQueueOptions(BaseModel):
    """Options of the SQS queue (collect.queue_options); other keys go to boto3's
    client: region_name, endpoint_url, aws_access_key_id, ..."""

    model_config = ConfigDict(extra="allow", frozen=True)

    # Seconds a received message stays hidden from other readers before it comes back.
    visibility_timeout: int = Field(default=900, ge=0, le=43_200)
    # The SQS size limit of a message, and of a whole send_message_batch call.
    max_message_bytes: int = Field(default=262_144, ge=1024, le=1_048_576)
    # Threads sending the puts' messages (each call carries up to 10 messages).
    max_workers: int = Field(default=8, ge=1, le=256)
    # How often entries that SQS failed on its side are sent again within one put or ack.
    retries: int = Field(default=3, ge=0, le=10)
    # depth() answers from a value at most this old (refreshed in the background).
    depth_max_age: float = Field(default=5.0, ge=0)


def open_sqs_queue(url: str | None, root: Path, options: Mapping[str, Any]) -> SqsQueue:
    del root  # the queue lives in SQS
    assert url is not None
    return SqsQueue(url, parse_options(SqsQueueOptions, options, "SQS"))


def _region_of(host: str) -> str | None:
    # sqs.us-east-1.amazonaws.com, us-east-1.queue.amazonaws.com
    match = re.match(r"^(?:sqs\.([a-z0-9-]+)|([a-z0-9-]+)\.queue)\.amazonaws\.com", host)
    return (match.group(1) or match.group(2)) if match else None


class SqsQueue:
    """The SQS `EventQueue` (see the module's docstring)."""

    def __init__(self, url: str, options: SqsQueueOptions | None = None) -> None:
        self.options = options or SqsQueueOptions()
        parts = urlsplit(url)
        self._client_options: dict[str, Any] = dict(self.options.model_extra or {})
        if parts.scheme == "sqs":
            self._name: str | None = parts.netloc + parts.path.rstrip("/")
            self._url: str | None = None
            if not self._name:
                raise ConfigError(f"queue URL {url!r} names no queue", hint="use sqs://queue-name")
        else:
            self._name, self._url = None, url
            region = _region_of(parts.hostname or "")
            if region and "region_name" not in self._client_options:
                self._client_options["region_name"] = region
        self._display = redact_text(url)
        self._lock = threading.Lock()
        self._client: SQSClient | None = None
        # Messages waiting for a sender thread: (size, entry, the put's ticket).
        self._pending: deque[tuple[int, SendMessageBatchRequestEntryTypeDef, _Ticket]] = deque()
        self._pending_changed = threading.Condition()
        self._senders: list[threading.Thread] = []
        self._closing = False
        # For depth refreshes, off the caller's thread.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="opencdp-sqs-depth")
        self._closed = False
        self._depth: tuple[float, int] | None = None  # (when, value)
        self._depth_refreshing = False

    @property
    def lease_seconds(self) -> float | None:
        return float(self.options.visibility_timeout)

    # --- connection ------------------------------------------------------------------------

    def _connect(self) -> tuple[SQSClient, str]:
        with self._lock:
            if self._closed:
                raise QueueClosedError(f"the queue {self._display} is closed")
            if self._client is None:
                try:
                    import boto3
                except ImportError as e:
                    raise MissingDependencyError("the SQS event queue", "boto3", "sqs") from e
                self._client = boto3.client("sqs", **self._client_options)
            if self._url is None:
                assert self._name is not None
                response = self._call(self._client.get_queue_url, QueueName=self._name)
                self._url = response["QueueUrl"]
            return self._client, self._url

    def _call(self, method: Any, **kwargs: Any) -> Any:
        """One SQS call; its failures become our transient or terminal errors."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return method(**kwargs)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in _TERMINAL_CODES:
                raise ConfigError(
                    f"SQS refused a request to {self._display}: {code}: {e}",
                    hint="check the queue URL, region, credentials and permissions",
                ) from e
            raise QueueUnavailableError(f"SQS call to {self._display} failed: {e}") from e
        except BotoCoreError as e:
            raise QueueUnavailableError(f"SQS call to {self._display} failed: {e}") from e

    # --- put -------------------------------------------------------------------------------

    async def put(self, items: Sequence[bytes]) -> None:
        if not items:
            return
        entries = [self._entry(item) for item in items]  # all checked before any is sent
        loop = asyncio.get_running_loop()
        ticket = _Ticket(loop, loop.create_future(), len(entries))
        with self._pending_changed:
            if self._closing:
                raise QueueClosedError(f"the queue {self._display} is closed")
            self._start_senders()
            self._pending.extend((size, entry, ticket) for size, entry in entries)
            self._pending_changed.notify(len(entries) // SQS_BATCH + 1)
        await ticket.future

    def _entry(self, item: bytes) -> tuple[int, SendMessageBatchRequestEntryTypeDef]:
        """The send entry of `item` (its Id is set when it is sent) and its size as SQS
        counts it."""
        attributes: dict[str, MessageAttributeValueTypeDef] = {}
        try:
            body = item.decode("utf-8")
        except UnicodeDecodeError:
            body = None
        if body is None or _NOT_XML.search(body):
            body = base64.b64encode(item).decode("ascii")
            attributes[_ENCODING] = {"DataType": "String", "StringValue": "base64"}
        size = len(body.encode()) + (len(_ENCODING) + len("String") + len("base64")) * bool(
            attributes
        )
        limit = self.options.max_message_bytes
        if size > limit:
            raise ItemTooLargeError(
                f"a queue item of {len(item):,} bytes ({size:,} as an SQS message) is larger "
                f"than the SQS limit of {limit:,} bytes; nothing of this request was queued",
                hint="lower the request size limit of the collection service, or use the "
                "embedded disk queue",
            )
        entry: SendMessageBatchRequestEntryTypeDef = {"Id": "", "MessageBody": body}
        if attributes:
            entry["MessageAttributes"] = attributes
        return size, entry

    def _start_senders(self) -> None:
        if not self._senders:
            for n in range(self.options.max_workers):
                thread = threading.Thread(
                    target=self._sender, name=f"opencdp-sqs-send-{n}", daemon=True
                )
                thread.start()
                self._senders.append(thread)

    def _sender(self) -> None:
        """Sends what the puts queued, up to 10 messages per call: the messages of
        concurrent puts share calls, the way the disk queue's writes share an fsync."""
        limit = self.options.max_message_bytes
        while True:
            with self._pending_changed:
                while not self._pending and not self._closing:
                    self._pending_changed.wait()
                if not self._pending:
                    return
                chunk: list[tuple[SendMessageBatchRequestEntryTypeDef, _Ticket]] = []
                size = 0
                while (
                    self._pending
                    and len(chunk) < SQS_BATCH
                    and (not chunk or size + self._pending[0][0] <= limit)
                ):
                    entry_size, entry, ticket = self._pending.popleft()
                    chunk.append((entry, ticket))
                    size += entry_size
                if self._pending:
                    self._pending_changed.notify()
            error: BaseException | None = None
            try:
                client, url = self._connect()
                entries: list[SendMessageBatchRequestEntryTypeDef] = []
                for n, (entry, _) in enumerate(chunk):
                    numbered = entry.copy()
                    numbered["Id"] = str(n)
                    entries.append(numbered)
                self._send_chunk(client, url, entries)
            except Exception as e:  # noqa: BLE001 - handed to the waiting requests
                error = e
            finished: list[_Ticket] = []
            with self._pending_changed:
                for _, ticket in chunk:
                    ticket.error = ticket.error or error
                    ticket.remaining -= 1
                    if ticket.remaining == 0:
                        finished.append(ticket)
            for ticket in finished:
                with contextlib.suppress(RuntimeError):  # its event loop is closed
                    ticket.loop.call_soon_threadsafe(ticket.settle)

    def _send_chunk(
        self, client: SQSClient, url: str, entries: list[SendMessageBatchRequestEntryTypeDef]
    ) -> None:
        for attempt in range(self.options.retries + 1):
            response = self._call(client.send_message_batch, QueueUrl=url, Entries=entries)
            failed = response.get("Failed", [])
            if not failed:
                return
            if refused := [f for f in failed if f.get("SenderFault")]:
                raise ConfigError(
                    f"SQS refused {len(refused)} message(s) for {self._display}: "
                    f"{refused[0].get('Code')}: {refused[0].get('Message', '')}"
                )
            again = {f["Id"] for f in failed}
            entries = [e for e in entries if e["Id"] in again]
            time.sleep(0.05 * 2**attempt)
        raise QueueUnavailableError(
            f"SQS failed to store {len(entries)} message(s) in {self._display} after "
            f"{self.options.retries + 1} attempts"
        )

    # --- read and ack ----------------------------------------------------------------------

    def read(self, max_items: int, timeout: float) -> Batch:
        client, url = self._connect()
        items: list[bytes] = []
        receipts: list[tuple[str, str]] = []
        deadline = time.monotonic() + max(0.0, timeout)
        while len(items) < max_items:
            # Long-poll for the first messages only; then take what is there at once.
            remaining = deadline - time.monotonic()
            wait = 0 if items else int(min(_LONG_POLL_MAX, max(0.0, remaining)))
            response = self._call(
                client.receive_message,
                QueueUrl=url,
                MaxNumberOfMessages=min(SQS_BATCH, max_items - len(items)),
                WaitTimeSeconds=wait,
                VisibilityTimeout=self.options.visibility_timeout,
                MessageAttributeNames=[_ENCODING],
            )
            messages = response.get("Messages", [])
            for message in messages:
                body = message.get("Body", "")
                encoding = message.get("MessageAttributes", {}).get(_ENCODING, {})
                if encoding.get("StringValue") == "base64":
                    items.append(base64.b64decode(body))
                else:
                    items.append(body.encode("utf-8"))
                receipts.append((message["MessageId"], message["ReceiptHandle"]))
            if not messages and (items or deadline - time.monotonic() < 1):
                break
        return Batch(items, tuple(receipts))

    def ack(self, *batches: Batch) -> None:
        receipts: list[tuple[str, str]] = []
        for batch in batches:
            if not isinstance(batch.receipt, tuple):
                raise TypeError("this batch was not read from this queue")
            receipts.extend(batch.receipt)
        if not receipts:
            return
        client, url = self._connect()
        for start in range(0, len(receipts), SQS_BATCH):
            entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
                {"Id": str(n), "ReceiptHandle": handle}
                for n, (_, handle) in enumerate(receipts[start : start + SQS_BATCH])
            ]
            for attempt in range(self.options.retries + 1):
                response = self._call(client.delete_message_batch, QueueUrl=url, Entries=entries)
                failed = response.get("Failed", [])
                if not failed:
                    break
                again = {f["Id"] for f in failed}
                entries = [e for e in entries if e["Id"] in again]
                time.sleep(0.05 * 2**attempt)
            else:
                # They come back after the visibility timeout, and the batcher drops
                # them then as duplicates: nothing is lost, nothing written twice.
                log.warning(
                    "SQS did not delete acknowledged messages; they will be delivered again",
                    queue=self._display,
                    messages=len(entries),
                )

    # --- depth and close -------------------------------------------------------------------

    def depth(self) -> int:
        """SQS's approximate count of visible, in-flight and delayed messages. Answered
        from a value at most `depth_max_age` old: a refresh runs on the thread pool, so a
        caller on the event loop waits on the network only the very first time."""
        cached = self._depth
        if cached is None:
            return self._fetch_depth()
        if time.monotonic() - cached[0] > self.options.depth_max_age:
            with self._lock:
                start = not self._depth_refreshing and not self._closed
                self._depth_refreshing = True
            if start:
                self._executor.submit(self._refresh_depth)
        return cached[1]

    def _refresh_depth(self) -> None:
        try:
            self._fetch_depth()
        except (QueueUnavailableError, ConfigError, QueueClosedError) as e:
            log.warning("could not read the SQS queue depth", queue=self._display, error=str(e))
        finally:
            self._depth_refreshing = False

    def _fetch_depth(self) -> int:
        client, url = self._connect()
        response = self._call(
            client.get_queue_attributes,
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )
        value = sum(int(v) for v in response.get("Attributes", {}).values())
        self._depth = (time.monotonic(), value)
        return value

    def close(self) -> None:
        with self._pending_changed:
            self._closing = True  # the senders finish what is queued, then stop
            self._pending_changed.notify_all()
        for thread in self._senders:
            thread.join()
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._executor.shutdown(wait=True)
        if self._client is not None:
            self._client.close()
