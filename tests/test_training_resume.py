"""Exact resume when training draws global random numbers (augmentation), as CIFAR-100's does.

The other resume tests train on data whose loaders draw nothing from the global generators, so a
resume that forgot to restore them still matched; here every sample draws from torch's, numpy's and
Python's global generators, and the generators are disturbed between the interruption and the resume.
"""

from __future__ import annotations

import io
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nb360.tasks import get_task  # noqa: E402
from nb360.training import TrainConfig, fit, objective_for, seed_everything  # noqa: E402
from nb360.training import loop as loop_module  # noqa: E402


class AugmentedSet(torch.utils.data.Dataset):
    """SYNTHETIC 10-class data whose every sample is augmented with draws from the three global generators."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(48, 3, 4, 4, generator=g)
        self.y = torch.randint(0, 10, (48,), generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        jitter = float(torch.rand(())) + float(np.random.rand()) + random.random()
        return self.x[i] * (1 + 0.1 * jitter), self.y[i]


def _model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 10))


def _train(resume_after: int | None, disturb: bool = True) -> torch.Tensor:
    data = AugmentedSet()
    objective = objective_for(get_task("cifar100"), data)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.05, seed=0)
    seed_everything(0)
    model = _model()
    saved: dict = {}

    def on_epoch(epoch: int, record: dict) -> None:
        if epoch == resume_after:
            buffer = io.BytesIO()
            torch.save(record["_state"](), buffer)
            saved["state"] = buffer.getvalue()

    fit(model, data, {}, objective, cfg, torch.device("cpu"), on_epoch=on_epoch)
    if resume_after is None:
        return torch.cat([p.detach().flatten() for p in model.parameters()])
    # A new process: other seeds, other draws, then the checkpoint of epoch `resume_after`.
    seed_everything(1234)
    if disturb:
        torch.rand(1000), np.random.rand(1000), [random.random() for _ in range(1000)]
    state = torch.load(io.BytesIO(saved["state"]), weights_only=False)
    resumed = _model()
    resumed.load_state_dict(state["model"])
    fit(resumed, data, {}, objective, cfg, torch.device("cpu"), start_epoch=resume_after + 1, state=state)
    return torch.cat([p.detach().flatten() for p in resumed.parameters()])


def test_resume_is_bit_identical_with_global_random_draws() -> None:
    straight = _train(None)
    assert torch.equal(_train(resume_after=0), straight)
    assert torch.equal(_train(resume_after=1), straight)


def test_the_global_generators_matter_here(monkeypatch) -> None:
    # Without restoring the global generators the resumed run differs: the test above can fail.
    straight = _train(None)
    monkeypatch.setattr(loop_module, "_set_rng_state", lambda state, device: None)
    assert not torch.equal(_train(resume_after=0), straight)
