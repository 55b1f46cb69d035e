"""Shared helpers for storage tests: buckets on the real S3 server, stores of both kinds."""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3

from ssmd.stack.s3 import S3Server
from ssmd.storage import ObjectStore


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
