"""The one call at the top of every notebook."""
from __future__ import annotations

import math
import os
import random
from pathlib import Path

import numpy as np
import torch

from d2lcore.device import choose_device
from d2lcore.plot import use_style


THREADS_VAR = "D2LCORE_THREADS"


def usable_cpus() -> int:
    """How many CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota.

    ``os.cpu_count()`` counts the machine's CPUs, not ours: in a container limited to 2 CPUs
    of 64, or a job pinned to one core, more threads than this only spin and wait.
    """
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        allowed = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(allowed, math.floor(quota)) if quota is not None else allowed)


def share_cpus(kernels: int) -> str:
    """Give each of ``kernels`` kernels running at once its share of the CPUs, through
    ``$D2LCORE_THREADS`` and ``$OMP_NUM_THREADS`` (inherited by every process started from here);
    values the caller set are kept. Two kernels that each start a thread per core only spin
    against each other. Returns the threads each kernel gets."""
    threads = str(max(1, usable_cpus() // kernels))
    for var in (THREADS_VAR, "OMP_NUM_THREADS"):
        os.environ.setdefault(var, threads)
    return os.environ[THREADS_VAR]


def _cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPU quota (CPUs' worth of time) of this process's cgroup, or None when unlimited."""
    try:  # cgroup v2: "max 100000" or "200000 100000"
        quota, period = (root / "cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def setup(seed: int = 0, threads: int | None = None, device: str | None = None) -> torch.device:
    """Seed Python, NumPy and torch, apply the figure style, set the thread count, pick a device.

    ``threads`` defaults to ``$D2LCORE_THREADS`` if set (say 1 on a machine busy with other
    work, where small models lose more to thread hand-offs than they gain), else to the CPUs
    this process may use (``usable_cpus()``): more threads than
    CPUs only spin and wait (a FashionMNIST pass ran 60 times slower with 2 threads on one free
    core). Claim checks therefore never rely on the exact order of a multi-threaded sum.
    Returns the chosen device.
    """
    if threads is None and os.environ.get(THREADS_VAR):
        try:
            threads = int(os.environ[THREADS_VAR])
        except ValueError:
            raise ValueError(f"${THREADS_VAR} must be a positive integer, got {os.environ[THREADS_VAR]!r}") from None
    threads = usable_cpus() if threads is None else threads
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.set_num_threads(threads)
    use_style()
    return choose_device(device)
