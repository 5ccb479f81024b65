"""Object storage: the raw zone, the DLQ, the warehouse files and audiences live here."""

from opencdp.storage.objectstore import ObjectInfo, ObjectStore, open_object_store, store_for

__all__ = ["ObjectInfo", "ObjectStore", "open_object_store", "store_for"]
