"""The NAS-Bench-360 task metrics, computed as the original benchmark code computes them.

numpy in, float out; no torch. Each task card names its metric by a key of `METRICS`:

| key           | task(s)                                  | value returned                         | better |
|---------------|------------------------------------------|----------------------------------------|--------|
| `error`       | CIFAR-100, Spherical, NinaPro, Satellite | 0-1 error in percent (100 - top-1 acc) | lower  |
| `map`         | FSD50K                                   | macro mean average precision           | higher |
| `rel_l2`      | Darcy Flow                               | relative L2 error on decoded outputs   | lower  |
| `mae8`        | PSICOV                                   | MAE (Angstrom), sep >= 24, d <= 8 A    | lower  |
| `fnr`         | Cosmic                                   | false-negative rate in percent, 0.5    | lower  |
| `auroc_error` | Cosmic                                   | 1 - AUROC of the binarized mask        | lower  |
| `f1_macro`    | ECG                                      | macro F1 over 4 classes per recording  | higher |
| `auroc`       | DeepSEA                                  | mean per-class AUROC                   | higher |

Secondary metrics the cards list: `mlr8`, `lr12`, `mlr12` (PSICOV at other separations and
cut-offs) and `auc` (FSD50K's per-class AUROC mean, the same function as `auroc`).

Each function returns the quantity its name says (`DIRECTION` gives which way is better);
`lower_is_better(name, value)` turns the higher-is-better ones into the "1 - x" form the
NAS-Bench-360 baselines table reports, which is what a task card's `metric.reported_as` and
`metric.direction` ("min" for every task) describe.

Sources (rtu715/NAS-Bench-360 at 587bb09): `backbone_1d/model_def.py` (ECG vote and F1,
DeepSEA AUROC), `backbone_1d/utils.py::calculate_stats`, `backbone/utils_grid.py` (LpLoss,
calculate_mae), `backbone/model_grid_original.py::evaluate_test_protein` (PSICOV),
`darts/gaea-dense/model_def.py` (Cosmic TPR/FPR and 1-AUROC), `backbone/data_utils/audio_dataset.py`
(FSD50K clip-level averaging). See /work/shared/reference/tasks.md sections 3 and 5.

Bad input (NaN, shapes that do not match, labels out of range) raises `nb360.errors.InputError`
with a message that names the problem.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from .errors import InputError

Absent = Literal["skip", "error"]


# ----------------------------------------------------------------------------- input checks

def _as_array(x: object, name: str, *, allow_nan: bool = False, allow_inf: bool = True) -> np.ndarray:
    """`x` as a numpy array, refusing NaN (and optionally infinities) with a message naming `name`."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise InputError(f"{name} is not an array ({exc})") from exc
    if arr.dtype == object:
        raise InputError(f"{name} is not a numeric array (got dtype object; ragged input?)")
    if arr.size == 0:
        raise InputError(f"{name} is empty")
    if np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.complexfloating):
        if not allow_nan and np.isnan(arr).any():
            idx = tuple(int(i) for i in np.argwhere(np.isnan(arr))[0])
            raise InputError(f"{name} contains NaN (first at index {idx}); "
                             "check the model output or the data for a divergence or a bad file")
        if not allow_inf and np.isinf(arr).any():
            idx = tuple(int(i) for i in np.argwhere(np.isinf(arr))[0])
            raise InputError(f"{name} contains an infinite value (first at index {idx})")
    elif not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise InputError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr


