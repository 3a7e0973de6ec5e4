"""The `[robustness]` section of a task card: the threat model and the robust metric, validated.

A card states how the task is attacked after retraining (`nb360 evaluate --attacks`):

    [robustness]
    attackable = true
    unit = "pixel"          # what ε is measured in (UNITS below)
    eps = 0.00784313725490196
    eps_text = "2/255"
    norm = "linf"
    box = [0.0, 1.0]        # valid inputs, in `unit` (optional)
    channels = [0]          # only these input channels may be perturbed (optional; default all)
    perturb = "..."         # which inputs may be perturbed, in words
    robust_metric = "..."   # the task's own metric under attack, in words
    source = "..."          # where ε and the unit come from (a paper's protocol, or nb360's choice)

or, where an attack has no meaning, `attackable = false` with the `reason` (and the relaxation a
user could choose instead, if one is accepted). An optional `[robustness.reference]` table holds
published robust results (`rows` of clean / FGSM / PGD accuracy and parameters with their source).
Units: "pixel" (a [0, 1] image intensity; converted by the loader's per-channel mean and std),
"model" (the values the network receives), "train-std" (standard deviations of the training inputs,
per channel), "raw" (the released quantity before the loader's pointwise normaliser, e.g. Darcy
Flow's permeability).
"""

from __future__ import annotations

from typing import Any

UNITS = ("pixel", "model", "train-std", "raw")
_KEYS = {"attackable", "unit", "eps", "eps_text", "norm", "box", "channels", "perturb", "robust_metric", "source",
         "rationale", "reason", "relaxation", "uncertain", "reference", "region"}
_REFERENCE_KEYS = {"source", "units", "protocol", "rows", "note"}
_ROW_KEYS = {"method", "variant", "clean", "fgsm", "pgd", "params_m", "note"}


def check_robustness(c: Any, data: Any, in_channels: int) -> dict[str, Any]:
    """Validate a card's [robustness] table with the card's checker `c`; return it."""
    where = "robustness"
    data = c.table(data, where)
    c.unknown_keys(data, _KEYS, where)
    attackable = c.get(data, "attackable", where, bool)
    c.text(data, "robust_metric", where)
    c.text(data, "source", where)
    if not attackable:
        c.text(data, "reason", where)
        c.text(data, "relaxation", where, required=False)
    else:
        c.choice(data, "unit", where, UNITS)
        eps = c.get(data, "eps", where, (int, float))
        if not (eps > 0) or eps == float("inf"):
            raise c.fail(f"{where}.eps", f"must be a positive finite number, got {eps}")
        c.text(data, "eps_text", where)
        c.choice(data, "norm", where, ("linf",))
        c.text(data, "perturb", where)
        box = c.get(data, "box", where, list, required=False)
        if box is not None and (len(box) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                          for v in box) or not box[0] < box[1]):
            raise c.fail(f"{where}.box", f"must be [low, high] with low < high, got {box!r}")
        channels = c.get(data, "channels", where, list, required=False)
        if channels is not None and (not channels or any(not isinstance(k, int) or isinstance(k, bool)
                                                         or not 0 <= k < in_channels for k in channels)):
            raise c.fail(f"{where}.channels", f"must list input channels in 0..{in_channels - 1}, got {channels!r}")
    c.strings(data, "uncertain", where)
    if "reference" in data:
        _check_reference(c, c.table(data["reference"], f"{where}.reference"))
    return data


def _check_reference(c: Any, ref: dict[str, Any]) -> None:
    where = "robustness.reference"
    c.unknown_keys(ref, _REFERENCE_KEYS, where)
    for key in ("source", "units", "protocol"):
        c.text(ref, key, where)
    rows = c.get(ref, "rows", where, list)
    if not rows:
        raise c.fail(f"{where}.rows", "must list at least one row")
    for i, row in enumerate(rows):
        rwhere = f"{where}.rows[{i}]"
        row = c.table(row, rwhere)
        c.unknown_keys(row, _ROW_KEYS, rwhere)
        c.text(row, "method", rwhere)
        c.text(row, "variant", rwhere)
        values = [c.get(row, k, rwhere, (int, float), required=False) for k in ("clean", "fgsm", "pgd", "params_m")]
        if all(v is None for v in values) and not str(row.get("note", "")).strip():
            raise c.fail(f"{rwhere}.note", "is missing; give the figures or a note saying why there are none")
