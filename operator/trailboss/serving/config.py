"""What one model server serves and how it logs, from flags and ``TRAILBOSS_*`` variables."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServeSettings(BaseSettings):
    """One process serves one ModelVersion; its identity here labels every metric and log row.

    Credentials are never settings: boto3 and MLflow read them from their usual
    environment variables, which the serving pod gets from a Secret.
    """

    model_config = SettingsConfigDict(env_prefix="TRAILBOSS_", extra="ignore")

    model_uri: str = Field(min_length=1)
    """Artifact to serve: ``s3://…``, a local path, ``runs:/…`` or ``models:/…``."""
    model_name: str = Field(min_length=1)
    """Registered model name: the ``model`` label and the v2 model name."""
    model_version: str = Field(min_length=1)
    """Version served: the ``version`` label, the log partition and the v2 version."""
    host: str = "0.0.0.0"  # a pod listens on its own IP
    port: int = Field(default=8080, ge=1, le=65535)
    namespace: str = "default"
    """Namespace of the Deployment, for the prediction log partition."""
    deployment: str = ""
    """Name of the Deployment, for the prediction log partition (default: the model name)."""
    log_uri: str | None = None
    """``s3://bucket/prefix`` for prediction logs; unset turns logging off."""
    log_sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    """Share of requests whose rows are logged (whole requests are kept or skipped)."""
    log_batch_rows: int = Field(default=1000, ge=1)
    """Rows per Parquet file, at most; a file is written as soon as this many wait."""
    log_flush_seconds: float = Field(default=10.0, gt=0)
    """Longest time a logged row waits before its file is written."""
    log_buffer_rows: int = Field(default=20_000, ge=1)
    """Rows held in memory at most; past this, new rows are dropped and counted."""
    s3_endpoint_url: str | None = None
    """S3 endpoint of a non-AWS store such as MinIO, for the prediction logs."""
    max_request_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    """Largest request body accepted; larger ones get 413."""
    tmp_dir: str | None = None
    """The only directory the server writes to (model downloads); default: ``$TMPDIR``."""

    @field_validator("log_uri")
    @classmethod
    def _s3_uri(cls, value: str | None) -> str | None:
        if value and not value.startswith("s3://"):
            raise ValueError(f"must be an s3://bucket/prefix URI, got {value!r}")
        return value.rstrip("/") if value else None

    @property
    def deployment_name(self) -> str:
        return self.deployment or self.model_name

    @property
    def batch_rows(self) -> int:
        """A file never holds more than the buffer can."""
        return min(self.log_batch_rows, self.log_buffer_rows)
