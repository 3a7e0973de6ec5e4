"""The batched table builder: K stacked architectures train exactly as each would alone, to float tolerance.

Tolerances (what "equal" means here): the stacked network computes the same sums in other orders
(grouped vs single convolutions, batched reductions, box-mean pooling as a depthwise convolution), so
- one forward/backward/SGD step agrees with the per-arch networks to float32 rounding (outputs to 5e-5 at
  batch 4; the stepped parameters and their outputs to 5e-4, the step being 0.1 x gradients of up to ~10^3),
  and against float64 networks the float32 stack errs no more than 3x what the float32 networks alone err
  (the channels-last stack, the CPU default, rounds differently in every op: measured ~2x, the
  channels-first one ~1x);
- whole training runs are compared in float64, where the records (every curve value after 2 epochs)
  agree to 1e-8 relative. In float32 the same rounding differences can grow along a training run: in
  measured runs most cells agreed to 1e-6 after 4 epochs, while chaotic ones moved by percents, as a rerun
  on another CPU moves them (nb360/resources/README.md measures that noise for the embedded table).
Data: a tiny generated Darcy Flow set (SYNTHETIC PDE data) and synthetic tensors.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nb360.build import BuildSpec, WorkDir  # noqa: E402
from nb360.build.batched import train_stack  # noqa: E402
from nb360.build.worker import _datasets, train_arch  # noqa: E402
from nb360.errors import InputError  # noqa: E402
from nb360.models import build  # noqa: E402
from nb360.models.stacked import StackedNB201  # noqa: E402
from nb360.space import nb201  # noqa: E402

# cells covering every operation on every edge, channel growth (dense reduction slots) and all-`none` edges
ARCHS = [nb201.index_of((op,) * 6) for op in nb201.OPS] + [1216, 7000, 5]


@pytest.fixture(scope="module")
def darcy_root(tmp_path_factory):
    from nb360.data.darcy_generator import generate_darcyflow

    root = tmp_path_factory.mktemp("darcy")
    generate_darcyflow(root, n_train=40, n_test=10, resolution=8, seed=0, workers=1, progress=False)
    return root


def test_archs_cover_every_operation_on_every_edge() -> None:
    seen = {(e, op) for a in ARCHS for e, op in enumerate(nb201.ops(a))}
    assert seen == {(e, op) for e in range(6) for op in nb201.OPS}


def _nets(task: str) -> list:
    nets = []
    for a in ARCHS:
        torch.manual_seed(a)
        nets.append(build(task, arch=a, C=3, N=1))
    return nets


@pytest.mark.parametrize("channels_last", [True, False], ids=["channels-last", "channels-first"])
@pytest.mark.parametrize("task, shape", [("darcyflow", (3, 9, 9)), ("cifar100", (3, 8, 8)), ("ecg", (1, 40))])
def test_one_step_of_the_stack_equals_each_network_alone(task, shape, channels_last) -> None:
    nets = _nets(task)
    alone = copy.deepcopy(nets)
    stack = StackedNB201(nets, channels_last=channels_last)
    x = torch.randn(4, *shape)
    out = stack(x)
    ref = torch.stack([n(x) for n in alone], 1)
    # 5e-5: float32 rounding at batch 4, where BatchNorm divides by small batch deviations; both the stack and
    # the networks alone are ~1e-5 from the float64 result (test_the_stack_is_as_accurate_as_the_networks_alone)
    torch.testing.assert_close(out, ref, atol=5e-5, rtol=5e-5)
    target = torch.randn_like(ref)
    opt_stack = torch.optim.SGD(stack.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    ((out - target) ** 2).sum().backward()
    opt_stack.step()
    ((ref - target) ** 2).sum().backward()
    dead = set()
    for k, net in enumerate(alone):  # SGD's first step with momentum: p -= lr (grad + wd p)
        with torch.no_grad():
            for name, p in net.named_parameters():
                if p.grad is None:  # a branch that feeds no output: SGD skips it alone, the stack decays it
                    dead.add((k, name))
                else:
                    p -= 0.1 * (p.grad + 5e-4 * p)
    stack.unstack()
    for k, (trained, reference) in enumerate(zip(nets, alone)):
        for (name, a), b in zip(trained.state_dict().items(), reference.state_dict().values()):
            if (k, name) not in dead:
                torch.testing.assert_close(a, b, atol=5e-4, rtol=5e-4, msg=lambda m, name=name: f"{name}: {m}")
        torch.testing.assert_close(trained(x), reference(x), atol=5e-4, rtol=5e-4)


@pytest.mark.parametrize("channels_last", [True, False], ids=["channels-last", "channels-first"])
def test_the_stack_is_as_accurate_as_the_networks_alone(channels_last) -> None:
    """Against float64 networks, the float32 stack's outputs and stem gradients (the deepest: every layer's
    rounding reaches them) err no more than 3x what the float32 networks alone err."""
    nets = _nets("darcyflow")
    x, target = torch.randn(4, 3, 9, 9), torch.randn(4, len(nets), 1, 9, 9)

    def alone(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        models = [copy.deepcopy(n).to(dtype) for n in nets]
        out = torch.stack([m(x.to(dtype)) for m in models], 1)
        ((out - target.to(dtype)) ** 2).sum().backward()
        grads = [m.stem[0].weight.grad for m in models]
        return out.double(), torch.cat([torch.zeros_like(m.stem[0].weight) if g is None else g
                                        for m, g in zip(models, grads)]).double()

    (exact, exact_grad), (single, single_grad) = alone(torch.float64), alone(torch.float32)
    stack = StackedNB201(copy.deepcopy(nets), channels_last=channels_last)
    out = stack(x)
    ((out - target) ** 2).sum().backward()
    for stacked, reference, single_value in ((out.double(), exact, single),
                                              (stack.stem[0].weight.grad.double(), exact_grad, single_grad)):
        assert (stacked - reference).abs().max() <= 3 * (single_value - reference).abs().max()


def test_the_cpu_stack_runs_channels_last_and_1d_stacks_channels_first() -> None:
    nets = _nets("darcyflow")
    stack = StackedNB201(nets)
    seen = []
    stack.cells[0].register_forward_hook(lambda _m, _i, out: seen.append(out))
    stack(torch.randn(4, 3, 9, 9))
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not seen[0].is_contiguous()
    assert not StackedNB201(_nets("ecg")).channels_last  # 1D networks stay channels-first


def test_stacking_refuses_networks_of_other_shapes() -> None:
    with pytest.raises(InputError, match="one shape"):
        StackedNB201([build("darcyflow", arch=0, C=2, N=1), build("darcyflow", arch=1, C=3, N=1)])


class _Float64:
    """A dataset view in float64 (the equality runs)."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset
        self.y_normalizer = copy.copy(dataset.y_normalizer)
        self.y_normalizer.mean = dataset.y_normalizer.mean.double()
        self.y_normalizer.std = dataset.y_normalizer.std.double()
        self.targets_normalized = dataset.targets_normalized

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        return tuple(t.double() if torch.is_tensor(t) and t.is_floating_point() else t for t in self.dataset[i])


