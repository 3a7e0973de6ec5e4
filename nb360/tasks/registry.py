"""Find the task cards (installed `nb360/cards/` or a source checkout's `tasks/`) and look tasks up by name."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from ..errors import DataError, InputError
from .card import TaskCard
from .schema import read_card

# The ten NAS-Bench-360 tasks in the order the benchmark lists them; other cards sort after, by name.
TASK_ORDER: tuple[str, ...] = ("cifar100", "spherical", "ninapro", "fsd50k", "darcyflow", "psicov", "cosmic", "ecg",
                               "satellite", "deepsea")

CARDS_ENV = "NB360_CARDS_DIR"
# What each `suite` of a card means, in the order `nb360 tasks list` shows them.
SUITE_TITLES: dict[str, str] = {
    "nb360": "NAS-Bench-360: the ten tasks of the benchmark",
    "e2rnas": "E2RNAS suite: the E2RNAS paper's own datasets, outside the ten NAS-Bench-360 tasks",
}


def card_dirs(package_file: str | None = None, package_paths: list[str] | None = None) -> list[Path]:
    """Directories that may hold cards, most specific first.

    1. `$NB360_CARDS_DIR` when set (tests, or a user's own cards);
    2. a source checkout's `tasks/` next to the package (what a developer edits; in an editable
       install the copy under site-packages is only refreshed by a rebuild);
    3. `cards/` in every directory of the `nb360` package (a wheel installs the cards there).
    `package_file` / `package_paths` default to nb360's `__file__` / `__path__`.
    """
    import nb360

    package_file = package_file or nb360.__file__
    package_paths = list(package_paths if package_paths is not None else getattr(nb360, "__path__", []))
    dirs: list[Path] = []
    env = os.environ.get(CARDS_ENV)
    if env:
        dirs.append(Path(env))
    package_dir = Path(package_file).resolve().parent
    checkout = package_dir.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "tasks").is_dir():
        dirs.append(checkout / "tasks")
    for entry in package_paths or [str(package_dir)]:
        dirs.append(Path(entry) / "cards")
    return dirs


def cards_dir(dirs: list[Path] | None = None) -> Path:
    """The directory the registry reads: the first of `dirs` (default `card_dirs()`) holding at least one card."""
    tried = card_dirs() if dirs is None else dirs
    for directory in tried:
        if directory.is_dir() and any(directory.glob("*.toml")):
            return directory
    raise DataError("no task cards found (looked in " + ", ".join(str(d) for d in tried) +
                    "); reinstall nb360 (`pip install -e .` in a checkout) or set NB360_CARDS_DIR to a directory of "
                    "<task>.toml cards")


@lru_cache(maxsize=8)
def _load_all(directory: str) -> tuple[TaskCard, ...]:
    cards = [read_card(path) for path in sorted(Path(directory).glob("*.toml"))]
    rank = {name: i for i, name in enumerate(TASK_ORDER)}
    suites = list(SUITE_TITLES)
    return tuple(sorted(cards, key=lambda card: (suites.index(card.suite), rank.get(card.name, len(rank)),
                                                 card.name)))


def list_tasks(suite: str | None = None) -> list[TaskCard]:
    """Every task card (or those of one `suite`), the ten NAS-Bench-360 tasks first in the benchmark's order."""
    cards = list(_load_all(str(cards_dir())))
    if suite is None:
        return cards
    if suite not in SUITE_TITLES:
        raise InputError(f"unknown task suite {suite!r}: choose one of {', '.join(SUITE_TITLES)}")
    return [card for card in cards if card.suite == suite]


def task_names() -> list[str]:
    """Names of every known task, in `list_tasks()` order."""
    return [card.name for card in list_tasks()]


def get_task(name: str) -> TaskCard:
    """The card of task `name`; an unknown name raises InputError listing the known tasks."""
    for card in list_tasks():
        if card.name == name:
            return card
    raise InputError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}")


def task_data_dir(root: str | os.PathLike[str], name: str) -> Path:
    """The directory holding task `name`'s released files under `root`.

    `root` itself, as `nb360 data download NAME --root DIR` fills DIR; or `root/<name>/` when that
    subdirectory holds some of the task's files and `root` holds none (a shared data root). A
    `<name>/` folder without the task's files is not taken: PSICOV's own archive has a psicov/ folder.
    """
    root_path = Path(root).expanduser()
    nested = root_path / name
    files = [f.name for f in get_task(name).files]
    if (nested.is_dir() and any((nested / f).exists() for f in files)
            and not any((root_path / f).exists() for f in files)):
        return nested
    return root_path
