"""Plots of search runs (matplotlib, Agg backend: files only, no display needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_trajectories(curves: Sequence[dict[str, Any]], path: str | os.PathLike, *, xlabel: str = "simulated time (s)",
                      ylabel: str = "test metric of the incumbent", title: str = "", band: str = "iqr",
                      budget: float | None = None, note: str = "") -> None:
    """The incumbent over repeats, one line per entry {label, grid, values (R, G)}: median with the 25-75% band
    (band="iqr"), or mean ± one standard deviation (band="std", NAS-Bench-360's figure). `budget` draws the
    simulated budget as a vertical line; `note` is printed under the axes."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 4.8) if note else (6.4, 4.2))
    for curve in curves:
        grid, values = np.asarray(curve["grid"]), np.asarray(curve["values"], dtype=float)
        ok = ~np.isnan(values).all(axis=0)
        if not ok.any():
            continue
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                if band == "std":
                    med = np.nanmean(values[:, ok], axis=0)
                    spread = np.nanstd(values[:, ok], axis=0)
                    low, high = med - spread, med + spread
                else:
                    med = np.nanmedian(values[:, ok], axis=0)
                    low = np.nanquantile(values[:, ok], 0.25, axis=0)
                    high = np.nanquantile(values[:, ok], 0.75, axis=0)
        line, = ax.plot(grid[ok], med, label=f"{curve['label']} (n={values.shape[0]})")
        ax.fill_between(grid[ok], low, high, color=line.get_color(), alpha=0.15, linewidth=0)
    if budget is not None:
        ax.axvline(budget, color="black", linestyle=":", linewidth=1, label=f"budget {budget:g} s")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    what = "mean ± std" if band == "std" else "median and interquartile range"
    ax.set_title(title or f"incumbent over time: {what} over repeats")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.07, 1, 1) if note else None)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_series(steps: Sequence[int], series: dict[str, Sequence[float]], path: str | os.PathLike, *,
                ylabel: str, title: str, xlabel: str = "architecture step") -> None:
    """Several per-step series on one axis (λ trajectory, objectives)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, values in series.items():
        ax.plot(steps, values, label=name, linewidth=1.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if series:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_tradeoff(points: Sequence[dict[str, Any]], path: str | os.PathLike, *, metric: str, title: str) -> None:
    """Clean and robust score against model size, one marker per found architecture {label, size, clean, robust}."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.0))
    for key, ax, name in (("clean", axes[0], "clean"), ("robust", axes[1], "under PGD")):
        for point in points:
            if point.get(key) is None:
                continue
            ax.scatter([point["size"]], [point[key]], s=60, label=point["label"])
            ax.annotate(point["label"], (point["size"], point[key]), textcoords="offset points", xytext=(5, 5),
                        fontsize=8)
        ax.set_xlabel("parameters of the evaluation network (M)")
        ax.set_ylabel(f"{metric} ({name})")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
