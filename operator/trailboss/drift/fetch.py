"""Only the columns a check reads, fetched from Parquet objects in S3.

A Parquet file keeps each column of a row group in one contiguous chunk and
says in its footer where. A check fetches the footer, then with range reads
only the chunks of the columns it measures, into a local file of the
object's size at the same offsets: pyarrow reads that file as it would the
whole one, and the other columns are a hole that is never read (most file
systems give it no disk either). So a pod of a sharded check downloads and
holds only its own group of features.

CSV cannot be read by column: a CSV (reference data, in `trailboss profile`,
which reads every column anyway) is downloaded whole.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO, Protocol

import pyarrow.parquet as pq

MAGIC = b"PAR1"
TRAILER_BYTES = 8
"""The footer's length (4 bytes, little-endian) and the magic end a Parquet file."""

PIECE_BYTES = 8 << 20
"""The most fetched in one range read, so a large chunk never sits in memory whole."""

Span = tuple[int, int]


class RangeReader(Protocol):
    def read_range(self, uri: str, start: int, stop: int) -> bytes: ...

    def read_end(self, uri: str, count: int) -> tuple[bytes, int]: ...


def fetch_columns(
    store: RangeReader, uri: str, path: Path, columns: Collection[str]
) -> pq.FileMetaData:
    """Write to `path` the footer of the Parquet object at `uri` and the chunks
    of those of `columns` it has; its metadata. ValueError when it is not Parquet."""
    trailer, size = store.read_end(uri, TRAILER_BYTES)
    if size < len(MAGIC) + TRAILER_BYTES or trailer[-len(MAGIC) :] != MAGIC:
        raise ValueError("not a Parquet file")
    footer_start = size - TRAILER_BYTES - int.from_bytes(trailer[:4], "little")
    if footer_start < len(MAGIC):
        raise ValueError("not a Parquet file: its footer is longer than the file")
    with path.open("wb") as local:
        local.truncate(size)
        _copy(store, uri, (footer_start, size), local)
    metadata = pq.read_metadata(path)
    with path.open("r+b") as local:
        for span in chunk_spans(metadata, columns):
            _copy(store, uri, span, local)
    return metadata


def _copy(store: RangeReader, uri: str, span: Span, local: BinaryIO) -> None:
    start, stop = span
    for piece in range(start, stop, PIECE_BYTES):
        local.seek(piece)
        local.write(store.read_range(uri, piece, min(stop, piece + PIECE_BYTES)))


def chunk_spans(metadata: pq.FileMetaData, columns: Collection[str]) -> list[Span]:
    """Byte ranges of the chunks of `columns` in every row group, in file
    order, touching ones joined so that they take one read."""
    wanted = set(columns)
    spans = []
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            if chunk.path_in_schema not in wanted:
                continue
            # A dictionary page, when there is one, comes before the data pages.
            start = chunk.data_page_offset
            if chunk.has_dictionary_page and 0 < chunk.dictionary_page_offset < start:
                start = chunk.dictionary_page_offset
            spans.append((start, start + chunk.total_compressed_size))
    joined: list[Span] = []
    for start, stop in sorted(spans):
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(stop, joined[-1][1]))
        else:
            joined.append((start, stop))
    return joined
