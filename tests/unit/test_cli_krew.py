"""How `kubectl trailboss` is distributed: pip installs `kubectl-trailboss` (what
`kubectl plugin list` finds) and `kubectl_complete-trailboss`; the krew manifest
holds what krew's own validation checks (`kubectl krew install --manifest`)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from trailboss import __version__

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "krew" / "trailboss.yaml"
# krew's plugin name rule and the platforms its index expects at least.
NAME = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return loaded


def test_pip_installs_the_plugin_under_the_names_kubectl_looks_for() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-trailboss"] == "trailboss.cli:main"
    assert scripts["kubectl_complete-trailboss"] == "trailboss.cli:kubectl_complete"


def test_krew_manifest_has_the_fields_krew_validates() -> None:
    manifest = _manifest()
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin"
    assert NAME.match(manifest["metadata"]["name"])
    spec = manifest["spec"]
    assert spec["version"] == f"v{__version__}"  # semver with a leading v, as krew wants
    assert 0 < len(spec["shortDescription"]) <= 50
    assert spec["homepage"].startswith("https://")
    assert {"description", "platforms"} <= spec.keys()


def test_every_platform_is_installable() -> None:
    platforms = _manifest()["spec"]["platforms"]
    seen = set()
    for platform in platforms:
        labels = platform["selector"]["matchLabels"]
        assert labels["os"] in {"linux", "darwin", "windows"}
        seen.add((labels["os"], labels["arch"]))
        assert platform["uri"].startswith("https://")
        assert f"v{__version__}" in platform["uri"]
        assert platform["uri"].endswith((".tar.gz", ".zip"))
        assert SHA256.match(platform["sha256"])
        assert platform["bin"] == "kubectl-trailboss"
        assert any(f["from"] == platform["bin"] for f in platform.get("files", []))
    assert ("linux", "amd64") in seen
    assert len(seen) == len(platforms)  # one archive per platform
