"""The report's plots (matplotlib, Agg backend): learning curves and leaderboards."""

from __future__ import annotations

from pathlib import Path
from typing import Any


from ..evaluate import model_label
from ..tasks import get_task
from .runs import Run


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(run: Run, path: Path) -> None:
    """Train loss, test metric (reported form) and learning rate per epoch, one line per seed."""
    plt = _pyplot()
    metric = get_task(run.config["task"]).metric.name
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for seed, records in sorted(run.logs.items()):
        if not records:
            continue
        epochs = [r["epoch"] + 1 for r in records]
        axes[0].plot(epochs, [r["train"]["loss"] for r in records], marker=".", label=f"seed {seed}")
        tested = [r for r in records if "test" in r]
        axes[1].plot([r["epoch"] + 1 for r in tested], [r["test"].get("reported") for r in tested], marker=".",
                     label=f"seed {seed}")
        axes[2].plot(epochs, [r["lr"] for r in records], drawstyle="steps-post", label=f"seed {seed}")
    axes[0].set_title("train loss")
    axes[1].set_title(f"test {metric} (reported form, lower is better)")
    axes[2].set_title("learning rate")
    axes[2].set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(f"{run.name}: {model_label(run.config['model'])} on {run.config['task']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
