"""Helpers shared by the benchmark scripts: machine description, memory readings, worker processes."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine(*packages: str) -> str:
    """One line naming the CPU, cores, Python and the versions of `packages`."""
    versions = []
    for name in packages:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return ", ".join([f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}", *versions])


def memory() -> dict[str, float]:
    """This process's memory from /proc/self/status, in MB (VmHWM is the peak RSS)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) / 1024
    return out


def run_worker(script: str, name: str, *args: object) -> dict:
    """Run `script --worker name args...` in a fresh process (so its memory figures are its own); return its JSON."""
    cmd = [sys.executable, script, "--worker", name, *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"worker {name} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
