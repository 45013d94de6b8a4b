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
  ``/v2/health/ready``, ``/v2/models/{name}[/versions/{version}]`` (metadata),
  ``.../ready``, ``POST .../infer``.
* ``GET /metrics`` (Prometheus).

Readiness: ``/ping``, ``/health`` and ``/v2/health/ready`` answer 503 until the
model is loaded and one warm-up prediction (its saved input example, else a
row built from its signature) passed; ``/v2/health/live`` answers 200 as soon
as the process listens. A model that fails to load exits the process with 1.
A model with neither an input example nor a signature becomes ready after
loading, without a warm-up (logged as a warning).

Errors: a model that raises on valid input answers 500 (MLflow alone says
400), so canary analysis sees the version's fault; malformed input stays 400;
a body over ``--max-request-bytes`` gets 413 with the limit and the flag named;
every response to a prediction carries ``X-Request-ID`` (the client's, when it
sent a valid one; the v2 body's ``id`` when given).

Metrics (labels ``model`` and ``version`` on every series)
----------------------------------------------------------
* ``trailboss_model_requests_total{outcome="ok|error"}``: prediction requests.
* ``trailboss_model_errors_total{type}``: failed ones, ``type`` one of
  ``bad_input`` (4xx), ``too_large`` (413), ``model_error`` (500),
  ``timeout`` (504), ``not_ready`` (503), ``internal`` (other 5xx).
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

Test models that fail on purpose: see :mod:`trailboss.serving.faults`.
"""
