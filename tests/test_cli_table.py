"""`nb360 table import / info / query` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys

from nats_records import FIXTURE_DIR


def nb360(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nb360", *args], capture_output=True, text=True)


def test_import_info_query(tmp_path) -> None:
    out = tmp_path / "t.h5"
    proc = nb360("table", "import", str(FIXTURE_DIR), "-o", str(out), "--tasks", "cifar100", "cifar10-valid")
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and out.exists()

    info = nb360("table", "info", str(out), "--verify")
    assert info.returncode == 0 and "schema version 1" in info.stdout and "all datasets verified" in info.stdout
    assert "source_sha256" in info.stdout and "protocol: optimizer=SGD" in info.stdout
    facts = json.loads(nb360("table", "info", str(out), "--json").stdout)
    assert {r["task"] for r in facts["runs"]} == {"cifar100", "cifar10-valid"}

    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    q = json.loads(nb360("table", "query", str(out), arch, "--task", "cifar100", "--metric", "x-valid-accuracy",
                         "--seed", "777", "--json").stdout)
    assert q["index"] == 11 and q["epoch"] == 199 and 60 < q["values"]["x-valid-accuracy"] < 70
    text = nb360("table", "query", str(out), "11", "--task", "cifar10-valid", "--hp", "12")
    assert text.returncode == 0 and "x-valid-accuracy" in text.stdout and "mean of seeds 111, 777" in text.stdout


def test_user_errors_exit_2_with_one_line(tmp_path, fixture_table) -> None:
    cases = [
        ("table", "query", str(fixture_table), "0"),  # several tasks: needs --task
        ("table", "query", str(fixture_table), "0", "--task", "cifar100", "--hp", "90"),
        ("table", "query", str(fixture_table), "|x~0|", "--task", "cifar100"),
        ("table", "info", str(tmp_path / "missing.h5")),
        ("table", "import", str(tmp_path / "missing.pbz2"), "-o", str(tmp_path / "o.h5")),
        ("table", "query", str(fixture_table), "5", "--task", "cifar100", "--metric", "train-loss"),
    ]
    for args in cases:
        proc = nb360(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_query_defaults_to_the_highest_recorded_fidelity_and_prints_units() -> None:
    from nb360.table import Table
    from nb360.table.embedded import embedded_table_path

    table = Table.open(embedded_table_path())  # records two short fidelities (hp = epochs), not NATS's '200'
    arch, high = str(table.archs()[0]), table.highest_hp()
    proc = nb360("table", "query", str(embedded_table_path()), arch)
    assert proc.returncode == 0, proc.stderr
    last = int(high) - 1
    assert f"darcyflow, hp {high}," in proc.stdout and f"at epoch {last} of 0..{last}:" in proc.stdout
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ")}
    assert lines["params"].endswith("M params") and lines["flops"].endswith("MFLOPs")
    assert lines["latency"].endswith(" s") and lines["train-time-per-epoch"].endswith(" s")
    assert lines["ori-test-accuracy"].split()[-1] != "s"
    q = json.loads(nb360("table", "query", str(embedded_table_path()), arch, "--json").stdout)
    assert q["hp"] == high and q["units"]["params"] == "M params"


def test_info_says_what_data_the_embedded_table_was_built_on() -> None:
    from nb360.table.embedded import embedded_table_path

    proc = nb360("table", "info", str(embedded_table_path()))
    assert proc.returncode == 0, proc.stderr
    assert "data: GENERATED stand-in (300 train + 100 test, 15x15, seed 0" in proc.stdout
