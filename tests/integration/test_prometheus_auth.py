"""Rollout analysis against a real Prometheus that requires basic auth
(``--web.config.file`` with a bcrypt hash), on loopback: the credentials of the
Secret a Deployment names get answers, and without them the analysis records
an Error measurement naming the 401."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from tests.integration.servers import LOOPBACK, free_port
from tests.unit.test_deployment_reconciler import NS, World, _mv
from trailboss.clients.prometheus import Prometheus
from trailboss.clients.protocols import Credentials, Endpoint, QueryFailed

CACHE = Path(os.environ.get("TRAILBOSS_CACHE") or Path.home() / ".cache" / "trailboss")
USER, PASSWORD = "analysis", "correct horse battery staple"
ONE_NUMBER = "vector(0.01)"


def prometheus_binary() -> str | None:
    cached = CACHE / "bin" / "prometheus"
    return str(cached) if cached.is_file() else shutil.which("prometheus")


def _ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    request = urllib.request.Request(f"{url}/-/ready")
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    request.add_header("Authorization", f"Basic {basic}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.2)
    pytest.fail(f"prometheus was not ready within 60s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a Prometheus on loopback that answers only USER with PASSWORD."""
    binary = prometheus_binary()
    if binary is None:
        pytest.skip(
            f"no prometheus binary at {CACHE / 'bin'} or on the PATH; `make stack-build` builds it"
        )
    home = tmp_path_factory.mktemp("prometheus")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    (home / "web.yml").write_text(f"basic_auth_users:\n  {USER}: '{hashed}'\n")
    (home / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")
    url = f"http://{LOOPBACK}:{free_port()}"
    log = home / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, f"--config.file={home / 'prometheus.yml'}",
             f"--web.config.file={home / 'web.yml'}",
             f"--storage.tsdb.path={home / 'data'}",
             f"--web.listen-address={url.removeprefix('http://')}"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_client_gets_an_answer_with_the_password_and_a_401_without(prometheus: str) -> None:
    client = Prometheus()
    right = Credentials(username=USER, password=PASSWORD)
    assert client.query(Endpoint(prometheus, right), ONE_NUMBER) == 0.01
    # Prometheus is given the timeout too, which it reads in seconds.
    assert client.query(Endpoint(prometheus, right, timeout=1.5), ONE_NUMBER) == 0.01
    with pytest.raises(QueryFailed, match=r"requires authentication \(401 Unauthorized\)"):
        client.query(Endpoint(prometheus), ONE_NUMBER)
    wrong = Credentials(username=USER, password="wrong")
    with pytest.raises(QueryFailed, match=r"refused the credentials \(401 Unauthorized\)"):
        client.query(Endpoint(prometheus, wrong), ONE_NUMBER)


def rollout_against(prometheus: str, **analysis: Any) -> World:
    """A rollout of v2 whose analysis asks the real Prometheus through the real client."""
    steps = [{"weight": 10, "pause": "5m"}]
    world = World(modelVersion="v1", rollout={"steps": steps})
    world.svc.prometheus = Prometheus()
    world.add(_mv("v1", 1), _mv("v2", 2))
    world.settle()
    spec = {
        "prometheusUrl": prometheus,
        "interval": "10s",
        "queries": [{"name": "error-rate", "query": ONE_NUMBER, "max": 0.05}],
        **analysis,
    }
    world.edit(modelVersion="v2", rollout={"steps": steps, "analysis": spec})
    return world


def measured(status: dict[str, Any]) -> dict[str, Any]:
    last: dict[str, Any] = status["analysis"][-1]
    return last


def test_analysis_with_the_secrets_credentials_measures(prometheus: str) -> None:
    world = rollout_against(prometheus, prometheusAuth={"secretRef": {"name": "prometheus"}})
    data = {"username": USER, "password": PASSWORD}
    world.kube.put(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "prometheus", "namespace": NS},
         "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}
    )  # fmt: skip
    result = measured(world.settle())
    assert (result["phase"], result["value"]) == ("Successful", 0.01)


def test_analysis_without_credentials_records_the_401(prometheus: str) -> None:
    world = rollout_against(prometheus)
    result = measured(world.settle())
    assert result["phase"] == "Error"
    assert result["message"] == (
        f"Prometheus at {prometheus} requires authentication (401 Unauthorized); name a Secret "
        "with a token, or a username and password, in spec.rollout.analysis.prometheusAuth"
    )