def _spec(root, **kw) -> BuildSpec:
    settings = {"epochs": 2, "channels": 2, "cells": 1, "batch_size": 8, "lr": 0.05, "latency_repeats": 1, **kw}
    return BuildSpec(task="darcyflow", data_root=str(root), archs="unique", **settings)


@pytest.fixture
def float64(darcy_root):
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    loaded = _datasets("darcyflow", str(darcy_root), "{}")
    yield {k: None if v is None else _Float64(v) for k, v in loaded.items()}
    torch.set_default_dtype(before)


def _assert_records_close(a: dict, b: dict, rtol: float) -> None:
    assert a["arch"] == b["arch"] and set(a["curves"]) == set(b["curves"])
    for metric, values in a["curves"].items():
        if metric.endswith("-time"):
            continue
        np.testing.assert_allclose(values, b["curves"][metric], rtol=rtol, atol=0, err_msg=f"{a['arch']} {metric}")
    for name in ("params", "flops"):
        assert a["scalars"][name] == pytest.approx(b["scalars"][name], rel=1e-12)


def test_batched_records_equal_one_at_a_time_records_in_float64(darcy_root, float64) -> None:
    spec = _spec(darcy_root)
    stacked = train_stack(spec, ARCHS, 777, float64)
    for record in stacked:
        # 1e-8: the channels-last stack rounds differently in every op, and 2 epochs of training amplify float64
        # rounding: measured worst 4.7e-9 (channels-first stack, which shares ATen's kernels with the networks
        # alone: 2.8e-10); a real difference (a wrong gradient, a mixed-up arch) shows at 1e-3 or more
        _assert_records_close(record, train_arch(spec, record["arch"], 777, float64), rtol=1e-8)


def test_a_record_does_not_depend_on_its_stack_companions(darcy_root, float64) -> None:
    spec = _spec(darcy_root, epochs=1)
    first = train_stack(spec, [1216, 0, 5], 777, float64)[0]
    second = train_stack(spec, [25, 15624, 1216, 7000], 777, float64)[2]
    _assert_records_close(first, second, rtol=1e-9)


