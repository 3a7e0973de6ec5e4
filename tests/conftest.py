"""Shared pytest set-up: the --slow switch and the gpu marker's skip."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Run the suite on one torch thread: its networks are tiny, and two threads on the 2-core CI machine only
    oversubscribe it. Tests about threading set the count themselves."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", default=False,
                     help="also run tests marked slow (CI does)")


def _gpu_visible() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_slow = config.getoption("--slow")
    gpu = None
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow test: run pytest with --slow"))
        if "gpu" in item.keywords:
            if gpu is None:
                gpu = _gpu_visible()
            if not gpu:
                item.add_marker(pytest.mark.skip(reason="no CUDA GPU visible"))


@pytest.fixture(scope="session")
def fixture_table(tmp_path_factory: pytest.TempPathFactory):
    """The real NATS-Bench fixture records (3 archs, 4 datasets, hp 12 and 200) imported into an nb360 table."""
    from nats_records import FIXTURE_DIR
    from nb360.table.importer import import_nats

    return import_nats(FIXTURE_DIR, tmp_path_factory.mktemp("tables") / "fixture.h5")


@pytest.fixture(scope="session")
def nb360_layout_table(tmp_path_factory: pytest.TempPathFactory):
    """A SYNTHETIC table in the NAS-Bench-360 single-file layout (ninapro-like, 40 archs × 20 epochs), imported."""
    from nats_records import synthetic_nb360_file
    from nb360.table.importer import import_nats

    tmp = tmp_path_factory.mktemp("nb360-layout")
    source = synthetic_nb360_file(tmp / "NATS-tss-synthetic-ninapro.pickle.pbz2", num_archs=40, epochs=20)
    return source, import_nats(source, tmp / "ninapro.h5")


@pytest.fixture(scope="session")
def structured_table_path(tmp_path_factory: pytest.TempPathFactory):
    """The SYNTHETIC full-space tabular-search table of test_search_tabular.py, built once per session."""
    from test_search_tabular import build_structured_table

    return build_structured_table(tmp_path_factory.mktemp("structured") / "structured.h5")
