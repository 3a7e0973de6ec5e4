"""Nothing outlives an nb360 command: its child processes are stopped and reaped before it exits.

Worker pools, multiprocessing's resource tracker and Ray's local processes can outlast the command
that started them, left behind in its process group (and, once orphaned, as zombies where PID 1 does
not reap). The console command therefore makes itself the subreaper of its descendants (Linux:
orphans are re-parented to it instead of to PID 1) and, on exit, asks every child to stop
(SIGTERM), waits briefly, kills what is left and reaps them all. Only processes this command
started are touched: its own children and the orphans re-parented to it.
"""

from __future__ import annotations

import os
import signal
import time

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Have orphaned descendants re-parented to this process (Linux; a no-op elsewhere)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def children() -> list[int]:
    """PIDs whose parent is this process (from /proc; empty where there is none)."""
    me, found = os.getpid(), []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state, ppid, ...
        if len(fields) > 1 and fields[1] == str(me):
            found.append(int(entry))
    return found


def _reap(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue  # not ours to wait for, or already reaped
        if done == 0:
            alive.append(pid)
    return alive


def stop_children(grace: float = 3.0, rounds: int = 3) -> None:
    """Stop multiprocessing's resource tracker, then TERM, wait for, KILL and reap every child process."""
    try:
        from multiprocessing import resource_tracker

        tracker = resource_tracker._resource_tracker
        if getattr(tracker, "_pid", None) is not None:
            tracker._stop()  # closes its pipe: it cleans up and exits, and is reaped
    except (ImportError, AttributeError, OSError, ChildProcessError):
        pass
    pids = children()
    if not pids:
        return
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    alive = _reap(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = _reap(alive)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass
    # Orphans re-parented to us meanwhile (grandchildren of the ones just stopped): once more, briefly.
    if rounds > 1 and children():
        stop_children(grace=min(grace, 1.0), rounds=rounds - 1)
