"""Object storage (DESIGN §7): one wrapper over local files or S3, the raw shipper, retention.

from ssmd.storage import ObjectStore
store = ObjectStore.from_spec(env.storage, data_dir)   # secrets resolved here
store.put("raw/dev/kraken/…/0-0-1.jsonl.zst", path)
"""

from ssmd.storage.secrets import SecretError, resolve_secret
from ssmd.storage.store import (
    Location,
    NotFound,
    ObjectInfo,
    ObjectStore,
    StoreConfigError,
    StoreDenied,
    StoreError,
    StoreUnavailable,
    check_key,
)

__all__ = [
    "Location",
    "NotFound",
    "ObjectInfo",
    "ObjectStore",
    "SecretError",
    "StoreConfigError",
    "StoreDenied",
    "StoreError",
    "StoreUnavailable",
    "check_key",
    "resolve_secret",
]
