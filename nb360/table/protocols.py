"""Training protocols of released tables, which the NATS-Bench files do not store themselves.

The importer attaches these to imported run groups, each with its source, so a table says how
its numbers were produced. Fields the sources do not establish are None.
"""

from __future__ import annotations

from typing import Any

_NB201_SOURCE = ("NAS-Bench-201 hyper-opts/200E.config as summarised in nb360's reference "
                 "nb201-table.md §7 (SGD 0.1 nesterov, cosine to 0, wd 5e-4, batch 256)")
_NB360_SOURCE = ("rtu715/NAS-Bench-360@587bb09 precompute/*/benchmark/hyper-opts/*.config and tss-collect.py, "
                 "as summarised in nb360's reference nb201-table.md §7")

_OPTIMIZER = {"optimizer": "SGD", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
              "schedule": "cosine", "eta_min": 0.0, "warmup_epochs": 0}

_BY_TASK: dict[str, dict[str, Any]] = {
    "ninapro": {**_OPTIMIZER, "batch_size": 256, "criterion": "cross_entropy", "schedule_updates": "per iteration",
                "split_sizes": {"train": 3297, "eval (ori-test)": 659},
                "split_note": "train = train+val, evaluated on the held-out 659 (from tss-collect.py time calibration; "
                              "[uncertain]: the dataset code is not public)",
                "metric_note": "accuracy in %", "source": _NB360_SOURCE},
    "darcyflow": {**_OPTIMIZER, "batch_size": 16, "criterion": "relative_l2 (LpLoss size_average=False, / batch)",
                  "schedule_updates": "per iteration", "split_sizes": {"train": 1000, "eval (ori-test)": 100},
                  "split_note": "[uncertain], as for ninapro",
                  "metric_note": "'accuracy' = 1 - relative L2 (a fraction, not %); loss = relative L2",
                  "source": _NB360_SOURCE},
}
for _name in ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120"):
    _BY_TASK[_name] = {**_OPTIMIZER, "batch_size": 256, "criterion": "cross_entropy", "split_sizes": None,
                       "metric_note": "accuracy in %", "source": _NB201_SOURCE}


_SSS_NOTE = ("NATS-Bench size space (network 'infer.shape.tiny', hp '01'/'12'/'90' = epochs of the cosine "
             "schedule); the optimiser is assumed to be NAS-Bench-201's [uncertain]")


def protocol_for(task: str, hp: str, epochs: int, network: dict[str, Any]) -> dict[str, Any]:
    """The protocol record of an imported run: known settings with their source, plus what the file holds."""
    known = dict(_BY_TASK.get(task, {"source": None}))
    if network.get("name") == "infer.shape.tiny":
        known["source"] = _SSS_NOTE + (f"; {known['source']}" if known.get("source") else "")
    elif hp != "200" and known.get("source"):
        known["source"] += f"; the hp '{hp}' runs are assumed to use the same optimiser [uncertain]"
    return {"epochs": epochs, "hp": hp, **known, "network": network}
