"""The one object-store wrapper (DESIGN §7): local files by default, any S3 API by URL.

Everything that reads or writes objects (shipper, retention, reprocessor, history) goes
through `ObjectStore`, so the key rules, the error types and the S3 settings live in one
place. It wraps obstore (Rust `object_store`): atomic puts (a reader never sees half an
object), multipart uploads for large files, streaming reads.

Keys are `/`-separated relative paths (`raw/dev/kraken/2024-03-01/10/0-0-….jsonl.zst`,
`normalized/v1/…`): the same text locally (a file under the root) and on S3 (an object
under the bucket prefix).

Errors are typed by what the caller should do:
- `NotFound`         the key is absent: a fact, not a failure;
- `StoreUnavailable` cannot reach the store (refused, timeout, 5xx, disk I/O): retry later;
- `StoreDenied`      credentials or permissions are wrong: a person must fix them;
- `StoreConfigError` the definition cannot describe a store (bad URL, secret unresolvable).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import obstore
from obstore import exceptions as obx
from obstore.store import LocalStore, S3Store

from ssmd.storage.secrets import SecretError, resolve_secret

if TYPE_CHECKING:
    from ssmd.spec.model import Storage

__all__ = [
    "Location",
    "NotFound",
    "ObjectInfo",
    "ObjectStore",
    "StoreConfigError",
    "StoreDenied",
    "StoreError",
    "StoreUnavailable",
    "check_key",
]

PART_SIZE = 8 * 2**20
"""Multipart part size: files larger than this upload in parts (S3 minimum is 5 MiB)."""
PART_CONCURRENCY = 4
"""Parts in flight per upload; small, because 2 cores also run connectors."""
READ_CHUNK = 2**20


class StoreError(Exception):
    """Base of every object-store error; `key` is the object concerned, if any."""

    def __init__(self, message: str, key: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.key = key
        self.hint = hint


class NotFound(StoreError):
    """No object at this key."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or failed transiently: retry later, change nothing."""


class StoreDenied(StoreError):
    """Credentials rejected or permission denied: retrying will not help."""


class StoreConfigError(StoreError):
    """The definition does not describe a usable store (URL, endpoint, secrets)."""


@dataclass(frozen=True)
class ObjectInfo:
    """What the store says about one object."""

    key: str
    size: int
    etag: str = ""
    last_modified_ns: int = 0


@dataclass(frozen=True)
class Location:
    """Where the store is, for tools that talk to it directly (DuckDB httpfs, aws cli).

    `kind` is `local` (`root` is the directory) or `s3` (`bucket`, `prefix`, `endpoint`,
    `region`, resolved `access_key_id`/`secret_access_key` or empty for ambient ones).
    `url(key)` is the object's URL in that tool's terms (`/abs/path` or `s3://b/p/key`).
    """

    kind: str
    root: str = ""
    bucket: str = ""
    prefix: str = ""
    endpoint: str = ""
    region: str = ""
    access_key_id: str = field(default="", repr=False)
    secret_access_key: str = field(default="", repr=False)

    def url(self, key: str = "") -> str:
        key = key.lstrip("/")
        if self.kind == "local":
            return str(Path(self.root) / key) if key else self.root
        base = "/".join(p for p in (self.bucket, self.prefix) if p)
        return f"s3://{base}/{key}" if key else f"s3://{base}"


def check_key(key: str) -> str:
    """A key is a relative `/` path without empty, `.` or `..` parts (else ValueError):
    the same key must name the same object on disk and on S3."""
    if not key or key.startswith("/") or key.endswith("/"):
        raise ValueError(f"bad object key {key!r}: must be a relative path like raw/…/x")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"bad object key {key!r}: empty, '.' or '..' part")
    return key


def _prefix(prefix: str) -> str | None:
    prefix = prefix.strip("/")
    if prefix:
        check_key(prefix)
    return prefix or None


