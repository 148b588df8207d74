"""How many CPUs this process may use: the default for worker processes and page-pool children.

``os.cpu_count()`` counts the host's cores.  In a container limited to two CPUs on a 64-core node
it says 64, and a worker started with the defaults would fork 64 extract processes, each with a
page pool of 96 children, all sharing two CPUs and the pod's memory limit.  What the process may
really use is the smallest of: the cores it may run on (its affinity mask, which ``taskset`` and
cpusets set) and its cgroup's CPU quota (``cpu.max`` in cgroup v2, ``cpu.cfs_quota_us`` over
``cpu.cfs_period_us`` in v1, which Kubernetes and Docker's ``--cpus`` set), rounded up.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["available_cpus", "cgroup_quota"]

_CGROUP = Path("/sys/fs/cgroup")


def cgroup_quota(root: Path = _CGROUP) -> float | None:
    """The CPU quota of the cgroup mounted at ``root`` in CPUs (1.5 for "150000 100000"), or None
    when there is none ("max", -1, no such file, unreadable)."""
    try:
        quota, _, period = (root / "cpu.max").read_text().strip().partition(" ")
        if quota != "max":
            return int(quota) / int(period or "100000")
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def available_cpus(root: Path = _CGROUP) -> int:
    """CPUs this process may use (at least 1); see the module docstring."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    quota = cgroup_quota(root)
    if quota is not None and quota > 0:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)
