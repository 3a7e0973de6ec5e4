"""Black-box search on a table, vectorised over repeats: RS, REA, LS, REINFORCE (Hyperband, successive halving and
BOHB: `multifidelity.py`).

Every repeat runs the reference algorithm; the repeats advance in lock step as numpy arrays, one
query per repeat per step, so 500 repeats cost about as much Python as one. Randomness comes
from one `numpy.random.Generator` seeded by `seed`: a run is reproducible for a given
(seed, repeats), but repeat r of a 500-repeat run is not the same as a 1-repeat run.

Each takes a `protocol` (`protocol.py`): `nb360` (default) follows NAS-Bench-360's scripts exactly,
`nb201` the older NAS-Bench-201 rules. References (search-methods.md §5; nb201-table.md §8):
- rs: AutoDL `RANDOM.py` / NATS `random_wo_share.py`: uniform samples, keep the best.
- rea: AutoDL `R_EA.py` / NATS `regularized_ea.py` (Real et al. 2019): population P of random archs;
  each cycle samples S members with replacement, mutates the best (nb360: a node, then one of its
  edges, to a different op; nb201: a uniform edge), appends the child and drops the oldest.
  NB201/NB360 defaults P=10, S=3; `cycles` (NB360 passes 200, which the reference loop ignores:
  the budget ends it) caps the cycles only when given.
- ls: NASLib `LocalSearch`: `num_init` random archs, then the full one-edge neighbourhood of the
  current best in random order, moving when it improved, a random restart at a local optimum.
- reinforce: AutoDL `reinforce.py`: a (6, 5) softmax policy (init 1e-3·randn), one sampled arch per
  step, reward = the search value (negated for a minimised metric), EMA baseline (momentum 0.9),
  loss = -log p(arch) · (reward - baseline), Adam (torch defaults) with lr 0.01 (nb360: NAS-Bench-360's
  `algo.sh`, NATS's `run-all.sh`) or 0.5 (nb201: the NB201 docs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import InputError
from ...space import nb201
from .problem import TabularProblem
from .protocol import Protocol, get_protocol
from .trajectory import QueryRecorder, TabularResult, build_result

Progress = Callable[[float], None]


def _recorder(problem: TabularProblem, repeats: int, budget: float | None, max_queries: int | None, seed: int,
              progress: Progress | None, protocol: Protocol, bounded: bool = True) -> QueryRecorder:
    return QueryRecorder(problem, repeats, budget, max_queries, np.random.default_rng(seed), progress,
                         count_crossing=protocol.count_crossing_query, bounded=bounded)


def finish(method: str, config: dict[str, Any], problem: TabularProblem, rec: QueryRecorder, protocol: Protocol,
           **kwargs: Any) -> TabularResult:
    """The result of a finished search, its config recording the protocol followed."""
    return build_result(method, {**config, "protocol": protocol.name}, problem, rec, final_seed=protocol.final_seed,
                        **kwargs)


def random_search(problem: TabularProblem, budget: float | None, repeats: int = 1, seed: int = 0, *,
                  protocol: str | Protocol | None = None, max_queries: int | None = None,
                  progress: Progress | None = None) -> TabularResult:
    """Random search: uniform archs until the budget is spent; the incumbent is the best search value."""
    proto = get_protocol(protocol)
    rec = _recorder(problem, repeats, budget, max_queries, seed, progress, proto)
    while rec.active.any():
        rec.query(problem.random_archs(rec.rng, repeats))
    return finish("rs", {"budget": budget, "repeats": repeats, "seed": seed, "max_queries": max_queries},
                  problem, rec, proto)


def regularized_evolution(problem: TabularProblem, budget: float | None, repeats: int = 1, seed: int = 0, *,
                          protocol: str | Protocol | None = None, population: int = 10, sample_size: int = 3,
                          cycles: int | None = None, max_queries: int | None = None,
                          progress: Progress | None = None) -> TabularResult:
    """Regularized evolution (ageing evolution), NB201 defaults population 10 / sample 3."""
    proto = get_protocol(protocol)
    if population < 1 or sample_size < 1:
        raise InputError(f"population and sample_size must be positive, got {population} and {sample_size}")
    if cycles is not None and cycles < 0:
        raise InputError(f"cycles must be non-negative, got {cycles}")
    rec = _recorder(problem, repeats, budget, max_queries, seed, progress, proto)
    mutate = problem.mutate_by_node if proto.rea_mutation == "node-then-edge" else problem.mutate
    rows = np.arange(repeats)
    pop_arch = np.zeros((repeats, population), dtype=np.int64)
    pop_score = np.full((repeats, population), -np.inf)
    for slot in range(population):
        archs = problem.random_archs(rec.rng, repeats)
        scores = rec.query(archs, force=not proto.charge_initial_population)
        pop_arch[:, slot], pop_score[:, slot] = archs, scores
    oldest = np.zeros(repeats, dtype=np.int64)  # the population is a ring buffer: slot `oldest` is the next to die
    done_cycles = 0
    while rec.active.any() and (cycles is None or done_cycles < cycles):
        sample = rec.rng.integers(0, population, (repeats, sample_size))  # with replacement
        best = np.argmax(pop_score[rows[:, None], sample], axis=1)  # first of the maximal, as max(..., key=)
        parents = pop_arch[rows, sample[rows, best]]
        children = mutate(rec.rng, parents)
        scores = rec.query(children)
        counted = ~np.isnan(scores)
        pop_arch[rows[counted], oldest[counted]] = children[counted]
        pop_score[rows[counted], oldest[counted]] = scores[counted]
        oldest = np.where(counted, (oldest + 1) % population, oldest)
        done_cycles += 1
    config = {"budget": budget, "repeats": repeats, "seed": seed, "population": population,
              "sample_size": sample_size, "cycles": cycles, "mutation": proto.rea_mutation, "max_queries": max_queries}
    return finish("rea", config, problem, rec, proto)


def local_search(problem: TabularProblem, budget: float | None, repeats: int = 1, seed: int = 0, *,
                 protocol: str | Protocol | None = None, num_init: int = 10, max_queries: int | None = None,
                 progress: Progress | None = None) -> TabularResult:
    """Local search with the full one-edge neighbourhood and random restarts (NASLib's; not run by NAS-Bench-360:
    the protocol sets only its budget rule)."""
    proto = get_protocol(protocol)
    if num_init < 1:
        raise InputError(f"num_init must be at least 1, got {num_init}")
    rec = _recorder(problem, repeats, budget, max_queries, seed, progress, proto)
    rng = rec.rng
    R, K = repeats, problem.neighbours.shape[1]
    best_arch = np.full(R, -1, dtype=np.int64)
    best_score = np.full(R, -np.inf)
    chosen_score = np.full(R, -np.inf)
    has_chosen = np.zeros(R, dtype=bool)
    queue = np.full((R, K), -1, dtype=np.int64)
    head = np.zeros(R, dtype=np.int64)
    length = np.zeros(R, dtype=np.int64)

    def fill(where: np.ndarray, centres: np.ndarray) -> None:
        """Queue the recorded neighbours of `centres` in random order for the repeats in `where`."""
        idx = np.flatnonzero(where)
        n = problem.num_neighbours[centres[idx]]
        nbrs = problem.neighbours[centres[idx]]
        keys = np.where(nbrs >= 0, rng.random(nbrs.shape), np.inf)
        queue[idx] = np.take_along_axis(nbrs, np.argsort(keys, axis=1), axis=1)
        head[idx], length[idx] = 0, n

    for _ in range(num_init):
        archs = problem.random_archs(rng, R)
        scores = rec.query(archs)
        better = scores > best_score  # NaN (not counted) compares False
        best_arch, best_score = np.where(better, archs, best_arch), np.where(better, scores, best_score)
    while rec.active.any():
        empty = (head >= length) & rec.active
        restart = empty & has_chosen & (best_score <= chosen_score)
        new_round = empty & ~restart
        if new_round.any():  # pick the best and queue its neighbourhood
            fill(new_round, best_arch)
            chosen_score = np.where(new_round, best_score, chosen_score)
            has_chosen |= new_round
        isolated = new_round & (length == 0)  # no recorded neighbour (partial tables): restart instead
        restart |= isolated
        archs = np.where(restart, problem.random_archs(rng, R), queue[np.arange(R), np.minimum(head, K - 1)])
        scores = rec.query(archs)
        counted = ~np.isnan(scores)
        head = np.where(counted & ~restart, head + 1, head)
        # restart: the random arch becomes both the chosen and the best, and its neighbourhood is queued
        rs = restart & counted
        if rs.any():
            best_arch, best_score = np.where(rs, archs, best_arch), np.where(rs, scores, best_score)
            chosen_score = np.where(rs, scores, chosen_score)
            fill(rs, best_arch)
        better = counted & ~restart & (scores > best_score)
        best_arch, best_score = np.where(better, archs, best_arch), np.where(better, scores, best_score)
    config = {"budget": budget, "repeats": repeats, "seed": seed, "num_init": num_init, "max_queries": max_queries}
    return finish("ls", config, problem, rec, proto)


def reinforce(problem: TabularProblem, budget: float | None, repeats: int = 1, seed: int = 0, *,
              protocol: str | Protocol | None = None, learning_rate: float | None = None, ema_momentum: float = 0.9,
              max_queries: int | None = None, progress: Progress | None = None) -> TabularResult:
    """REINFORCE with an EMA baseline over a factorised softmax policy (one categorical per edge); the learning
    rate defaults to the protocol's (nb360 0.01, nb201 0.5)."""
    proto = get_protocol(protocol)
    if learning_rate is None:
        learning_rate = proto.reinforce_learning_rate
    if not learning_rate > 0:
        raise InputError(f"learning_rate must be positive, got {learning_rate}")
    if not 0 <= ema_momentum < 1:
        raise InputError(f"ema_momentum must be in [0, 1), got {ema_momentum}")
    rec = _recorder(problem, repeats, budget, max_queries, seed, progress, proto)
    rng = rec.rng
    R, E, O = repeats, nb201.NUM_EDGES, nb201.NUM_OPS
    logits = 1e-3 * rng.standard_normal((R, E, O))
    adam = _Adam(logits.shape, learning_rate)
    numerator = np.zeros(R)
    denominator = np.zeros(R)
    while rec.active.any():
        probs = _softmax(logits)
        actions = _sample_categorical(rng, probs)  # (R, E)
        archs = problem.archs_from_ops(actions)
        unrecorded = ~problem.is_recorded[archs]
        for _ in range(100):  # partial tables: resample archs the table does not record
            if not unrecorded.any():
                break
            actions[unrecorded] = _sample_categorical(rng, probs[unrecorded])
            archs = problem.archs_from_ops(actions)
            unrecorded = ~problem.is_recorded[archs]
        if unrecorded.any():
            archs[unrecorded] = problem.random_archs(rng, int(unrecorded.sum()))
            actions[unrecorded] = problem.op_ids[archs[unrecorded]]
        rewards = rec.query(archs)
        counted = ~np.isnan(rewards)
        # ExponentialMovingAverage.update, then the advantage against its value (AutoDL's order)
        numerator = np.where(counted, ema_momentum * numerator + (1 - ema_momentum) * np.nan_to_num(rewards),
                             numerator)
        denominator = np.where(counted, ema_momentum * denominator + (1 - ema_momentum), denominator)
        advantage = np.where(counted, np.nan_to_num(rewards) - numerator / np.where(denominator > 0, denominator, 1),
                             0.0)
        logits = adam.step(logits, _policy_gradient(probs, actions, advantage), counted)
    config = {"budget": budget, "repeats": repeats, "seed": seed, "learning_rate": learning_rate,
              "ema_momentum": ema_momentum, "max_queries": max_queries}
    return finish("reinforce", config, problem, rec, proto, extras={"policy_logits": logits})


