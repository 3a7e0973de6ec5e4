"""nb360.models: the NB201 network, supernet and backbones on all ten task shapes; counts against NAS-Bench-201."""

from __future__ import annotations

import bz2
import copy
import pickle
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from nb360.errors import InputError, Nb360Error  # noqa: E402
from nb360.models import (  # noqa: E402
    DenseWideResNet, ResNet1D, Supernet, TinyNetwork, WideResNet, build, build_supernet, cost_model, count_flops,
    count_parameters, expected_flops, expected_params,
)
from nb360.models.resnet1d import Conv1dSamePadding  # noqa: E402
from nb360.ops.cells import Pooling  # noqa: E402
from nb360.space import nb201  # noqa: E402
from nb360.tasks.card import Metric, TaskCard  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "nats-tss-v1_0-3ffb9-simple"

# (topology, in_channels, input_size, num_outputs) per task, from shared/reference/tasks.md §2-§3.
REFERENCE_SHAPES = {
    "cifar100": ("point2d", 3, (32, 32), 100),
    "spherical": ("point2d", 3, (60, 60), 100),
    "ninapro": ("point2d", 1, (16, 52), 18),
    "fsd50k": ("point2d", 1, (96, 101), 200),
    "darcyflow": ("dense2d", 3, (85, 85), 1),
    "psicov": ("dense2d", 57, (128, 128), 1),
    "cosmic": ("dense2d", 1, (128, 128), 1),
    "ecg": ("point1d", 1, (1000,), 4),
    "satellite": ("point1d", 1, (46,), 24),
    "deepsea": ("point1d", 4, (1000,), 36),
}
TASKS = tuple(REFERENCE_SHAPES)
SMALL = {"C": 4, "N": 1}  # small NB201 networks keep the shape tests fast on 2 cores


def registry_card(name: str) -> TaskCard | None:
    """The registry's card for a task, or None while the registry or that card does not exist yet."""
    try:
        from nb360.tasks import get_task
    except ImportError:
        return None
    try:
        return get_task(name)
    except Nb360Error:
        return None


def task_card(name: str) -> TaskCard:
    """The registry's card when it exists, else a stand-in card with the tasks.md shapes (test-only)."""
    card = registry_card(name)
    if card is not None:
        return card
    topology, in_channels, input_size, num_outputs = REFERENCE_SHAPES[name]
    return TaskCard(name=name, title=f"{name} (test stand-in card)", topology=topology, in_channels=in_channels,
                    input_size=input_size, num_outputs=num_outputs, problem="multiclass", loss="cross_entropy",
                    metric=Metric("error", "min", "test stand-in"), license="n/a")


