"""Moved to :mod:`framecast.logs` (compatibility alias; the lead removes it after merging)."""
from framecast.logs import RateLimiter, bounded  # noqa: F401
