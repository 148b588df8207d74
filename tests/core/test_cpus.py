"""CPUs a process may use, read from its affinity and its cgroup's quota (real files, a real CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from workers.core.cpus import available_cpus, cgroup_quota

ROOT = Path(__file__).resolve().parents[2]


def _v2(tmp_path: Path, line: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "cpu.max").write_text(line + "\n")
    return tmp_path


def _v1(tmp_path: Path, quota: int, period: int) -> Path:
    (tmp_path / "cpu").mkdir(parents=True)
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(f"{period}\n")
    return tmp_path


def test_a_cgroup_v2_quota_is_read_in_cpus(tmp_path: Path) -> None:
    assert cgroup_quota(_v2(tmp_path, "150000 100000")) == 1.5


def test_no_quota_is_none(tmp_path: Path) -> None:
    assert cgroup_quota(_v2(tmp_path, "max 100000")) is None
    assert cgroup_quota(tmp_path / "absent") is None
    assert cgroup_quota(_v2(tmp_path, "garbage")) is None


def test_a_cgroup_v1_quota_is_read_and_minus_one_means_none(tmp_path: Path) -> None:
    assert cgroup_quota(_v1(tmp_path / "a", 300_000, 100_000)) == 3.0
    assert cgroup_quota(_v1(tmp_path / "b", -1, 100_000)) is None


def test_the_quota_caps_the_cores_rounded_up(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    assert available_cpus(_v2(tmp_path / "a", "20000 100000")) == 1, "a fifth of a CPU is still one"
    assert available_cpus(_v2(tmp_path / "b", "150000 100000")) == min(cores, 2)
    assert available_cpus(_v2(tmp_path / "c", "max 100000")) == cores


def test_the_clis_default_follows_the_affinity_mask_not_the_hosts_cores() -> None:
    # A container pinned to one CPU of a bigger host: the defaults must not count the host's cores.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    shown = subprocess.run(["taskset", "-c", "0", sys.executable, "-m", "workers.cli", "crawl", "--help"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True).stdout
    assert "(default: all 1 cores)" in " ".join(shown.split())
