"""Seeding the metadata store for the gateway's REST/auth/usage tests: one environment,
its clients (from the definition's shape) and API keys, through the real stores."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ssmd.meta import clients, connect, keys
from ssmd.model.time import now_ns

DAY = 86_400 * 10**9


def seed_clients(pg_url: str, env: str, specs: list[dict[str, Any]]) -> None:
    with connect(pg_url) as conn:
        clients.sync_clients(conn, env, specs, actor="test")


def issue(
    pg_url: str,
    env: str,
    client_id: str,
    *,
    scopes: list[str] | None = None,
    expires_ns: int | None = None,
) -> keys.IssuedKey:
    with connect(pg_url) as conn:
        return keys.create(conn, env, client_id, "test", scopes=scopes, expires_ns=expires_ns)


def revoke(pg_url: str, key_id: str) -> None:
    with connect(pg_url) as conn:
        keys.revoke(conn, key_id, "test")


def expire_now(pg_url: str, key_id: str) -> None:
    """Make a key expired (create refuses a past expiry)."""
    with connect(pg_url) as conn:
        conn.execute(
            "UPDATE api_keys SET expires_ns = %s WHERE key_id = %s", (now_ns() - 1, key_id)
        )


# -- an archive written through the history engineer's writer and layout ----------------

REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def definition(data_dir: Any) -> Any:
    """environments/dev.yaml (feed `sim`, venue sim) with its data under `data_dir`."""
    import msgspec

    from ssmd import spec

    env = spec.load(REPO_ROOT / "environments" / "dev.yaml")
    storage = msgspec.structs.replace(env.storage, data_dir=str(data_dir))
    return msgspec.structs.replace(env, storage=storage)


def write_archive(defn: Any, root: Any, records: list[Any], version: int = 1) -> None:
    """Records → one Parquet file per (type, ts_recv hour) + complete coverage markers."""
    from collections import defaultdict

    import msgspec

    from ssmd.history.layout import Partition, hour_floor, hour_key
    from ssmd.history.schema import to_table
    from ssmd.history.writer import file_meta, parquet_bytes, sort_table
    from ssmd.storage import ObjectStore

    store = ObjectStore.from_spec(defn.storage, root)
    env = defn.metadata.name
    groups: dict[tuple[str, str, int], list[Any]] = defaultdict(list)
    for r in records:
        groups[(r.feed, type(r).__struct_config__.tag, hour_floor(r.ts_recv))].append(r)
    hours: set[tuple[str, int]] = set()
    for (feed, kind, hour), rs in sorted(groups.items()):
        table = sort_table(to_table(kind, rs))
        part = Partition(version, env, feed, kind, hour)
        meta = file_meta(kind, table, version=version, env=env, feed=feed, hour_ns=hour)
        store.put(part.key, parquet_bytes(kind, table, meta))
        hours.add((feed, hour))
    for feed, hour in sorted(hours):
        marker = {"version": version, "env": env, "feed": feed, "hour_ns": hour, "complete": True}
        store.put(hour_key(version, env, feed, hour), msgspec.json.encode(marker))


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Run an ASGI app under uvicorn (lifespan on) on a free port in a thread; yields its
    base URL once /v1/health answers. For tests whose HTTP client is synchronous."""
    import threading
    import time

    import httpx
    import uvicorn

    from ssmd.stack.ports import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(base + "/v1/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(10)
