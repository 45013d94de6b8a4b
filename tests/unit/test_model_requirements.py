"""A model server names the requirements of the model it loads that its environment
does not meet, as MLflow would, without MLflow's scan of every installed package."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from trailboss.serving.model import unmet_requirements


def test_a_missing_package_and_a_version_out_of_range_are_named(tmp_path: Path) -> None:
    numpy = metadata.version("numpy")
    (tmp_path / "requirements.txt").write_text(
        "# saved by MLflow\n"
        "-r extra.txt\n"
        f"numpy=={numpy}\n"
        "pandas<1.0  # far too old for this environment\n"
        "no-such-package-here==1.2\n"
        'only-on-windows==1.0; sys_platform == "win32"\n'
        "git+https://example.invalid/repo.git\n"
    )
    unmet = unmet_requirements(tmp_path)
    assert unmet == [
        f"pandas<1.0 (installed: {metadata.version('pandas')})",
        "no-such-package-here==1.2 (not installed)",
    ]


def test_a_model_without_requirements_has_none_unmet(tmp_path: Path) -> None:
    assert unmet_requirements(tmp_path) == []
