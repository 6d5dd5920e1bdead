"""The cores this process may run on: its CPU affinity where the platform reports one (a container
or `taskset` may allow fewer than the machine has), else the machine's count."""

from __future__ import annotations

import os


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
