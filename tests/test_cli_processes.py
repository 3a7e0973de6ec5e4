"""An nb360 command leaves no process behind in its process group (nb360/cli/_children.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest


def left_in_group(pgid: int) -> list[str]:
    """Processes still in the process group, with their state (zombies included)."""
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,stat=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.split()[1] == str(pgid)]


def run_in_own_group(argv: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, int]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err), proc.pid


def test_children_and_orphans_are_stopped_and_reaped() -> None:
    # A command that starts a long-lived child and an orphaned grandchild, then returns.
    code = textwrap.dedent("""
        import subprocess, sys
        import nb360.cli as cli

        def spawn(args):
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            subprocess.Popen([sys.executable, "-c",
                              "import subprocess, sys; subprocess.Popen([sys.executable, '-c', "
                              "'import time; time.sleep(60)']); print('parent exits')"]).wait()
            return 0

        build = cli.build_parser
        def patched():
            parser = build()
            parser._subparsers._group_actions[0].choices["info"].set_defaults(func=spawn)
            return parser
        cli.build_parser = patched
        sys.exit(cli.main())
    """)
    start = time.monotonic()
    proc, pgid = run_in_own_group([sys.executable, "-c", code, "info"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - start < 30  # stopped, not waited for
    time.sleep(0.5)
    assert left_in_group(pgid) == []


@pytest.mark.slow
def test_a_parallel_table_build_leaves_nothing_behind(tmp_path) -> None:
    from nb360.data.darcy_generator import generate_darcyflow

    generate_darcyflow(tmp_path / "d", n_train=24, n_test=8, resolution=8, seed=0, workers=1, progress=False)
    nb360 = os.path.join(os.path.dirname(sys.executable), "nb360")
    proc, pgid = run_in_own_group([nb360, "table", "build", "--task", "darcyflow", "--data-root", str(tmp_path / "d"),
                                   "--hp", "1", "--archs", "0-3", "-C", "2", "-N", "1", "--batch-size", "8",
                                   "--workers", "2", "--shard-size", "2", "--no-progress", "-o",
                                   str(tmp_path / "t.h5")], timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    time.sleep(0.5)
    assert left_in_group(pgid) == []
