"""User errors in the CLI exit 2 with one line naming the fix; only nb360's own bugs say "internal error"."""

from __future__ import annotations

import pytest

from nb360.cli import main

EMBEDDED = ["--table", "nb360/resources/darcyflow-nb201-v3.h5"]


@pytest.mark.parametrize(("argv", "message"), [
    (["table", "build", "--task", "darcyflow", "--data-root", "d", "--hp", "1", "-o", "t.h5", "--threads", "0"],
     "--threads: 0 is out of range for a thread count"),
    (["table", "build", "--task", "darcyflow", "--data-root", "d", "--hp", "1", "-o", "t.h5", "--seeds", "-3"],
     "--seeds: -3 is out of range for a seed"),
    (["search", "--method", "rea", *EMBEDDED, "--budget", "10", "--seed", "-1"], "--seed: -1 is out of range"),
    (["search", "--method", "rea", *EMBEDDED, "--budget", "10", "--seed", str(2**40)], "out of range for a seed"),
    (["search", "--method", "rea", *EMBEDDED, "--budget", "10", "--repeats", str(10**11)],
     "out of range for a repeat count"),
    (["evaluate", "--task", "darcyflow", "--arch", "1", "--data-root", "d", "--epochs", str(10**20)],
     "out of range for an epoch count"),
    (["evaluate", "--task", "darcyflow", "--arch", "1", "--data-root", "d", "--epochs", "1e20"],
     "expected an epoch count"),
    (["run", "--eval-seeds", "-1"], "--eval-seeds: -1 is out of range for a seed"),
    (["data", "generate", "darcyflow", "--root", "d", "--seed", "-5"], "out of range for a seed"),
])
def test_bad_numbers_are_refused_at_parse_time(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "internal error" not in err


def _run(argv, capsys) -> tuple[int, str]:
    rc = main(argv)
    return rc, capsys.readouterr().err.strip()


def test_cuda_on_a_cpu_torch_is_a_user_error(tmp_path, capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    rc, err = _run(["table", "build", "--task", "darcyflow", "--data-root", str(tmp_path), "--hp", "1", "-o",
                    str(tmp_path / "t.h5"), "--device", "cuda"], capsys)
    assert rc == 2 and "sees no CUDA GPU: use --device cpu" in err and len(err.splitlines()) == 1
    rc, err = _run(["evaluate", "--task", "darcyflow", "--arch", "1", "--data-root", str(tmp_path), "--device",
                    "cuda"], capsys)
    assert rc == 2 and "--device cuda" in err


def test_unwritable_outputs_are_user_errors(tmp_path, capsys) -> None:
    from nats_records import FIXTURE_DIR

    for out in ("/proc/t.h5", "/proc/nope/t.h5", str(tmp_path)):
        rc, err = _run(["table", "import", str(FIXTURE_DIR), "-o", out], capsys)
        assert rc == 2 and "cannot write the table" in err and len(err.splitlines()) == 1, err
    rc, err = _run(["search", "--method", "rs", *EMBEDDED, "--budget", "5", "--no-progress", "--out",
                    "/proc/x/run"], capsys)
    assert rc == 2 and "internal error" not in err and "/proc/x" in err


def test_an_os_error_without_a_path_is_still_an_internal_error(monkeypatch, capsys) -> None:
    import nb360.cli.info as info

    def broken(args):
        raise OSError("something in nb360 broke")

    monkeypatch.setattr(info, "run", broken, raising=False)
    parser_func = main.__globals__["build_parser"]

    def patched():
        parser = parser_func()
        for action in parser._subparsers._group_actions[0].choices.values():
            if action.prog.endswith(" info"):
                action.set_defaults(func=broken)
        return parser

    monkeypatch.setitem(main.__globals__, "build_parser", patched)
    assert main(["info"]) == 1 and "internal error" in capsys.readouterr().err
