"""An S3-compatible server for tests and `ssmd up`: moto's standalone server.

moto keeps objects in memory, so data_dir holds only its log; that is enough for tests
and a dev stack (production points the object store at real S3 / MinIO / Ceph).
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

from ssmd.stack.ports import LOOPBACK
from ssmd.stack.server import Server

# moto accepts any credentials; fixed ones keep URLs and configs reproducible.
ACCESS_KEY = "ssmd-test-key"
SECRET_KEY = "ssmd-test-secret"
REGION = "us-east-1"


class S3Server(Server):
    """`python -m moto.server` on a loopback port; `.url` is the endpoint URL."""

    name = "s3"
    start_timeout = 60.0  # importing moto on a busy 2-core box takes seconds
    access_key = ACCESS_KEY
    secret_key = SECRET_KEY
    region = REGION

    def __init__(self, data_dir: Path, port: int | None = None, log_dir: Path | None = None):
        super().__init__(data_dir, port, log_dir)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def credentials(self) -> dict[str, str]:
        """The settings an S3 client needs (names as boto3/obstore spell them)."""
        return {
            "endpoint_url": self.url,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "region_name": self.region,
        }

    def _process_kwargs(self) -> dict[str, object]:
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
            AWS_DEFAULT_REGION=self.region,
            PYTHONUNBUFFERED="1",
        )
        return {"env": env, "cwd": self.data_dir}

    def _argv(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)]

    def _ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2) as resp:
            return resp.status == 200
