"""Shared pytest set-up: the --slow switch and the gpu marker's skip."""

from __future__ import annotations

import pytest


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
