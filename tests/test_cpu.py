"""nb360.cpu: the command line makes OpenMP threads sleep while they wait (see benchmarks/RESULTS.md for why)."""

from __future__ import annotations

import os
import subprocess
import sys

SNIPPET = ("import os, sys; from nb360.cli import main; main(['tasks', 'list']); "
           "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules, file=sys.stderr)")


def _policy_after_cli(**env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    proc = subprocess.run([sys.executable, "-c", SNIPPET], capture_output=True, text=True, env={**environ, **env})
    assert proc.returncode == 0, proc.stderr
    return proc.stderr.strip().splitlines()[-1]


def test_the_command_line_sets_passive_waits_before_torch_loads() -> None:
    assert _policy_after_cli() == "PASSIVE False"  # set, and torch was not imported by then (nor since)


def test_a_users_own_policy_wins() -> None:
    assert _policy_after_cli(OMP_WAIT_POLICY="ACTIVE").startswith("ACTIVE")


def test_prefer_passive_wait_reports_whether_it_can_take_effect(monkeypatch) -> None:
    from nb360 import cpu

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch", object()))
    assert cpu.prefer_passive_wait() is False  # torch already loaded: too late for libgomp
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and cpu.wait_policy() == "PASSIVE"