class ObjectStore:
    """Put, get, head, list, delete objects by key; see the module docstring for errors."""

    def __init__(self, inner: Any, location: Location) -> None:
        self._store = inner
        self.location = location

    def __repr__(self) -> str:
        return f"ObjectStore({self.location.url()})"

    # -- construction -------------------------------------------------------------------

    @classmethod
    def local(cls, root: Path | str) -> ObjectStore:
        """Files under `root` (created if missing); empty directories are removed on delete."""
        path = Path(root).resolve()
        try:
            path.mkdir(parents=True, exist_ok=True)
            inner = LocalStore(path, mkdir=True, automatic_cleanup=True)
        except (OSError, obx.BaseError) as exc:
            raise StoreConfigError(f"cannot use {path} as a local object store: {exc}") from None
        return cls(inner, Location("local", root=str(path)))

    @classmethod
    def s3(
        cls,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str = "",
        region: str = "",
        access_key_id: str = "",
        secret_access_key: str = "",
        retries: int = 2,
        retry_timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        request_timeout_s: float = 120.0,
    ) -> ObjectStore:
        """An S3 bucket (AWS, or any S3 API at `endpoint`: path-style, http allowed).

        Retries inside one call are few and short on purpose: an outage must surface as
        `StoreUnavailable` quickly so the caller's own capped backoff decides what next.
        Empty credentials = ambient ones (AWS_* environment, instance role).
        """
        config: dict[str, Any] = {"region": region or "us-east-1"}
        if endpoint:
            config.update(endpoint=endpoint.rstrip("/"), virtual_hosted_style_request=False)
        if access_key_id or secret_access_key:
            if not (access_key_id and secret_access_key):
                raise StoreConfigError("S3 credentials need both an access key id and a secret")
            config.update(access_key_id=access_key_id, secret_access_key=secret_access_key)
        client = {
            "allow_http": endpoint.startswith("http://"),
            "connect_timeout": timedelta(seconds=connect_timeout_s),
            "timeout": timedelta(seconds=request_timeout_s),
        }
        retry = {
            "max_retries": retries,
            "retry_timeout": timedelta(seconds=retry_timeout_s),
            "backoff": {
                "init_backoff": timedelta(milliseconds=100),
                "max_backoff": timedelta(seconds=2),
                "base": 2,
            },
        }
        try:
            inner = S3Store(
                bucket,
                prefix=_prefix(prefix),
                config=config,  # type: ignore[arg-type]
                client_options=client,  # type: ignore[arg-type]
                retry_config=retry,  # type: ignore[arg-type]
            )
        except obx.BaseError as exc:
            raise StoreConfigError(f"cannot configure S3 bucket {bucket!r}: {exc}") from None
        location = Location(
            "s3",
            bucket=bucket,
            prefix=prefix.strip("/"),
            endpoint=endpoint.rstrip("/"),
            region=config["region"],
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
        )
        return cls(inner, location)

    @classmethod
    def from_url(cls, url: str, data_dir: Path | str = ".", **s3: Any) -> ObjectStore:
        """'' = `{data_dir}/objects`; `file:///abs`; `s3://bucket/prefix` (+ `s3.` options)."""
        if not url:
            return cls.local(Path(data_dir) / "objects")
        parts = urlsplit(url)
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
                raise StoreConfigError(f"bad file URL {url!r}: write file:///absolute/path")
            return cls.local(parts.path)
        if parts.scheme == "s3":
            if not parts.netloc:
                raise StoreConfigError(f"bad S3 URL {url!r}: write s3://bucket/prefix")
            return cls.s3(parts.netloc, parts.path, **s3)
        raise StoreConfigError(
            f"unsupported object store URL {url!r}",
            hint="use s3://bucket/prefix, file:///absolute/path, or '' for local files",
        )

    @classmethod
    def from_spec(
        cls,
        storage: Storage,
        data_dir: Path | str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **s3: Any,
    ) -> ObjectStore:
        """The store of an environment's `storage` section; secrets resolved here.

        `data_dir` overrides `storage.data_dir` (the CLI's --data-dir). Raises
        StoreConfigError naming the field when a secret reference cannot be resolved.
        """
        spec = storage.object_store
        root = Path(data_dir if data_dir is not None else storage.data_dir)
        if spec.url.startswith("s3://"):
            s3.setdefault("endpoint", spec.endpoint)
            s3.setdefault("region", spec.region)
            if spec.credentials is not None:
                base = "storage.object_store.credentials"
                try:
                    s3["access_key_id"] = resolve_secret(
                        spec.credentials.access_key_id,
                        field=f"{base}.access_key_id",
                        environ=environ,
                    )
                    s3["secret_access_key"] = resolve_secret(
                        spec.credentials.secret_access_key,
                        field=f"{base}.secret_access_key",
                        environ=environ,
                    )
                except SecretError as exc:
                    raise StoreConfigError(str(exc), hint=exc.hint) from None
        return cls.from_url(spec.url, root, **s3)

    # -- operations ---------------------------------------------------------------------

    def put(self, key: str, data: bytes | bytearray | memoryview | Path) -> ObjectInfo:
        """Write one object atomically (replacing any object at `key`); a Path is streamed
        from disk, in parts when larger than PART_SIZE. Returns its size and etag."""
        check_key(key)
        if isinstance(data, Path):
            size = _file_size(data)
        else:
            data = bytes(data) if isinstance(data, bytearray) else data
            size = len(data)
        try:
            result = obstore.put(
                self._store,
                key,
                data,
                use_multipart=size > PART_SIZE,
                chunk_size=PART_SIZE,
                max_concurrency=PART_CONCURRENCY,
            )
        except Exception as exc:
            raise _map(exc, key, "put") from None
        return ObjectInfo(key, size, _etag(result.get("e_tag")))

    def get(self, key: str) -> bytes:
        """The whole object in memory (use `iter_bytes`/`download` for big ones)."""
        check_key(key)
        try:
            return bytes(obstore.get(self._store, key).bytes())
        except Exception as exc:
            raise _map(exc, key, "get") from None

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of an object."""
        check_key(key)
        try:
            return bytes(obstore.get_range(self._store, key, start=start, end=end))
        except Exception as exc:
            raise _map(exc, key, "get") from None

    def iter_bytes(self, key: str, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        """Stream an object in chunks (constant memory)."""
        check_key(key)
        try:
            result = obstore.get(self._store, key)
            for block in result.stream(min_chunk_size=chunk):
                yield bytes(block)
        except StoreError:
            raise
        except Exception as exc:
            raise _map(exc, key, "get") from None

    def download(self, key: str, path: Path) -> int:
        """Copy an object to a local file atomically (tmp + rename); returns its size."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        size = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                for block in self.iter_bytes(key):
                    fh.write(block)
                    size += len(block)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size

    def digest(self, key: str) -> tuple[int, str]:
        """(size, hex sha256) of the bytes the store holds, read back in full."""
        sha = hashlib.sha256()
        size = 0
        for block in self.iter_bytes(key):
            sha.update(block)
            size += len(block)
        return size, sha.hexdigest()

    def head(self, key: str) -> ObjectInfo:
        """Size, etag and modification time of one object; NotFound if absent."""
        check_key(key)
        try:
            meta = obstore.head(self._store, key)
        except Exception as exc:
            raise _map(exc, key, "head") from None
        return _info(meta)

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except NotFound:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects under `prefix`, which is matched by whole `/` parts (`raw/dev` lists
        `raw/dev/…`, not `raw/dev2/…`). Order is the store's (sort if it matters)."""
        pre = _prefix(prefix)
        try:
            for batch in obstore.list(self._store, pre, chunk_size=1000):
                for meta in batch:
                    yield _info(meta)
        except StoreError:
            raise
        except Exception as exc:
            raise _map(exc, prefix, "list") from None

    def delete(self, key: str) -> None:
        """Remove an object; deleting an absent key is not an error (as on S3)."""
        check_key(key)
        try:
            obstore.delete(self._store, key)
        except (obx.NotFoundError, FileNotFoundError):
            return
        except Exception as exc:
            raise _map(exc, key, "delete") from None


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from None


