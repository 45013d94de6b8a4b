"""The model server: ``trailboss serve`` runs one ModelVersion per process (one per pod).

Install with ``pip install 'trailboss[serve]'``; the operator itself never
imports this package.

Why this design
---------------
Measured on 2 cores with the same 10-row batches, before choosing:

* MLServer 1.7.1 with its MLflow runtime: as released, every inference worker
  dies at start with uvloop >= 0.22 (an open upstream bug; ``parallel_workers:
  0`` or ``uvloop<0.22`` avoids it); it holds FastAPI below 0.116; ~520 MB in
  3 processes; 98-111 req/s; its metrics name the version only when the URL does.
* ``mlflow models serve``: no metrics, no v2 endpoints; ~500 MB; 90-133 req/s.
* A thin server on MLflow's own scoring app (``mlflow.pyfunc.scoring_server``)
  with a wrapped pyfunc model: ~270 MB in one process; 150-230 req/s.

So this is the thin server. MLflow's scoring app keeps every MLflow input
format working exactly as MLflow parses it; wrapping the pyfunc model
(:class:`~trailboss.serving.model.ServedModel`) is where each request's parsed
inputs and outputs are seen for the prediction log; a plain ASGI layer in
front (:mod:`~trailboss.serving.app`) adds readiness, metrics labelled from the
server's own configuration and the size limit for a few microseconds per
request. ``make bench-serve`` measures it against the bare scoring app and
``mlflow models serve`` in one run.

Endpoints
---------
* MLflow: ``POST /invocations`` (JSON ``dataframe_split``, ``dataframe_records``,
  ``instances``, ``inputs``; ``text/csv``; ``application/vnd.apache.parquet``),
  ``GET /ping``, ``/health``, ``/version``.
* Open Inference Protocol v2: ``GET /v2``, ``/v2/health/live``,
  ``/v2/health/ready``, ``/v2/models/{name}[/versions/{version}]`` (metadata,
  naming the outputs as inference names them: a lone unnamed output is
  ``prediction``), ``.../ready``, ``POST .../infer``.
* ``GET /metrics`` (Prometheus).

Readiness: ``/ping``, ``/health`` and ``/v2/health/ready`` answer 503 until the
model is loaded and one warm-up prediction (its saved input example, else a
row built from its signature) passed; ``/v2/health/live`` answers 200 as soon
as the process listens. A model that fails to load exits the process with 1.
A model with neither an input example nor a signature becomes ready after
loading, without a warm-up (logged as a warning).

Errors: whose fault a failed request is decides its status and how it is
counted. The client's mistakes answer 4xx with a message and count as
``outcome="bad_input"``: malformed JSON, CSV or Parquet; on ``/invocations`` a
missing or unreadable Content-Type (415; MLflow alone fails with a 500 when
there is none), charsets other than UTF-8 included; v2 fields that break the
protocol (shapes, datatypes, values a datatype cannot hold such as 1.5 for
INT64, inputs the model does not have); input the model's signature forbids
when the model fails on it: NaN, ±Infinity or null in a column the signature
marks required (MLflow marks a column required when its training example had
no missing value), values of another kind (text in a number column, an object
in a text column), or no rows at all; a body over ``--max-request-bytes`` (413,
with the limit and the flag named). A model that raises on input its signature
allows answers 500 (MLflow alone says 400) and counts as ``outcome="error"``,
``type="model_error"``: the version's fault, which canary analysis must see.
v2 requests may send integer or float data of a narrower type than the
signature declares (INT64 for an FP64 input): it is widened when numpy
converts it without loss, as KServe and Triton do. Every response to a
prediction carries ``X-Request-ID`` (the client's, when it sent a valid one;
the v2 body's ``id`` when it is a valid header value; the answer's ``id``
echoes the body's in any case).

Metrics (labels ``model`` and ``version`` on every series)
----------------------------------------------------------
* ``trailboss_model_requests_total{outcome="ok|bad_input|error"}``: prediction
  requests; ``bad_input`` is every 4xx answer (the client's mistake), ``error``
  every 5xx (the server's or the model's), so an error-rate query on
  ``outcome="error"`` never counts a client's mistake against a version.
* ``trailboss_model_errors_total{type}``: failed ones, ``type`` one of
  ``bad_input`` (4xx), ``too_large`` (413), ``model_error`` (500 from the
  model), ``timeout`` (504), ``not_ready`` (503), ``internal`` (any other 5xx,
  an error of the server itself included).
* ``trailboss_model_request_duration_seconds``: latency histogram.
* ``trailboss_model_predictions_total``: rows predicted by successful requests.
* ``trailboss_model_log_rows_total{result="written|dropped"}``,
  ``trailboss_model_log_failed_batches_total``,
  ``trailboss_model_log_buffered_rows``: the prediction log.
* ``trailboss_model_load_duration_seconds``, ``trailboss_model_ready``,
  ``trailboss_model_fault_injection`` (1 only for a deliberately bad test model).
* ``process_*`` and ``python_info`` from the Prometheus client.

Prediction log (``--log-uri s3://bucket/prefix``)
-------------------------------------------------
Object keys::

    {prefix}/deployment={namespace}.{deployment}/version={version}/
        date={YYYY-MM-DD}/hour={HH}/part-{unix_ms}-{uuid8}.parquet

Columns: ``request_id`` (string), ``timestamp`` (timestamp[us, tz=UTC], when
the request arrived), ``model``, ``version``, ``outcome`` (``ok`` | ``error``),
``input.<feature>`` per input feature and ``output.<name>`` per output (a
single unnamed output is ``output.prediction``; unnamed columns of a 2-D array
are numbered from 0); numbers as float64, anything else as strings. One row per
predicted input row; a failed request's rows have outcome ``error`` and null
outputs. Rows are buffered (``--log-buffer-rows``), sampled per request
(``--log-sample-rate``) and written by a background thread every
``--log-batch-rows`` rows or ``--log-flush-seconds``, whichever comes first,
and on SIGTERM. When S3 is slow or down, rows beyond the buffer are dropped
and counted; a prediction never waits for, or fails because of, its log.

Security: runs as any non-root UID on a read-only root filesystem; the only
writes are temporary files (the model download) under ``--tmp-dir`` /
``$TMPDIR``. Credentials come from the environment (boto3, MLflow) and never
appear in logs or metrics.

In a pod
--------
Container args ``serve`` with ``TRAILBOSS_MODEL_URI``, ``TRAILBOSS_MODEL_NAME``,
``TRAILBOSS_MODEL_VERSION``, ``TRAILBOSS_NAMESPACE``, ``TRAILBOSS_DEPLOYMENT``,
``TRAILBOSS_LOG_URI`` (and ``TRAILBOSS_S3_ENDPOINT_URL`` / ``MLFLOW_S3_ENDPOINT_URL``
for MinIO, ``AWS_*`` from a Secret, ``MLFLOW_TRACKING_URI`` for ``runs:/`` and
``models:/``); port 8080; readiness probe ``GET /v2/health/ready`` (or ``/ping``),
liveness probe ``GET /v2/health/live``; an emptyDir at ``/tmp``; SIGTERM flushes the
prediction log within 10 s, well inside the default 30 s grace period.

Test models that fail on purpose: see :mod:`trailboss.serving.faults`.
"""
