"""Events as `kubectl describe` shows them: a repeat of the same event on the same
object within a few minutes counts up one Event ("x3 over 4m"), as client-go's
recorders do, instead of adding a row each time."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import NotFoundError

from trailboss.clients.kube import SERIES_WINDOW, EventRecorder

from .fakes import NOW


class FakeEvents:
    """The core/v1 Event resource as the API server keeps it: create refuses an
    existing name, a merge patch of a missing Event is 404."""

    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], dict[str, Any]] = {}
        self.failing = False

    def create(self, body: dict[str, Any], namespace: str, **_: Any) -> dict[str, Any]:
        self._maybe_fail()
        key = (namespace, body["metadata"]["name"])
        assert key not in self.stored
        self.stored[key] = copy.deepcopy(body)
        return body

    def patch(
        self, body: dict[str, Any], name: str, namespace: str, content_type: str, **_: Any
    ) -> dict[str, Any]:
        self._maybe_fail()
        assert content_type == "application/merge-patch+json"
        if (namespace, name) not in self.stored:
            raise NotFoundError(ApiException(status=404, reason="Not Found"))  # type: ignore[no-untyped-call]
        self.stored[(namespace, name)].update(body)
        return self.stored[(namespace, name)]

    def _maybe_fail(self) -> None:
        if self.failing:
            raise ApiException(status=403, reason="Forbidden")

    def described(self, name: str) -> list[tuple[str, str, str, int, str, str]]:
        """What `kubectl describe` lists for one object: type, reason, message, count,
        first and last seen."""
        return sorted(
            tuple(
                e[k]
                for k in ("type", "reason", "message", "count", "firstTimestamp", "lastTimestamp")
            )
            for e in self.stored.values()
            if e["involvedObject"]["name"] == name
        )


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def deployment(name: str = "churn", uid: str = "uid-1") -> dict[str, Any]:
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "ml", "uid": uid, "resourceVersion": "7"},
    }


@pytest.fixture
def events() -> FakeEvents:
    return FakeEvents()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def recorder(events: FakeEvents, clock: Clock) -> EventRecorder:
    return EventRecorder(lambda: events, clock)


def stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_first_event_is_one_row(recorder: EventRecorder, events: FakeEvents) -> None:
    recorder.record(deployment(), "DriftDetected", "age drifted", warning=True)
    (event,) = events.stored.values()
    assert event["involvedObject"] == {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "Deployment",
        "name": "churn",
        "namespace": "ml",
        "uid": "uid-1",
        "resourceVersion": "7",
    }
    assert (event["type"], event["reason"], event["count"]) == ("Warning", "DriftDetected", 1)
    assert event["source"] == {"component": "trailboss"}


def test_a_repeat_counts_up_the_same_event(
    recorder: EventRecorder, events: FakeEvents, clock: Clock
) -> None:
    for _ in range(3):
        recorder.record(deployment(), "DriftDetected", "age drifted", warning=True)
        clock.advance(minutes=5)
    last = NOW + dt.timedelta(minutes=10)
    assert events.described("churn") == [
        ("Warning", "DriftDetected", "age drifted", 3, stamp(NOW), stamp(last))
    ]


def test_a_series_goes_on_while_repeats_come_within_the_window(
    recorder: EventRecorder, events: FakeEvents, clock: Clock
) -> None:
    # A drift check every 5 minutes for an hour: one Event, counted 13 times.
    for _ in range(13):
        recorder.record(deployment(), "DriftDetected", "age drifted", warning=True)
        clock.advance(minutes=5)
    ((_, _, _, count, first, last),) = events.described("churn")
    assert (count, first, last) == (13, stamp(NOW), stamp(NOW + dt.timedelta(hours=1)))


def test_a_repeat_after_the_window_is_a_new_event(
    recorder: EventRecorder, events: FakeEvents, clock: Clock
) -> None:
    recorder.record(deployment(), "Promoted", "serving churn-v2")
    clock.now += SERIES_WINDOW + dt.timedelta(seconds=1)
    recorder.record(deployment(), "Promoted", "serving churn-v2")
    assert [row[3] for row in events.described("churn")] == [1, 1]


@pytest.mark.parametrize(
    ("other", "reason", "message", "warning"),
    [
        (deployment(), "DriftDetected", "income drifted", True),  # another message
        (deployment(), "DriftCleared", "age drifted", True),  # another reason
        (deployment(), "DriftDetected", "age drifted", False),  # another type
        (deployment("fraud", "uid-2"), "DriftDetected", "age drifted", True),  # another object
        (deployment(uid="uid-9"), "DriftDetected", "age drifted", True),  # recreated object
    ],
)
def test_different_events_are_different_rows(
    recorder: EventRecorder,
    events: FakeEvents,
    other: dict[str, Any],
    reason: str,
    message: str,
    warning: bool,
) -> None:
    recorder.record(deployment(), "DriftDetected", "age drifted", warning=True)
    recorder.record(other, reason, message, warning=warning)
    assert len(events.stored) == 2
    assert all(e["count"] == 1 for e in events.stored.values())


def test_an_expired_event_is_posted_again(
    recorder: EventRecorder, events: FakeEvents, clock: Clock
) -> None:
    """The API server deletes Events after an hour (--event-ttl); a repeat of a
    deleted one is a new Event, not an error."""
    recorder.record(deployment(), "Promoted", "serving churn-v2")
    events.stored.clear()
    clock.advance(minutes=1)
    recorder.record(deployment(), "Promoted", "serving churn-v2")
    assert events.described("churn") == [
        ("Normal", "Promoted", "serving churn-v2", 1, stamp(clock.now), stamp(clock.now))
    ]


def test_an_event_the_api_refuses_never_fails_the_caller(
    recorder: EventRecorder, events: FakeEvents, caplog: pytest.LogCaptureFixture
) -> None:
    events.failing = True
    recorder.record(deployment(), "Promoted", "serving churn-v2")
    recorder.record(deployment(), "Promoted", "serving churn-v2")
    assert "could not record event Promoted on churn" in caplog.text
    events.failing = False
    recorder.record(deployment(), "Promoted", "serving churn-v2")
    assert [row[3] for row in events.described("churn")] == [1]


def test_long_messages_are_cut_to_what_the_api_keeps(
    recorder: EventRecorder, events: FakeEvents
) -> None:
    recorder.record(deployment(), "Failed", "x" * 5000, warning=True)
    recorder.record(deployment(), "Failed", "x" * 5000, warning=True)
    (event,) = events.stored.values()
    assert (len(event["message"]), event["count"]) == (1024, 2)