def sample(card: TaskCard, batch: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.randn((batch, card.in_channels, *card.input_size), generator=generator)


def expected_output_shape(card: TaskCard, batch: int = 2) -> tuple[int, ...]:
    if card.topology == "dense2d":
        return (batch, card.num_outputs, *card.input_size)
    return (batch, card.num_outputs)


def one_hot(arch: nb201.Arch, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    w = torch.zeros(nb201.NUM_EDGES, nb201.NUM_OPS, dtype=dtype)
    w[range(nb201.NUM_EDGES), list(nb201.op_ids(arch))] = 1
    return w


def copy_1d_into_2d(module_1d: nn.Module, module_2d: nn.Module) -> None:
    """Load 1D weights into the 2D twin (kernels into the middle row): equal outputs on height-1 inputs."""
    state_2d = module_2d.state_dict()
    for name, value in module_1d.state_dict().items():
        target = state_2d[name]
        if target.dim() == 4 and value.dim() == 3:
            target.zero_()
            target[:, :, target.shape[2] // 2, :] = value
        else:
            target.copy_(value)
    module_2d.load_state_dict(state_2d)


# ---------------------------------------------------------------- shapes for all ten tasks

@pytest.mark.parametrize("task", TASKS)
def test_registry_cards_agree_with_the_reference_shapes(task: str) -> None:
    card = registry_card(task)
    if card is None:
        pytest.skip(f"no registry card for {task} yet")
    assert (card.topology, card.in_channels, tuple(card.input_size), card.num_outputs) == REFERENCE_SHAPES[task]


@pytest.mark.parametrize("task", TASKS)
def test_nb201_network_shapes(task: str) -> None:
    card = task_card(task)
    net = build(card, 11, **SMALL)
    assert isinstance(net, TinyNetwork) and net.topology == card.topology
    assert net.input_shape == (card.in_channels, *card.input_size)
    assert net(sample(card)).shape == expected_output_shape(card)


@pytest.mark.parametrize("task", TASKS)
def test_supernet_shapes(task: str) -> None:
    card = task_card(task)
    net = build_supernet(card, **SMALL)
    out = net(sample(card))
    assert out.shape == expected_output_shape(card)
    out.mean().backward()
    assert net.alpha.grad is not None and net.alpha.grad.abs().sum() > 0


@pytest.mark.parametrize("task", TASKS)
def test_default_backbone_shapes(task: str) -> None:
    card = task_card(task)
    options = {"widen_factor": 1} if card.topology == "dense2d" else {}  # full-width dense WRNs take seconds per map
    net = build(card, backbone="default", **options)
    expected_type = {"point2d": WideResNet, "dense2d": DenseWideResNet, "point1d": ResNet1D}[card.topology]
    assert isinstance(net, expected_type)
    assert net(sample(card)).shape == expected_output_shape(card)


def test_build_by_task_name_uses_the_registry() -> None:
    if registry_card("ninapro") is None:
        pytest.skip("task registry has no ninapro card yet")
    net = build("ninapro", "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|", **SMALL)
    assert net.in_channels == 1 and net.num_outputs == 18 and net.task_name == "ninapro"


def test_build_rejects_bad_requests() -> None:
    card = task_card("ecg")
    with pytest.raises(InputError, match="exactly one of"):
        build(card)
    with pytest.raises(InputError, match="exactly one of"):
        build(card, 0, backbone="resnet1d")
    with pytest.raises(InputError, match="does not fit"):
        build(card, backbone="wrn")
    with pytest.raises(InputError, match="unknown backbone"):
        build(card, backbone="vit")
    with pytest.raises(InputError, match="bad option"):
        build(card, backbone="resnet1d", pooling="global")
    with pytest.raises(InputError, match="out of range"):
        build(card, 15625)
    with pytest.raises(InputError, match="lacks"):
        build(object(), 0)
    with pytest.raises(InputError, match="unknown task topology"):
        TinyNetwork(0, 10, topology="dense1d")
    with pytest.raises(InputError, match=r"expects a \(N, C, L\) batch"):
        TinyNetwork(0, 10, 1, **SMALL, topology="point1d")(torch.randn(2, 1, 8, 8))


# ---------------------------------------------------------------- NB201 network vs NAS-Bench-201

def _fixture_results() -> list[tuple[str, str, dict]]:
    out = []
    for index in ("000000", "000011", "000284"):
        info = pickle.loads(bz2.decompress((FIXTURES / f"{index}.pickle.pbz2").read_bytes()))["200"]
        for dataset in ("cifar10-valid", "cifar100", "ImageNet16-120"):
            out.append((info["arch_str"], dataset, info["all_results"][(dataset, 777)]))
    return out


@pytest.mark.parametrize(("arch", "dataset", "record"), _fixture_results(),
                         ids=lambda v: v if isinstance(v, str) and "|" not in v else None)
def test_params_and_flops_match_nats_bench(arch: str, dataset: str, record: dict) -> None:
    """Cited figures: NATS-Bench topology table `NATS-tss-v1_0-3ffb9`, archs 0, 11 and 284, hp 200, seed 777,
    from the committed fixture tests/fixtures/nats-tss-v1_0-3ffb9-simple/ (params and FLOPs in millions)."""
    num_classes, side = {"cifar10-valid": (10, 32), "cifar100": (100, 32), "ImageNet16-120": (120, 16)}[dataset]
    assert record["arch_config"] == {"channel": 16, "num_cells": 5, "arch_str": arch, "class_num": num_classes}
    net = TinyNetwork(arch, num_classes)  # C=16, N=5, 3 input channels: the NB201 defaults
    assert round(count_parameters(net) / 1e6, 6) == round(float(record["params"]), 6)
    assert round(count_flops(net, (3, side, side)) / 1e6, 5) == round(float(record["flop"]), 5)


def test_all_conv3x3_cell_adds_the_e2rnas_size_over_the_empty_cell() -> None:
    """search-methods.md §6: nor_conv_3x3 costs 9C²+2C per edge, 6 edges × 5 cells per stage (≈1.46M)."""
    full = count_parameters(TinyNetwork(("nor_conv_3x3",) * 6, 10))
    empty = count_parameters(TinyNetwork(("none",) * 6, 10))
    assert full - empty == 6 * 5 * sum(9 * c * c + 2 * c for c in (16, 32, 64)) == 1_458_240


def test_tiny_network_matches_the_autodl_layout() -> None:
    net = TinyNetwork(0, 10)
    keys = set(net.state_dict())
    assert {"stem.0.weight", "stem.1.running_mean", "cells.0.layers.1.op.1.weight",
            "cells.5.conv_a.op.1.weight", "cells.5.downsample.1.weight", "cells.11.downsample.1.weight",
            "lastact.0.weight", "classifier.weight"} <= keys
    assert len(net.cells) == 17 and isinstance(net.lastact[1], nn.ReLU)  # BN + ReLU before pooling, unlike NASLib


def test_arch_can_be_given_as_index_string_or_ops() -> None:
    torch.manual_seed(0)
    a = TinyNetwork(284, 10, **SMALL)
    torch.manual_seed(0)
    b = TinyNetwork(nb201.arch_str(284), 10, **SMALL)
    torch.manual_seed(0)
    c = TinyNetwork(nb201.ops(284), 10, **SMALL)
    assert a.arch == b.arch == c.arch == nb201.arch_str(284)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(a(x), b(x)) and torch.equal(a(x), c(x))


def test_dense_network_has_no_downsampling_and_grows_channels_in_cells() -> None:
    net = TinyNetwork("|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|skip_connect~2|",
                      1, 3, C=4, N=2, topology="dense2d")
    assert net.global_pooling is None
    assert [(c.in_dim, c.out_dim) for c in net.cells] == [(4, 4), (4, 4), (4, 8), (8, 8), (8, 8), (8, 16), (16, 16),
                                                          (16, 16)]
    x = torch.randn(2, 3, 17, 13)
    feats = net.forward_features(x)
    assert feats.shape == (2, 16, 17, 13)
    torch.testing.assert_close(net(x), torch.einsum("nchw,oc->nohw", feats, net.classifier.weight)
                               + net.classifier.bias[:, None, None])


def test_nb201_forward_is_deterministic_under_a_seed() -> None:
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        net = TinyNetwork(11, 10, **SMALL)
        x = torch.randn(4, 3, 12, 12)
        outs.append((net(x), net(x), net.state_dict()))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][0], outs[0][1])
    assert all(torch.equal(outs[0][2][k], outs[1][2][k]) for k in outs[0][2])


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("arch", [0, 11, 284, 5000])
def test_1d_network_equals_2d_network_on_height_one_inputs(arch: int, train: bool) -> None:
    torch.manual_seed(3)
    net1 = TinyNetwork(arch, 6, 2, C=4, N=1, topology="point1d")
    net2 = TinyNetwork(arch, 6, 2, C=4, N=1, topology="point2d")
    copy_1d_into_2d(net1, net2)
    net1.train(train)
    net2.train(train)
    x = torch.randn(3, 2, 23)  # odd lengths go through both reduction blocks (23 → 12 → 6)
    torch.testing.assert_close(net2(x.unsqueeze(2)), net1(x))


# ---------------------------------------------------------------- windowed inference (PSICOV)

def test_forward_window_tiles_like_the_original_and_covers_ragged_edges() -> None:
    torch.manual_seed(4)
    net = TinyNetwork(11, 1, 5, C=4, N=1, topology="dense2d").eval()
    x = torch.randn(2, 5, 16, 16)
    with torch.no_grad():
        tiled = net.forward_window(x, 8)
        assert tiled.shape == (2, 1, 16, 16)
        torch.testing.assert_close(tiled[..., 8:, :8], net(x[..., 8:, :8]))
        torch.testing.assert_close(net.forward_window(x, 16), net(x))
        y = torch.randn(1, 5, 20, 20)  # 20 is not a multiple of 8: windows start at 0, 8 and 12
        ragged = net.forward_window(y, 8)
        assert not ragged.isnan().any()
        torch.testing.assert_close(ragged[..., 19, 19], net(y[..., 12:, 12:])[..., 7, 7])
        # pixel 13 lies in the row windows starting at 8 and 12, and in the column windows likewise
        overlap = sum(net(y[..., top:top + 8, left:left + 8])[..., 13 - top, 13 - left]
                      for top in (8, 12) for left in (8, 12)) / 4
        torch.testing.assert_close(ragged[..., 13, 13], overlap)
    with pytest.raises(InputError, match="larger than"):
        net.forward_window(x, 32)


def test_forward_window_on_dense_wrn_and_supernet() -> None:
    x = torch.randn(1, 2, 12, 12)
    wrn = DenseWideResNet(1, 2, depth=10, widen_factor=1).eval()
    sn = Supernet(1, 2, C=4, N=1, topology="dense2d").eval()
    with torch.no_grad():
        assert wrn.forward_window(x, 6).shape == (1, 1, 12, 12)
        w = one_hot(11)
        torch.testing.assert_close(sn.forward_window(x, 6, weights=w)[..., :6, :6], sn(x[..., :6, :6], w))


# ---------------------------------------------------------------- supernet

@pytest.mark.parametrize(("topology", "shape"), [("point2d", (3, 10, 10)), ("dense2d", (2, 7, 9)),
                                                 ("point1d", (2, 21))])
@pytest.mark.parametrize("arch", [0, 11, 284, 7777])
def test_supernet_with_one_hot_weights_equals_the_discrete_network(topology: str, shape: tuple, arch: int) -> None:
    torch.manual_seed(5)
    sn = Supernet(4, shape[0], C=4, N=1, topology=topology, fused=False)  # bit-exactness: the reference path
    net = sn.discretize(arch)
    assert net.arch == nb201.arch_str(arch)
    x = torch.randn(3, *shape)
    aten_pool = copy.deepcopy(net)  # the network with ATen's pooling, the supernet's reference kernel
    for module in aten_pool.modules():
        if isinstance(module, Pooling):
            module.fast_cpu_pool = False
    for train in (True, False):
        sn.train(train)
        net.train(train)
        aten_pool.train(train)
        out = sn(x, one_hot(arch))
        torch.testing.assert_close(out, net(x))  # the network's pool: box_mean_3 on CPUs
        assert torch.equal(out, aten_pool(x))  # bit-exact with one pooling kernel: 1·y + 0·z + ... == y
    sn.set_mixed("mixed_sum")
    torch.testing.assert_close(sn(x, one_hot(arch)), net(x))


def test_supernet_mixed_sum_path_matches_reference_path_with_gradients() -> None:
    torch.manual_seed(6)
    sn = Supernet(5, 3, C=4, N=1, fused=False)  # `mixed` selects among the reference path's implementations
    x = torch.randn(2, 3, 8, 8)
    grads = []
    for mixed in ("reference", "mixed_sum"):
        sn.set_mixed(mixed)
        sn.zero_grad()
        out = sn(x)
        out.square().mean().backward()
        grads.append((out.detach(), sn.alpha.grad.clone(), sn.stem[0].weight.grad.clone()))
    for ref, fused in zip(*grads):
        torch.testing.assert_close(fused, ref)


def test_supernet_architecture_parameters() -> None:
    sn = Supernet(10, 3, C=4, N=2)
    assert sn.alpha.shape == (6, 5) and sn.arch_parameters() == [sn.alpha]
    assert sn.alpha.abs().max() < 0.01  # 1e-3·randn initialisation
    weights = sn.weight_parameters()
    assert all(p is not sn.alpha for p in weights)
    assert len(weights) + 1 == len(list(sn.parameters()))
    assert len(sn.search_cells()) == 6  # 3 stages × N=2, all sharing the one α
    torch.testing.assert_close(sn.arch_weights().sum(-1), torch.ones(6))
    with pytest.raises(InputError, match="shape"):
        sn(torch.randn(1, 3, 8, 8), torch.ones(5, 5))


def test_supernet_cells_are_search_mode_and_reduction_blocks_are_not() -> None:
    sn = Supernet(10, 3, C=4, N=1)
    conv = sn.cells[0].edges[0][nb201.OPS.index("nor_conv_3x3")].op
    assert conv[1].bias is not None and not conv[2].affine  # search ops: affine=False, conv bias on
    assert sn.cells[1].conv_a.op[2].affine and sn.cells[1].conv_a.op[1].bias is None


def test_genotype_is_argmax_per_edge_with_optional_none_exclusion() -> None:
    sn = Supernet(10, 3, C=4, N=1)
    with torch.no_grad():
        sn.alpha.zero_()
        for e, op in enumerate(nb201.op_ids(11)):
            sn.alpha[e, op] = 1.0
        sn.alpha[3, nb201.OPS.index("avg_pool_3x3")] = 0.5  # runner-up on edge 3, whose argmax is none
    assert sn.genotype() == nb201.arch_str(11)
    assert sn.genotype(exclude_none=True) == nb201.to_str(("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3",
                                                             "avg_pool_3x3", "nor_conv_3x3", "avg_pool_3x3"))
    assert sn.discretize().arch == nb201.arch_str(11)


def test_discretized_network_inherits_the_supernet_weights() -> None:
    sn = Supernet(10, 3, C=4, N=1, affine=True)
    net = sn.discretize(11)
    e, op = 0, nb201.OPS.index("nor_conv_3x3")
    assert torch.equal(net.cells[0].layers[e].op[1].weight, sn.cells[0].edges[e][op].op[1].weight)
    assert torch.equal(net.classifier.weight, sn.classifier.weight)
    assert net.cells[0].layers[e].op[1].weight.data_ptr() != sn.cells[0].edges[e][op].op[1].weight.data_ptr()


# ---------------------------------------------------------------- counting and expected size

@pytest.mark.parametrize(("topology", "in_channels", "size"), [("point2d", 3, (12, 10)), ("dense2d", 2, (9, 9)),
                                                               ("point1d", 4, (25,))])
def test_cost_model_is_exact_for_one_hot_weights(topology: str, in_channels: int, size: tuple) -> None:
    sn = Supernet(7, in_channels, C=4, N=2, topology=topology)
    params, flops = cost_model(sn), cost_model(sn, "flops", size)
    for arch in (0, 11, 284, 9999, ("nor_conv_3x3",) * 6):
        net = TinyNetwork(arch, 7, in_channels, C=4, N=2, topology=topology)
        w = one_hot(arch, torch.float64)
        assert params.expected(w).item() == params.of(arch) == count_parameters(net)
        assert flops.expected(w).item() == flops.of(arch) == count_flops(net, (in_channels, *size))


def test_expected_size_is_differentiable_and_between_the_extremes() -> None:
    sn = Supernet(10, 3, C=16, N=5)
    size = expected_params(sn)
    size.backward()
    grad = sn.alpha.grad
    assert grad is not None and grad.abs().sum() > 0
    conv3 = nb201.OPS.index("nor_conv_3x3")
    assert (grad[:, conv3] > 0).all()  # more weight on the biggest op makes the expected network bigger
    smallest = count_parameters(TinyNetwork(("none",) * 6, 10))
    largest = count_parameters(TinyNetwork(("nor_conv_3x3",) * 6, 10))
    assert smallest < size.item() < largest
    flops = expected_flops(sn, (32, 32))
    assert flops.requires_grad and 0 < flops.item()
    with pytest.raises(InputError, match="input size"):
        cost_model(sn, "flops")


def test_flops_count_dense_heads_per_pixel_or_once_like_nb201() -> None:
    net = TinyNetwork(0, 1, 3, C=4, N=1, topology="dense2d")
    per_pixel = count_flops(net, (3, 6, 5))
    once = count_flops(net, (3, 6, 5), linear_once_per_sample=True)
    assert per_pixel - once == (6 * 5 - 1) * (16 * 1 + 1)


# ---------------------------------------------------------------- backbones

def test_wrn_global_pooling_equals_original_pooling_where_the_original_covers_the_map() -> None:
    torch.manual_seed(7)
    for card_name in ("cifar100", "ninapro", "spherical"):
        card = task_card(card_name)
        global_pool = WideResNet(card.num_outputs, card.in_channels).eval()
        original = WideResNet(card.num_outputs, card.in_channels, pooling="original").eval()
        original.load_state_dict(global_pool.state_dict())
        x = sample(card)
        with torch.no_grad():
            same = torch.allclose(global_pool(x), original(x), atol=1e-5)
        # Spherical: 60×60 → 15×15 final map; the original pools only its top-left 8×8 window.
        assert same == (card_name != "spherical")


def test_wrn_16_4_layout_and_dense_variant() -> None:
    point, dense = WideResNet(1, 3), DenseWideResNet(1, 3)
    assert len(point.block1.layer) == 2 and point.fc.in_features == 256
    # Same blocks; the dense one adds BN on the raw input (2·in_channels), the original's unused out_conv is left out.
    assert count_parameters(dense) == count_parameters(point) + 2 * 3
    assert dense.block2.layer[0].conv1.stride == (1, 1) and point.block2.layer[0].conv1.stride == (2, 2)
    with pytest.raises(InputError, match="6n\\+4"):
        WideResNet(10, depth=15)


def test_resnet1d_third_skip_and_faithful_variant() -> None:
    torch.manual_seed(8)
    fixed, faithful = ResNet1D(24, 1), ResNet1D(24, 1, third_skip=False)
    assert faithful.layers[2].residual is None and isinstance(fixed.layers[2].residual, nn.BatchNorm1d)
    assert count_parameters(fixed) == count_parameters(faithful) + 2 * 128
    x = torch.randn(3, 1, 46)
    faithful.eval()
    block = faithful.layers[2]
    h = faithful.layers[1](faithful.layers[0](x))
    torch.testing.assert_close(block(h), block.layers(h))  # NB360's third block: no skip at all
    assert fixed(x).shape == faithful(x).shape == (3, 24)


@pytest.mark.parametrize("kernel", [8, 5, 3, 1])
def test_conv1d_same_padding_matches_tensorflow_same(kernel: int) -> None:
    conv = Conv1dSamePadding(2, 3, kernel)
    x = torch.randn(1, 2, 17)
    left = (kernel - 1) // 2
    want = torch.nn.functional.conv1d(torch.nn.functional.pad(x, [left, kernel - 1 - left]), conv.weight, conv.bias)
    torch.testing.assert_close(conv(x), want)


def test_discretize_keeps_dtype_and_mode() -> None:
    sn = Supernet(3, 2, C=4, N=1, fused=False).double().eval()  # bit-exactness: the reference path
    net = sn.discretize(11)
    assert net.classifier.weight.dtype == torch.float64 and not net.training
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    # the network pools with box_mean_3 on CPUs, the supernet with ATen's kernel: equal to float64 rounding
    torch.testing.assert_close(sn(x, one_hot(11, torch.float64)), net(x), rtol=1e-12, atol=1e-12)


def test_wrn_original_pooling_on_fsd50k_is_backbone_audio_global_pooling() -> None:
    card = task_card("fsd50k")  # 96×101 → 24×26 final map: Backbone_Pt's rules cannot pool it, NB360 used Backbone_Audio
    with pytest.raises(InputError, match="pooling='global'"):
        WideResNet(card.num_outputs, card.in_channels, widen_factor=1, pooling="original")(sample(card))
    net = build(card, backbone="wrn", widen_factor=1, pooling="original")
    assert net.pooling == "global" and net(sample(card)).shape == (2, 200)
