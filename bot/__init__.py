"""rankbot's core: pure domain code (catalog, rankings, diff, cards) and the service that drives it.

Only `shell.bootstrap` and `shell.cli` wire real adapters; everything else here does no I/O.
"""
