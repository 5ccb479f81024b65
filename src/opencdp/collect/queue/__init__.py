"""The durable event buffer between the collection service and the batcher.

`open_queue(url, root, options)` gives an `EventQueue`: the embedded disk queue by
default, Amazon SQS by URL. See base.py for the contract, disk.py and sqs.py for each
backend's format and guarantees.
"""

from opencdp.collect.queue.base import (
    Batch,
    EventQueue,
    ItemTooLargeError,
    QueueBusyError,
    QueueClosedError,
    QueueUnavailableError,
    open_queue,
)

__all__ = [
    "Batch",
    "EventQueue",
    "ItemTooLargeError",
    "QueueBusyError",
    "QueueClosedError",
    "QueueUnavailableError",
    "open_queue",
]
