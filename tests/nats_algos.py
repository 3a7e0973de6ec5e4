"""NAS search code written the way AutoDL-Projects' exps/NATS-algos scripts are (same API calls, same order).

regularized_ea.py, random_wo_share.py, reinforce.py and bohb.py search a NATS-Bench API with
`api.reset_time()`, `api.simulate_train_eval(arch, dataset, hp=...)` (archs as structure objects
with .tostr() in the topology space, '16:40:56:24:40' strings in the size space),
`api.query_index_by_arch(...)` after every step, `api.full_train_epochs`, and end with
`api.query_info_str_by_arch(best, '200' | '90')`. This module follows them call for call (written
for nb360's tests, not copied; BOHB's model-based sampler is replaced by hyperband's random
sampling, which makes the same API calls without needing hpbandster). Each `run_*` takes any API
object and returns everything the search observed, so the same code can run on nats_bench and on
nb360.compat.nats and the two trajectories be compared.
"""

from __future__ import annotations

import collections
import random
from copy import deepcopy
from typing import Any

import numpy as np

OP_NAMES = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
SIZE_SPACE = {"candidates": [8, 16, 24, 32, 40, 48, 56, 64], "numbers": 5}


class CellStructure:
    """A topology-space arch as the scripts hold it: nodes of (op, input) pairs, with .tostr()."""

    def __init__(self, genotypes: list[tuple[tuple[str, int], ...]]) -> None:
        self.nodes = [tuple(node) for node in genotypes]

    def tostr(self) -> str:
        return "+".join("|" + "|".join(f"{op}~{j}" for op, j in node) + "|" for node in self.nodes)

    def __repr__(self) -> str:
        return self.tostr()


