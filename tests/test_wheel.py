"""`pip wheel .` builds a wheel that auditwheel repairs as cibuildwheel is configured to, and that installs into a
fresh venv (torch first) and works there: nb360 info, the ops, a table import and query. Also the
[tool.cibuildwheel] configuration and docker/retag_wheel.py (the local version label of CUDA wheels)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def cibuildwheel_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["cibuildwheel"]


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN))
    assert found, f"{name} is missing from {BIN}: it is part of the test extras (`pip install -e '.[test]'`)"
    return found


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
def test_wheel_builds_and_works_in_a_fresh_venv(tmp_path: Path, fixture_table: Path) -> None:
    import torch

    src = tmp_path / "src"
    _copy_sources(src)
    wheels = tmp_path / "wheels"
    # The documented command, with build isolation; torch is found in this (the target) environment.
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-w", str(wheels),
          f"-Cbuild-dir={tmp_path / 'build'}"], cwd=src)
    (wheel,) = wheels.glob("nb360-*.whl")

    names = zipfile.ZipFile(wheel).namelist()
    for expected in ("nb360/__init__.py", "nb360/_build_info.py", "nb360/cards/darcyflow.toml",
                     "nb360/resources/darcyflow-nb201-v3.h5"):  # task cards and the embedded table ship
        assert expected in names, f"{expected} is missing from the wheel"
    assert any(n.startswith("nb360/_table.") for n in names) and any(n.startswith("nb360/_C.") for n in names)
    # libtorch comes from the torch wheel at run time and must never be vendored into ours.
    assert not [n for n in names if "libtorch" in n or "libc10" in n]

    auditwheel = shutil.which("auditwheel", path=str(Path(sys.executable).parent))
    assert auditwheel, "auditwheel is part of the test extras"
    report = _run([auditwheel, "show", str(wheel)]).stdout
    assert "platform tag" in report, report

    # The repair step cibuildwheel runs ([tool.cibuildwheel] repair-wheel-command): a manylinux wheel that
    # vendors nothing of torch's and still finds libtorch through its RUNPATH.
    _tool("patchelf")
    repaired_dir = tmp_path / "repaired"
    repair = cibuildwheel_config()["repair-wheel-command"]
    repair = repair.replace("{wheel}", str(wheel)).replace("{dest_dir}", str(repaired_dir))
    path_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    _run(["sh", "-c", repair], env=path_env)
    (repaired,) = repaired_dir.glob("nb360-*.whl")
    assert re.search(r"-manylinux_2_\d+_x86_64\.whl$", repaired.name), repaired.name
    repaired_names = zipfile.ZipFile(repaired).namelist()
    assert not [n for n in repaired_names if ".libs/" in n or "libtorch" in n or "libc10" in n], repaired_names
    (c_module,) = [n for n in repaired_names if n.startswith("nb360/_C.")]
    zipfile.ZipFile(repaired).extract(c_module, tmp_path / "unpacked")
    rpath = _run([_tool("patchelf"), "--print-rpath", str(tmp_path / "unpacked" / c_module)]).stdout.strip()
    assert rpath == "$ORIGIN/../torch/lib", rpath

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "-q", f"torch=={torch.__version__.split('+')[0]}"])
    _run([str(py), "-m", "pip", "install", "-q", str(repaired)])

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    nb360 = str(venv / "bin" / "nb360")
    info = json.loads(_run([nb360, "info", "--json"], cwd=tmp_path, env=env).stdout)
    assert info["backends"]["_table"]["loaded"] and info["backends"]["_C_cpu"]["loaded"]
    assert str(venv) in info["backends"]["_C_cpu"]["path"]

    check = textwrap.dedent("""
        import numpy as np, torch, nb360.ops, nb360._table as t
        xs = [torch.ones(3) * i for i in range(3)]
        assert torch.equal(nb360.ops.mixed_sum(xs, torch.tensor([1., 2., 3.])), torch.full((3,), 8.))
        print("ok")
    """)
    assert _run([str(py), "-c", check], cwd=tmp_path, env=env).stdout.strip() == "ok"

    # A table query from the installed wheel: its CLI imports the real NATS-Bench fixture, its CLI and its
    # Python API answer, and both agree with the development build's answer.
    from nats_records import FIXTURE_DIR

    from nb360.table import Table

    table = tmp_path / "fixture.h5"
    _run([nb360, "table", "import", str(FIXTURE_DIR), "-o", str(table), "--tasks", "cifar100"], cwd=tmp_path, env=env)
    answer = json.loads(_run([nb360, "table", "query", str(table), "11", "--task", "cifar100", "--metric",
                              "x-valid-accuracy", "--seed", "777", "--json"], cwd=tmp_path, env=env).stdout)
    api = _run([str(py), "-c", "import sys; from nb360.table import Table; print(repr(Table.open(sys.argv[1]).query("
                "11, 'x-valid-accuracy', seed=777, task='cifar100')))", str(table)], cwd=tmp_path, env=env)
    expected = Table.open(fixture_table).query(11, "x-valid-accuracy", seed=777, task="cifar100")
    assert answer["index"] == 11 and answer["values"]["x-valid-accuracy"] == expected == float(api.stdout)
    assert 60 < expected < 70

    # cibuildwheel's test step, as configured: the self-check in the wheel's venv.
    config = cibuildwheel_config()
    test_command = config["test-command"].replace("{project}", str(src))
    test_env = {**env, **config["test-environment"], "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}
    selfcheck = _run(["sh", "-c", test_command], cwd=tmp_path, env=test_env).stdout
    assert "self-check passed" in selfcheck and "CPU-only build" in selfcheck, selfcheck


# ---------------------------------------------------------------- [tool.cibuildwheel]


def test_cibuildwheel_config_is_valid() -> None:
    """The section validates against cibuildwheel's own schema and selects CPython 3.10-3.14 manylinux x86_64."""
    import jsonschema
    from importlib.resources import files

    schema = json.loads((files("cibuildwheel") / "resources" / "cibuildwheel.schema.json").read_text())
    config = cibuildwheel_config()
    jsonschema.validate(config, schema)
    with pytest.raises(jsonschema.ValidationError):  # the schema does reject a malformed option
        jsonschema.validate({**config, "build-frontend": {"name": "pip", "args": "--no-build-isolation"}}, schema)

    proc = subprocess.run([_tool("cibuildwheel"), "--print-build-identifiers", "--platform", "linux"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [f"cp3{minor}-manylinux_x86_64" for minor in range(10, 15)]


def test_cibuildwheel_builds_against_the_pinned_cpu_torch_without_isolation() -> None:
    from test_docker import DOCKER, read_constraints

    config = cibuildwheel_config()
    pins = read_constraints(DOCKER / "constraints-cpu.txt")
    assert config["build-frontend"] == {"name": "pip", "args": ["--no-build-isolation"]}
    assert config["manylinux-x86_64-image"] == "manylinux_2_28" and config["environment"]["NB360_CUDA"] == "OFF"
    before_build = " ".join(config["before-build"])
    requested = dict(re.findall(r"([A-Za-z0-9_.-]+)==(\S+)", before_build))
    assert requested.pop("torch") == pins["torch"] and "download.pytorch.org/whl/cpu" in before_build
    assert requested == {name: pins[name.replace("_", "-")] for name in requested}
    assert set(requested) == {"scikit-build-core", "pybind11", "cmake", "ninja"}
    assert f"torch=={pins['torch']}" in config["before-test"]
    repair = config["repair-wheel-command"]
    assert repair.startswith("auditwheel repair ") and "--exclude 'libtorch*.so'" in repair and "--exclude 'libc10*.so'" in repair
    assert "--exclude 'libgomp*.so*'" in repair  # nb360._C must share torch's OpenMP runtime, not bring its own


# ---------------------------------------------------------------- docker/retag_wheel.py


def _synthetic_wheel(path: Path) -> Path:
    """A SYNTHETIC minimal wheel (one module, METADATA, WHEEL, RECORD) to retag."""
    files = {
        "demo/__init__.py": b"VALUE = 1\n",
        "demo-0.1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: demo\nVersion: 0.1.0\n",
        "demo-0.1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: cp311-cp311-linux_x86_64\n",
    }
    wheel = path / "demo-0.1.0-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("demo-0.1.0.dist-info/RECORD", "".join(f"{n},,\n" for n in [*files, "demo-0.1.0.dist-info/RECORD"]))
    return wheel


def test_retag_wheel_adds_a_local_version_label(tmp_path: Path) -> None:
    wheel = _synthetic_wheel(tmp_path)
    retag = [sys.executable, str(ROOT / "docker" / "retag_wheel.py")]
    _run([*retag, "--local", "cu128", "-w", str(tmp_path / "out"), str(wheel)])
    (out,) = (tmp_path / "out").glob("*.whl")
    assert out.name == "demo-0.1.0+cu128-cp311-cp311-linux_x86_64.whl"
    zf = zipfile.ZipFile(out)
    assert sorted(zf.namelist()) == sorted(["demo/__init__.py", "demo-0.1.0+cu128.dist-info/METADATA",
                                            "demo-0.1.0+cu128.dist-info/WHEEL", "demo-0.1.0+cu128.dist-info/RECORD"])
    assert "Version: 0.1.0+cu128\n" in zf.read("demo-0.1.0+cu128.dist-info/METADATA").decode()
    for line in zf.read("demo-0.1.0+cu128.dist-info/RECORD").decode().splitlines():
        name, digest, size = line.split(",")
        if name.endswith("RECORD"):
            assert digest == size == ""
            continue
        data = zf.read(name)
        assert digest == "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert int(size) == len(data)

    for bad, message in [(["--local", "cu128", str(out)], "already has a local version"),
                         (["--local", "CU-128", str(wheel)], "invalid local version label")]:
        proc = subprocess.run([*retag, "-w", str(tmp_path / "bad"), *bad], capture_output=True, text=True)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
