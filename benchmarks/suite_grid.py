"""The README's small suite grid on this CPU machine: 7 methods × 3 task shapes × 2 seeds, shortened protocols.

Data (none of it the released benchmark data, and the report says so): the SYNTHETIC NinaPro (2D point) and
Satellite (1D) fixtures of tests/task_fixtures.py in the released file layouts, and a small generated Darcy Flow
set (dense; `nb360 data generate darcyflow`). Tabular REA searches tiny tables that `nb360 table build` trains on
the fixtures (8 cells, 1 epoch) and, for Darcy Flow, the embedded table. Prints the suite's own output and the
wall time of each phase.

    python benchmarks/suite_grid.py OUT_DIR [--kill-after N]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["rea", "darts", "gaea", "e2rnas", "wrn", "wrn-asha", "xgboost"]
TASKS = ["ninapro", "darcyflow", "satellite"]
SHORT = ["--search-epochs", "1", "--search-channels", "8", "--search-cells", "2", "--max-steps", "2",
         "--eval-epochs", "1", "--eval-channels", "4", "--eval-cells", "2", "--asha-trials", "2", "--xgb-rounds", "5"]


def setup(out: Path) -> None:
    """Fixture and generated data, and the tiny tables (SYNTHETIC: for a demonstration of the pipeline only)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from task_fixtures import build_ninapro, build_satellite

    from nb360.build import BuildSpec, build_table
    from nb360.data.darcy_generator import generate_darcyflow

    data = out / "data"
    build_ninapro(data / "ninapro", sizes=(60, 20, 16))
    build_satellite(data / "satellite", n_train=72, n_test=24)
    generate_darcyflow(data / "darcyflow", n_train=40, n_test=10, resolution=15, seed=0, progress=False)
    for task in ("ninapro", "satellite"):
        build_table(BuildSpec(task=task, data_root=str(data / task), epochs=1, archs="0-7", channels=2, cells=1,
                              batch_size=32), out / "tables" / f"{task}.h5", progress=False)


def command(out: Path, seeds: list[str]) -> list[str]:
    """The `nb360 suite` command line of the grid."""
    return [sys.executable, "-m", "nb360", "suite", "--methods", *METHODS, "--tasks", *TASKS, "--seeds", *seeds,
            "--data-root", str(out / "data"), "--table", f"ninapro={out / 'tables' / 'ninapro.h5'}",
            "--table", f"satellite={out / 'tables' / 'satellite.h5'}", *SHORT, "--no-progress",
            "--out", str(out / "suite")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seeds", nargs="+", default=["0", "1"])
    parser.add_argument("--kill-after", type=int, help="SIGKILL the suite after this many finished units, then resume")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t = time.perf_counter()
    setup(args.out)
    print(f"# data and tables: {time.perf_counter() - t:.1f} s", flush=True)
    t = time.perf_counter()
    if args.kill_after:
        proc = subprocess.Popen(command(args.out, args.seeds), stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        finished = 0
        for line in proc.stdout:
            print(line, end="", flush=True)
            finished += line.startswith("[")
            if finished >= args.kill_after:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait()
        print(f"# killed after {finished} units, {time.perf_counter() - t:.1f} s", flush=True)
    rc = subprocess.run(command(args.out, args.seeds), env=env).returncode
    print(f"# suite: {time.perf_counter() - t:.1f} s (exit {rc})", flush=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nb360", "report", str(args.out / "suite")], env=env, check=True)
    print(f"# report: {time.perf_counter() - t:.1f} s", flush=True)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