def prepare_seed(seed: int) -> None:
    """AutoDL's prepare_seed: Python, numpy and torch RNGs."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def random_arch_func(space: str) -> Any:
    """A sampler of uniformly random archs, as random_topology_func / random_size_func."""
    def random_topology() -> CellStructure:
        return CellStructure([tuple((random.choice(OP_NAMES), j) for j in range(i)) for i in range(1, 4)])

    def random_size() -> str:
        return ":".join(str(random.choice(SIZE_SPACE["candidates"])) for _ in range(SIZE_SPACE["numbers"]))

    return random_topology if space == "tss" else random_size


def mutate_arch_func(space: str) -> Any:
    """One-edge (one-layer) mutation, as mutate_topology_func / mutate_size_func."""
    def mutate_topology(parent: CellStructure) -> CellStructure:
        child = deepcopy(parent)
        node_id = random.randint(0, len(child.nodes) - 1)
        node = list(child.nodes[node_id])
        edge = random.randint(0, len(node) - 1)
        op = random.choice(OP_NAMES)
        while op == node[edge][0]:
            op = random.choice(OP_NAMES)
        node[edge] = (op, node[edge][1])
        child.nodes[node_id] = tuple(node)
        return child

    def mutate_size(parent: str) -> str:
        channels = deepcopy(parent).split(":")
        channels[random.randint(0, len(channels) - 1)] = str(random.choice(SIZE_SPACE["candidates"]))
        return ":".join(channels)

    return mutate_topology if space == "tss" else mutate_size


def _final(api: Any, space: str, best: Any) -> str:
    return api.query_info_str_by_arch(best, "200" if space == "tss" else "90")


def run_rea(api: Any, space: str, dataset: str, seed: int, time_budget: float, use_proxy: bool = True,
            population_size: int = 10, sample_size: int = 3) -> dict[str, Any]:
    """regularized_ea.py: aging evolution under a simulated time budget."""
    prepare_seed(seed)
    random_arch, mutate_arch = random_arch_func(space), mutate_arch_func(space)
    population: collections.deque = collections.deque()
    api.reset_time()
    history, total_time_cost, current_best_index = [], [], []
    hp = "12" if use_proxy else api.full_train_epochs
    while len(population) < population_size:
        arch = random_arch()
        accuracy, _, _, total_cost = api.simulate_train_eval(arch, dataset, hp=hp)
        population.append((accuracy, arch))
        history.append((accuracy, arch))
        total_time_cost.append(total_cost)
        current_best_index.append(api.query_index_by_arch(max(history, key=lambda x: x[0])[1]))
    while total_time_cost[-1] < time_budget:
        sample = [random.choice(list(population)) for _ in range(sample_size)]
        parent = max(sample, key=lambda x: x[0])
        child = mutate_arch(parent[1])
        accuracy, _, _, total_cost = api.simulate_train_eval(child, dataset, hp=hp)
        population.append((accuracy, child))
        history.append((accuracy, child))
        current_best_index.append(api.query_index_by_arch(max(history, key=lambda x: x[0])[1]))
        total_time_cost.append(total_cost)
        population.popleft()
    best = max(history, key=lambda x: x[0])[1]
    return {"history": [(a, str(x)) for a, x in history], "best_index": current_best_index,
            "times": total_time_cost, "info": _final(api, space, best)}


def run_random(api: Any, space: str, dataset: str, seed: int, time_budget: float) -> dict[str, Any]:
    """random_wo_share.py: random search under a simulated time budget."""
    prepare_seed(seed)
    api.reset_time()
    random_arch = random_arch_func(space)
    best_arch, best_acc, total_time_cost, history, current_best_index = None, -1, [], [], []
    while len(total_time_cost) == 0 or total_time_cost[-1] < time_budget:
        arch = random_arch()
        accuracy, _, _, total_cost = api.simulate_train_eval(arch, dataset, hp="12")
        total_time_cost.append(total_cost)
        history.append((accuracy, str(arch)))
        if best_arch is None or best_acc < accuracy:
            best_acc, best_arch = accuracy, arch
        current_best_index.append(api.query_index_by_arch(best_arch))
    return {"history": history, "best_index": current_best_index, "times": total_time_cost,
            "info": _final(api, space, best_arch)}


def run_reinforce(api: Any, space: str, dataset: str, seed: int, time_budget: float,
                  learning_rate: float = 0.01, ema_momentum: float = 0.9) -> dict[str, Any]:
    """reinforce.py: REINFORCE over a categorical policy per edge (per layer), with an EMA baseline."""
    import torch
    from torch import nn
    from torch.distributions import Categorical

    prepare_seed(seed)
    choices = OP_NAMES if space == "tss" else SIZE_SPACE["candidates"]
    rows = 6 if space == "tss" else SIZE_SPACE["numbers"]
    arch_parameters = nn.Parameter(1e-3 * torch.randn(rows, len(choices)))
    optimizer = torch.optim.Adam([arch_parameters], lr=learning_rate)

    def generate_arch(actions: list[int]) -> Any:
        if space == "size" or space == "sss":
            return ":".join(str(choices[a]) for a in actions)
        edges = iter(actions)
        return CellStructure([tuple((choices[next(edges)], j) for j in range(i)) for i in range(1, 4)])

    numerator = denominator = 0.0
    api.reset_time()
    total_costs, trace, current_best_index = [], [], []
    while len(total_costs) == 0 or total_costs[-1] < time_budget:
        distribution = Categorical(nn.functional.softmax(arch_parameters, dim=-1))
        action = distribution.sample()
        log_prob = distribution.log_prob(action)
        arch = generate_arch(action.tolist())
        reward, _, _, current_total_cost = api.simulate_train_eval(arch, dataset, hp="12")
        trace.append((reward, arch))
        total_costs.append(current_total_cost)
        numerator = ema_momentum * numerator + (1 - ema_momentum) * reward
        denominator = ema_momentum * denominator + (1 - ema_momentum)
        policy_loss = (-log_prob * (reward - numerator / denominator)).sum()
        optimizer.zero_grad()
        policy_loss.backward()
        optimizer.step()
        current_best_index.append(api.query_index_by_arch(max(trace, key=lambda x: x[0])[1]))
    best = max(trace, key=lambda x: x[0])[1]
    return {"history": [(r, str(a)) for r, a in trace], "best_index": current_best_index, "times": total_costs,
            "info": _final(api, space, best)}


def run_hyperband(api: Any, space: str, dataset: str, seed: int, brackets: int = 2, eta: int = 3,
                  max_budget: int = 12) -> dict[str, Any]:
    """bohb.py's worker loop: configs evaluated at budgets max_budget / eta^k via iepoch=int(budget)-1, hp='12'."""
    prepare_seed(seed)
    api.reset_time()
    random_arch = random_arch_func(space)
    trajectory, total_times = [], []

    def compute(arch: Any, budget: float) -> dict[str, Any]:
        accuracy, _, _, total_time = api.simulate_train_eval(arch, dataset, iepoch=int(budget) - 1, hp="12")
        trajectory.append((accuracy, arch))
        total_times.append(total_time)
        return {"loss": 100 - accuracy, "info": api.query_index_by_arch(arch)}

    for bracket in range(brackets):
        rungs = 3 - bracket
        configs = [random_arch() for _ in range(eta ** (rungs - 1))]
        for rung in range(rungs):
            budget = max_budget * eta ** -(rungs - 1 - rung)
            results = [compute(arch, budget) for arch in configs]
            keep = max(1, len(configs) // eta)
            order = sorted(range(len(configs)), key=lambda k: results[k]["loss"])
            configs = [configs[k] for k in order[:keep]]
    current_best_index = [api.query_index_by_arch(max(trajectory[:k + 1], key=lambda x: x[0])[1])
                          for k in range(len(trajectory))]
    best = max(trajectory, key=lambda x: x[0])[1]
    return {"history": [(a, str(x)) for a, x in trajectory], "best_index": current_best_index, "times": total_times,
            "info": _final(api, space, best)}
