"""DARTS-space networks: shapes on all ten tasks, one-hot supernet = discrete network, parameter counts, cost models."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from nb360.errors import InputError  # noqa: E402
from nb360.models import build, build_darts_supernet, count_flops, count_parameters  # noqa: E402
from nb360.models.darts_counting import darts_cost_model  # noqa: E402
from nb360.models.darts_eval import DartsNetwork, count_parameters_darts  # noqa: E402
from nb360.models.darts_search import DartsSupernet, MixedOp, MixWeights, channel_shuffle, node_softmax  # noqa: E402
from nb360.ops.darts_ops import FactorizedReduce, make_op  # noqa: E402
from nb360.space import darts  # noqa: E402
from nb360.tasks import get_task  # noqa: E402

TASKS = ["cifar100", "spherical", "ninapro", "fsd50k", "darcyflow", "psicov", "cosmic", "ecg", "satellite", "deepsea"]



@pytest.mark.parametrize("task", TASKS)
def test_search_and_eval_networks_fit_every_task(task: str) -> None:
    card = get_task(task)
    torch.manual_seed(0)
    x = torch.randn(2, card.in_channels, *card.input_size)
    dense = card.topology == "dense2d"
    want = (2, card.num_outputs, *card.input_size) if dense else (2, card.num_outputs)
    supernet = build_darts_supernet(card, C=4, layers=3, partial_channels=2, edge_weights=True).eval()
    with torch.no_grad():
        assert tuple(supernet(x).shape) == want
    net = build(card, genotype="DARTS_V2", C=4, layers=3, auxiliary=not dense)
    assert net.input_shape == (card.in_channels, *card.input_size)
    net.train()
    out = net(x)
    if dense:  # no auxiliary head on dense tasks: logits only
        assert tuple(out.shape) == want
    else:
        logits, aux = out
        assert tuple(logits.shape) == want and tuple(aux.shape) == want
    net.eval()
    with torch.no_grad():
        assert tuple(net(x).shape) == want  # evaluation: logits only


@pytest.mark.parametrize("topology,shape,layers", [("point2d", (2, 2, 11, 14), 4), ("dense2d", (2, 3, 7, 9), 2),
                                                  ("point1d", (3, 2, 23), 4)])
def test_a_supernet_with_one_hot_weights_equals_the_discrete_cell_network(topology: str, shape: tuple,
                                                                         layers: int) -> None:
    torch.manual_seed(1)
    supernet = DartsSupernet(5, shape[1], C=4, layers=layers, topology=topology)
    x = torch.randn(*shape)
    for seed in range(3):
        g = darts.sample(random.Random(seed))
        discrete = supernet.discretize(g)
        assert isinstance(discrete, DartsNetwork) and discrete.genotype == g
        for training in (True, False):
            supernet.train(training)
            discrete.train(training)
            with torch.no_grad():
                assert torch.equal(supernet(x, supernet.one_hot(g)), discrete(x))
    # gradients reach the chosen ops identically
    g = darts.sample(random.Random(7))
    supernet.train()
    discrete = supernet.discretize(g).train()
    supernet(x, supernet.one_hot(g)).square().sum().backward()
    discrete(x).square().sum().backward()
    cell, i = 0, 3
    kind = "reduce" if supernet.cells[cell].reduction else "normal"
    op, source = g.cell(kind)[i]
    edge = darts.edge_index(2 + i // 2, source)
    src = supernet.cells[cell]._ops[edge]._ops[darts.PRIMITIVES.index(op)]
    # (up to summation order: the supernet also back-propagates exact zeros through the unchosen ops)
    for a, b in zip(src.parameters(), discrete.cells[cell]._ops[i].parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(supernet.stem[0].weight.grad, discrete.stem[0].weight.grad, rtol=1e-4, atol=1e-5)


def test_darts_v2_has_darts_published_size_on_cifar10() -> None:
    # DARTS (Liu et al., ICLR 2019), Table 1: DARTS (second order) on CIFAR-10, 3.3M parameters, with the
    # evaluation network of 20 cells, C=36, auxiliary head. The count excludes the auxiliary head, as
    # `utils.count_parameters_in_MB` of the DARTS codebases does (`if "auxiliary" not in name`; search-methods.md
    # §1.6 "excluding the auxiliary head"); counting the head too would give 3.8M.
    net = DartsNetwork("DARTS_V2", num_outputs=10, in_channels=3, C=36, layers=20, auxiliary=True)
    params = count_parameters_darts(net)
    assert round(params / 1e6, 1) == 3.3
    assert round(count_parameters(net) / 1e6, 1) == 3.8
    assert darts_cost_model(10, 3, "point2d", C=36, layers=20).of("DARTS_V2") == params


@pytest.mark.parametrize("dim", [1, 2])
def test_op_modules_have_e2rnas_per_op_costs(dim: int) -> None:
    for C in (4, 12):
        for op in darts.PRIMITIVES:
            for stride in (1, 2):
                module = make_op(op, C, stride, affine=True, dim=dim)
                assert count_parameters(module) == darts.op_param_cost(op, C, stride, dim), (op, C, stride)


@pytest.mark.parametrize("topology,size", [("point2d", (11, 14)), ("dense2d", (6, 7)), ("point1d", (23,))])
def test_the_cost_model_counts_every_genotype_exactly_and_is_differentiable(topology: str, size: tuple) -> None:
    params = darts_cost_model(7, 2, topology, "params", C=4, layers=5)
    flops = darts_cost_model(7, 2, topology, "flops", C=4, layers=5, input_size=size)
    low, high = params.range()
    for seed in range(4):
        g = darts.sample(random.Random(seed))
        net = DartsNetwork(g, 7, 2, 4, 5, topology)
        assert params.of(g) == count_parameters(net)
        assert flops.of(g) == count_flops(net, (2, *size))
        assert low <= params.of(g) <= high
        # one-hot op weights on the kept edges, keep weight 1 there and 0 elsewhere: the exact count
        hot = DartsSupernet(7, 2, C=4, layers=2, topology=topology).one_hot(g)
        assert float(params.expected(MixWeights(hot.ops.double(), hot.edges.double()))) == pytest.approx(params.of(g))
    # softmax weights: a differentiable expectation between the extremes, with gradients for α and β
    alpha = torch.randn(2, 14, 8, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(2, 14, dtype=torch.float64, requires_grad=True)
    value = params.expected(MixWeights(torch.softmax(alpha, -1), node_softmax(beta)))
    value.backward()
    assert params.base <= float(value.detach()) and alpha.grad.abs().sum() > 0 and beta.grad.abs().sum() > 0
    # without edge weights every edge counts 2/n (two of its node's n inputs are kept)
    uniform = params.expected(MixWeights(torch.full((2, 14, 8), 1 / 8, dtype=torch.float64)))
    keep = torch.tensor([2 / t for _s, t in darts.EDGES], dtype=torch.float64)
    assert float(uniform) == pytest.approx(params.base + float((keep[None, :, None] * params.table / 8).sum()))


def test_partial_channels_mix_a_quarter_and_shuffle_as_pc_darts() -> None:
    def pc_darts_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:  # yuhuixu1993/PC-DARTS model_search.py
        batchsize, num_channels, height, width = x.data.size()
        x = x.view(batchsize, groups, num_channels // groups, height, width)
        x = torch.transpose(x, 1, 2).contiguous()
        return x.view(batchsize, -1, height, width)

    x = torch.randn(2, 16, 5, 6)
    assert torch.equal(channel_shuffle(x, 4), pc_darts_shuffle(x, 4))
    op = MixedOp(16, 1, dim=2, partial_channels=4).eval()
    out = op(x, torch.zeros(8))  # zero op weights: only the bypassed 3/4 survive, shuffled into place
    expected = pc_darts_shuffle(torch.cat([torch.zeros(2, 4, 5, 6), x[:, 4:]], dim=1), 4)
    assert torch.equal(out, expected)
    reduce = MixedOp(16, 2, dim=2, partial_channels=4).eval()
    assert tuple(reduce(x, torch.full((8,), 1 / 8)).shape) == (2, 16, 3, 3)  # ⌈5/2⌉ × ⌈6/2⌉, bypass too
    one_d = MixedOp(8, 2, dim=1, partial_channels=4).eval()
    assert tuple(one_d(torch.randn(2, 8, 23), torch.full((8,), 1 / 8)).shape) == (2, 8, 12)


def test_the_shared_relu_gives_the_same_values_and_gradients() -> None:
    torch.manual_seed(3)
    shared, separate = MixedOp(6, 1, shared_relu=True), MixedOp(6, 1, shared_relu=False)
    separate.load_state_dict(shared.state_dict())
    x = torch.randn(3, 6, 7, 7)
    w = torch.softmax(torch.randn(8), 0)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    a, b = shared(xa, w), separate(xb, w)
    assert torch.equal(a, b)
    a.square().sum().backward()
    b.square().sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)
    for pa, pb in zip(shared.parameters(), separate.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad)


def test_drop_path_and_the_auxiliary_head_act_in_training_only() -> None:
    torch.manual_seed(4)
    net = DartsNetwork("DARTS_V1", 3, 1, C=4, layers=3, auxiliary=True)
    x = torch.randn(4, 1, 8, 8)
    net.eval()
    with torch.no_grad():
        clean = net(x)
        net.drop_path_prob = 0.5
        assert torch.equal(net(x), clean)  # no drop-path in evaluation
    net.train()
    net.drop_path_prob = 0.0
    torch.manual_seed(5)
    logits0, aux0 = net(x)
    net.drop_path_prob = 0.5
    torch.manual_seed(5)
    logits1, _ = net(x)
    assert not torch.equal(logits0, logits1)
    assert isinstance(aux0, torch.Tensor) and aux0.shape == (4, 3)
    with pytest.raises(InputError, match="auxiliary head is defined for point tasks"):
        DartsNetwork("DARTS_V1", 1, 3, C=4, layers=3, topology="dense2d", auxiliary=True)


def test_factorized_reduce_handles_odd_sizes_and_matches_darts_on_even_ones() -> None:
    torch.manual_seed(6)
    fr = FactorizedReduce(4, 6).eval()
    assert tuple(fr(torch.randn(2, 4, 5, 7)).shape) == (2, 6, 3, 4)
    x = torch.randn(2, 4, 6, 8)
    relu = torch.relu(x)  # DARTS: cat([conv_1(x), conv_2(x[:, :, 1:, 1:])]) on even sizes
    darts_out = fr.bn(torch.cat([fr.conv_1(relu), fr.conv_2(relu[:, :, 1:, 1:])], dim=1))
    assert torch.equal(fr(x), darts_out)
    fr1 = FactorizedReduce(4, 6, dim=1).eval()
    assert tuple(fr1(torch.randn(2, 4, 23)).shape) == (2, 6, 12)


def test_module_names_follow_darts_so_its_state_dicts_load() -> None:
    names = set(DartsNetwork("DARTS_V2", 10, 3, C=4, layers=3, auxiliary=True).state_dict())
    for key in ("stem.0.weight", "stem.1.running_mean", "cells.0.preprocess0.op.1.weight",
                "cells.1.preprocess1.op.2.weight", "cells.2.preprocess0.conv_1.weight", "cells.0._ops.0.op.1.weight",
                "auxiliary_head.features.2.weight", "auxiliary_head.features.6.running_var",
                "auxiliary_head.classifier.weight", "classifier.bias"):
        assert key in names, key
    search = set(DartsSupernet(10, 3, C=4, layers=3).state_dict())
    assert "cells.0._ops.13._ops.4.op.1.weight" in search  # edge 13, op sep_conv_3x3
    assert "cells.0._ops.0._ops.1.1.running_mean" in search  # max pooling followed by its non-affine BN


def test_dense_networks_predict_large_maps_window_by_window() -> None:
    net = build(get_task("darcyflow"), genotype="NB360_GAEA_darcyflow", C=4, layers=2).eval()
    x = torch.randn(1, 3, 20, 20)
    with torch.no_grad():
        whole, windowed = net(x), net.forward_window(x, 10)
    assert whole.shape == windowed.shape == (1, 1, 20, 20)


def test_bad_networks_are_refused_with_a_fix() -> None:
    card = get_task("ninapro")
    with pytest.raises(InputError, match="exactly one of"):
        build(card, arch=0, genotype="DARTS_V2")
    with pytest.raises(InputError, match="unknown op 'conv_9x9'"):
        build(card, genotype=darts.to_str("DARTS_V2").replace("dil_conv_3x3", "conv_9x9"))
    with pytest.raises(InputError, match="even C"):
        build(card, genotype="DARTS_V2", C=5)
    with pytest.raises(InputError, match="partial channels K=4"):
        build_darts_supernet(card, C=6, partial_channels=4)
    with pytest.raises(InputError, match="MixWeights"):
        DartsSupernet(3, 1, C=4, layers=1)(torch.randn(2, 1, 8, 8), torch.ones(2, 14, 8))
    with pytest.raises(InputError, match="expects a"):
        build(card, genotype="DARTS_V2", C=4, layers=2)(torch.randn(2, 3, 16, 52))
    assert isinstance(build(card, genotype=darts.published("DARTS_V1"), C=4, layers=2), nn.Module)
