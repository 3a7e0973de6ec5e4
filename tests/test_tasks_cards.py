"""Task cards: the schema check of all ten cards, the registry, and `nb360 tasks list/show`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nb360.errors import DataError, InputError
from nb360.tasks import TASK_ORDER, card_dirs, cards_dir, get_task, list_tasks, read_card

ROOT = Path(__file__).resolve().parents[1]
CARDS = ROOT / "tasks"
EXPECTED = {  # name: (topology, input shape (C, ...), outputs, problem, metric key)
    "cifar100": ("point2d", (3, 32, 32), 100, "multiclass", "error"),
    "spherical": ("point2d", (3, 60, 60), 100, "multiclass", "error"),
    "ninapro": ("point2d", (1, 16, 52), 18, "multiclass", "error"),
    "fsd50k": ("point2d", (1, 96, 101), 200, "multilabel", "map"),
    "darcyflow": ("dense2d", (3, 85, 85), 1, "regression", "rel_l2"),
    "psicov": ("dense2d", (57, 128, 128), 1, "regression", "mae8"),
    "cosmic": ("dense2d", (1, 128, 128), 1, "binary-segmentation", "fnr"),
    "ecg": ("point1d", (1, 1000), 4, "multiclass", "f1_macro"),
    "satellite": ("point1d", (1, 46), 24, "multiclass", "error"),
    "deepsea": ("point1d", (4, 1000), 36, "multilabel", "auroc"),
}
E2RNAS_SUITE = {  # the E2RNAS paper's own datasets, outside the ten
    "cifar10": ("point2d", (3, 32, 32), 10, "multiclass", "error"),
    "svhn": ("point2d", (3, 32, 32), 10, "multiclass", "error"),
}
ALL = {**EXPECTED, **E2RNAS_SUITE}
SOURCE_OF_RESULTS = "NAS-Bench-360 README images/baselines.png (uploaded 2022-06-23), repo rtu715/NAS-Bench-360@587bb09"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nb360", *args], capture_output=True, text=True)


# ----------------------------------------------------------------------------- the ten cards
def test_the_ten_cards_in_benchmark_order_then_the_e2rnas_suite() -> None:
    assert [c.name for c in list_tasks("nb360")] == list(TASK_ORDER) == list(EXPECTED)
    assert [c.name for c in list_tasks("e2rnas")] == list(E2RNAS_SUITE)
    assert [c.name for c in list_tasks()] == list(ALL)
    assert sorted(p.stem for p in CARDS.glob("*.toml")) == sorted(ALL)
    with pytest.raises(InputError, match="unknown task suite 'nas'"):
        list_tasks("nas")


@pytest.mark.parametrize("name", list(ALL))
def test_card_passes_the_schema_check_and_declares_the_task(name: str) -> None:
    card = read_card(CARDS / f"{name}.toml")  # the strict schema check, straight from the file
    topology, shape, outputs, problem, metric = ALL[name]
    assert (card.topology, card.input_shape, card.num_outputs, card.problem, card.metric.name) == (
        topology, shape, outputs, problem, metric)
    assert card.input_layout == ("CL" if topology == "point1d" else "CHW")
    assert card.metric.direction == "min"  # every reported value is lower-is-better (errors, 1 - x, FNR)
    assert card.license and card.loss and card.sample and card.description
    assert card == get_task(name)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_files_list_every_source_with_the_dead_s3_links_marked(name: str) -> None:
    card = get_task(name)
    assert card.files
    for f in card.files:
        assert f.sources and f.role
        assert f.size is not None or f.approx_size or name == "ninapro"  # NinaPro states one total for six files
        for src in f.sources:
            if "pde-xd.s3.amazonaws.com" in src.url:
                assert src.status == "dead" and "403" in src.note
        if name != "cifar100":  # NB360-hosted files: the Drive folder first, the dead S3 link after it
            assert [s.status for s in f.sources][-1] == "dead"
            assert "drive.google.com" in f.sources[0].url


def test_cifar100_file_has_its_published_checksum() -> None:
    f = get_task("cifar100").file("cifar-100-python.tar.gz")
    assert f.md5 == "eb9058c3a382ffc7106e4002c42a8d85" and f.size == 169001437


@pytest.mark.parametrize("name", list(ALL))
def test_splits_have_search_and_retrain_with_consistent_sizes(name: str) -> None:
    splits = get_task(name).splits
    search, retrain = splits["search"], splits["retrain"]
    assert set(search["sizes"]) == {"train", "val", "test"} and set(retrain["sizes"]) >= {"train", "test"}
    if retrain["merge_val"]:
        assert retrain["sizes"]["train"] == search["sizes"]["train"] + search["sizes"]["val"]
    else:  # the benchmark's exceptions: DeepSEA trains on x_train alone, ECG re-splits, FSD50K keeps tr.csv
        assert name in ("deepsea", "ecg", "fsd50k")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_reference_results_carry_their_source_and_the_marked_best_is_the_lowest(name: str) -> None:
    results = get_task(name).reference_results
    assert results["source"] == SOURCE_OF_RESULTS
    rows = results["rows"]
    assert [r["method"] + "/" + r["variant"] for r in rows] == [
        "WRN/default", "DenseNAS/random", "DenseNAS/original", "Perceiver IO/default", "XGBoost/default",
        "WRN/ASHA (tuned)", "DARTS/GAEA", "Auto-DL/DARTS", "AMBER/ENAS"]
    valued = [r for r in rows if "value" in r]
    best = [r for r in rows if r.get("best")]
    assert len(best) == 1 and best[0]["value"] == min(r["value"] for r in valued)
    for extra in results.get("other", []):
        assert "rtu715/NAS-Bench-360" in extra["source"]


def test_headline_reference_numbers() -> None:
    def value(task: str, method: str, variant: str) -> float:
        rows = get_task(task).reference_results["rows"]
        return next(r["value"] for r in rows if (r["method"], r["variant"]) == (method, variant))

    assert value("cifar100", "WRN", "default") == 23.35
    assert value("ninapro", "WRN", "default") == 6.78
    assert value("darcyflow", "DARTS", "GAEA") == 0.026
    assert value("psicov", "DARTS", "GAEA") == 2.94
    assert value("fsd50k", "DenseNAS", "random") == 0.60
    assert value("ecg", "AMBER", "ENAS") == 0.33
    assert value("deepsea", "AMBER", "ENAS") == 0.32
    assert "did not fit on a single V100" in next(
        r["note"] for r in get_task("psicov").reference_results["rows"] if r["method"] == "XGBoost")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_baseline_protocol(name: str) -> None:
    baseline = get_task(name).baseline
    dense = EXPECTED[name][0] == "dense2d"
    assert baseline["learning_rate"] == (0.001 if dense else 0.1)
    assert baseline["epochs"] == 200 and "60, 120, 160" in baseline["lr_schedule"]
    assert baseline["batch_size"] == {"cifar100": 128, "spherical": 128, "ninapro": 128, "fsd50k": 256,
                                      "ecg": 256, "satellite": 4096, "deepsea": 256}.get(name, 8)
    assert ("ResNet1D" if EXPECTED[name][0] == "point1d" else "WRN-16-4") in baseline["model"]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_baseline_protocol_is_machine_readable(name: str) -> None:
    card = get_task(name)
    protocol = card.protocol()
    dense = EXPECTED[name][0] == "dense2d"
    assert (protocol.learning_rate, protocol.epochs, protocol.batch_size) == (
        card.baseline["learning_rate"], 200, card.baseline["batch_size"])
    assert (protocol.momentum, protocol.weight_decay, protocol.nesterov) == (0.9, 5e-4, True)
    assert (protocol.schedule, protocol.step_every, protocol.gamma) == ("step", "epoch", 0.2)
    assert protocol.milestones == (60, 120, 160) == protocol.milestones_for(200)
    assert protocol.milestones_for(10) == (3, 7, 9)  # the original's rule for other epoch counts
    assert "weight_sched" in protocol.source
    assert bool(protocol.uncertain) == dense  # dense cards: nesterov is not in the code read at 269846a


@pytest.mark.parametrize(("edit", "field"), [
    (lambda t: t.replace("milestones = [60, 120, 160]", "milestones = [120, 60, 160]"), "baseline.schedule.milestones"),
    (lambda t: t.replace("milestones = [60, 120, 160]", "milestones = [60, 120, 200]"), "baseline.schedule.milestones"),
    (lambda t: t.replace("gamma = 0.2", "gamma = 0"), "baseline.schedule.gamma"),
    (lambda t: t.replace('kind = "step"', 'kind = "poly"'), "baseline.schedule.kind"),
    (lambda t: t.replace("nesterov = true", 'nesterov = "yes"'), "baseline.nesterov"),
    (lambda t: t.replace("momentum = 0.9\n", "momentum = -0.9\n"), "baseline.momentum"),
    (lambda t: t.replace("strict = [false, true, true]", "strict = [false, true]"),
     "baseline.schedule.other_epochs.strict"),
    (lambda t: t.replace('step_every = "epoch"', 'step_every = "epoch"\nwarmup = 5'), "baseline.schedule.warmup"),
])
def test_bad_baseline_protocols_name_the_field(tmp_path: Path, edit, field: str) -> None:
    path = _bad_card(tmp_path, edit)
    with pytest.raises(DataError) as info:
        read_card(path)
    assert f"`{field}`" in str(info.value), str(info.value)


def test_uncertain_facts_are_marked() -> None:
    assert any("FNR" in u and "AUROC" in u for u in get_task("cosmic").uncertain)
    assert any("Cutout" in u for u in get_task("cifar100").uncertain)
    assert any("[uncertain" in q for q in get_task("spherical").quirks)


# ----------------------------------------------------------------------------- registry
def test_unknown_task_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match="unknown task 'bogus'; known tasks: cifar100, spherical, ninapro"):
        get_task("bogus")


def test_registry_finds_the_checkout_and_installed_card_dirs(tmp_path: Path) -> None:
    dirs = card_dirs()
    assert CARDS in dirs  # source checkout
    # A wheel: no checkout beside the package, cards/ inside the package directory.
    package = tmp_path / "site-packages" / "nb360"
    (package / "cards").mkdir(parents=True)
    shutil.copy(CARDS / "ninapro.toml", package / "cards")
    wheel_dirs = card_dirs(package_file=str(package / "__init__.py"), package_paths=[str(package)])
    assert wheel_dirs == [package / "cards"]
    assert cards_dir(wheel_dirs) == package / "cards"
    with pytest.raises(DataError, match="no task cards found"):
        cards_dir([tmp_path / "nowhere"])


def test_tasks_and_data_packages_import_without_torch() -> None:
    code = "import sys, nb360.tasks, nb360.data; nb360.tasks.list_tasks(); assert 'torch' not in sys.modules, 'torch'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# ----------------------------------------------------------------------------- schema errors
def _bad_card(tmp_path: Path, edit) -> Path:
    text = (CARDS / "ninapro.toml").read_text()
    path = tmp_path / "ninapro.toml"
    path.write_text(edit(text))
    return path


@pytest.mark.parametrize(("edit", "field"), [
    (lambda t: t.replace('title = "NinaPro DB5"\n', ""), "title"),
    (lambda t: t.replace("in_channels = 1", 'in_channels = "one"'), "in_channels"),
    (lambda t: t.replace("in_channels = 1", "in_channels = true"), "in_channels"),
    (lambda t: t.replace('topology = "point2d"', 'topology = "point3d"'), "topology"),
    (lambda t: t.replace("input_size = [16, 52]", "input_size = [16]"), "input_size"),
    (lambda t: t.replace('direction = "min"', 'direction = "down"'), "metric.direction"),
    (lambda t: t.replace('loss = "cross_entropy"', 'loss = "cross_entropy"\nlos = "typo"'), "los"),
    (lambda t: t.replace('role = "val inputs, (659, 52, 16)"',
                         'role = "val inputs, (659, 52, 16)"\nsha256 = "abc"'), "files[1].sha256"),
    (lambda t: t.replace("https://pde-xd.s3.amazonaws.com/ninapro/ninapro_test.npy",
                         "http://pde-xd.s3.amazonaws.com/ninapro/ninapro_test.npy"), "files[2].sources[1].url"),
    (lambda t: t.replace('status = "dead"', 'status = "gone"', 1), "files[0].sources[1].status"),
    (lambda t: t.replace("sizes = { train = 2638, val = 659, test = 659 }",
                         "sizes = { train = 2638, test = 659 }"), "splits.search.sizes.val"),
    (lambda t: t.replace('source = "NAS-Bench-360 README images/baselines.png',
                         'sauce = "NAS-Bench-360 README images/baselines.png'), "reference_results.sauce"),
    (lambda t: t.replace('{ method = "AMBER", variant = "ENAS", note = "n/a (1D tasks only)" }',
                         '{ method = "AMBER", variant = "ENAS" }'), "reference_results.rows[8].value"),
    (lambda t: t.replace('name = "ninapro"', 'name = "ninapro2"'), "name"),
    (lambda t: t.replace("schema_version = 1", "schema_version = 2"), "schema_version"),
])
def test_schema_errors_name_the_card_file_and_the_field(tmp_path: Path, edit, field: str) -> None:
    path = _bad_card(tmp_path, edit)
    with pytest.raises(DataError) as info:
        read_card(path)
    message = str(info.value)
    assert str(path) in message and f"`{field}`" in message, message


def test_invalid_toml_names_the_card(tmp_path: Path) -> None:
    path = _bad_card(tmp_path, lambda t: t + "\n[[[broken\n")
    with pytest.raises(DataError, match=re.escape(str(path)) + " is not valid TOML"):
        read_card(path)


def test_a_bad_card_in_the_cards_dir_fails_the_registry_with_its_name(tmp_path: Path, monkeypatch) -> None:
    for card in CARDS.glob("*.toml"):
        shutil.copy(card, tmp_path)
    (tmp_path / "ecg.toml").write_text((CARDS / "ecg.toml").read_text().replace("num_outputs = 4", "num_outputs = 0"))
    monkeypatch.setenv("NB360_CARDS_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"ecg\.toml: field `num_outputs` must be a positive integer"):
        list_tasks()


# ----------------------------------------------------------------------------- CLI
def test_cli_tasks_list_prints_the_ten_then_the_e2rnas_suite_separately() -> None:
    proc = run_cli("tasks", "list")
    assert proc.returncode == 0, proc.stderr
    ten, e2rnas = proc.stdout.strip().split("\n\n")
    lines = ten.splitlines()
    assert lines[0].startswith("NAS-Bench-360") and lines[1].split()[:4] == ["name", "title", "type", "input"]
    assert [line.split()[0] for line in lines[3:]] == list(EXPECTED)
    assert "1x16x52" in proc.stdout and "57x128x128" in proc.stdout
    lines = e2rnas.splitlines()
    assert lines[0].startswith("E2RNAS suite") and "outside the ten NAS-Bench-360 tasks" in lines[0]
    assert [line.split()[0] for line in lines[3:]] == list(E2RNAS_SUITE)
    only = run_cli("tasks", "list", "--suite", "nb360")
    assert only.returncode == 0 and "cifar10 " not in only.stdout and "E2RNAS" not in only.stdout


def test_cli_tasks_list_json() -> None:
    proc = run_cli("tasks", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    cards = json.loads(proc.stdout)
    assert [c["name"] for c in cards] == list(ALL)
    assert {c["name"]: c["suite"] for c in cards} == {**{n: "nb360" for n in EXPECTED}, "cifar10": "e2rnas",
                                                       "svhn": "e2rnas"}


def test_cli_tasks_show_prints_the_whole_card() -> None:
    proc = run_cli("tasks", "show", "ninapro")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for text in ("ninapro: NinaPro DB5", "1x16x52", "[DEAD] https://pde-xd.s3.amazonaws.com/ninapro/label_test.npy",
                 SOURCE_OF_RESULTS, "WRN / default", "6.78 +- 0.26  (best)", "search:", "retrain:",
                 "SGD momentum 0.9", "quirks", "uncertain", "CC BY-ND"):
        assert text in out, text


def test_cli_tasks_show_json_round_trips() -> None:
    proc = run_cli("tasks", "show", "darcyflow", "--json")
    assert proc.returncode == 0, proc.stderr
    card = json.loads(proc.stdout)
    assert card["name"] == "darcyflow" and card["input_size"] == [85, 85] and card["in_channels"] == 3
    assert card["files"][0]["sources"][1]["status"] == "dead"
    assert card["metric"]["name"] == "rel_l2"


def test_cli_tasks_show_unknown_task_exits_2_with_one_line() -> None:
    proc = run_cli("tasks", "show", "bogus")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown task 'bogus'" in lines[0] and "ninapro" in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", list(ALL))
def test_every_card_defines_its_robustness(name: str) -> None:
    from nb360.tasks import ROBUSTNESS_UNITS

    r = get_task(name).robustness
    assert r["robust_metric"] and r["source"]
    if name == "deepsea":  # one-hot DNA: refused, with the reason and the accepted alternative named
        assert r["attackable"] is False and "one-hot" in r["reason"] and r["relaxation"]
        return
    assert r["attackable"] is True and r["unit"] in ROBUSTNESS_UNITS and r["eps"] > 0 and r["eps_text"]
    assert r["norm"] == "linf" and r["perturb"]
    if name in ("cifar10", "svhn", "cifar100"):  # the E2RNAS authors' threat model: 2/255 in pixels
        assert (r["unit"], r["eps_text"], r["box"]) == ("pixel", "2/255", [0.0, 1.0])
        assert r["eps"] == pytest.approx(2 / 255) and "test_adv.py" in r["source"]
    if name == "darcyflow":
        assert r["channels"] == [0]  # the coordinate channels are not data


def test_e2rnas_suite_cards_carry_checksums_and_the_papers_reference_with_its_source() -> None:
    cifar10, svhn = get_task("cifar10"), get_task("svhn")
    assert cifar10.file("cifar-10-python.tar.gz").md5 == "c58f30108f718f92721af3b95e74349a"
    assert svhn.file("train_32x32.mat").md5 == "e26dedcc434d2e4c54c9b2d4a06d8373"
    assert svhn.file("test_32x32.mat").md5 == "eb5a983be6a315427106f1b164d9cef3"
    for card in (cifar10, svhn):
        ref = card.robustness["reference"]
        assert "2011.09820" in ref["source"] and "FGSM" in ref["protocol"]
        for row in ref["rows"]:  # no number without a source: the paper's tables are not established
            assert any(k in row for k in ("clean", "fgsm", "pgd")) or "not established" in row["note"]


def test_robustness_schema_errors_name_the_field(tmp_path: Path) -> None:
    text = (CARDS / "darcyflow.toml").read_text()
    for edit, field in ((lambda t: t.replace("channels = [0]", "channels = [3]"), "robustness.channels"),
                        (lambda t: t.replace('unit = "raw"', 'unit = "furlongs"'), "robustness.unit"),
                        (lambda t: t.replace("eps = 0.1", "eps = -0.1"), "robustness.eps"),
                        (lambda t: t.replace('robust_metric = "robust relative L2', 'metric = "x'),
                         "robustness.metric")):
        path = tmp_path / "darcyflow.toml"
        path.write_text(edit(text))
        with pytest.raises(DataError, match=f"`{field}`"):
            read_card(path)


def test_every_card_metric_is_a_registered_metric() -> None:
    metrics = pytest.importorskip("nb360.metrics")
    for card in list_tasks():
        for name in (card.metric.name, *card.metric.secondary):
            assert name in metrics.METRICS, f"{card.name}: metric {name!r} is not in nb360.metrics.METRICS"
