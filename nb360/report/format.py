"""Markdown formatting helpers: numbers, mean ± std, tables, protocol lines."""

from __future__ import annotations

import re
from typing import Any


def num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def mean_std(mean: Any, std: Any, n: int | None = None) -> str:
    """'mean ± std', or the value alone with '(1 seed)' for one seed (a ± of 0 would claim a spread never measured)."""
    if n == 1:
        return f"{num(mean)} (1 seed)"
    return f"{num(mean)} ± {num(std)}" if std is not None else num(mean)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return out


def protocol_line(config: dict[str, Any]) -> str:
    p = config["protocol"]
    t = config["train"]
    model = config.get("model", {})
    if model.get("kind") == "xgboost":
        text = (f"XGBoost, {p['epochs']} rounds at most (max_depth {t['max_depth']}, eta {t['learning_rate']}, subsample "
                f"{t['subsample']}, early stopping after {t['early_stopping_rounds']} rounds without improvement on "
                f"val); {p['split']}")
        return text + (f" — **shortened** from {p['card_epochs']} rounds: not comparable with the reference results"
                       if p["shortened"] else "")
    text = (f"{p['epochs']} epochs, batch {t['batch_size']}, SGD lr {t['lr']} momentum {t['momentum']}"
            f"{' nesterov' if t['nesterov'] else ''} weight decay {t['weight_decay']}, {t['schedule']} schedule")
    if t["schedule"] == "step":
        text += f" (x{t['gamma']} at epochs {', '.join(map(str, t['milestones'])) or 'none'})"
    if model.get("backbone") == "wrn-asha":
        tuning = model["tuning"]
        text += (f"; lr, momentum, weight decay (and the WRN's dropout) tuned per seed by ASHA: {tuning['trials']} "
                 f"trials (the card's tuning file: {tuning['card_trials']}), rungs {tuning['rungs'][0]}")
    if p["shortened"]:
        text += (f" — **shortened** from the card's {p['card_epochs']} epochs: not comparable with the reference "
                 "results")
    elif p["changed"]:
        text += f" — changed from the card's {p['card_epochs']} epochs"
    return text