def _int_labels(y: object, name: str, num_classes: int | None = None) -> np.ndarray:
    """Integer class labels (N,), refusing non-integral values and labels outside [0, num_classes)."""
    arr = _as_array(y, name)
    if arr.ndim != 1:
        raise InputError(f"{name} must be 1-D class indices, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise InputError(f"{name} must hold integer class indices, got non-integral values")
    arr = arr.astype(np.int64)
    if arr.min() < 0 or (num_classes is not None and arr.max() >= num_classes):
        bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
        raise InputError(f"{name} holds class index {int(arr.min() if arr.min() < 0 else arr.max())}, "
                         f"outside {bound}")
    return arr


def _predicted_classes(pred: object, name: str = "predictions") -> np.ndarray:
    """Class indices from scores (N, C) by argmax (first index on ties, like numpy) or from indices (N,)."""
    arr = _as_array(pred, name)
    if arr.ndim == 2:
        return np.argmax(arr, axis=1)
    if arr.ndim == 1:
        return _int_labels(arr, name)
    raise InputError(f"{name} must be scores (N, C) or class indices (N,), got shape {arr.shape}")


def _same_length(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise InputError(f"{names} have different lengths: {a.shape[0]} vs {b.shape[0]}")


def _binary_matrix(y: object, name: str) -> np.ndarray:
    """A 0/1 label matrix (N, C)."""
    arr = _as_array(y, name)
    if arr.ndim != 2:
        raise InputError(f"{name} must be a (samples, classes) 0/1 matrix, got shape {arr.shape}")
    if not np.isin(arr, (0, 1)).all():
        raise InputError(f"{name} must hold only 0 and 1 (multi-hot labels)")
    return arr.astype(np.int64)


# ----------------------------------------------------------------------------- helpers

def sigmoid(x: object) -> np.ndarray:
    """Logistic sigmoid in float32, as torch.sigmoid computes it on the original's float32 logits."""
    z = _as_array(x, "logits").astype(np.float32)
    out = np.empty_like(z)
    pos = z >= 0
    # Split by sign so exp never overflows.
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def clip_average_logits(chunk_logits: object, clip_ids: object) -> tuple[np.ndarray, np.ndarray]:
    """FSD50K evaluation: average the chunk logits of each clip (`logits.mean(0)`), then sigmoid.

    Returns (clip ids in sorted order, clip probabilities (clips, classes)). The original feeds all
    chunks of one clip as one batch and averages the logits before the sigmoid.
    """
    logits = _as_array(chunk_logits, "chunk logits")
    ids = np.asarray(clip_ids)
    if logits.ndim != 2:
        raise InputError(f"chunk logits must be (chunks, classes), got shape {logits.shape}")
    if ids.ndim != 1:
        raise InputError(f"clip ids must be 1-D, got shape {ids.shape}")
    _same_length(logits, ids, "chunk logits and clip ids")
    unique, inverse = np.unique(ids, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(unique.size))
    sums = np.add.reduceat(logits[order].astype(np.float64), starts, axis=0)
    counts = np.bincount(inverse, minlength=unique.size).astype(np.float64)
    return unique, sigmoid(sums / counts[:, None])


def clip_labels(chunk_labels: object, clip_ids: object) -> tuple[np.ndarray, np.ndarray]:
    """The label rows of each clip from per-chunk labels (they must agree within a clip)."""
    labels = _binary_matrix(chunk_labels, "chunk labels")
    ids = np.asarray(clip_ids)
    _same_length(labels, ids, "chunk labels and clip ids")
    unique, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    per_clip = labels[first]
    if not np.array_equal(per_clip[inverse], labels):
        raise InputError("chunk labels differ between chunks of the same clip")
    return unique, per_clip


def majority_vote(predictions: object, groups: object) -> tuple[np.ndarray, np.ndarray]:
    """ECG: the most common class per recording, ties to the class seen first (as Counter.most_common).

    Returns (sorted unique group ids, voted class per group), the order np.unique gives,
    as the original loops over `np.unique(pid_test)`.
    """
    pred = _predicted_classes(predictions)
    g = np.asarray(groups)
    if g.ndim != 1:
        raise InputError(f"recording ids must be 1-D, got shape {g.shape}")
    _same_length(pred, g, "predictions and recording ids")
    unique, inverse = np.unique(g, return_inverse=True)
    # Windows of each group in their original order (a stable sort keeps it).
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(unique.size + 1))
    voted = np.empty(unique.size, dtype=np.int64)
    for k in range(unique.size):
        members = pred[order[bounds[k]:bounds[k + 1]]]
        classes, first_seen, counts = np.unique(members, return_index=True, return_counts=True)
        tied = counts == counts.max()
        # Counter.most_common sorts by count, stably over first-insertion order.
        voted[k] = classes[tied][np.argmin(first_seen[tied])]
    return unique, voted


# ----------------------------------------------------------------------------- the metrics

def error(predictions: object, labels: object) -> float:
    """0-1 error in percent: 100 - top-1 accuracy (CIFAR-100, Spherical, NinaPro, Satellite)."""
    pred = _predicted_classes(predictions)
    y = _int_labels(labels, "labels")
    _same_length(pred, y, "predictions and labels")
    arr = np.asarray(predictions)
    if arr.ndim == 2 and y.max() >= arr.shape[1]:
        raise InputError(f"labels hold class {int(y.max())} but predictions have only {arr.shape[1]} columns")
    return float(100.0 - 100.0 * np.mean(pred == y))


def _per_class_scores(scores: np.ndarray, labels: np.ndarray, score_fn: Callable[[np.ndarray, np.ndarray], float],
                      defined: Callable[[np.ndarray], bool], what: str, absent: Absent) -> float:
    if scores.shape != labels.shape:
        raise InputError(f"scores and labels must have the same shape, got {scores.shape} and {labels.shape}")
    values, skipped = [], []
    for k in range(labels.shape[1]):
        if not defined(labels[:, k]):
            skipped.append(k)
            continue
        values.append(score_fn(labels[:, k], scores[:, k]))
    if skipped and absent == "error":
        raise InputError(f"{what} is undefined for classes {skipped[:10]}{'...' if len(skipped) > 10 else ''} "
                         f"({len(skipped)} of {labels.shape[1]}): {_UNDEFINED_WHY[what]}; "
                         "pass absent='skip' to average over the other classes")
    if not values:
        raise InputError(f"{what} is undefined for every class: {_UNDEFINED_WHY[what]}")
    return float(np.mean(values))


_UNDEFINED_WHY = {
    "average precision": "no positive sample",
    "AUROC": "only one label value present",
}


def mean_average_precision(scores: object, labels: object, *, absent: Absent = "skip") -> float:
    """FSD50K mAP: mean over classes of sklearn's average precision (macro AP).

    `scores` (clips, classes) are clip-level probabilities (see `clip_average_logits`); `labels`
    the 0/1 clip labels. The original's validation (`average_precision_score(average="macro")`)
    and test (`calculate_stats`, mean of per-class AP) give the same number. A class with no
    positive clip has no AP: it is left out (`absent="skip"`) or refused (`absent="error"`);
    sklearn itself would count it as 0 (recent versions) or NaN (older ones).
    """
    from sklearn.metrics import average_precision_score

    s = _as_array(scores, "scores")
    y = _binary_matrix(labels, "labels")
    return _per_class_scores(s, y, average_precision_score, lambda col: bool(col.any()),
                             "average precision", absent)


def mean_auroc(scores: object, labels: object, *, absent: Absent = "skip") -> float:
    """DeepSEA AUROC: mean over the outputs of per-class `roc_auc_score` (higher is better).

    The original scores are `sigmoid(logits)` in float32 (see `sigmoid`); AUROC is rank-based,
    so logits give the same value unless float32 saturation of the sigmoid creates ties.
    A class whose labels are all 0 or all 1 has no AUROC: skipped or refused per `absent`.
    """
    from sklearn.metrics import roc_auc_score

    s = _as_array(scores, "scores")
    y = _binary_matrix(labels, "labels")
    return _per_class_scores(s, y, roc_auc_score, lambda col: 0 < col.sum() < col.size, "AUROC", absent)


def relative_l2(predictions: object, targets: object, *, batch_size: int | None = None) -> float:
    """Darcy Flow relative L2 error, ||pred - y||_2 / ||y||_2 per sample, on decoded outputs.

    Both arrays must be in physical units (the normalizer decoded). Without `batch_size` the
    per-sample errors are averaged. With it, the original's evaluation is reproduced exactly:
    per batch `sum / batch length`, then the mean over batches (a short last batch weighs as
    much as a full one).
    """
    p = _as_array(predictions, "predictions", allow_inf=False).astype(np.float64)
    y = _as_array(targets, "targets", allow_inf=False).astype(np.float64)
    if p.shape != y.shape:
        raise InputError(f"predictions and targets must have the same shape, got {p.shape} and {y.shape}")
    if p.ndim < 2:
        raise InputError(f"expected a batch of fields (N, ...), got shape {p.shape}")
    n = p.shape[0]
    diff = np.linalg.norm((p - y).reshape(n, -1), axis=1)
    ref = np.linalg.norm(y.reshape(n, -1), axis=1)
    if np.any(ref == 0):
        raise InputError(f"target {int(np.argmin(ref))} is all zeros: the relative L2 error is undefined")
    per_sample = diff / ref
    if batch_size is None:
        return float(per_sample.mean())
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    batch_means = [per_sample[i:i + batch_size].mean() for i in range(0, n, batch_size)]
    return float(np.mean(batch_means))


def _confusion(logits: object, masks: object, threshold: float, ignore: object | None) -> tuple[np.ndarray, np.ndarray]:
    z = _as_array(logits, "logits")
    m = _as_array(masks, "masks")
    if z.shape != m.shape:
        raise InputError(f"logits and masks must have the same shape, got {z.shape} and {m.shape}")
    if not np.isin(m, (0, 1)).all():
        raise InputError("masks must hold only 0 and 1")
    pred = (z > threshold).ravel()
    truth = m.astype(bool).ravel()
    if ignore is not None:
        ign = _as_array(ignore, "ignore mask")
        if ign.shape != z.shape:
            raise InputError(f"ignore mask must have the shape of the logits, got {ign.shape} and {z.shape}")
        keep = ~ign.astype(bool).ravel()
        pred, truth = pred[keep], truth[keep]
    return pred, truth


def false_negative_rate(logits: object, masks: object, *, threshold: float = 0.5,
                        ignore: object | None = None) -> float:
    """Cosmic FNR in percent, 100 * (1 - TPR), pixel level, at `logits > 0.5` on raw logits.

    This is the quantity the NAS-Bench-360 leaderboard's "FNR" column reports (e.g. 51.76 for
    WRN). The original metric counts every pixel (its ignore mask enters only the loss); pass
    `ignore` to leave masked pixels out.
    """
    pred, truth = _confusion(logits, masks, threshold, ignore)
    positives = int(truth.sum())
    if positives == 0:
        raise InputError("the masks have no cosmic-ray pixel: the false-negative rate is undefined")
    tp = int(np.sum(pred & truth))
    return float(100.0 * (1.0 - tp / positives))


def auroc_error(logits: object, masks: object, *, threshold: float = 0.5, ignore: object | None = None) -> float:
    """Cosmic 1 - AUROC of the binarized mask: `1 - roc_auc_score(masks, logits > 0.5)`, pixel level.

    As in the original (commit d60dea1), the AUROC of a binary prediction, which equals
    1 - (TPR + TNR) / 2. Every pixel counts unless `ignore` is given.
    """
    from sklearn.metrics import roc_auc_score

    pred, truth = _confusion(logits, masks, threshold, ignore)
    if truth.all() or not truth.any():
        raise InputError("the masks hold only one class of pixel: the AUROC is undefined")
    return float(1.0 - roc_auc_score(truth.astype(np.int32), pred.astype(np.int32)))


def f1_macro(predictions: object, labels: object, recordings: object | None = None, *,
             num_classes: int = 4, absent: Absent = "skip") -> float:
    """ECG macro F1 over the classes, after a per-recording majority vote (higher is better).

    `predictions` are window scores (N, C) or classes (N,); `labels` the window classes;
    `recordings` the recording id of each window. As the original, both predictions and labels
    are majority-voted per recording, then the mean of per-class F1 over classes 0..3 is taken.
    Without `recordings` the windows are scored as they are. A class absent from both the votes
    and the labels has no F1 (the original fails with a KeyError): skipped or refused per `absent`.
    """
    from sklearn.metrics import f1_score

    pred = _predicted_classes(predictions)
    y = _int_labels(labels, "labels", num_classes)
    _same_length(pred, y, "predictions and labels")
    if pred.max() >= num_classes:
        raise InputError(f"predictions hold class {int(pred.max())}, outside [0, {num_classes})")
    if recordings is not None:
        _, pred = majority_vote(pred, recordings)
        _, y = majority_vote(y, recordings)
    present = [k for k in range(num_classes) if np.any(pred == k) or np.any(y == k)]
    missing = [k for k in range(num_classes) if k not in present]
    if missing and absent == "error":
        raise InputError(f"F1 is undefined for classes {missing}: neither predicted nor present in the labels; "
                         "pass absent='skip' to average over the other classes")
    per_class = f1_score(y, pred, labels=present, average=None, zero_division=0)
    return float(np.mean(per_class))


# ----------------------------------------------------------------------------- PSICOV

def predict_full_map(features: object, predict_window: Callable[[np.ndarray], object], *,
                     window: int = 128) -> np.ndarray:
    """PSICOV full-map inference by non-overlapping windows (the original `forward_window(x, 128)`).

    `features` is one padded input (channels, S, S) with S a multiple of `window` (the original
    pads every test protein to 512). `predict_window` maps a (channels, window, window) crop
    to a (window, window) distance prediction. Returns the (S, S) predicted map.
    """
    x = _as_array(features, "features")
    if x.ndim != 3 or x.shape[1] != x.shape[2]:
        raise InputError(f"features must be (channels, S, S), got shape {x.shape}")
    size = x.shape[1]
    if window < 1 or size % window:
        raise InputError(f"map size {size} is not a multiple of the window {window}; "
                         "pad the input (the original pads test proteins to 512)")
    out = np.empty((size, size), dtype=np.float64)
    for i in range(0, size, window):
        for j in range(0, size, window):
            pred = np.asarray(predict_window(x[:, i:i + window, j:j + window]), dtype=np.float64)
            pred = np.squeeze(pred)
            if pred.shape != (window, window):
                raise InputError(f"predict_window returned shape {np.shape(pred)}, expected ({window}, {window})")
            out[i:i + window, j:j + window] = pred
    return _as_array(out, "window predictions", allow_inf=False)


def _symmetrize_like_original(p: np.ndarray) -> np.ndarray:
    """The prediction each upper-triangle pair (j < k) is scored with, as the original computes it.

    `evaluate_test_protein` first sets P[j, k] = (P[k, j] + P[j, k]) / 2 for j <= k, clips P at
    0.01, and `calculate_mae` then averages the triangles again, (P[k, j] + P[j, k]) / 2. So the
    score uses 3/4 of the lower and 1/4 of the upper raw prediction (each clipped); for a symmetric
    prediction this is plain triangle averaging. Reproduced as is, not "fixed".
    """
    first = p.copy()
    iu = np.triu_indices(p.shape[0])
    first[iu] = (p.T[iu] + p[iu]) / 2.0
    first[first < 0.01] = 0.01
    return (first.T + first) / 2.0


def psicov_maes(predictions: object, targets: object, lengths: Sequence[int] | None = None, *,
                offset: int = 0) -> dict[str, float]:
    """PSICOV distance-map MAEs, as `evaluate_test_protein` + `calculate_mae` compute them.

    `predictions` and `targets` are per-protein maps: an array (N, S, S) or a sequence of
    square arrays. The protein occupies `[offset:offset+L, offset:offset+L]` of each map (the
    original pads by 10 and places the protein at offset 5; use 0 for unpadded L x L maps);
    `lengths` gives L (default: the map size minus `offset`). NaN in a target marks an unknown
    distance and is left out; predictions must be finite.

    For each protein, pairs (p, q) with q - p >= separation and true distance <= cutoff are
    kept, the score is the mean |Y - P| over them (NaN if none), and the result is the
    NaN-ignoring mean over proteins. Returns {"mae8": sep 24 / 8 A (the headline),
    "mlr8": sep 12 / 8 A, "lr12": sep 24 / 12 A, "mlr12": sep 12 / 12 A}, the original's
    lr8 / mlr8 / lr12 / mlr12.
    """
    for what, maps in (("predictions", predictions), ("targets", targets)):
        if isinstance(maps, np.ndarray) and maps.ndim != 3:
            raise InputError(f"{what} must be a list of square maps or an (N, S, S) array, got shape {maps.shape} "
                             "(wrap a single map in a list)")
    preds = [_as_array(p, f"prediction {i}", allow_inf=False) for i, p in enumerate(predictions)]  # type: ignore[arg-type]
    targs = [_as_array(t, f"target {i}", allow_nan=True, allow_inf=False) for i, t in enumerate(targets)]  # type: ignore[arg-type]
    if len(preds) != len(targs):
        raise InputError(f"{len(preds)} predictions but {len(targs)} targets")
    if not preds:
        raise InputError("no proteins given")
    if lengths is not None and len(lengths) != len(preds):
        raise InputError(f"{len(lengths)} lengths for {len(preds)} proteins")
    settings = {"mae8": (24, 8.0), "mlr8": (12, 8.0), "lr12": (24, 12.0), "mlr12": (12, 12.0)}
    per_protein: dict[str, list[float]] = {k: [] for k in settings}
    for i, (p, y) in enumerate(zip(preds, targs)):
        if p.ndim != 2 or p.shape[0] != p.shape[1] or p.shape != y.shape:
            raise InputError(f"protein {i}: prediction {p.shape} and target {y.shape} must be the same square shape")
        length = int(lengths[i]) if lengths is not None else p.shape[0] - offset
        if length < 1 or offset < 0 or offset + length > p.shape[0]:
            raise InputError(f"protein {i}: length {length} at offset {offset} does not fit a {p.shape[0]} map")
        region = slice(offset, offset + length)
        scored = _symmetrize_like_original(p[region, region].astype(np.float64))
        truth = y[region, region].astype(np.float64)
        sep = np.subtract.outer(np.arange(length), np.arange(length))  # p - q
        for key, (min_sep, cutoff) in settings.items():
            keep = (-sep >= min_sep) & (truth <= cutoff)  # NaN truth compares False: left out
            per_protein[key].append(float(np.mean(np.abs(truth[keep] - scored[keep]))) if keep.any() else np.nan)
    result = {}
    for key, values in per_protein.items():
        arr = np.asarray(values)
        if np.isnan(arr).all():
            min_sep, cutoff = settings[key]
            raise InputError(f"no protein has a residue pair with separation >= {min_sep} and true distance "
                             f"<= {cutoff:g} A: {key} is undefined (proteins too short, or targets not in Angstrom?)")
        result[key] = float(np.nanmean(arr))
    return result


def mae8(predictions: object, targets: object, lengths: Sequence[int] | None = None, *, offset: int = 0) -> float:
    """PSICOV MAE8: mean |Y - P| over pairs with separation >= 24 and true distance <= 8 A (see psicov_maes)."""
    return psicov_maes(predictions, targets, lengths, offset=offset)["mae8"]


def mlr8(predictions: object, targets: object, lengths: Sequence[int] | None = None, *, offset: int = 0) -> float:
    """PSICOV MAE over pairs with separation >= 12 and true distance <= 8 A (see psicov_maes)."""
    return psicov_maes(predictions, targets, lengths, offset=offset)["mlr8"]


def lr12(predictions: object, targets: object, lengths: Sequence[int] | None = None, *, offset: int = 0) -> float:
    """PSICOV MAE over pairs with separation >= 24 and true distance <= 12 A (see psicov_maes)."""
    return psicov_maes(predictions, targets, lengths, offset=offset)["lr12"]


def mlr12(predictions: object, targets: object, lengths: Sequence[int] | None = None, *, offset: int = 0) -> float:
    """PSICOV MAE over pairs with separation >= 12 and true distance <= 12 A (see psicov_maes)."""
    return psicov_maes(predictions, targets, lengths, offset=offset)["mlr12"]


# ----------------------------------------------------------------------------- registry

METRICS: dict[str, Callable[..., float]] = {
    "error": error,
    "map": mean_average_precision,
    "rel_l2": relative_l2,
    "mae8": mae8,
    "fnr": false_negative_rate,
    "auroc_error": auroc_error,
    "f1_macro": f1_macro,
    "auroc": mean_auroc,
    # secondary metrics the task cards report alongside the headline ones
    "mlr8": mlr8,
    "lr12": lr12,
    "mlr12": mlr12,
    "auc": mean_auroc,  # FSD50K's calculate_stats AUC: the same mean per-class AUROC
}

# Direction of the value each metric function returns.
DIRECTION: dict[str, Literal["min", "max"]] = {
    "error": "min", "map": "max", "rel_l2": "min", "mae8": "min",
    "fnr": "min", "auroc_error": "min", "f1_macro": "max", "auroc": "max",
    "mlr8": "min", "lr12": "min", "mlr12": "min", "auc": "max",
}


def get_metric(name: str) -> Callable[..., float]:
    """The metric function registered under `name` (a task card's `metric.name`)."""
    try:
        return METRICS[name]
    except KeyError:
        raise InputError(f"unknown metric {name!r}; known metrics: {', '.join(sorted(METRICS))}") from None


def lower_is_better(name: str, value: float) -> float:
    """`value` of metric `name` in the lower-is-better form of the baselines table (1 - x for mAP, F1, AUROC)."""
    get_metric(name)
    return 1.0 - value if DIRECTION[name] == "max" else value
