"""results.json: per-seed figures, mean +- std, the data's origin and the comparable reference row."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tasks import TaskCard
from .spec import RESULTS_FORMAT, STD_NOTE


# ----------------------------------------------------------------------------- results
def data_source(datasets: dict[str, Any]) -> dict[str, Any]:
    """Where the evaluated data came from: the released files, or a generated stand-in (with its settings)."""
    test = datasets.get("test")
    source = getattr(test, "source", "released")
    record = getattr(test, "provenance", None) or {}
    out = {"source": source, **({"generator": generator_settings(record)} if source != "released" else {})}
    try:
        out["test_items"] = len(test)  # checked against the card's test size (`size_mismatch`)
    except TypeError:
        pass
    return out


# relative difference from the card's test size beyond which a "released" set is a fixture or a subset (ECG's and
# FSD50K's card sizes are rounded, by up to about 3%)
SIZE_TOLERANCE = 0.05


def size_mismatch(card: TaskCard, data: dict[str, Any]) -> str | None:
    """Why a released-layout test set is not the released one (its size differs from the card's), or None."""
    n = data.get("test_items")
    expected = ((card.splits.get("retrain") or {}).get("sizes") or {}).get("test")
    if n is None or not expected or abs(n - expected) <= SIZE_TOLERANCE * expected:
        return None
    return (f"its test split has {n:,} items, not the released {expected:,} (a fixture or a subset in the released "
            "file layout)")


def generator_settings(record: dict[str, Any]) -> dict[str, Any]:
    """The settings that identify a generated set, from its provenance record (darcyflow_generated.json)."""
    return {k: record[k] for k in ("generator", "seed", "n", "resolution") if k in record}


def describe_data(data: dict[str, Any]) -> str:
    """One line on the data's origin: the released files, or a generated stand-in with its settings."""
    if data["source"] == "released":
        return "the released benchmark files"
    g = data.get("generator") or {}
    n = g.get("n")
    parts = [f"{n.get('train')} train + {n.get('test')} test" if isinstance(n, dict) else None,
             f"{g['resolution']}x{g['resolution']}" if "resolution" in g else None,
             f"seed {g['seed']}" if "seed" in g else None, g.get("generator")]
    return f"{data['source'].upper()} stand-in ({', '.join(p for p in parts if p)}), not the released data"


def summarize(config: dict[str, Any], per_seed: list[dict[str, Any]], card: TaskCard,
              data: dict[str, Any] | None = None) -> dict[str, Any]:
    """results.json: per-seed figures, mean +- std, and the card's reference results with their source."""
    data = data or {"source": "released"}
    metric = card.metric.name
    summary: dict[str, Any] = {"std": STD_NOTE, "n": len(per_seed)}
    for key in ("reported", metric):
        values = [r["test"].get(key) for r in per_seed]
        finite = [float(v) for v in values if v is not None and np.isfinite(v)]
        summary[key] = ({"mean": float(np.mean(finite)), "std": float(np.std(finite)), "n": len(finite)}
                        if finite else {"mean": None, "std": None, "n": 0})
    refs = card.reference_results
    model, protocol = config["model"], config["protocol"]
    baseline = model["kind"] == "backbone" and model["backbone"] in ("wrn", "dense-wrn", "resnet1d") and \
        model.get("options", {}).get("pooling", "original") == "original"
    mismatch = size_mismatch(card, data) if data["source"] == "released" else None
    tuned = model.get("backbone") == "wrn-asha"
    if data["source"] != "released":
        comparable = {"method": None, "variant": None,
                      "note": f"no reference row is comparable: the data is a {data['source']} stand-in, not the "
                              "released benchmark data the reference results were measured on"}
    elif mismatch:
        comparable = {"method": None, "variant": None, "note": f"no reference row is comparable: {mismatch}"}
    elif tuned and not protocol["changed"] and model["tuning"]["trials"] == model["tuning"]["card_trials"]:
        comparable = {"method": "WRN", "variant": "ASHA (tuned)",
                      "note": "same backbone, tuning space, trial count and retrain protocol as the card's WRN / ASHA "
                              "row (Ray Tune's ASHA in place of Determined's adaptive_asha)"}
    elif model["kind"] == "xgboost" and not protocol["changed"]:
        comparable = {"method": "XGBoost", "variant": "default",
                      "note": "same features, settings and splits as the card's XGBoost row (xgboost/xgboost_360.py)"}
    elif baseline and not protocol["changed"]:
        comparable = {"method": "WRN", "variant": "default",
                      "note": "same backbone and protocol as the card's baseline row"}
    elif model["kind"] == "darts" and protocol.get("name") == "nb360" and not protocol["changed"]:
        comparable = {"method": "DARTS", "variant": "GAEA",
                      "note": "same evaluation network and protocol as the card's DARTS / GAEA row (whose genotypes "
                              "came from NAS-Bench-360's own GAEA PC-DARTS searches)"}
    else:
        why = ("the protocol was changed (--epochs)" if protocol["changed"] else
               "fewer ASHA trials than the card's" if tuned else "a different model")
        comparable = {"method": None, "variant": None,
                      "note": f"no reference row is directly comparable: {why}"}
    return {
        "format": RESULTS_FORMAT, "task": card.name, "title": card.title,
        "metric": {"name": metric, "reported_as": card.metric.reported_as, "direction": card.metric.direction,
                   "reported": "the lower-is-better form the reference table uses (1 - x for mAP, F1, AUROC)"},
        "model": {**model, "params": config.get("params")},
        "protocol": {**protocol, "train": config["train"], "eval_every": config["eval_every"]},
        "seeds": [r["seed"] for r in per_seed], "per_seed": per_seed, "summary": summary,
        "reference": {"source": refs["source"], "units": refs["units"], "rows": refs["rows"],
                      "other": refs.get("other", []), "comparable": comparable},
        "processes": config["processes"], "device_type": config["device_type"], "data": data,
    }


