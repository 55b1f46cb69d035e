"""History's use of the object store (`ssmd.storage.ObjectStore`): helpers, and the
local cache that lets DuckDB read S3 objects.

DuckDB's httpfs extension cannot be installed offline (extensions download from the
DuckDB site at run time, and the PyPI extension packages lag the engine's version), so
S3 objects are read through `ObjectStore` into `{data_dir}/cache/` (keyed by object key,
size and etag) and DuckDB reads the cached files. A local store is read in place.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ssmd.storage import ObjectInfo, ObjectStore

__all__ = ["ObjectStore", "cached_path", "list_objects", "local_path"]


def local_path(store: ObjectStore, key: str) -> Path | None:
    """The file behind `key` when the store is the local filesystem, else None."""
    if store.location.kind == "local":
        return Path(store.location.url(key))
    return None


def list_objects(store: ObjectStore, prefix: str) -> list[ObjectInfo]:
    """Objects under `prefix` in key order (an absent prefix lists nothing)."""
    try:
        return sorted(store.list(prefix), key=lambda o: o.key)
    except FileNotFoundError:
        return []


def cached_path(store: ObjectStore, info: ObjectInfo, cache: Path) -> Path:
    """A local file with the object's bytes: in place for a local store, else downloaded
    once into `cache` (a new etag or size is a new cache entry)."""
    path = local_path(store, info.key)
    if path is not None:
        return path
    tag = hashlib.blake2b(f"{info.size}:{info.etag}".encode(), digest_size=6).hexdigest()
    target = cache / f"{info.key}.{tag}"
    if not target.exists():
        store.download(info.key, target)
    return target
