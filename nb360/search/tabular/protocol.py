"""Named search protocols: the rules and hyper-parameters a tabular search follows.

`nb360` (the default) is NAS-Bench-360's: the scripts of rtu715/NAS-Bench-360 `precompute/ninapro`
and `precompute/darcyflow` (commit 200d40c, the one whose `algo.sh` passes
`--learning_rate 0.01` and two tables), which are AutoDL-Projects' `exps/NATS-algos` scripts
(commit 5456939, `run-all.sh`) pointed at NAS-Bench-360's tables. `nb201` is the older
NAS-Bench-201 rule set nb360 used before (AutoDL `exps/NAS-Bench-201-algos/R_EA.py` for the
budget, the NB201 docs' REINFORCE learning rate, hpbandster's incumbent rule).

Every rule is a field, so a run records exactly what it followed, and `differences()` is the
table the docs and `nb360 search --help` print.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ...errors import InputError

NB360_COMMIT = "200d40cd58ffcd8a9e52e6f0ab4d3814407f5aa2"  # rtu715/NAS-Bench-360
NATS_COMMIT = "5456939d81fa677de08553566c37b2c4e5ede2d6"  # D-X-Y/AutoDL-Projects (exps/NATS-algos/run-all.sh)


@dataclass(frozen=True)
class Protocol:
    """The rules of one protocol (see `RULES` for each field's meaning and source)."""

    name: str
    count_crossing_query: bool  # the query whose cost crosses the budget is counted (then the repeat stops)
    charge_initial_population: bool  # REA: the random initial population stops at the budget
    rea_mutation: str  # "node-then-edge" (AutoDL's mutate_topology_func) or "uniform-edge"
    reinforce_learning_rate: float
    multi_fidelity_stop: str  # "iterations": a fixed number of (Hyperband/BOHB) iterations; "budget"
    multi_fidelity_iterations: int | None
    multi_fidelity_incumbent: str  # "any-fidelity" (best value over every query) or "highest-fidelity"
    promotion_order: str  # "sampling" (hpbandster runs promoted configs in sampling order) or "rank"
    final_seed: str  # "random": the final metric of one random seed (get_more_info's is_random=True); "mean"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


NB360 = Protocol(name="nb360", count_crossing_query=True, charge_initial_population=False,
                 rea_mutation="node-then-edge", reinforce_learning_rate=0.01, multi_fidelity_stop="iterations",
                 multi_fidelity_iterations=300, multi_fidelity_incumbent="any-fidelity", promotion_order="sampling",
                 final_seed="random")
NB201 = Protocol(name="nb201", count_crossing_query=False, charge_initial_population=True,
                 rea_mutation="uniform-edge", reinforce_learning_rate=0.5, multi_fidelity_stop="budget",
                 multi_fidelity_iterations=None, multi_fidelity_incumbent="highest-fidelity", promotion_order="rank",
                 final_seed="mean")
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (NB360, NB201)}
DEFAULT_PROTOCOL = "nb360"

_NB360 = f"rtu715/NAS-Bench-360@{NB360_COMMIT[:7]} precompute/ninapro"
_NATS = "D-X-Y/AutoDL-Projects exps/NATS-algos"
# (field, what it decides, nb360 rule (short), nb360 source, nb201 rule (short), nb201 source)
RULES: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("count_crossing_query", "the query that crosses the budget", "counted, then the repeat stops",
     f"the loop `while total_time_cost[-1] < time_budget` queries, appends the cost and keeps the result "
     f"({_NB360}/random_wo_share.py L72-84, regularized_ea.py L150-178, reinforce.py L154-180; {_NATS}"
     f"/random_wo_share.py, regularized_ea.py@46b92e3 `regularized_evolution`)",
     "dropped, and the repeat stops",
     "AutoDL exps/NAS-Bench-201-algos/R_EA.py `train_and_eval`: a candidate whose cost would exceed the budget is "
     "not counted"),
    ("charge_initial_population", "REA's random initial population", "always filled, its time counted",
     f"`while len(population) < population_size` has no budget test ({_NB360}/regularized_ea.py L134-147; {_NATS}"
     "/regularized_ea.py@46b92e3)",
     "stops at the budget", "each member is a budgeted query"),
    ("rea_mutation", "REA's mutation", "a node, then one of its incoming edges (edges 1/3, 1/6, 1/6, 1/9, 1/9, 1/9)",
     f"then a different op uniformly ({_NB360}/regularized_ea.py L66-83 `mutate_topology_func`; {_NATS}"
     "/regularized_ea.py@46b92e3)",
     "one of the 6 edges uniformly", "then a different op uniformly"),
    ("reinforce_learning_rate", "REINFORCE's Adam learning rate", "0.01",
     f"{_NB360}/algo.sh L3 `--learning_rate 0.01`; {_NATS}/run-all.sh@{NATS_COMMIT[:7]} L21",
     "0.5", "NAS-Bench-201 docs example"),
    ("multi_fidelity_stop", "when Hyperband / BOHB stop", "after 300 hpbandster iterations, whatever the time used",
     f"`run(xargs.n_iters)` with n_iters 300 ({_NB360}/hyperband.py L141 and L201-207, bohb.py L147 and "
     "L241-247); the time budget only names the output folder",
     "when the simulated budget is spent", "as the other methods"),
    ("multi_fidelity_incumbent", "the architecture Hyperband / BOHB return", "the best value at any fidelity",
     f"`max(workers[0].trajectory, key=acc)` ({_NB360}/hyperband.py L155, bohb.py L161)",
     "the best at the highest fidelity evaluated", "hpbandster's incumbent rule"),
    ("promotion_order", "the order promoted configurations run in", "sampling order",
     "hpbandster `SuccessiveHalving.process_results` queues the top 1/η and `get_next_run` walks its data dict in "
     "insertion order",
     "best first", "nb360's earlier rule"),
    ("final_seed", "the final-fidelity metric of the returned architecture", "one random seed's",
     f"`api_full.get_more_info(index, 'ninapro', iepoch=None, hp='200')` keeps is_random=True ({_NB360}"
     "/random_wo_share.py L94, regularized_ea.py L223, reinforce.py L191)",
     "the mean over seeds", "is_random=False, as AutoDL exps/experimental/vis-bench-algos.py plots NATS's curves"),
)


def get_protocol(name: str | Protocol | None) -> Protocol:
    """The protocol named `name` (None: the default, nb360)."""
    if isinstance(name, Protocol):
        return name
    try:
        return PROTOCOLS[name or DEFAULT_PROTOCOL]
    except KeyError:
        raise InputError(f"unknown search protocol {name!r}; choose one of {', '.join(PROTOCOLS)}") from None


def differences(markdown: bool = True) -> str:
    """The rules of the two protocols side by side, with their sources (a Markdown table, or plain text)."""
    if markdown:
        lines = ["| rule | `--protocol nb360` (default) | `--protocol nb201` |", "|---|---|---|"]
        for _field, what, rule360, src360, rule201, src201 in RULES:
            lines.append(f"| {what} | **{rule360}**: {src360} | **{rule201}**: {src201} |")
        return "\n".join(lines)
    import textwrap

    lines = []
    for _field, what, rule360, src360, rule201, _src201 in RULES:
        lines.append(textwrap.fill(f"- {what}: nb360 {rule360}; nb201 {rule201}. Source: {src360}", width=100, break_on_hyphens=False,
                                   initial_indent="  ", subsequent_indent="    "))
    return "\n".join(lines)


if __name__ == "__main__":  # prints the table docs/search-protocols.md holds
    print(differences(markdown=True))
