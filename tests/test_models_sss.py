"""The size-space network: params and FLOPs equal NATS-Bench's recorded cost info on the real fixtures."""

from __future__ import annotations

import pytest
import torch

from nats_records import FIXTURE_ARCHS, SSS_FIXTURE_DIR, load_fixture
from nb360.errors import InputError
from nb360.models import SizeNetwork, count_flops, count_parameters

# dataset -> (classes, input side): NATS-Bench's ImageNet16-120 images are 16x16
DATASETS = {"cifar10": (10, 32), "cifar100": (100, 32), "ImageNet16-120": (120, 16)}


@pytest.mark.parametrize("index", FIXTURE_ARCHS)
def test_params_and_flops_equal_the_records(index) -> None:
    record = load_fixture(f"{index:06d}.pickle.pbz2", SSS_FIXTURE_DIR)
    for hp, state in record.items():
        for (dataset, _seed), rc in state["all_results"].items():
            if dataset == "cifar10-valid":
                continue  # the same network as cifar10
            classes, side = DATASETS[dataset]
            net = SizeNetwork(state["arch_str"], classes)
            assert count_parameters(net) / 1e6 == pytest.approx(float(rc["params"]), abs=5e-7), (index, hp, dataset)
            assert count_flops(net, (3, side, side)) / 1e6 == pytest.approx(rc["flop"], abs=5e-6), (index, hp, dataset)


def test_forward_shapes_and_module_names() -> None:
    net = SizeNetwork("16:40:56:24:40", 10)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert [c.out_dim for c in net.cells] == [16, 40, 56, 24, 40]
    assert {"stem.0.weight", "cells.1.conv_a.op.1.weight", "lastact.0.weight", "classifier.weight"} <= \
        set(net.state_dict())  # AutoDL's DynamicShapeTinyNet names
    with pytest.raises(InputError, match="expects"):
        net(torch.zeros(2, 1, 32, 32))
    with pytest.raises(InputError, match="layer 0"):
        SizeNetwork("12:40:56:24:40", 10)
