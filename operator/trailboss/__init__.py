"""Trailboss: the machine-learning model lifecycle as Kubernetes custom resources."""

__version__ = "0.1.0"
