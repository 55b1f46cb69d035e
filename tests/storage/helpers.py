"""Shared helpers for storage tests: buckets on the real S3 server, stores of both kinds."""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3

from ssmd.capture.journal import Journal
from ssmd.capture.journal_manifest import Manifest
from ssmd.meta import connect
from ssmd.stack.s3 import S3Server
from ssmd.storage import ObjectStore, catalog
from ssmd.storage.shipper import Shipper


def make_bucket(server: S3Server, name: str = "") -> str:
    """A fresh bucket on `server` (moto: bucket names must be 3–63 lowercase chars)."""
    bucket = name or f"t-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", **server.credentials).create_bucket(Bucket=bucket)
    return bucket


def s3_keys(server: S3Server, bucket: str, prefix: str = "") -> dict[str, int]:
    """Every key in the bucket with its size, read with boto3 (not our wrapper)."""
    client = boto3.client("s3", **server.credentials)
    out: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = obj["Size"]
    return out


def s3_store(server: S3Server, bucket: str, prefix: str = "") -> ObjectStore:
    return ObjectStore.s3(
        bucket,
        prefix,
        endpoint=server.url,
        region=server.region,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
    )


def local_store(root: Path) -> ObjectStore:
    return ObjectStore.local(root)


# --- journal segments and shippers ------------------------------------------------------

T0 = 1_709_287_200_000_000_000
"""2024-03-01T10:00:00Z: segments in tests start here."""
HOUR = 3_600_000_000_000
DAY = 24 * HOUR


def write_segments(
    root: Path,
    *,
    env: str = "dev",
    feed: str = "sim",
    shard: int = 0,
    conn: int = 0,
    hours: int = 3,
    lines: int = 40,
    start: int = T0,
    payload_bytes: int = 60,
) -> list[Manifest]:
    """Closed segments written by the real Journal: one per UTC hour, `lines` frames each
    (spread over the first half of the hour), rotated by the hour and sealed by close()."""
    journal = Journal(root, env, feed, shard, conn, rotate_ns=2 * HOUR, rotate_bytes=2**30)
    step = HOUR // 2 // lines
    for h in range(hours):
        for i in range(lines):
            t = start + h * HOUR + i * step
            body = f'{{"h":{h},"i":{i},"pad":"{"x" * payload_bytes}"}}'
            journal.write(t, 1_000 + h * HOUR + i, "in", body)
    journal.close()
    return list(journal.manifests)


def new_shipper(
    pg_url: str,
    store: ObjectStore,
    root: Path,
    clock: list[int],
    *,
    env: str = "dev",
    retention_ns: int = DAY,
) -> Shipper:
    """A Shipper whose clock is `clock[0]` (tests move time instead of sleeping)."""
    return Shipper(
        lambda: connect(pg_url),
        store,
        env,
        root,
        journal_retention_ns=retention_ns,
        clock=lambda: clock[0],
    )


def catalog_rows(pg_url: str, env: str = "dev") -> dict[str, catalog.CatalogRow]:
    with connect(pg_url) as conn:
        return {r.key: r for r in catalog.rows(conn, env)}


def audit_actions(pg_url: str) -> list[tuple[str, str]]:
    with connect(pg_url) as conn:
        return [
            (a, t)
            for a, t in conn.execute("SELECT action, target FROM audit_log ORDER BY id").fetchall()
        ]
