"""The Content-Type ``/invocations`` reads (pure).

MLflow's scoring app fails with an AttributeError (a 500) on a request without a
Content-Type, answers other unreadable ones in plain text, and compares media types
case-sensitively although HTTP does not. The front door answers every Content-Type
MLflow cannot read with a 415 in MLflow's JSON error shape naming the header, and
hands MLflow the media type in lower case.
"""

from __future__ import annotations

READABLE = (b"application/json", b"text/csv", b"application/vnd.apache.parquet")
HINT = (
    "/invocations reads application/json (dataframe_split, dataframe_records, instances, "
    "inputs), text/csv or application/vnd.apache.parquet; "
    "with curl: -H 'Content-Type: application/json'"
)


def unreadable(value: bytes | None) -> str | None:
    """Why ``/invocations`` cannot read a body sent with this Content-Type, or None."""
    if value is None or not value.strip():
        return f"the request has no Content-Type header: {HINT}"
    shown = value.decode("latin-1")
    if media_type(value) not in READABLE:
        return f"Content-Type '{shown}' is not one this server reads: {HINT}"
    for parameter in value.split(b";")[1:]:
        name, _, setting = parameter.partition(b"=")
        if name.strip().lower() != b"charset":
            return f"Content-Type '{shown}': this server takes no parameter but charset=utf-8"
        if setting.strip().strip(b'"').lower() != b"utf-8":
            return f"Content-Type '{shown}': this server reads UTF-8 only (charset=utf-8)"
    return None


def media_type(value: bytes) -> bytes:
    """The media type of a Content-Type value, in lower case, without its parameters."""
    return value.split(b";", 1)[0].strip().lower()


def normalized(value: bytes) -> bytes:
    """The value with its media type in lower case (parameters kept), as MLflow compares it."""
    mime, semicolon, parameters = value.partition(b";")
    return mime.strip().lower() + semicolon + parameters
