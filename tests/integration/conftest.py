"""One real scikit-learn model for every server test of the session (saving one is slow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import save_churn_model


@pytest.fixture(scope="session")
def churn_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The saved model's directory and the fitted pipeline (for expected predictions)."""
    return save_churn_model(tmp_path_factory.mktemp("model") / "churn")
