"""Timestamps as ARM writes them: UTC, seven fractional digits (100 ns ticks), an explicit offset."""

from __future__ import annotations

import time


def arm_time(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e7):07d}+00:00"
