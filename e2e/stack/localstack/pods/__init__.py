"""The pod runner: a kubelet's part for the pods that must really run (see runner.py)."""
