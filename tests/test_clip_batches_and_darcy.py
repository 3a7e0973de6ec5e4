"""FSD50K evaluation batches whole clips of unequal chunk counts (equal to the original's one clip per batch), in
evaluation and in search validation; Darcy Flow's evaluation aggregates as the original (per-batch means)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nb360.data import load  # noqa: E402
from nb360.data.collate import ClipChunks, clip_means, collate_clips, collate_for  # noqa: E402
from nb360.tasks import get_task  # noqa: E402
from nb360.training.objectives import DarcyRelativeL2, objective_for  # noqa: E402


@pytest.fixture(scope="module")
def fsd_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SYNTHETIC released-layout FSD50K: clips of 1, 2 and 3 chunks in every split."""
    from task_fixtures import build_fsd50k

    root = tmp_path_factory.mktemp("fsd50k")
    build_fsd50k(root, clips={"train": 4, "val": 4, "test": 5})
    return root


class Tagger(torch.nn.Module):
    """A tiny conv tagger with batch norm in eval mode (per-item outputs)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.BatchNorm2d(3), torch.nn.ReLU(),
                                        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 200))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_clips_of_unequal_chunk_counts_batch_and_match_batch_one(fsd_root: Path) -> None:
    test = load("fsd50k", fsd_root)["test"]
    counts = [test[i][0].shape[0] for i in range(len(test))]
    assert len(set(counts)) == 3  # 1, 2 and 3 chunks
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        next(iter(torch.utils.data.DataLoader(test, batch_size=len(test))))  # what the default collate did
    assert collate_for(torch.utils.data.Subset(test, [0, 1])) is collate_clips
    x, y, chunks = collate_clips([test[i] for i in range(len(test))])
    assert x.shape == (sum(counts), 1, 96, 101) and y.shape == (len(test), 200) and chunks.counts.tolist() == counts
    assert isinstance(chunks.to("cpu"), ClipChunks)

    model = Tagger().eval()
    card = get_task("fsd50k")
    objective = objective_for(card)
    with torch.no_grad():
        logits = clip_means(model(x), chunks)
        one_by_one = torch.stack([model(test[i][0]).mean(0) for i in range(len(test))])  # the original, batch 1
    torch.testing.assert_close(logits, one_by_one, rtol=1e-5, atol=1e-6)
    from nb360.training.loop import make_loader

    per_batch = {bs: objective.evaluate(model, make_loader(test, bs, shuffle=False), torch.device("cpu"))
                 for bs in (1, 2, card.protocol().eval_batch_size or card.protocol().batch_size)}
    for bs, scores in per_batch.items():
        assert scores["map"] == pytest.approx(per_batch[1]["map"], abs=1e-6), bs
        assert scores["loss"] == pytest.approx(per_batch[1]["loss"], rel=1e-5), bs
    loss, _ = objective.loss(model, (x, y, chunks), torch.device("cpu"))  # search validation: a clip-level loss
    expected = torch.nn.functional.binary_cross_entropy_with_logits(one_by_one, y)
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)


def test_cli_evaluate_fsd50k_at_the_cards_batch_size(fsd_root: Path, tmp_path: Path) -> None:
    """The reported crash: `nb360 evaluate --task fsd50k --backbone wrn` with the card's batch size (256)."""
    from nb360.cli import main

    out = tmp_path / "run"
    assert main(["evaluate", "--task", "fsd50k", "--backbone", "wrn", "--data-root", str(fsd_root), "--seeds", "0",
                 "--epochs", "1", "--no-progress", "--threads", "1", "--out", str(out)]) == 0
    import json

    results = json.loads((out / "results.json").read_text())
    test = results["per_seed"][0]["test"]
    assert 0 <= test["map"] <= 1 and np.isfinite(test["loss"])


def test_search_validation_on_unequal_clips(fsd_root: Path, tmp_path: Path) -> None:
    from nb360.search.supernet import default_config, run_search

    cfg = default_config("darts", "fsd50k", data_root=str(fsd_root), C=2, N=1, batch_size=4, epochs=1, max_steps=1,
                         eval_attacks=False)
    result = run_search(cfg, tmp_path / "search", progress=False)
    assert result.finished and 0 <= result.evaluation["scores"]["clean"]["map"] <= 1


def test_darcy_aggregates_per_batch_means_as_the_original(tmp_path: Path) -> None:
    """The original: per batch of the card's size, LpLoss(size_average=False) summed / batch length; mean over
    batches. SYNTHETIC predictions on a tiny generated set."""
    from nb360.data.darcy_generator import generate_darcyflow

    generate_darcyflow(tmp_path / "darcy", n_train=6, n_test=11, resolution=8, workers=1, progress=False)
    splits = load("darcyflow", tmp_path / "darcy")
    card = get_task("darcyflow")
    test = splits["test"]
    objective = objective_for(card, splits["train"])
    assert isinstance(objective, DarcyRelativeL2) and objective.aggregation == "batch" and objective.batch_size == 8

    class Wobble(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sin(x.sum(dim=1, keepdim=True) * 3.0).permute(0, 2, 3, 1).reshape(x.shape[0], -1)

    from nb360.training.loop import make_loader

    model = Wobble()
    errors = []
    for x, y in make_loader(test, 1, shuffle=False):  # the reference: per-sample relative L2 on decoded outputs
        out = test.y_normalizer.decode(model(x).reshape(y.shape)).double()
        yy = (test.y_normalizer.decode(y) if test.targets_normalized else y).double()
        errors.append(float(torch.linalg.vector_norm(out - yy) / torch.linalg.vector_norm(yy)))
    errors = np.array(errors)
    original = np.mean([errors[i:i + 8].sum() / len(errors[i:i + 8]) for i in range(0, len(errors), 8)])
    for loader_batch in (1, 3, 8):
        got = objective.evaluate(model, make_loader(test, loader_batch, shuffle=False), torch.device("cpu"))
        assert got["rel_l2"] == pytest.approx(original, rel=1e-12, abs=1e-12)
    per_sample = objective_for(card, splits["train"], aggregation="sample")
    got = per_sample.evaluate(model, make_loader(test, 4, shuffle=False), torch.device("cpu"))
    assert got["rel_l2"] == pytest.approx(errors.mean(), rel=1e-12, abs=1e-12)
    assert abs(original - errors.mean()) > 1e-6  # 11 samples in batches of 8: the two rules differ here
    with pytest.raises(Exception, match="aggregation"):
        objective_for(card, splits["train"], aggregation="median")
