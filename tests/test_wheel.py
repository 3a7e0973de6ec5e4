"""`pip wheel .` builds a wheel that installs into a fresh venv (torch first) and works there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _copy_sources(dest: Path) -> None:
    """Copy the tracked sources (or, outside git, the tree minus build outputs) so the build cannot touch ROOT."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode == 0 and listed.stdout.strip():
        for rel in listed.stdout.splitlines():
            src = ROOT / rel
            if src.is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / rel)
    else:
        shutil.copytree(ROOT, dest, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".venv", "build", "dist", "__pycache__", "*.so", ".git"))


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_wheel_builds_and_works_in_a_fresh_venv(tmp_path: Path) -> None:
    import torch

    src = tmp_path / "src"
    _copy_sources(src)
    wheels = tmp_path / "wheels"
    # The documented command, with build isolation; torch is found in this (the target) environment.
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-w", str(wheels),
          f"-Cbuild-dir={tmp_path / 'build'}"], cwd=src)
    (wheel,) = wheels.glob("nb360-*.whl")

    names = zipfile.ZipFile(wheel).namelist()
    for expected in ("nb360/__init__.py", "nb360/_build_info.py"):
        assert expected in names
    assert any(n.startswith("nb360/_table.") for n in names) and any(n.startswith("nb360/_C.") for n in names)
    # libtorch comes from the torch wheel at run time and must never be vendored into ours.
    assert not [n for n in names if "libtorch" in n or "libc10" in n]

    auditwheel = shutil.which("auditwheel", path=str(Path(sys.executable).parent))
    assert auditwheel, "auditwheel is part of the test extras"
    report = _run([auditwheel, "show", str(wheel)]).stdout
    assert "platform tag" in report, report

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "-q", f"torch=={torch.__version__.split('+')[0]}"])
    _run([str(py), "-m", "pip", "install", "-q", str(wheel)])

    info = json.loads(_run([str(venv / "bin" / "nb360"), "info", "--json"], cwd=tmp_path).stdout)
    assert info["backends"]["_table"]["loaded"] and info["backends"]["_C_cpu"]["loaded"]
    assert str(venv) in info["backends"]["_C_cpu"]["path"]

    check = textwrap.dedent("""
        import numpy as np, torch, nb360.ops, nb360._table as t
        xs = [torch.ones(3) * i for i in range(3)]
        assert torch.equal(nb360.ops.mixed_sum(xs, torch.tensor([1., 2., 3.])), torch.full((3,), 8.))
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    assert _run([str(py), "-c", check], cwd=tmp_path, env=env).stdout.strip() == "ok"
