"""Give memory back to the OS after a burst.

A burst (a startup backlog, hundreds of TrainingRuns at once) parses thousands
of objects in many threads. CPython frees them, but glibc keeps the freed pages
in its per-thread arenas, so the process stays at its peak size while idle.
``malloc_trim(0)`` returns them. It runs once a burst is over: when the
resident size has grown since the last trim and then stopped growing, never
on a schedule while the heap is busy (the trim holds the allocator's locks
while it walks the heap).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

CHECK_SECONDS = 10.0
GROWTH_BYTES = 32 * 1024 * 1024
"""How much the resident size must have grown since the last trim to trim again."""
STILL_BYTES = 4 * 1024 * 1024
"""Growth between two checks that still counts as holding still."""


def resident_bytes() -> int | None:
    """The process's resident set size, or None where /proc is not there."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def libc_trim() -> Callable[[], None] | None:
    """glibc's ``malloc_trim(0)``, or None elsewhere (musl, macOS)."""
    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc's soname: no lookup needed
    except OSError:
        name = ctypes.util.find_library("c")
        if name is None:
            return None
        try:
            libc = ctypes.CDLL(name)
        except OSError:
            return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def run() -> None:
        trim(0)

    return run


class Trimmer:
    """Decides, from one resident-size sample per check, when a burst is over."""

    def __init__(
        self,
        trim: Callable[[], None],
        resident: Callable[[], int | None] = resident_bytes,
        growth: int = GROWTH_BYTES,
        still: int = STILL_BYTES,
    ) -> None:
        self._trim = trim
        self._resident = resident
        self._growth = growth
        self._still = still
        self._baseline = resident()
        self._previous = self._baseline

    def check(self) -> bool:
        """Trim when the size grew past the baseline and held still since the
        last check; True when it trimmed."""
        now = self._resident()
        if now is None or self._baseline is None or self._previous is None:
            return False
        grew = now - self._baseline >= self._growth
        still = now - self._previous < self._still
        self._previous = now
        if not (grew and still):
            return False
        self._trim()
        after = self._resident()
        self._baseline = self._previous = now if after is None else after
        log.info(
            "burst over: returned %d MiB to the OS (resident %d MiB)",
            (now - self._baseline) >> 20,
            self._baseline >> 20,
        )
        return True


def start_trimming(interval: float = CHECK_SECONDS) -> threading.Thread | None:
    """Check in a daemon thread every ``interval`` seconds; None where glibc's
    malloc_trim or /proc is missing."""
    trim = libc_trim()
    if trim is None or resident_bytes() is None:
        return None
    trimmer = Trimmer(trim)

    def loop() -> None:
        stop = threading.Event()
        while not stop.wait(interval):
            trimmer.check()

    thread = threading.Thread(target=loop, name="malloc-trim", daemon=True)
    thread.start()
    return thread