# ---------------------------------------------------------------------------------------------- helpers
def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _policy_gradient(probs: np.ndarray, actions: np.ndarray, advantage: np.ndarray) -> np.ndarray:
    """∂/∂logits of -log p(actions)·advantage for per-edge softmax policies: -(onehot(a) - p)·advantage."""
    onehot = np.zeros_like(probs)
    np.put_along_axis(onehot, actions[..., None], 1.0, axis=-1)
    return -(onehot - probs) * advantage[:, None, None]


def _sample_categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of (..., O) probabilities (inverse CDF)."""
    cdf = np.cumsum(probs, axis=-1)
    u = rng.random(probs.shape[:-1] + (1,)) * cdf[..., -1:]
    return np.minimum((u >= cdf).sum(axis=-1), probs.shape[-1] - 1)


class _Adam:
    """torch.optim.Adam (defaults betas 0.9/0.999, eps 1e-8, no weight decay) for a batch of policies.

    Hand-written so 500 policies update as one numpy operation; tests check it against torch.
    Each repeat keeps its own step count (a repeat whose query did not count does not step).
    """

    def __init__(self, shape: tuple[int, ...], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.lr, self.betas, self.eps = lr, betas, eps
        self.m = np.zeros(shape)
        self.v = np.zeros(shape)
        self.t = np.zeros(shape[0], dtype=np.int64)

    def step(self, params: np.ndarray, grad: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Return params after one step where `mask` (per repeat) is True."""
        b1, b2 = self.betas
        sel = mask.reshape((-1,) + (1,) * (params.ndim - 1))
        self.t = np.where(mask, self.t + 1, self.t)
        self.m = np.where(sel, b1 * self.m + (1 - b1) * grad, self.m)
        self.v = np.where(sel, b2 * self.v + (1 - b2) * grad * grad, self.v)
        t = np.maximum(self.t, 1).reshape(sel.shape).astype(np.float64)
        bias1 = 1 - b1 ** t
        bias2 = 1 - b2 ** t
        update = (self.lr / bias1) * self.m / (np.sqrt(self.v) / np.sqrt(bias2) + self.eps)
        return np.where(sel, params - update, params)