def test_a_diverged_arch_is_recorded_as_nan_and_its_companions_as_if_alone(darcy_root, float64, monkeypatch) -> None:
    """One arch of a stack diverging in epoch 1 gets NaN from epoch 1 on; the others' records are unchanged."""
    from nb360.build import batched

    spec = _spec(darcy_root)
    archs = [1216, 0, 5]
    clean = train_stack(spec, archs, 777, float64)
    real, calls = batched._finite, {"n": 0}
    batches = -(-len(float64["train"]) // spec.batch_size)

    def diverge_once(losses, objective):
        calls["n"] += 1
        if calls["n"] == batches + 2 and losses.shape[0] == 3:  # the second batch of epoch 1, in the first stack
            raise batched.StackDiverged("injected", [1])
        return real(losses, objective)

    monkeypatch.setattr(batched, "_finite", diverge_once)
    records = train_stack(spec, archs, 777, float64)
    assert [r["arch"] for r in records] == archs
    bad = records[1]
    assert bad["diverged_at"] == 1 and np.isnan(bad["curves"]["train-loss"][1])
    assert all(np.isnan(v[1]) and np.isfinite(v[0]) for k, v in bad["curves"].items() if not k.endswith("-time"))
    for i in (0, 2):
        assert "diverged_at" not in records[i]
        _assert_records_close(records[i], clean[i], rtol=1e-9)


def test_stack_times_are_apportioned_by_flops(darcy_root) -> None:
    spec = _spec(darcy_root, epochs=1)
    records = train_stack(spec, ARCHS[:4], 777, _datasets("darcyflow", str(darcy_root), "{}"))
    flops = np.array([r["scalars"]["flops"] for r in records])
    for metric in ("train-time", "x-valid-time", "ori-test-time"):
        times = np.array([r["curves"][metric][0] for r in records])
        assert (times > 0).all()
        np.testing.assert_allclose(times / flops, times[0] / flops[0], rtol=1e-9)
    assert all(r["scalars"]["latency"] > 0 and r["scalars"]["wall-time"] > 0 for r in records)


def test_stack_setting_is_checked_and_old_work_dirs_resume_one_at_a_time(darcy_root, tmp_path) -> None:
    with pytest.raises(InputError, match="--stack"):
        _spec(darcy_root, stack=0).validate()
    work = tmp_path / "w"
    WorkDir(work, _spec(darcy_root, stack=1), 4)
    identity = json.loads((work / "spec.json").read_text())
    del identity["spec"]["stack"]  # a work directory written before stacking existed
    (work / "spec.json").write_text(json.dumps(identity))
    old = WorkDir(work, _spec(darcy_root, stack=1), 4)  # resumes as the one-at-a-time build it was
    old.write(old.plan()[0], [])  # with a finished shard (an empty work dir is taken over by a corrected command)
    with pytest.raises(InputError, match="stack"):
        WorkDir(work, _spec(darcy_root, stack=16), 4)
    assert BuildSpec.from_dict({k: v for k, v in _spec(darcy_root).to_dict().items() if k != "stack"}).stack == 1


def test_stacked_shards_group_cells_by_operations(darcy_root) -> None:
    order = _spec(darcy_root, stack=16).shard_order()
    assert sorted(order) == list(nb201.unique_indices())
    assert [nb201.op_ids(a) for a in order] == sorted(nb201.op_ids(a) for a in order)
    assert _spec(darcy_root, stack=1).shard_order() == list(nb201.unique_indices())


def test_records_are_bit_identical_without_the_nan_fill_of_new_memory(darcy_root, monkeypatch) -> None:
    """seed_everything turns off deterministic mode's NaN fill of new tensors (a speed cost): no kernel of a
    build reads memory it did not write, or the NaN-filled run would differ."""
    from nb360 import training

    spec, archs = _spec(darcy_root, epochs=1), ARCHS[5:8]
    datasets = _datasets("darcyflow", str(darcy_root), "{}")
    plain = train_stack(spec, archs, 777, datasets)
    assert torch.utils.deterministic.fill_uninitialized_memory is False
    original = training.seed_everything

    def with_fill(seed: int, deterministic: bool = True) -> None:
        original(seed, deterministic)
        torch.utils.deterministic.fill_uninitialized_memory = True

    monkeypatch.setattr(training, "seed_everything", with_fill)
    try:
        filled = train_stack(spec, archs, 777, datasets)
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = False
    for a, b in zip(plain, filled):
        assert {k: v for k, v in a["curves"].items() if not k.endswith("-time")} == \
            {k: v for k, v in b["curves"].items() if not k.endswith("-time")}
