"""Comparing nats_bench's answers with nb360.compat.nats's: equal up to the table's float32 storage."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

_NUMBER = re.compile(r"-?\d+\.\d+|-?\d+")


def same_text(a: str, b: str) -> bool:
    """Equal strings, numbers compared to their last printed digit (float32 may flip a final digit)."""
    if a == b:
        return True
    ta, tb = _NUMBER.split(a), _NUMBER.split(b)
    na, nb = _NUMBER.findall(a), _NUMBER.findall(b)
    if ta != tb or len(na) != len(nb):
        return False
    for x, y in zip(na, nb):
        digits = len(x.split(".")[1]) if "." in x else 0
        if abs(float(x) - float(y)) > 1.01 * 10.0 ** -digits + 1e-6 * abs(float(x)):
            return False
    return True


def same(r: Any, o: Any, where: str = "") -> None:
    """Assert that nats_bench's value r and nb360's value o agree: result objects by state and repr, containers
    item by item, numbers to 1e-6 relative (float32 storage), text with same_text."""
    if type(r).__name__ in ("ArchResults", "ResultsCount") and type(r).__module__.startswith("nats_bench"):
        assert type(o).__name__ == type(r).__name__, where
        same(r.state_dict(), o.state_dict(), where + ".state_dict()")
        assert same_text(repr(r), repr(o)), (where, repr(r), repr(o))
    elif isinstance(r, dict):
        assert isinstance(o, dict) and set(r) == set(o), (where, sorted(map(str, r)), sorted(map(str, o)))
        for k in r:
            same(r[k], o[k], f"{where}[{k!r}]")
    elif isinstance(r, (list, tuple)):
        assert isinstance(o, (list, tuple)) and len(r) == len(o), (where, r, o)
        for i, (x, y) in enumerate(zip(r, o)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(r, np.ndarray):
        assert np.array_equal(r, np.asarray(o)), where
    elif isinstance(r, str):
        assert isinstance(o, str) and same_text(r, o), (where, r, o)
    elif isinstance(r, (bool, type(None))) or isinstance(r, (int, np.integer)) and not isinstance(r, bool) and \
            isinstance(o, (int, np.integer)):
        assert r == o, (where, r, o)
    elif isinstance(r, (float, np.floating, int)):
        assert isinstance(o, (int, float, np.floating)) and not isinstance(o, bool), (where, r, o)
        assert math.isclose(float(r), float(o), rel_tol=1e-6, abs_tol=1e-9) or (math.isnan(r) and math.isnan(o)), \
            (where, r, o)
    else:
        assert r == o, (where, r, o)
