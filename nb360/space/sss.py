"""The NATS-Bench size search space ("sss"): channel counts of the five layers of a fixed-cell network.

An architecture is five channel counts, one per layer of NATS-Bench's size-search network
(three cells and two residual reduction blocks between them), each one of CANDIDATES = 8, 16, ...,
64, written ``'16:40:56:24:40'``. Indices follow NATS-Bench's order (the released files'
``meta_archs``): the product order of the candidates with the last layer varying fastest, so index
0 is ``'8:8:8:8:8'``, index 1 ``'8:8:8:8:16'`` and index 32,767 ``'64:64:64:64:64'`` (checked against
the released meta file by the tests). Every network uses the same cell, GENOTYPE, the best
topology-space cell. Imports no torch and no numpy.

An ``Arch`` argument may be an index (int), an arch string, or a sequence of five channel counts;
every function validates it and raises ``InputError`` naming the bad part.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Union

from ..errors import InputError

CANDIDATES: tuple[int, ...] = (8, 16, 24, 32, 40, 48, 56, 64)
NUM_LAYERS = 5
NUM_CANDIDATES = len(CANDIDATES)
NUM_ARCHS = NUM_CANDIDATES**NUM_LAYERS  # 32,768
# The fixed cell of every size-space network (NATS-Bench's arch_config["genotype"]).
GENOTYPE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"

Arch = Union[int, str, Sequence[int]]

_POSITION = {c: i for i, c in enumerate(CANDIDATES)}
_POWERS = tuple(NUM_CANDIDATES ** (NUM_LAYERS - 1 - k) for k in range(NUM_LAYERS))


def _is_integer(x: object) -> bool:
    return hasattr(x, "__index__") and not isinstance(x, (str, bytes, bool))


def parse(arch_string: str) -> tuple[int, ...]:
    """Parse ``'16:40:56:24:40'`` into its five channel counts; errors name the bad layer."""
    if not isinstance(arch_string, str):
        raise InputError(f"expected a size-space arch string such as '16:40:56:24:40', got {type(arch_string).__name__}")
    parts = arch_string.split(":")
    if len(parts) != NUM_LAYERS:
        raise InputError(f"size-space arch {arch_string!r} has {len(parts)} layers separated by ':', expected "
                         f"{NUM_LAYERS} (e.g. '16:40:56:24:40')")
    return check_channels(parts, arch_string)


def check_channels(values: Sequence[object], what: object = None) -> tuple[int, ...]:
    """Validate five channel counts (ints or decimal strings), each one of CANDIDATES."""
    what = values if what is None else what
    if len(values) != NUM_LAYERS:
        raise InputError(f"a size-space arch needs {NUM_LAYERS} channel counts, got {len(values)}: {what!r}")
    channels = []
    for layer, value in enumerate(values):
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if not _is_integer(value) or int(value) not in _POSITION:  # type: ignore[call-overload]
            raise InputError(f"layer {layer} of {what!r} has {value!r} channels; each layer takes one of "
                             f"{', '.join(map(str, CANDIDATES))}")
        channels.append(int(value))  # type: ignore[call-overload]
    return tuple(channels)


def channels(arch: Arch) -> tuple[int, ...]:
    """The five channel counts of an arch."""
    if _is_integer(arch):
        index = int(arch)  # type: ignore[call-overload]
        if not 0 <= index < NUM_ARCHS:
            raise InputError(f"arch index {index} is out of range: size-space indices run from 0 to {NUM_ARCHS - 1}")
        return tuple(CANDIDATES[(index // p) % NUM_CANDIDATES] for p in _POWERS)
    if isinstance(arch, bool):
        raise InputError("an arch cannot be a bool")
    if isinstance(arch, str):
        return parse(arch)
    if isinstance(arch, Sequence) or hasattr(arch, "__len__"):
        return check_channels(list(arch), arch)
    raise InputError(f"cannot read a size-space arch from {type(arch).__name__} {arch!r}: give an index, a string "
                     "such as '16:40:56:24:40' or five channel counts")


def to_str(arch: Arch) -> str:
    """The arch string ``'c0:c1:c2:c3:c4'``."""
    return ":".join(map(str, channels(arch)))


def index_of(arch: Arch) -> int:
    """The NATS-Bench size-space index of an arch."""
    return sum(_POSITION[c] * p for c, p in zip(channels(arch), _POWERS))


def arch_str(index: int) -> str:
    """The arch string at a NATS-Bench size-space index."""
    if not _is_integer(index):
        raise InputError(f"arch_str takes an index, got {type(index).__name__} {index!r}")
    return to_str(int(index))


def all_arch_strs() -> list[str]:
    """The 32,768 arch strings in index order (NATS-Bench's meta_archs)."""
    names = [str(c) for c in CANDIDATES]
    return [f"{a}:{b}:{c}:{d}:{e}" for a in names for b in names for c in names for d in names for e in names]


def sample(rng: random.Random | None = None) -> int:
    """A uniformly random index."""
    return (rng or random).randrange(NUM_ARCHS)


def neighbours(arch: Arch) -> list[int]:
    """Indices of the archs that differ from `arch` in exactly one layer's channel count."""
    base = channels(arch)
    out = []
    for layer in range(NUM_LAYERS):
        for c in CANDIDATES:
            if c != base[layer]:
                out.append(index_of(base[:layer] + (c,) + base[layer + 1:]))
    return out
