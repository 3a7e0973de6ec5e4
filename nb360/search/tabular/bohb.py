"""BOHB's configuration model (Falkner et al. 2018) for R independent repeats at once.

The rules are hpbandster's `optimizers/config_generators/bohb.py` (v0.7.4) with the settings of
NATS's and NAS-Bench-360's `bohb.py` (num_samples 4, random_fraction 0, bandwidth_factor 3,
min_bandwidth 0.3; top_n_percent 15 and min_points_in_model = d + 1 = 7 by default):

- Results are kept per budget; once a model exists at a larger budget, results at smaller ones
  are no longer stored (`new_result`).
- A budget has a model when its n results split into n_good = max(7, ⌊15n/100⌋) best and the next
  n_bad = max(7, ⌊85n/100⌋) with more than d = 6 points each (so n ≥ 14 here). Each half is a
  statsmodels `KDEMultivariate` with six unordered ('u', Aitchison-Aitken) variables over the op
  indices 0..4 (ConfigSpace's vector encoding, NATS's op order) and the `normal_reference`
  bandwidth 1.06·std·n^(-1/10), clipped below at min_bandwidth. Aitchison-Aitken gives a match
  1 - h and a mismatch h/(c - 1), with c the number of distinct values in that column of the data
  (statsmodels' rule; c = 1 divides by zero: ±inf and NaN follow IEEE arithmetic, as there).
- A configuration comes from the model of the largest budget with one: num_samples candidates,
  each a random good point whose every coordinate is kept with probability 1 - bw and otherwise
  drawn uniformly; the candidate minimising max(1e-32, g(x)) / max(l(x), 1e-32) wins (l, g: good
  and bad densities; Python's max, so a NaN g counts as 1e-32 and a NaN l makes the ratio NaN).
  A candidate with a non-finite ratio but a finite l(x) is taken at once; when no candidate is
  usable, or no model exists, the configuration is uniformly random.

Hand-written (hpbandster runs one configuration at a time through a name server and threads) so
that 500 repeats advance as numpy arrays; `tests/test_search_bohb.py` checks the densities and
bandwidths against statsmodels and the whole generator against hpbandster where it installs.
One deliberate difference: losses are ranked with a stable sort (ties by arrival), where
hpbandster's `np.argsort` (introsort) orders ties arbitrarily.
"""

from __future__ import annotations

import numpy as np

from ...space import nb201

DIMS = nb201.NUM_EDGES
LEVELS_PER_DIM = nb201.NUM_OPS
_BITS = np.arange(2**DIMS)


