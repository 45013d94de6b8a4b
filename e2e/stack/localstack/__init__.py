"""The local stack: a real Kubernetes control plane, MLflow and S3 on loopback.

One module per concern: ``settings`` (paths, names), ``state`` (ports,
credentials, the env file), ``procs`` (process supervision and ports),
``certs`` (the CA and client identities), ``web`` (HTTP to the components),
``control_plane`` and ``services`` (how each component is started),
``components`` (the registry), ``bootstrap`` (what `up` creates in the
cluster) and ``cli`` (the commands of ``stack.py``).
"""
