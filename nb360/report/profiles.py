"""Performance profiles (Dolan & Moré 2002), as NAS-Bench-360 draws them across its tasks.

Definition (NAS-Bench-360 performance_profiles/Profiles.ipynb and optperfprofpy.py at rtu715/NAS-Bench-360@240db02 /
@2756f7f, after E. D. Dolan and J. J. Moré, "Benchmarking optimization software with performance
profiles", Math. Programming 91, 2002): for each task t the methods' errors v[m, t] (the
lower-is-better form every table reports) are divided by the best of them,
r[m, t] = v[m, t] / min_m v[m, t], and a method's profile is

    ρ_m(τ) = |{t : r[m, t] ≤ τ}| / |tasks|,

the fraction of tasks on which it is within a factor τ of the best; ρ_m(1) is the fraction it wins.
A method without a result on a task (n/a in the published table, not run, failed) never comes
within any τ there: r = ∞, as Dolan & Moré count a solver's failure. (The notebook's own data has
every method on every task, so it needed no such rule; its "infeasible" rule does not apply.) On a
task whose best value is 0, the methods at 0 have r = 1 and the others r = ∞ (a ratio to 0 is
undefined); negative values are refused.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import InputError

DEFINITION = ("Performance profile (Dolan & Moré 2002, as NAS-Bench-360 draws it): on each task a method's error "
              "(the lower-is-better form) is divided by the best method's error on that task, r = v / min v; "
              "ρ(τ) is the fraction of tasks on which the method is within a factor τ of the best (r ≤ τ). "
              "ρ(1) is the fraction of tasks it wins; a method without a result on a task has r = ∞ there.")


def performance_profile(values: dict[str, dict[str, float | None]], tasks: list[str]) -> dict[str, Any]:
    """Ratios and profiles of methods over tasks: `values[method][task]` (lower is better; None = no result).

    Returns {"methods", "tasks", "ratios" {m: {t: r or inf}}, "taus" (every finite ratio, sorted, from 1),
    "rho" {m: [ρ_m(τ) for τ in taus]}, "best" {t: best value or None}}.
    """
    if not tasks:
        raise InputError("a performance profile needs at least one task")
    methods = list(values)
    ratios: dict[str, dict[str, float]] = {m: {} for m in methods}
    best: dict[str, float | None] = {}
    for t in tasks:
        column = {m: values[m].get(t) for m in methods}
        finite = [v for v in column.values() if v is not None and math.isfinite(v)]
        if any(v < 0 for v in finite):
            raise InputError(f"task {t}: negative values cannot be compared by ratio (performance profiles need "
                             "errors >= 0)")
        low = min(finite) if finite else None
        best[t] = low
        for m, v in column.items():
            if v is None or not math.isfinite(v) or low is None:
                ratios[m][t] = math.inf
            elif low == 0:
                ratios[m][t] = 1.0 if v == 0 else math.inf
            else:
                ratios[m][t] = v / low
    taus = sorted({1.0} | {r for m in methods for r in ratios[m].values() if math.isfinite(r)})
    rho = {m: [rho_at(ratios[m], tasks, tau) for tau in taus] for m in methods}
    return {"methods": methods, "tasks": list(tasks), "ratios": ratios, "taus": taus, "rho": rho, "best": best}


def rho_at(ratios: dict[str, float], tasks: list[str], tau: float) -> float:
    """ρ(τ): the fraction of `tasks` whose ratio is at most τ."""
    return sum(ratios[t] <= tau for t in tasks) / len(tasks)


def profile_table(profile: dict[str, Any], taus: tuple[float, ...] = (1.0, 1.1, 1.25, 1.5, 2.0, 4.0)) -> list[list[str]]:
    """Rows [method, ρ(τ) for τ in taus, tasks with a result] for a report table."""
    rows = []
    for m in profile["methods"]:
        r = profile["ratios"][m]
        have = sum(math.isfinite(v) for v in r.values())
        rows.append([m] + [f"{rho_at(r, profile['tasks'], tau):.2f}" for tau in taus] +
                    [f"{have}/{len(profile['tasks'])}"])
    return rows


def plot_profiles(profile: dict[str, Any], path: Path, *, title: str) -> None:
    """ρ_m(τ) as steps over a log τ axis, one line per method."""
    from .plots import _pyplot

    plt = _pyplot()
    taus = profile["taus"]
    top = max(taus[-1] * 1.25, 2.0)
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    for m in profile["methods"]:
        xs = list(taus) + [top]
        ys = profile["rho"][m] + [profile["rho"][m][-1]]
        ax.step(xs, ys, where="post", label=m, linewidth=2, alpha=0.8)
    ax.set_xscale("log")
    ax.set_xlim(1, top)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("τ: within a factor τ of the best method's error on a task (log scale)", fontsize=8)
    ax.set_ylabel(f"ρ(τ): fraction of the {len(profile['tasks'])} tasks", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
