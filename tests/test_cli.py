"""The nb360 command line: `info`, exit codes, one-line errors, --debug."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nb360.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nb360", *args], capture_output=True, text=True)


def test_info_reports_backends(capsys) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("nb360 ")
    for name in ("_table", "_C (CPU ops)", "_C (CUDA ops)", "torch", "GPU"):
        assert name in out


def test_info_json_is_machine_readable() -> None:
    torch = pytest.importorskip("torch")
    proc = run_cli("info", "--json")
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    import nb360

    assert facts["version"] == nb360.__version__
    assert facts["backends"]["_table"]["loaded"] is True
    assert facts["backends"]["_C_cpu"]["loaded"] is True
    assert "nb360::mixed_sum" in facts["backends"]["_C_cpu"]["ops"]
    assert facts["torch"]["version"] == torch.__version__
    assert facts["torch"]["gpu_visible"] == torch.cuda.is_available()
    cuda = facts["backends"]["_C_cuda"]
    assert cuda["loaded"] == (cuda["built"] and torch.version.cuda is not None)


def test_console_script_and_module_agree() -> None:
    import shutil

    exe = shutil.which("nb360", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe is not None, "console script nb360 is not installed next to the interpreter"
    a = subprocess.run([exe, "--version"], capture_output=True, text=True)
    b = run_cli("--version")
    assert a.returncode == b.returncode == 0 and a.stdout == b.stdout


@pytest.mark.parametrize("argv", [["bogus"], ["info", "--no-such-flag"], [], ["info", "extra"]])
def test_bad_arguments_exit_2_with_one_line(argv) -> None:
    proc = run_cli(*argv)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0]
    assert "Traceback" not in proc.stderr


def test_user_error_is_one_line_and_debug_shows_traceback(monkeypatch, capsys) -> None:
    from nb360.errors import InputError
    import nb360.cli.info as info_cmd

    def boom(args):
        raise InputError("unknown thing 'x': choose one of a, b")

    monkeypatch.setattr(info_cmd, "run", boom)
    assert main(["info"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "nb360: error: unknown thing 'x': choose one of a, b"
    with pytest.raises(InputError):
        main(["info", "--debug"])
    with pytest.raises(InputError):
        main(["--debug", "info"])


def test_internal_error_is_one_line(monkeypatch, capsys) -> None:
    import nb360.cli.info as info_cmd

    monkeypatch.setattr(info_cmd, "run", lambda args: 1 / 0)
    assert main(["info"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("nb360: internal error: ZeroDivisionError") and "\n" not in err