class BohbModel:
    """The KDE configuration model of R repeats; `observe` registers results, `sample` proposes op ids.

    Results are kept per budget level sorted by loss (ties by arrival), so a proposal needs no sort.
    """

    def __init__(self, repeats: int, levels: int, *, num_samples: int = 4, random_fraction: float = 0.0,
                 bandwidth_factor: float = 3.0, min_bandwidth: float = 0.3, top_n_percent: int = 15,
                 min_points_in_model: int | None = None) -> None:
        from ...errors import InputError

        if num_samples < 1 or not 0 <= random_fraction <= 1 or not 0 < top_n_percent < 100 or min_bandwidth < 0:
            raise InputError("BOHB needs num_samples >= 1, 0 <= random_fraction <= 1, 0 < top_n_percent < 100 and "
                             f"min_bandwidth >= 0; got {num_samples}, {random_fraction}, {top_n_percent}, "
                             f"{min_bandwidth}")
        self.repeats, self.levels = repeats, levels
        self.num_samples, self.random_fraction = num_samples, random_fraction
        self.bandwidth_factor = bandwidth_factor  # scales continuous bandwidths only: every NB201 variable is categorical
        self.min_bandwidth, self.top_n_percent = min_bandwidth, top_n_percent
        self.min_points = max(min_points_in_model or DIMS + 1, DIMS + 1)
        self.digits = np.zeros((levels, repeats, DIMS, 64), dtype=np.uint8)  # op ids, sorted by loss per row
        self.losses = np.full((levels, repeats, 64), np.inf)
        self.count = np.zeros((levels, repeats), dtype=np.int64)
        self.totals = np.zeros((levels, repeats, DIMS, LEVELS_PER_DIM), dtype=np.int64)  # op counts of all results

    # ------------------------------------------------------------------ results
    def split_sizes(self, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n_good, n_bad) of n results, n_bad cut to what is left after the good ones."""
        good = np.maximum(self.min_points, self.top_n_percent * n // 100)
        bad = np.minimum(np.maximum(self.min_points, (100 - self.top_n_percent) * n // 100), np.maximum(n - good, 0))
        return good, bad

    def has_model(self, n: np.ndarray) -> np.ndarray:
        """Whether n results at a budget make a model (hpbandster's three checks)."""
        good, bad = self.split_sizes(n)
        return (n >= self.min_points) & (good > DIMS) & (bad > DIMS)

    def observe(self, level: int, ops: np.ndarray, losses: np.ndarray) -> None:
        """Register one result per repeat at budget `level` (NaN loss: no result for that repeat)."""
        models = self.has_model(self.count)  # (levels, R)
        larger = models[level + 1:].any(axis=0) if level + 1 < self.levels else np.zeros(self.repeats, bool)
        store = ~np.isnan(losses) & ~larger
        if not store.any():
            return
        rows = np.flatnonzero(store)
        if self.count[level, rows].max() >= self.losses.shape[2]:
            self._grow()
        new_loss = np.where(np.isfinite(losses[rows]), losses[rows], np.inf)  # hpbandster: non-finite -> inf
        n = self.count[level, rows]
        width = int(n.max()) + 1
        old_loss, old_digits = self.losses[level, rows, :width], self.digits[level, rows, :, :width]
        # insertion point after every stored loss <= the new one: the order is (loss, arrival)
        pos = np.minimum((old_loss <= new_loss[:, None]).sum(axis=1), n)
        k = np.arange(width)[None, :]
        src = np.where(k <= pos[:, None], k, k - 1)
        here = k == pos[:, None]
        new_ops = np.asarray(ops)[rows].astype(np.uint8)  # (K, 6)
        self.losses[level, rows, :width] = np.where(here, new_loss[:, None], np.take_along_axis(old_loss, src, axis=1))
        self.digits[level, rows, :, :width] = np.where(here[:, None, :], new_ops[:, :, None],
                                                       np.take_along_axis(old_digits, src[:, None, :], axis=2))
        self.totals[level, rows[:, None], np.arange(DIMS)[None, :], new_ops] += 1  # rows distinct: no lost adds
        self.count[level, rows] += 1

    def _grow(self) -> None:
        cap = self.losses.shape[2]
        digits = np.zeros((self.levels, self.repeats, DIMS, 2 * cap), dtype=np.uint8)
        losses = np.full((self.levels, self.repeats, 2 * cap), np.inf)
        digits[..., :cap], losses[:, :, :cap] = self.digits, self.losses
        self.digits, self.losses = digits, losses

    # ------------------------------------------------------------------ proposals
    def model_level(self) -> np.ndarray:
        """Per repeat, the largest budget level with a model (-1: none)."""
        models = self.has_model(self.count)
        level = np.full(self.repeats, -1, dtype=np.int64)
        for lv in range(self.levels):
            level = np.where(models[lv], lv, level)
        return level

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One configuration (6 op ids) per repeat: model-based where a model exists, else uniform."""
        R = self.repeats
        out = rng.integers(0, LEVELS_PER_DIM, (R, DIMS))
        level = self.model_level()
        use = level >= 0
        if self.random_fraction > 0:
            use &= ~(rng.random(R) < self.random_fraction)
        idx = np.flatnonzero(use)
        if idx.size:
            picked, ok = self.propose(rng, idx, level[idx])
            out[idx[ok]] = picked[ok]
        return out

    def data(self, idx: np.ndarray, level: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Results of repeats `idx` at `level`, best first: (M, 6, N) op ids, and the good and bad masks (M, N)."""
        n = self.count[level, idx]
        width = int(n.max())
        digits = self.digits[level, idx, :, :width]
        n_good, n_bad = self.split_sizes(n)
        pos = np.arange(width)[None, :]
        good = pos < n_good[:, None]
        bad = (pos >= n_good[:, None]) & (pos < (n_good + n_bad)[:, None])
        return digits, good, bad

    def subset_counts(self, idx: np.ndarray, level: np.ndarray, digits: np.ndarray, good: np.ndarray,
                      bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(M, 6, 5) op counts of the good and of the bad results: the good counted, the bad as all results less
        the good and less those in neither (at most one)."""
        M = len(idx)
        size = M * DIMS * LEVELS_PER_DIM
        flat = (np.arange(M)[:, None, None] * DIMS + np.arange(DIMS)[None, :, None]) * LEVELS_PER_DIM
        width = int(good.sum(axis=1).max())
        keys = (flat + digits[:, :, :width]).reshape(-1)
        weights = np.broadcast_to(good[:, None, :width], (M, DIMS, width)).reshape(-1)
        good_counts = np.rint(np.bincount(keys, weights, minlength=size)).astype(np.int64).reshape(M, DIMS, -1)
        # results in neither set: at most one, right after the bad ones (⌊15n/100⌋ + ⌊85n/100⌋ may be n - 1)
        n_good, n_bad = good.sum(axis=1), bad.sum(axis=1)
        left = n_good + n_bad
        other = np.zeros_like(good_counts)
        rows = np.flatnonzero(left < self.count[level, idx])
        if rows.size:
            other[rows[:, None], np.arange(DIMS)[None, :], digits[rows, :, left[rows]]] = 1
        return good_counts, self.totals[level, idx] - good_counts - other

    def propose(self, rng: np.random.Generator, idx: np.ndarray, level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """hpbandster's `get_config` for repeats `idx` from their models at `level`: (M, 6) ops, and whether a
        candidate was usable (else the caller keeps a random configuration)."""
        digits, good, bad = self.data(idx, level)
        good_counts, bad_counts = self.subset_counts(idx, level, digits, good, bad)
        bw_good, table_good = kde_parameters(good_counts, self.min_bandwidth)
        _, table_bad = kde_parameters(bad_counts, self.min_bandwidth)
        M, S = len(idx), self.num_samples
        n_good = good.sum(axis=1)
        candidates = np.empty((M, S, DIMS), dtype=np.int64)
        for s in range(S):
            datum = digits[np.arange(M), :, (rng.random(M) * n_good).astype(np.int64)]
            keep = rng.random((M, DIMS)) < (1 - np.maximum(bw_good, self.min_bandwidth))
            candidates[:, s] = np.where(keep, datum, rng.integers(0, LEVELS_PER_DIM, (M, DIMS)))
        l_val, g_val = kde_pdfs(candidates, digits, good, bad, table_good, table_bad)
        return select(candidates, l_val, g_val)


def kde_parameters(counts: np.ndarray, min_bandwidth: float) -> tuple[np.ndarray, np.ndarray]:
    """From (M, 6, 5) op counts of a KDE's points: its bandwidths (M, 6) and (M, 64) kernel products, entry m (a 6-bit
    match mask) being Π_d (1 - h_d if bit d else h_d / (c_d - 1))."""
    M = counts.shape[0]
    c = counts.astype(np.float64)
    size = c[:, 0].sum(axis=-1)
    values = np.arange(LEVELS_PER_DIM, dtype=np.float64)
    mean = (c * values).sum(axis=-1) / size[:, None]
    std = np.sqrt((c * (values - mean[..., None]) ** 2).sum(axis=-1) / size[:, None])  # np.std: population
    bw = np.maximum(1.06 * std * size[:, None] ** (-1.0 / (4 + DIMS)), min_bandwidth)  # normal_reference, clipped
    distinct = (c > 0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mismatch = bw / (distinct - 1)
    match = 1 - bw
    table = np.ones((M, 2**DIMS))
    with np.errstate(invalid="ignore", over="ignore"):
        for d in range(DIMS):  # statsmodels multiplies the six kernels in column order
            bit = ((_BITS >> d) & 1).astype(bool)
            table *= np.where(bit[None, :], match[:, d, None], mismatch[:, d, None])
    return bw, table


def kde_pdfs(points: np.ndarray, digits: np.ndarray, good: np.ndarray, bad: np.ndarray, table_good: np.ndarray,
             table_bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """statsmodels' KDEMultivariate.pdf of (M, S, 6) points under the good and the bad points: two (M, S) arrays.

    Each point's density is Σ_i table[match mask of point and x_i] / n: the masks are counted per point
    (one bincount), then weighted by the 64 kernel products.
    """
    M, S, _ = points.shape
    N = digits.shape[2]
    category = np.broadcast_to(np.where(good, 0, np.where(bad, 64, 128)).astype(np.uint8)[:, None, :], (M, S, N)).copy()
    for d in range(DIMS):
        eq = digits[:, None, d, :] == points[:, :, d, None].astype(np.uint8)
        category |= eq.view(np.uint8) << d
    key = category.astype(np.intp)
    key += (np.arange(M * S, dtype=np.intp) * 192).reshape(M, S, 1)
    counts = np.bincount(key.reshape(-1), minlength=M * S * 192).reshape(M, S, 3, 2**DIMS)
    with np.errstate(invalid="ignore", over="ignore"):
        l_val = _weighted(counts[:, :, 0], table_good) / good.sum(axis=1)[:, None]
        g_val = _weighted(counts[:, :, 1], table_bad) / bad.sum(axis=1)[:, None]
    return l_val, g_val


def _weighted(counts: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Σ_mask counts·table over the masks that occur (a 0 count never meets an inf or NaN product)."""
    if np.isfinite(table).all():
        return np.einsum("msk,mk->ms", counts.astype(np.float64), table)
    terms = np.where(counts > 0, counts * table[:, None, :], 0.0)
    return terms.sum(axis=-1)


def select(candidates: np.ndarray, l_val: np.ndarray, g_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """hpbandster's candidate loop: the minimum of max(1e-32, g)/max(l, 1e-32), or the first candidate with a
    non-finite ratio and a finite l; returns (M, 6) ops and whether any candidate was chosen."""
    M, S, _ = candidates.shape
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        g = np.where(g_val > 1e-32, g_val, 1e-32)  # max(1e-32, g): NaN > 1e-32 is False
        ll = np.where(1e-32 > l_val, 1e-32, l_val)  # max(l, 1e-32): keeps a NaN l
        ratio = g / ll
    best = np.full(M, np.inf)
    chosen = np.full(M, -1, dtype=np.int64)
    stopped = np.zeros(M, dtype=bool)
    for s in range(S):
        v = ratio[:, s]
        take = ~stopped & ~np.isfinite(v) & np.isfinite(l_val[:, s])
        chosen = np.where(take, s, chosen)
        stopped |= take
        better = ~stopped & (v < best)
        best = np.where(better, v, best)
        chosen = np.where(better, s, chosen)
    ok = chosen >= 0
    return candidates[np.arange(M), np.maximum(chosen, 0)], ok
