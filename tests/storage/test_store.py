"""ObjectStore against the local filesystem and the real S3-compatible server (moto)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ssmd.spec.model import Credentials, Storage
from ssmd.spec.model import ObjectStore as ObjectStoreSpec
from ssmd.storage import (
    NotFound,
    ObjectStore,
    StoreConfigError,
    StoreUnavailable,
    check_key,
)
from ssmd.storage import store as store_mod

from .helpers import make_bucket, s3_keys, s3_store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return ObjectStore.local(tmp_path / "objects")
    server = request.getfixturevalue("s3_server")
    return s3_store(server, make_bucket(server), "pre/fix")


def test_round_trip_bytes(store: ObjectStore) -> None:
    info = store.put("raw/dev/f/2024-03-01/10/0-0-1.jsonl.zst", b"hello\n")
    assert (info.key, info.size) == ("raw/dev/f/2024-03-01/10/0-0-1.jsonl.zst", 6)
    assert info.etag
    assert store.get("raw/dev/f/2024-03-01/10/0-0-1.jsonl.zst") == b"hello\n"
    head = store.head("raw/dev/f/2024-03-01/10/0-0-1.jsonl.zst")
    assert (head.key, head.size, head.etag) == (info.key, 6, info.etag)
    assert head.last_modified_ns > 0
    assert store.exists(info.key)
    assert store.get_range(info.key, 1, 4) == b"ell"
    assert store.digest(info.key) == (6, hashlib.sha256(b"hello\n").hexdigest())


def test_overwrite_replaces_never_adds(store: ObjectStore) -> None:
    store.put("a/b/c", b"one")
    store.put("a/b/c", b"second")
    assert store.get("a/b/c") == b"second"
    assert [(o.key, o.size) for o in store.list("a")] == [("a/b/c", 6)]


def test_large_file_multipart(store: ObjectStore, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    block = bytes(range(256)) * 4096  # 1 MiB, not constant: parts out of order would show
    with path.open("wb") as fh:
        for i in range(19):
            fh.write(block[i:] + block[:i])
    data = path.read_bytes()
    assert len(data) > 2 * store_mod.PART_SIZE
    info = store.put("raw/big.bin", path)
    assert info.size == len(data)
    assert store.digest("raw/big.bin") == (len(data), hashlib.sha256(data).hexdigest())
    out = tmp_path / "back" / "big.bin"
    assert store.download("raw/big.bin", out) == len(data)
    assert out.read_bytes() == data
    assert b"".join(store.iter_bytes("raw/big.bin", chunk=3 * 2**20)) == data


def test_list_by_whole_parts_and_delete(store: ObjectStore) -> None:
    for key in ("raw/dev/a/1", "raw/dev/a/2", "raw/dev2/x", "normalized/v1/y"):
        store.put(key, key.encode())
    assert sorted(o.key for o in store.list("raw/dev")) == ["raw/dev/a/1", "raw/dev/a/2"]
    assert sorted(o.key for o in store.list("raw")) == ["raw/dev/a/1", "raw/dev/a/2", "raw/dev2/x"]
    assert len(list(store.list())) == 4
    store.delete("raw/dev/a/1")
    store.delete("raw/dev/a/1")  # absent: not an error
    assert not store.exists("raw/dev/a/1")
    assert sorted(o.key for o in store.list("raw/dev")) == ["raw/dev/a/2"]
    assert list(store.list("nothing/here")) == []


def test_not_found(store: ObjectStore) -> None:
    with pytest.raises(NotFound) as err:
        store.get("raw/missing")
    assert err.value.key == "raw/missing"
    with pytest.raises(NotFound):
        store.head("raw/missing")
    with pytest.raises(NotFound):
        list(store.iter_bytes("raw/missing"))
    assert not store.exists("raw/missing")


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "a/./b", "dir/"])
def test_bad_keys_refused(key: str) -> None:
    with pytest.raises(ValueError, match="bad object key"):
        check_key(key)


def test_local_keys_are_files(tmp_path: Path) -> None:
    store = ObjectStore.local(tmp_path / "o")
    store.put("raw/e/f/x.jsonl.zst", b"abc")
    assert (tmp_path / "o/raw/e/f/x.jsonl.zst").read_bytes() == b"abc"
    store.delete("raw/e/f/x.jsonl.zst")
    assert not (tmp_path / "o/raw").exists()  # empty directories cleaned up
    assert store.location.url("raw/k") == str((tmp_path / "o/raw/k").resolve())


def test_s3_keys_under_prefix(s3_server, tmp_path: Path) -> None:
    bucket = make_bucket(s3_server)
    store = s3_store(s3_server, bucket, "/archive/")
    store.put("raw/e/f/x", b"12345")
    assert s3_keys(s3_server, bucket) == {"archive/raw/e/f/x": 5}
    assert [o.key for o in store.list("raw")] == ["raw/e/f/x"]
    assert store.location.url("raw/e/f/x") == f"s3://{bucket}/archive/raw/e/f/x"


def test_unreachable_is_store_unavailable() -> None:
    store = ObjectStore.s3(
        "bkt", endpoint="http://127.0.0.1:9", access_key_id="a", secret_access_key="b"
    )
    with pytest.raises(StoreUnavailable, match="put 'raw/x' failed"):
        store.put("raw/x", b"1")
    with pytest.raises(StoreUnavailable):
        store.head("raw/x")


def test_missing_bucket_is_config_error(s3_server) -> None:
    store = s3_store(s3_server, "no-such-bucket-here")
    with pytest.raises(StoreConfigError, match="bucket does not exist"):
        store.put("raw/x", b"1")


def test_from_spec_local_default_and_file_url(tmp_path: Path) -> None:
    store = ObjectStore.from_spec(Storage(data_dir=str(tmp_path)))
    assert store.location.root == str((tmp_path / "objects").resolve())
    other = ObjectStore.from_spec(
        Storage(object_store=ObjectStoreSpec(url=f"file://{tmp_path}/elsewhere")), tmp_path
    )
    other.put("k/v", b"1")
    assert (tmp_path / "elsewhere/k/v").read_bytes() == b"1"


def test_from_spec_s3_resolves_secrets(s3_server, tmp_path: Path) -> None:
    bucket = make_bucket(s3_server)
    secret_file = tmp_path / "secret"
    secret_file.write_text(s3_server.secret_key + "\n")
    spec = Storage(
        object_store=ObjectStoreSpec(
            url=f"s3://{bucket}/p",
            endpoint=s3_server.url,
            region=s3_server.region,
            credentials=Credentials(
                access_key_id="env:TEST_S3_KEY", secret_access_key=f"file:{secret_file}"
            ),
        )
    )
    store = ObjectStore.from_spec(spec, tmp_path, environ={"TEST_S3_KEY": s3_server.access_key})
    store.put("raw/a", b"xyz")
    assert s3_keys(s3_server, bucket) == {"p/raw/a": 3}
    loc = store.location
    assert (loc.kind, loc.bucket, loc.prefix, loc.endpoint) == ("s3", bucket, "p", s3_server.url)
    assert (loc.access_key_id, loc.secret_access_key) == (
        s3_server.access_key,
        s3_server.secret_key,
    )
    assert s3_server.secret_key not in repr(loc)


def test_from_spec_secret_errors_name_the_field(tmp_path: Path) -> None:
    spec = Storage(
        object_store=ObjectStoreSpec(
            url="s3://bucket/p",
            credentials=Credentials(
                access_key_id="env:NOT_SET_ANYWHERE", secret_access_key="file:/nonexistent/s"
            ),
        )
    )
    with pytest.raises(StoreConfigError) as err:
        ObjectStore.from_spec(spec, tmp_path, environ={})
    assert str(err.value) == (
        "secret reference env:NOT_SET_ANYWHERE (storage.object_store.credentials."
        "access_key_id): environment variable NOT_SET_ANYWHERE is not set"
    )
    assert err.value.hint == "export NOT_SET_ANYWHERE=… in the environment of this process"
