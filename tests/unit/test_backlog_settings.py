"""How the operator sets kopf up for a backlog: a bounded number of objects at once."""

from __future__ import annotations

import kopf

from trailboss.handlers.startup import configure


def test_kopf_handles_a_bounded_number_of_objects_at_once() -> None:
    settings = kopf.OperatorSettings()
    configure(settings, None)
    limit = settings.queueing.worker_limit
    assert limit is not None
    assert 16 <= limit <= 1024