def _etag(value: object) -> str:
    return str(value).strip('"') if value else ""


def _info(meta: Mapping[str, Any]) -> ObjectInfo:
    modified = meta.get("last_modified")
    ns = int(modified.timestamp() * 1e9) if modified is not None else 0
    return ObjectInfo(str(meta["path"]), int(meta["size"]), _etag(meta.get("e_tag")), ns)


def _map(exc: BaseException, key: str, op: str) -> StoreError:
    """obstore's exception -> ours, by what the caller should do about it."""
    text = " ".join(str(exc).split("Debug source:", 1)[0].split())
    if len(text) > 400:
        text = text[:400] + "…"
    if "NoSuchBucket" in text:
        return StoreConfigError(
            f"{op} {key!r}: the bucket does not exist", key, "create the bucket first"
        )
    if isinstance(exc, obx.NotFoundError | FileNotFoundError):
        return NotFound(f"no object {key!r}", key)
    if isinstance(exc, obx.PermissionDeniedError | obx.UnauthenticatedError):
        return StoreDenied(
            f"object store refused {op} {key!r}: {text}",
            key,
            "check storage.object_store.credentials and the bucket policy",
        )
    if isinstance(exc, obx.InvalidPathError | obx.UnknownConfigurationKeyError):
        return StoreConfigError(f"{op} {key!r}: {text}", key)
    return StoreUnavailable(f"object store {op} {key!r} failed: {text}", key)
