"""When a container that exited is started again, as a kubelet decides it."""

from __future__ import annotations

BACKOFF_FIRST, BACKOFF_MAX = 10.0, 300.0
# A container that ran this long without crashing starts its back-off afresh.
BACKOFF_RESET_AFTER = 600.0


def should_restart(restart_policy: str, exit_code: int) -> bool:
    if restart_policy == "Always":
        return True
    if restart_policy == "OnFailure":
        return exit_code != 0
    return False


def backoff_seconds(crashes_in_a_row: int) -> float:
    """0 before the first restart, then 10 s doubling up to 5 minutes (CrashLoopBackOff)."""
    if crashes_in_a_row <= 1:
        return 0.0
    return float(min(BACKOFF_FIRST * 2.0 ** (crashes_in_a_row - 2), BACKOFF_MAX))


def exit_code(returncode: int) -> int:
    """A process killed by signal N is reported as 128+N, as a container runtime does."""
    return 128 - returncode if returncode < 0 else returncode
