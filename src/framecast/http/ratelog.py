"""Moved to :mod:`framecast.logs` (compatibility alias; the lead removes it after merging)."""
from framecast.logs import RateLimitedLog as RateLimitedLog  # noqa: F401
from framecast.logs import bounded as bounded
