"""The operator returns a burst's memory to the OS once the burst is over, and
never trims while the heap keeps growing or when nothing was gained."""

from __future__ import annotations

import sys

import pytest

from trailboss import memory

MIB = 1024 * 1024


class Heap:
    """Resident sizes in MiB, one per read; a trim drops the size to ``after_trim``."""

    def __init__(self, *sizes: int, after_trim: int = 0) -> None:
        self.sizes = list(sizes)
        self.after_trim = after_trim
        self.trims = 0

    def resident(self) -> int:
        if len(self.sizes) > 1:
            return self.sizes.pop(0) * MIB
        return self.sizes[0] * MIB

    def trim(self) -> None:
        self.trims += 1
        self.sizes = [self.after_trim]


def _checks(heap: Heap, count: int) -> list[bool]:
    trimmer = memory.Trimmer(heap.trim, heap.resident, growth=32 * MIB, still=4 * MIB)
    return [trimmer.check() for _ in range(count)]


def test_trims_once_the_burst_is_over() -> None:
    # baseline 100, growing through the burst, then holding still at 400
    heap = Heap(100, 200, 300, 400, 401, after_trim=180)
    assert _checks(heap, 4) == [False, False, False, True]
    assert heap.trims == 1


def test_never_trims_while_growing() -> None:
    heap = Heap(100, 150, 200, 250, 300, 350)
    assert not any(_checks(heap, 5))


def test_no_trim_for_small_growth() -> None:
    heap = Heap(100, 110, 120, 120, 120)
    assert not any(_checks(heap, 4))


def test_after_a_trim_only_new_growth_trims_again() -> None:
    # A trim that gains little leaves a high baseline: no trim every check.
    heap = Heap(100, 400, 400, after_trim=390)
    trimmer = memory.Trimmer(heap.trim, heap.resident, growth=32 * MIB, still=4 * MIB)
    assert [trimmer.check() for _ in range(2)] == [False, True]
    assert [trimmer.check() for _ in range(5)] == [False] * 5
    heap.sizes = [500, 500]
    assert [trimmer.check() for _ in range(2)] == [False, True]
    assert heap.trims == 2


def test_without_proc_nothing_is_trimmed() -> None:
    trims: list[int] = []
    trimmer = memory.Trimmer(lambda: trims.append(1), lambda: None)
    assert not trimmer.check()
    assert trims == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc")
def test_glibc_trim_and_resident_size_are_found_on_linux() -> None:
    size = memory.resident_bytes()
    assert size is not None
    assert size > MIB
    trim = memory.libc_trim()
    if trim is not None:  # glibc; musl has no malloc_trim
        trim()
