"""The text of nats_bench's `show` and `query_info_str_by_arch`, from the facade's result objects."""

from __future__ import annotations

from typing import Any

from .context import STOCK_DATASETS


def _metric(loss: float, accuracy: float) -> str:
    return f"loss = {loss:.3f} & top1 = {accuracy:.2f}%"


def _splits(information: Any, dataset: str, topology: bool) -> list[tuple[str, str]]:
    """(label, setname) of the eval sets a dataset's summary line shows (nats_bench's choice per dataset)."""
    if dataset == "cifar10-valid":
        return [("valid", "x-valid")] if topology else [("valid", "x-valid"), ("test", "ori-test")]
    if dataset == "cifar10":
        return [("test ", "ori-test")]
    if dataset in STOCK_DATASETS:
        return [("valid", "x-valid"), ("test", "x-test")]
    # Tasks nats_bench does not know (NAS-Bench-360's ninapro, darcyflow, ...): every recorded eval split.
    seed = information.get_dataset_seeds(dataset)[0]
    return [(name, name) for name in information.query(dataset, seed).get_eval_set()]


def information_lines(information: Any, extra_info: Any = None, topology: bool = True) -> list[str]:
    """nats_bench's print_information: the arch, then per dataset its costs and its train / eval metrics."""
    names = information.get_dataset_names()
    lines = [information.arch_str, f"datasets : {names}, extra-info : {extra_info}"]
    for dataset in names:
        cost = information.get_compute_costs(dataset, False)  # the facade's ArchResults: no times needed here
        latency = cost["latency"]
        shown = f"{latency * 1000:.2f}" if latency is not None and latency > 0 else None
        lines.append(f"{dataset:14s} FLOP={cost['flops']:6.2f} M, Params={cost['params']:.3f} MB, "
                     f"latency={shown} ms.")
        train = information.get_metrics(dataset, "train")
        parts = [f"train : [{_metric(train['loss'], train['accuracy'])}]"]
        for label, setname in _splits(information, dataset, topology):
            info = information.get_metrics(dataset, setname)
            parts.append(f"{label} : [{_metric(info['loss'], info['accuracy'])}]")
        lines.append(f"{dataset:14s} " + ", ".join(parts))
    return lines


def epochs_banner(total_epochs: int) -> str:
    return ">" * 40 + f" {total_epochs:03d} epochs " + ">" * 40


END_BANNER = "<" * 40 + "------------" + "<" * 40
