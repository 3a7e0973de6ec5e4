"""CPU threads that stay useful when the machine is shared: OpenMP threads that sleep, not spin, while they wait.

Why (measured, `benchmarks/contention_bench.py`, benchmarks/RESULTS.md): torch's CPU wheel uses GNU OpenMP,
whose threads spin at every barrier while they wait for the others. With other work on the cores, a waiting
thread burns the time slice that the thread it waits for needs, and each of the hundreds of small parallel
regions of a training step pays for it: beside a CPU hog, a step of the main job's C=4 cell network took
7.5 s with spinning threads and 88 ms with sleeping ones (its time on the machine without the hog). `prefer_passive_wait()` sets
`OMP_WAIT_POLICY=PASSIVE` unless the user chose a policy; libgomp reads it when torch loads, so the command
line calls it before anything imports torch, and the worker processes it spawns inherit it.

Sizing the thread count down to the idle cores was measured too and is not done: under a fair scheduler
a process with fewer threads gets fewer time slices, so it ran 3-5x slower beside a hog (WRN: 0.96 s per
step with one thread against 0.33 s with two), for the same work per CPU-second.

Torch-free (imported by the command line before torch).
"""

from __future__ import annotations

import os
import sys


def prefer_passive_wait() -> bool:
    """Set OMP_WAIT_POLICY=PASSIVE unless set; True when it can take effect (torch not yet imported)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return "torch" not in sys.modules


def wait_policy() -> str:
    """The OpenMP wait policy of this process (recorded with results)."""
    return os.environ.get("OMP_WAIT_POLICY", "unset (GNU OpenMP spins, then sleeps)")
