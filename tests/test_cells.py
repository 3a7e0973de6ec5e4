"""Reference NB201 cell operations (nb360.ops.cells): definitions, shapes, 1D/2D agreement, errors."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from nb360.errors import InputError  # noqa: E402
from nb360.ops import OPS, make_op  # noqa: E402
from nb360.ops.cells import (  # noqa: E402
    FactorizedReduce, Identity, Pooling, ReLUConvBN, ResNetBasicblock, Zero,
)
from nb360.space import nb201  # noqa: E402


def copy_1d_into_2d(module_1d: nn.Module, module_2d: nn.Module) -> None:
    """Load a 1D module's weights into its 2D twin: k-wide kernels go into the middle row of k×k kernels.

    On an input of height 1 the other kernel rows only ever see zero padding, so the two compute the same.
    """
    state_2d = module_2d.state_dict()
    for name, value in module_1d.state_dict().items():
        target = state_2d[name]
        if target.dim() == 4 and value.dim() == 3:
            target.zero_()
            target[:, :, target.shape[2] // 2, :] = value
        else:
            target.copy_(value)
    module_2d.load_state_dict(state_2d)


def test_ops_are_the_nb201_operations_in_space_order() -> None:
    assert tuple(OPS) == nb201.OPS


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("op", nb201.OPS)
@pytest.mark.parametrize(("c_in", "c_out"), [(4, 4), (3, 6)])
def test_stride1_ops_keep_the_spatial_size(dim: int, op: str, c_in: int, c_out: int) -> None:
    spatial = (7, 5) if dim == 2 else (9,)
    x = torch.randn(2, c_in, *spatial)
    y = make_op(op, c_in, c_out, 1, dim=dim)(x)
    assert y.shape == (2, c_out, *spatial)


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("op", nb201.OPS)
def test_stride2_ops_halve_even_sizes(dim: int, op: str) -> None:
    spatial = (8, 6) if dim == 2 else (10,)
    y = make_op(op, 4, 4, 2, dim=dim)(torch.randn(2, 4, *spatial))
    assert y.shape == (2, 4, *(s // 2 for s in spatial))


@pytest.mark.parametrize("affine", [True, False])
def test_relu_conv_bn_has_a_conv_bias_exactly_when_bn_is_not_affine(affine: bool) -> None:
    op = make_op("nor_conv_3x3", 8, 8, affine=affine)
    relu, conv, bn = op.op
    assert isinstance(relu, nn.ReLU) and isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
    assert (conv.bias is not None) == (not affine)
    assert bn.affine == affine
    # 9C^2 conv + (2C affine BN | C conv bias): the E2RNAS size cost (search-methods.md §6)
    assert sum(p.numel() for p in op.parameters()) == 9 * 64 + (2 * 8 if affine else 8)


@pytest.mark.parametrize("track", [True, False])
def test_track_running_stats_is_passed_to_every_bn(track: bool) -> None:
    for op in nb201.OPS:
        for module in make_op(op, 3, 5, 1, affine=False, track_running_stats=track).modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                assert module.track_running_stats == track
                assert not module.affine


def test_relu_conv_bn_computes_relu_then_conv_then_bn() -> None:
    torch.manual_seed(0)
    op = make_op("nor_conv_1x1", 3, 5).eval()
    x = torch.randn(2, 3, 4, 4)
    conv, bn = op.op[1], op.op[2]
    torch.testing.assert_close(op(x), bn(conv(torch.relu(x))))


def test_skip_connect_is_identity_or_factorized_reduce() -> None:
    assert isinstance(make_op("skip_connect", 4, 4, 1), Identity)
    assert isinstance(make_op("skip_connect", 4, 8, 1), FactorizedReduce)
    assert isinstance(make_op("skip_connect", 4, 4, 2), FactorizedReduce)
    x = torch.randn(2, 4, 5, 5)
    assert make_op("skip_connect", 4, 4, 1)(x) is x


def test_factorized_reduce_stride2_keys_and_odd_sizes() -> None:
    fr = make_op("skip_connect", 4, 7, 2)
    assert set(fr.state_dict()) >= {"convs.0.weight", "convs.1.weight", "bn.weight", "bn.running_mean"}
    assert fr.convs[0].out_channels + fr.convs[1].out_channels == 7
    assert fr(torch.randn(1, 4, 9, 7)).shape == (1, 7, 5, 4)


def test_factorized_reduce_stride1_is_conv_then_bn_without_relu() -> None:
    torch.manual_seed(0)
    fr = make_op("skip_connect", 3, 6, 1).eval()
    x = -torch.rand(1, 3, 4, 4)  # all negative: a ReLU would zero it
    torch.testing.assert_close(fr(x), fr.bn(fr.conv(x)))


def test_avg_pool_excludes_padding_and_adds_a_1x1_only_when_channels_change() -> None:
    same = make_op("avg_pool_3x3", 4, 4)
    assert isinstance(same, Pooling) and same.preprocess is None
    assert isinstance(make_op("avg_pool_3x3", 4, 8).preprocess, ReLUConvBN)
    x = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(1, 4, 1, 1)
    y = same(x)
    assert y[0, 0, 0, 0] == (0 + 1 + 4 + 5) / 4  # corner: 4 real pixels, padding not counted
    assert y[0, 0, 1, 1] == sum(range(0, 3)) / 9 + sum(range(4, 7)) / 9 + sum(range(8, 11)) / 9
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in same.modules())


def test_zero_returns_zeros_and_propagates_nan_like_the_original() -> None:
    x = torch.randn(2, 4, 6, 6)
    assert torch.equal(make_op("none", 4, 4)(x), torch.zeros_like(x))
    assert make_op("none", 4, 4, 2)(x).shape == (2, 4, 3, 3)
    assert make_op("none", 4, 8)(x).shape == (2, 8, 6, 6)
    assert isinstance(make_op("none", 4, 4), Zero)
    x[0, 0, 0, 0] = float("nan")
    assert make_op("none", 4, 4)(x).isnan().sum() == 1  # x.mul(0.), as AutoDL


@pytest.mark.parametrize("spatial", [(8, 8), (9, 7), (1, 5)])
def test_resnet_basicblock_reduces_even_and_odd_sizes(spatial: tuple[int, int]) -> None:
    block = ResNetBasicblock(4, 8, 2)
    y = block(torch.randn(2, 4, *spatial))
    assert y.shape == (2, 8, *((s + 1) // 2 for s in spatial))
    assert set(block.state_dict()) >= {"conv_a.op.1.weight", "conv_b.op.2.weight", "downsample.1.weight"}
    assert block.downsample[1].bias is None  # the stride-2 shortcut conv has no BN and no bias


def test_resnet_basicblock_shortcut_pool_matches_the_original_on_even_sizes() -> None:
    torch.manual_seed(0)
    block = ResNetBasicblock(3, 6, 2).eval()
    x = torch.randn(2, 3, 8, 6)
    original_shortcut = block.downsample[1](nn.AvgPool2d(2, 2, 0)(x))  # AutoDL: AvgPool2d(2, 2) without ceil_mode
    torch.testing.assert_close(block(x), original_shortcut + block.conv_b(block.conv_a(x)))


def test_resnet_basicblock_without_stride_uses_identity_or_1x1() -> None:
    assert ResNetBasicblock(4, 4, 1).downsample is None
    assert isinstance(ResNetBasicblock(4, 8, 1).downsample, ReLUConvBN)


@pytest.mark.parametrize("op", nb201.OPS)
@pytest.mark.parametrize(("c_in", "c_out"), [(4, 4), (3, 5)])
@pytest.mark.parametrize("train", [True, False])
def test_1d_ops_equal_2d_ops_on_height_one_inputs(op: str, c_in: int, c_out: int, train: bool) -> None:
    torch.manual_seed(1)
    op1, op2 = make_op(op, c_in, c_out, 1, dim=1), make_op(op, c_in, c_out, 1, dim=2)
    copy_1d_into_2d(op1, op2)
    op1.train(train)
    op2.train(train)
    x = torch.randn(3, c_in, 11)
    torch.testing.assert_close(op2(x.unsqueeze(2)).squeeze(2), op1(x))


def test_1d_and_2d_reduction_blocks_agree_on_height_one_inputs() -> None:
    torch.manual_seed(2)
    b1, b2 = ResNetBasicblock(4, 8, 2, dim=1), ResNetBasicblock(4, 8, 2, dim=2)
    copy_1d_into_2d(b1, b2)
    x = torch.randn(2, 4, 13)
    torch.testing.assert_close(b2(x.unsqueeze(2)).squeeze(2), b1(x))


def test_state_dict_keys_follow_autodl_names() -> None:
    assert set(make_op("nor_conv_3x3", 4, 4, affine=False).state_dict()) == {
        "op.1.weight", "op.1.bias", "op.2.running_mean", "op.2.running_var", "op.2.num_batches_tracked"}
    assert set(make_op("avg_pool_3x3", 4, 8).state_dict()) >= {"preprocess.op.1.weight", "preprocess.op.2.weight"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "max_pool_3x3"}, "unknown cell operation"),
        ({"stride": 3}, "stride 1 or 2"),
        ({"dim": 3}, "dim must be 1"),
        ({"C_in": 0}, "channel counts must be positive"),
    ],
)
def test_make_op_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    args = {"name": "nor_conv_3x3", "C_in": 4, "C_out": 4, "stride": 1, "dim": 2} | kwargs
    with pytest.raises(InputError, match=message):
        make_op(**args)


def test_gradients_reach_every_parameter_of_every_op() -> None:
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    for op in nb201.OPS:
        module = make_op(op, 3, 5, 1)
        out = module(x)
        if op == "none":  # channel-changing none returns fresh zeros: nothing to differentiate
            assert not out.requires_grad and not any(True for _ in module.parameters())
            continue
        out.square().sum().backward()
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, (op, name)


@pytest.mark.parametrize("shape", [(3, 5, 7, 9), (2, 4, 1, 6), (3, 5, 11)])
def test_fast_cpu_pool_equals_atens_average_pool_values_and_gradients(shape) -> None:
    """make_op(..., fast_cpu_pool=True), as the NB201 networks build it: box_mean_3 instead of AvgPool on CPUs."""
    from nb360.ops.cells import Pooling, box_mean_3, make_op

    dim = len(shape) - 2
    fast = make_op("avg_pool_3x3", shape[1], shape[1], dim=dim, fast_cpu_pool=True)
    plain = make_op("avg_pool_3x3", shape[1], shape[1], dim=dim)
    assert isinstance(fast, Pooling) and fast.fast_cpu_pool and not plain.fast_cpu_pool
    for dtype, tol in ((torch.float32, 1e-6), (torch.float64, 1e-14)):
        x = torch.randn(shape, dtype=dtype, requires_grad=True)
        grad = torch.randn(shape, dtype=dtype)
        got, want = fast(x), plain(x)
        torch.testing.assert_close(got, want, rtol=tol, atol=tol)
        torch.testing.assert_close(torch.autograd.grad(got, x, grad)[0], torch.autograd.grad(want, x, grad)[0],
                                   rtol=tol, atol=tol)
    with torch.inference_mode():  # constants made under inference mode are still usable in training
        box_mean_3(torch.randn(2, 3, 13, 13))
    y = torch.randn(2, 3, 13, 13, requires_grad=True)
    box_mean_3(y).sum().backward()
    assert y.grad is not None
