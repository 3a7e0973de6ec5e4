"""nb360.metrics against independent computations (plain loops / rank formulas), on random inputs.

All data here is synthetic test data (random numbers), not task data.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from nb360 import metrics
from nb360.errors import InputError

rng = np.random.default_rng(12345)


# ----------------------------------------------------------------------------- independent references

def ref_average_precision(y: np.ndarray, s: np.ndarray) -> float:
    """AP = sum over distinct thresholds of (recall step) x precision, ties grouped (step-wise PR curve)."""
    total_pos = y.sum()
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(s.tolist()), reverse=True):
        chosen = s >= t
        tp = float(y[chosen].sum())
        recall = tp / total_pos
        precision = tp / chosen.sum()
        ap += (recall - prev_recall) * precision
        prev_recall = recall
    return ap


def ref_auroc(y: np.ndarray, s: np.ndarray) -> float:
    """AUROC as the Mann-Whitney probability P(s_pos > s_neg) + 0.5 P(tie), by brute force over pairs."""
    pos, neg = s[y == 1], s[y == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def ref_original_psicov(p_full: np.ndarray, y_full: np.ndarray, lengths: list[int], pad: int) -> float:
    """A loop-for-loop port of evaluate_test_protein + calculate_mae (mae at distance 8, separation 24)."""
    P = p_full.copy()
    n = P.shape[1]
    for j in range(n):
        for k in range(j, n):
            P[:, j, k] = (P[:, k, j] + P[:, j, k]) / 2.0
    P[P < 0.01] = 0.01
    h = pad // 2
    P[:, :n - pad, :n - pad] = P[:, h:n - h, h:n - h]
    Y = y_full.copy()
    Y[:, :n - pad, :n - pad] = Y[:, h:n - h, h:n - h]
    out = np.zeros(len(lengths))
    for i, L in enumerate(lengths):
        PAVG = np.full((L, L), 100.0)
        for j in range(L):
            for k in range(j, L):
                PAVG[j, k] = (P[i, k, j] + P[i, j, k]) / 2.0
        Yi = np.copy(Y[i, :L, :L])
        Pi = np.copy(PAVG)
        for p in range(L):
            for q in range(L):
                if q - p < 24 or Yi[p, q] > 8:
                    Yi[p, q] = np.nan
                    Pi[p, q] = np.nan
        out[i] = np.nanmean(np.abs(Yi - Pi)) if not np.isnan(np.abs(Yi - Pi)).all() else np.nan
    return float(np.nanmean(out))


# ----------------------------------------------------------------------------- 0-1 error

def test_error_matches_counting() -> None:
    scores = rng.normal(size=(500, 100))
    labels = rng.integers(0, 100, 500)
    labels[:60] = scores[:60].argmax(1)  # some correct ones
    correct = sum(int(np.argmax(scores[i]) == labels[i]) for i in range(500))
    assert metrics.error(scores, labels) == pytest.approx(100 - 100 * correct / 500)
    assert metrics.error(scores.argmax(1), labels) == pytest.approx(100 - 100 * correct / 500)


def test_error_ties_take_first_class() -> None:
    scores = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0]])
    assert metrics.error(scores, [0, 1]) == 0.0
    assert metrics.error(scores, [1, 2]) == 100.0


def test_error_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="NaN"):
        metrics.error(np.array([[0.1, np.nan]]), [0])
    with pytest.raises(InputError, match="different lengths"):
        metrics.error(np.zeros((3, 2)), [0, 1])
    with pytest.raises(InputError, match="only 2 columns"):
        metrics.error(np.zeros((2, 2)), [0, 5])
    with pytest.raises(InputError, match="outside"):
        metrics.error(np.zeros((2, 2)), [0, -1])


# ----------------------------------------------------------------------------- FSD50K mAP

def test_map_matches_reference_and_sklearn_macro() -> None:
    from sklearn.metrics import average_precision_score

    y = (rng.random((120, 12)) < 0.2).astype(int)
    y[0] = 1  # every class has a positive
    s = rng.random((120, 12))
    s[:, 3] = np.round(s[:, 3], 1)  # ties
    ours = metrics.mean_average_precision(s, y)
    ref = np.mean([ref_average_precision(y[:, k], s[:, k]) for k in range(12)])
    assert ours == pytest.approx(ref, abs=1e-12)
    assert ours == pytest.approx(average_precision_score(y, s, average="macro"), abs=1e-12)


def test_map_absent_class_is_skipped_or_refused() -> None:
    y = (rng.random((50, 4)) < 0.5).astype(int)
    y[:, 2] = 0
    y[0, [0, 1, 3]] = 1
    s = rng.random((50, 4))
    ref = np.mean([ref_average_precision(y[:, k], s[:, k]) for k in (0, 1, 3)])
    assert metrics.mean_average_precision(s, y) == pytest.approx(ref)
    with pytest.raises(InputError, match=r"classes \[2\].*no positive"):
        metrics.mean_average_precision(s, y, absent="error")
    with pytest.raises(InputError, match="every class"):
        metrics.mean_average_precision(s, np.zeros_like(y))


def test_clip_level_logit_averaging() -> None:
    logits = rng.normal(size=(10, 3)).astype(np.float32)
    clips = np.array([7, 7, 3, 3, 3, 9, 7, 9, 3, 1])
    ids, probs = metrics.clip_average_logits(logits, clips)
    assert ids.tolist() == [1, 3, 7, 9]
    for i, clip in enumerate(ids):
        mean_logit = logits[clips == clip].astype(np.float64).mean(0)
        assert np.allclose(probs[i], 1 / (1 + np.exp(-mean_logit)), atol=1e-6)
    labels = np.repeat((rng.random((1, 3)) < 0.5).astype(int), 10, axis=0)
    ids2, per_clip = metrics.clip_labels(labels, clips)
    assert ids2.tolist() == ids.tolist() and per_clip.shape == (4, 3)
    labels[0, 0] = 1 - labels[0, 0]
    with pytest.raises(InputError, match="differ between chunks"):
        metrics.clip_labels(labels, clips)
    with pytest.raises(InputError, match="NaN"):
        metrics.clip_average_logits(np.full((2, 2), np.nan), [0, 0])


def test_sigmoid_is_stable_for_large_logits() -> None:
    out = metrics.sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    assert out.dtype == np.float32 and out.tolist() == [0.0, 0.5, 1.0]


# ----------------------------------------------------------------------------- Darcy relative L2

def test_relative_l2_per_sample_and_original_batching() -> None:
    y = rng.normal(size=(10, 5, 5))
    p = y + 0.1 * rng.normal(size=y.shape)
    per = [np.sqrt(((p[i] - y[i]) ** 2).sum()) / np.sqrt((y[i] ** 2).sum()) for i in range(10)]
    assert metrics.relative_l2(p, y) == pytest.approx(np.mean(per))
    # batch size 4: batches of 4, 4, 2 each weigh equally, as loss/batch_size averaged over batches
    expected = np.mean([np.mean(per[0:4]), np.mean(per[4:8]), np.mean(per[8:10])])
    assert metrics.relative_l2(p, y, batch_size=4) == pytest.approx(expected)
    assert metrics.relative_l2(y, y) == 0.0


def test_relative_l2_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="same shape"):
        metrics.relative_l2(np.ones((2, 3, 3)), np.ones((2, 3, 4)))
    with pytest.raises(InputError, match="all zeros"):
        metrics.relative_l2(np.ones((2, 3)), np.zeros((2, 3)))
    with pytest.raises(InputError, match="NaN"):
        metrics.relative_l2(np.full((2, 3), np.nan), np.ones((2, 3)))
    with pytest.raises(InputError, match="infinite"):
        metrics.relative_l2(np.full((2, 3), np.inf), np.ones((2, 3)))


# ----------------------------------------------------------------------------- PSICOV MAE8

def _random_protein_batch(n: int, size: int, lengths: list[int], pad: int) -> tuple[np.ndarray, np.ndarray]:
    p = rng.uniform(-0.5, 20, size=(n, size, size))  # not symmetric, some below the 0.01 clip
    y = np.full((n, size, size), 100.0)
    for i, L in enumerate(lengths):
        d = rng.uniform(3, 20, size=(L, L))
        y[i, pad // 2:pad // 2 + L, pad // 2:pad // 2 + L] = (d + d.T) / 2
    return p, y


def test_mae8_matches_the_original_loops_on_padded_maps() -> None:
    pad, size, lengths = 10, 64, [50, 37, 54]
    p, y = _random_protein_batch(3, size, lengths, pad)
    ref = ref_original_psicov(p, y, lengths, pad)
    assert metrics.mae8(p, y, lengths, offset=pad // 2) == pytest.approx(ref, rel=1e-12)


def test_mae8_symmetric_prediction_is_plain_masked_mae() -> None:
    L = 40
    d = rng.uniform(3, 15, size=(L, L))
    y = (d + d.T) / 2
    e = rng.uniform(3, 15, size=(L, L))
    p = (e + e.T) / 2
    q, r = np.triu_indices(L, k=24)
    keep = y[q, r] <= 8
    expected = np.abs(y[q, r][keep] - p[q, r][keep]).mean()
    assert metrics.mae8([p], [y]) == pytest.approx(expected)
    out = metrics.psicov_maes([p], [y])
    assert set(out) == {"mae8", "mlr8", "lr12", "mlr12"}
    keep12 = y[q, r] <= 12
    assert out["lr12"] == pytest.approx(np.abs(y[q, r][keep12] - p[q, r][keep12]).mean())
    assert metrics.mlr12([p], [y]) == out["mlr12"] and metrics.lr12([p], [y]) == out["lr12"]


def test_mae8_unknown_distances_and_undefined_cases() -> None:
    L = 40
    y = np.full((L, L), 5.0)
    y[0, 30:] = np.nan  # unknown residues are left out
    p = np.full((L, L), 6.0)
    assert metrics.mae8([p], [y]) == pytest.approx(1.0)
    with pytest.raises(InputError, match="undefined"):
        metrics.mae8([np.ones((20, 20))], [np.ones((20, 20))])  # no pair with separation >= 24
    with pytest.raises(InputError, match="NaN"):
        metrics.mae8([np.full((30, 30), np.nan)], [y[:30, :30]])
    with pytest.raises(InputError, match="same square shape"):
        metrics.mae8([np.ones((30, 30))], [np.ones((31, 31))])
    with pytest.raises(InputError, match="wrap a single map in a list"):
        metrics.mae8(np.ones((30, 30)), np.ones((30, 30)))


def test_windowed_full_map_inference() -> None:
    x = rng.normal(size=(2, 256, 256))
    calls = []

    def predict(window: np.ndarray) -> np.ndarray:
        calls.append(window.shape)
        return window[0] * 2.0 + window[1]

    full = metrics.predict_full_map(x, predict, window=128)
    assert calls == [(2, 128, 128)] * 4
    assert np.allclose(full, x[0] * 2 + x[1])
    with pytest.raises(InputError, match="multiple of the window"):
        metrics.predict_full_map(np.zeros((2, 100, 100)), predict)
    with pytest.raises(InputError, match="returned shape"):
        metrics.predict_full_map(x, lambda w: np.zeros((3, 3)))


# ----------------------------------------------------------------------------- Cosmic FNR / 1-AUROC

def test_cosmic_fnr_and_auroc_error() -> None:
    from sklearn.metrics import roc_auc_score

    logits = rng.normal(size=(4, 16, 16))
    masks = (rng.random((4, 16, 16)) < 0.1).astype(np.float32)
    ignore = (rng.random((4, 16, 16)) < 0.05).astype(np.float32)
    tp = fn = fp = tn = 0
    for lg, m in zip(logits.ravel(), masks.ravel()):
        hit = lg > 0.5
        tp += hit and m == 1
        fn += (not hit) and m == 1
        fp += hit and m == 0
        tn += (not hit) and m == 0
    tpr, tnr = tp / (tp + fn), tn / (tn + fp)
    assert metrics.false_negative_rate(logits, masks) == pytest.approx(100 * (1 - tpr))
    assert metrics.auroc_error(logits, masks) == pytest.approx(1 - (tpr + tnr) / 2)
    assert metrics.auroc_error(logits, masks) == pytest.approx(
        1 - roc_auc_score(masks.ravel().astype(int), (logits.ravel() > 0.5).astype(int)))
    keep = ignore.ravel() == 0
    tp_k = np.sum((logits.ravel() > 0.5) & (masks.ravel() == 1) & keep)
    assert metrics.false_negative_rate(logits, masks, ignore=ignore) == pytest.approx(
        100 * (1 - tp_k / np.sum((masks.ravel() == 1) & keep)))
    # threshold is on raw logits: a logit of 0.4 (sigmoid 0.6) is a negative
    assert metrics.false_negative_rate(np.array([0.4, 0.6]), np.array([1, 1])) == 50.0


def test_cosmic_undefined_and_bad_input() -> None:
    with pytest.raises(InputError, match="no cosmic-ray pixel"):
        metrics.false_negative_rate(np.ones((2, 2)), np.zeros((2, 2)))
    with pytest.raises(InputError, match="one class"):
        metrics.auroc_error(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(InputError, match="only 0 and 1"):
        metrics.false_negative_rate(np.ones((2, 2)), np.full((2, 2), 0.5))
    with pytest.raises(InputError, match="same shape"):
        metrics.auroc_error(np.ones((2, 2)), np.ones((2, 3)))


# ----------------------------------------------------------------------------- ECG F1 after the vote

def ref_vote_f1(window_pred: np.ndarray, window_label: np.ndarray, pids: np.ndarray) -> float:
    final_pred, final_gt = [], []
    for pid in np.unique(pids):
        final_pred.append(Counter(window_pred[pids == pid]).most_common(1)[0][0])
        final_gt.append(Counter(window_label[pids == pid]).most_common(1)[0][0])
    f1s = []
    for k in range(4):
        tp = sum(p == k and g == k for p, g in zip(final_pred, final_gt))
        fp = sum(p == k and g != k for p, g in zip(final_pred, final_gt))
        fn = sum(p != k and g == k for p, g in zip(final_pred, final_gt))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s))


def test_f1_macro_after_majority_vote_matches_counter_reference() -> None:
    n = 3000
    pids = rng.integers(0, 200, n)
    truth_per_pid = rng.integers(0, 4, 200)
    labels = truth_per_pid[pids]
    scores = rng.normal(size=(n, 4))
    scores[np.arange(n), labels] += 0.8
    ours = metrics.f1_macro(scores, labels, pids)
    assert ours == pytest.approx(ref_vote_f1(scores.argmax(1), labels, pids))


def test_majority_vote_ties_go_to_the_first_seen_class() -> None:
    preds = np.array([2, 1, 1, 2, 3, 0, 0, 3])
    pids = np.array([5, 5, 5, 5, 1, 1, 1, 1])
    ids, voted = metrics.majority_vote(preds, pids)
    assert ids.tolist() == [1, 5]
    assert voted.tolist() == [Counter([3, 0, 0, 3]).most_common(1)[0][0], Counter([2, 1, 1, 2]).most_common(1)[0][0]]
    assert voted.tolist() == [3, 2]


def test_f1_macro_absent_class() -> None:
    labels = np.array([0, 1, 2, 0, 1, 2])
    preds = np.array([0, 1, 1, 0, 2, 2])
    # class 3 is neither predicted nor present
    expected = np.mean([1.0, 0.5, 0.5])
    assert metrics.f1_macro(preds, labels) == pytest.approx(expected)
    with pytest.raises(InputError, match=r"classes \[3\]"):
        metrics.f1_macro(preds, labels, absent="error")
    with pytest.raises(InputError, match="outside"):
        metrics.f1_macro(preds, [0, 1, 2, 0, 1, 7])


# ----------------------------------------------------------------------------- DeepSEA AUROC

def test_mean_auroc_matches_mann_whitney_with_ties() -> None:
    y = (rng.random((200, 6)) < 0.3).astype(int)
    s = np.round(rng.random((200, 6)), 1)  # many ties
    ref = np.mean([ref_auroc(y[:, k], s[:, k]) for k in range(6)])
    assert metrics.mean_auroc(s, y) == pytest.approx(ref, abs=1e-12)


def test_mean_auroc_single_valued_class() -> None:
    y = (rng.random((100, 3)) < 0.5).astype(int)
    y[:, 1] = 1
    s = rng.random((100, 3))
    ref = np.mean([ref_auroc(y[:, k], s[:, k]) for k in (0, 2)])
    assert metrics.mean_auroc(s, y) == pytest.approx(ref)
    with pytest.raises(InputError, match=r"classes \[1\]"):
        metrics.mean_auroc(s, y, absent="error")
    with pytest.raises(InputError, match="NaN"):
        metrics.mean_auroc(np.where(s > 0.5, np.nan, s), y)
    with pytest.raises(InputError, match="only 0 and 1"):
        metrics.mean_auroc(s, y * 2)


# ----------------------------------------------------------------------------- registry

def test_registry_names_and_directions() -> None:
    assert {"error", "map", "rel_l2", "mae8", "fnr", "auroc_error", "f1_macro", "auroc"} <= set(metrics.METRICS)
    assert set(metrics.DIRECTION) == set(metrics.METRICS)
    assert metrics.get_metric("auroc") is metrics.mean_auroc
    with pytest.raises(InputError, match="unknown metric .bogus.; known metrics: auc, auroc, "):
        metrics.get_metric("bogus")
    assert metrics.lower_is_better("f1_macro", 0.66) == pytest.approx(0.34)
    assert metrics.lower_is_better("mae8", 3.84) == 3.84


def test_every_metric_a_task_card_names_is_registered() -> None:
    tasks = pytest.importorskip("nb360.tasks")
    if not hasattr(tasks, "list_tasks"):
        pytest.skip("the task registry is not there yet")
    for card in tasks.list_tasks():
        for name in (card.metric.name, *card.metric.secondary):
            assert name in metrics.METRICS, f"{card.name}: metric {name!r} is not in nb360.metrics.METRICS"
        # cards state the lower-is-better reported form
        assert card.metric.direction == "min"


def test_metrics_import_without_torch() -> None:
    code = ("import sys; import nb360.metrics as m; "
            "m.mean_auroc([[0.1],[0.9]], [[0],[1]]); m.f1_macro([0,1],[0,1]); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
