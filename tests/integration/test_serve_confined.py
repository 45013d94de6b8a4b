"""``trailboss serve`` as a restricted pod runs it: a non-root UID, the root filesystem
read-only, one writable scratch directory. Uses a private mount namespace, so it needs root
and ``unshare``; elsewhere it is skipped (and reported as skipped)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from tests.integration.servers import (
    LOOPBACK,
    S3_ENV,
    ServerProcess,
    churn_frame,
    free_port,
    log_files,
    post_json,
    s3_client,
)

NOBODY = 65532


def can_confine() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
        return False
    return subprocess.run(["unshare", "--mount", "true"], check=False).returncode == 0


pytestmark = pytest.mark.skipif(not can_confine(), reason="needs root, unshare and setpriv")


@pytest.fixture
def scratch() -> Iterator[Path]:
    """Where the pod's emptyDir is mounted: world-traversable, outside pytest's private tmp."""
    path = Path(tempfile.mkdtemp(prefix="trailboss-ro-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_serves_and_logs_as_non_root_on_a_read_only_root_filesystem(
    tmp_path: Path, scratch: Path, churn_model: tuple[Path, Any]
) -> None:
    moto = ThreadedMotoServer(ip_address=LOOPBACK, port=free_port(), verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = s3_client(endpoint)
    s3.create_bucket(Bucket="confined")
    model, _ = churn_model
    server = ServerProcess(f"{scratch}/model", "1")
    serve = [
        sys.executable, "-m", "trailboss.cli", "serve", "--host", LOOPBACK,
        "--port", str(server.port), "--model-uri", f"{scratch}/model", "--model-name", "churn",
        "--model-version", "1", "--tmp-dir", f"{scratch}/tmp", "--log-uri", "s3://confined/p",
        "--s3-endpoint-url", endpoint, "--log-flush-seconds", "3600",
    ]  # fmt: skip
    script = f"""set -e
mount -t tmpfs -o mode=0755 scratch {scratch}
cp -r {model} {scratch}/model && chmod -R a+rX {scratch}/model
mkdir -m 1777 {scratch}/tmp
mount -o remount,ro,bind /
exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups {" ".join(serve)}
"""
    server.output = tmp_path / "server.log"
    env = {**os.environ, **S3_ENV, "HOME": "/nonexistent", "TMPDIR": "/nonexistent"}
    with server.output.open("wb") as out:
        server.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        server.wait_ready()
        status = Path(f"/proc/{server.process.pid}/status").read_text()
        assert f"Uid:\t{NOBODY}\t{NOBODY}" in status
        records = churn_frame(10).to_dict(orient="records")
        reply = post_json(server.url + "/invocations", {"dataframe_records": records})
        assert reply.status == 200, reply.body
        assert server.terminate() == 0, server.log()
        (table,) = log_files(s3, "confined").values()
        assert table.num_rows == 10
        assert "Read-only file system" not in server.log()
    finally:
        server.kill()
        moto.stop()
