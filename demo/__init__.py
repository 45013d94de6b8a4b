"""The demo: `python -m demo` (what `make demo` runs) from the repository root."""
