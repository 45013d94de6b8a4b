"""Deterministic simulation of the Deployment reconciler's world: seeded random
sequences of user actions and faults under a simulated clock, with invariants
checked after every step (see machine.py)."""
