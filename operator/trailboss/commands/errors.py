"""What `kubectl trailboss` exits with, and failures as one line a user can act on.

`status` answers with 0-3 (Healthy, Degraded, bad usage, timed out), so every other
failure has a code of its own above them: a script can tell "the model is
Degraded" from "the cluster was not reachable".
"""

from __future__ import annotations

import json
import re

from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException
from urllib3.exceptions import HTTPError, MaxRetryError

OK = 0
DEGRADED = 1
USAGE = 2
TIMEOUT = 3
NOT_FOUND = 4
REFUSED = 5
FORBIDDEN = 6
UNREACHABLE = 7
KUBECONFIG = 8
API_ERROR = 9
INTERRUPTED = 130

CODES = (
    (OK, "done; `status`: Healthy (or Suspended)"),
    (DEGRADED, "`status`: Failed, Rejected or Degraded"),
    (USAGE, "bad arguments: unknown kind, flag or command"),
    (TIMEOUT, "`status --wait`: still Progressing when --timeout ran out"),
    (NOT_FOUND, "the object (or the Trailboss API) does not exist"),
    (REFUSED, "nothing to act on: no rollout in progress, run already finished, no logs"),
    (FORBIDDEN, "the API server refused your credentials or RBAC (401, 403)"),
    (UNREACHABLE, "the API server cannot be reached"),
    (KUBECONFIG, "no usable kubeconfig, or an unknown --context"),
    (API_ERROR, "the API server answered another error (e.g. 409, 422, 500)"),
    (INTERRUPTED, "stopped with Ctrl-C"),
)


def epilog() -> str:
    """The exit codes, for the end of `--help`."""
    return "exit codes:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in CODES)


class CommandError(Exception):
    """A failure with its exit code; its message is the one line shown."""

    code = API_ERROR


class NotFound(CommandError, LookupError):
    code = NOT_FOUND


class Refused(CommandError):
    code = REFUSED


class KubeconfigProblem(CommandError):
    code = KUBECONFIG


def explain(error: BaseException) -> tuple[str, int]:
    """One line naming the cause and what to do, and the exit code."""
    if isinstance(error, CommandError):
        return str(error), error.code
    if isinstance(error, ValueError):
        return str(error), USAGE
    if isinstance(error, ApiException):
        return _api(error)
    if isinstance(error, ConfigException):
        return f"kubeconfig: {_flat(str(error))}; check KUBECONFIG or --kubeconfig", KUBECONFIG
    if isinstance(error, HTTPError | OSError):
        return _unreachable(error), UNREACHABLE
    raise error


def _api(error: ApiException) -> tuple[str, int]:
    said = server_message(error)
    if error.status == 401:
        return (
            f"the API server did not accept your credentials ({said}): log in again or "
            "refresh the token in your kubeconfig",
            FORBIDDEN,
        )
    if error.status == 403:
        return (
            f"forbidden: {said}; ask your cluster admin for a Role that allows it "
            "(see `kubectl auth can-i --list`)",
            FORBIDDEN,
        )
    if error.status == 404:
        return (
            f"{said} (404): is Trailboss installed? `kubectl get crd trainingruns.trailboss.dev`",
            NOT_FOUND,
        )
    return f"the API server answered {error.status}: {said}", API_ERROR


def server_message(error: ApiException) -> str:
    """The API server's own words (its Status message), else the HTTP reason."""
    try:
        message = json.loads(error.body or "")["message"]
    except (TypeError, ValueError, KeyError):
        return f"{error.status} {error.reason}"
    return _flat(str(message))


def _unreachable(error: BaseException) -> str:
    where = "the API server"
    reason: object = error
    if isinstance(error, MaxRetryError):
        pool = error.pool
        if pool is not None:
            where += f" at {pool.scheme}://{pool.host}:{pool.port}"
        reason = error.reason or error
    return (
        f"cannot reach {where}: {_why(reason)}; check that the cluster is up and that "
        "--context or KUBECONFIG names it (`kubectl cluster-info`)"
    )


def _why(reason: object) -> str:
    """`Connection refused` rather than urllib3's whole repr."""
    text = _flat(str(reason))
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if errno:
        return errno.group(1).strip()
    return re.sub(r"^.*?\): ", "", text) or type(reason).__name__


def _flat(text: str) -> str:
    return " ".join(text.split())
