"""Search methods: tabular search on a table (`nb360.search.tabular`) and weight-sharing search on a task
(`nb360.search.supernet`), found by name through `METHODS`.

Importing this package imports neither torch nor matplotlib; `nb360.search.supernet` imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class MethodInfo:
    """A search method: its name, what it searches on, and where it comes from."""

    name: str
    kind: str  # "tabular" (queries a table) or "supernet" (trains a supernet on a task: NB201 or DARTS space)
    summary: str
    reference: str


METHODS: dict[str, MethodInfo] = {m.name: m for m in (
    MethodInfo("rs", "tabular", "random search", "AutoDL RANDOM.py / NATS random_wo_share.py"),
    MethodInfo("rea", "tabular", "regularized (ageing) evolution, population 10, sample 3",
               "Real et al. 2019; AutoDL R_EA.py"),
    MethodInfo("ls", "tabular", "local search over the full one-edge neighbourhood, random restarts",
               "NASLib LocalSearch"),
    MethodInfo("reinforce", "tabular", "REINFORCE with an EMA baseline over a per-edge softmax policy",
               "AutoDL reinforce.py"),
    MethodInfo("hyperband", "tabular", "Hyperband over the epochs of the search fidelity",
               "Li et al. 2018; hpbandster budgets as NATS's BOHB/HB scripts"),
    MethodInfo("sh", "tabular", "successive halving (Hyperband's most exploratory bracket, repeated)",
               "Jamieson & Talwalkar 2016"),
    MethodInfo("bohb", "tabular", "BOHB: Hyperband's brackets with configurations from a TPE-style KDE model",
               "Falkner et al. 2018; hpbandster as NATS's / NAS-Bench-360's bohb.py configure it"),
    MethodInfo("darts", "supernet", "DARTS, first or second order, on the NB201 supernet or the DARTS space",
               "Liu et al. 2019; AutoDL DARTS-V1/V2; quark0/darts"),
    MethodInfo("pcdarts", "supernet", "PC-DARTS: partial channels (K=4) and edge normalisation, DARTS space only",
               "Xu et al. 2020; yuhuixu1993/PC-DARTS"),
    MethodInfo("gaea", "supernet", "GAEA: exponentiated-gradient architecture updates on the simplex (GAEA PC-DARTS "
               "in the DARTS space)", "Li et al. 2021; gaea_release; NAS-Bench-360 darts/gaea"),
    MethodInfo("gdas", "supernet", "GDAS: one Gumbel-softmax sampled op per edge, straight-through gradient (NB201)",
               "Dong & Yang 2019; AutoDL NATS-algos search-cell.py --algo gdas"),
    MethodInfo("setn", "supernet", "SETN: uniformly sampled paths train the weights, softmax α on validation; the "
               "top-100 archs by α scored on validation (NB201)", "Dong & Yang 2019; AutoDL search-cell.py --algo setn"),
    MethodInfo("enas", "supernet", "ENAS: an LSTM controller samples paths, trained by REINFORCE on validation "
               "accuracy (NB201)", "Pham et al. 2018; AutoDL search-cell.py --algo enas"),
    MethodInfo("random-ws", "supernet", "random weight-sharing: uniform random paths train the weights; 100 random "
               "archs scored on validation (NB201)", "Li & Talwalkar 2019; AutoDL search-cell.py --algo random"),
    MethodInfo("e2rnas", "supernet", "E2RNAS: bi-level multi-objective search (val loss, adversarial loss, size) "
               "with MGDA", "Yue et al. 2022; yuezhixiong/NAS-Benchmark"),
)}


def get_method(name: str) -> MethodInfo:
    """The method registered as `name`."""
    try:
        return METHODS[name]
    except KeyError:
        raise InputError(f"unknown search method {name!r}; known: {', '.join(METHODS)}") from None


def list_methods(kind: str | None = None) -> list[MethodInfo]:
    """Every registered method, or those of one kind ("tabular" or "supernet")."""
    return [m for m in METHODS.values() if kind is None or m.kind == kind]


__all__ = ["METHODS", "MethodInfo", "get_method", "list_methods"]
