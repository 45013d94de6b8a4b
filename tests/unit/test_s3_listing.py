"""Listing a prefix reads every page S3 returns: a dataset pinned from a prefix
and the prediction logs a drift check reads are complete however many pages
(1,000 keys each on S3) they span. botocore's Stubber plays S3; no server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from trailboss import s3
from trailboss.clients.protocols import StoreUnavailable
from trailboss.clients.storage import Storage, digest
from trailboss.drift.store import ObjectStore, StoreError

PAGES = [["data/a.csv", "data/b.csv"], ["data/c.csv"], ["data/d.csv", "data/e.csv"]]


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """An S3 client whose answers the test queues; every Trailboss client gets it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = s3.client("http://127.0.0.1:1", attempts=1, connect_timeout=1, read_timeout=1)
    monkeypatch.setattr(s3, "client", lambda *args, **kwargs: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _queue_pages(stubber: Stubber, prefix: str, pages: list[list[str]], more: bool = False) -> None:
    """S3's answers to a listing of ``prefix`` in ``pages``, each page pointing to the
    next; ``more``: the last one, too, says more pages follow."""
    for number, keys in enumerate(pages):
        truncated = more or number + 1 < len(pages)
        expected: dict[str, Any] = {"Bucket": "lake", "Prefix": prefix}
        if number:
            expected["ContinuationToken"] = f"token-{number}"
        response: dict[str, Any] = {
            "Contents": [
                {"Key": key, "Size": 10 + i, "ETag": f'"etag-{key}"'} for i, key in enumerate(keys)
            ],
            "IsTruncated": truncated,
            "KeyCount": len(keys),
        }
        if truncated:
            response["NextContinuationToken"] = f"token-{number + 1}"
        stubber.add_response("list_objects_v2", response, expected)


def test_a_dataset_prefix_is_listed_across_every_page(stubbed: Stubber) -> None:
    _queue_pages(stubbed, "data/", PAGES)
    listing = Storage("http://127.0.0.1:1").list("s3://lake/data/")
    assert listing.keys == ("a.csv", "b.csv", "c.csv", "d.csv", "e.csv")
    assert listing.objects == 5
    assert listing.size_bytes == 10 + 11 + 10 + 10 + 11
    expected = [
        (key.removeprefix("data/"), 10 + i, f"etag-{key}")
        for keys in PAGES
        for i, key in enumerate(keys)
    ]
    assert listing.digest == digest(expected)


def test_a_single_page_listing_asks_once(stubbed: Stubber) -> None:
    _queue_pages(stubbed, "data/", [["data/only.csv"]])
    assert Storage("http://127.0.0.1:1").list("s3://lake/data").keys == ("only.csv",)


def test_a_failure_on_a_later_page_is_reported_not_a_short_listing(stubbed: Stubber) -> None:
    _queue_pages(stubbed, "data/", PAGES[:1], more=True)
    stubbed.add_client_error("list_objects_v2", "AccessDenied", http_status_code=403)
    with pytest.raises(StoreUnavailable, match="s3://lake/data/: AccessDenied") as raised:
        Storage("http://127.0.0.1:1").list("s3://lake/data/")
    assert raised.value.code == "AccessDenied"


def test_prediction_logs_are_read_across_every_page(stubbed: Stubber) -> None:
    _queue_pages(stubbed, "data/", PAGES)
    keys = list(ObjectStore("http://127.0.0.1:1").keys("s3://lake/data/"))
    assert keys == [f"s3://lake/{key}" for page in PAGES for key in page]


def test_a_drift_listing_that_fails_names_the_prefix(stubbed: Stubber) -> None:
    stubbed.add_client_error("list_objects_v2", "AccessDenied", http_status_code=403)
    with pytest.raises(StoreError, match="s3://lake/logs/: AccessDenied"):
        list(ObjectStore("http://127.0.0.1:1").keys("s3://lake/logs/"))
