"""Moved to :mod:`framecast.logs` (compatibility alias; the lead removes it after merging)."""
from framecast.logs import RateLimiter as RateLimiter  # noqa: F401
from framecast.logs import bounded as bounded
