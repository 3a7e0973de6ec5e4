"""NATS-algos-style search scripts run unchanged on nb360 and on nats_bench: identical trajectories.

The scripts (tests/nats_algos.py: REA, random search, REINFORCE, BOHB's hyperband loop) search a
full-size SYNTHETIC table in the stock layout (tests/nats_records.py SyntheticNats: all 15,625 /
32,768 archs) with fixed seeds, once through `nb360.compat.nats.create(table, ...)` and once through
`nats_bench.create(directory, ...)` on the same float32-exact records. Every accuracy, simulated
time, best-so-far index and the final `query_info_str_by_arch` text must be identical: the facade
draws from `random` exactly as nats_bench does.
"""

from __future__ import annotations

import pytest

import nats_algos
from nats_records import SyntheticNats
from nb360.compat import nats

nats_bench = pytest.importorskip("nats_bench")
pytest.importorskip("torch")

RUNS = [  # (script, dataset, seed, simulated seconds / options): 17-100 queries each, lean for CI
    ("rea", "cifar10", 3, {"time_budget": 6000}),
    ("rea", "cifar10", 4, {"time_budget": 60000, "use_proxy": False}),
    ("random", "cifar10", 5, {"time_budget": 4000}),
    ("reinforce", "cifar10", 6, {"time_budget": 4000}),
    ("hyperband", "cifar10", 7, {}),
]


@pytest.mark.slow
@pytest.mark.parametrize("space", ["tss", "sss"])
def test_search_scripts_give_nats_bench_trajectories(space, tmp_path) -> None:
    records = SyntheticNats(space)
    table = records.write_nb360(tmp_path / f"{space}.h5")
    ours = nats.create(table, space, fast_mode=True, verbose=False)
    results = {}
    for k, (script, dataset, seed, options) in enumerate(RUNS):
        results[k] = getattr(nats_algos, f"run_{script}")(ours, space, dataset, seed, **options)
        assert len(results[k]["history"]) >= 10
    # nats_bench reads the same records from a -simple directory holding every arch the searches touched:
    # a search on nats_bench that strayed to another arch would stop on a missing file.
    directory = records.write_nats_dir(tmp_path / f"NATS-{space}-synthetic-simple", ours.evaluated_indexes)
    ref = nats_bench.create(str(directory), space, fast_mode=True, verbose=False)
    for k, (script, dataset, seed, options) in enumerate(RUNS):
        expected = getattr(nats_algos, f"run_{script}")(ref, space, dataset, seed, **options)
        assert results[k]["history"] == expected["history"], (script, seed)
        assert results[k]["times"] == expected["times"], (script, seed)
        assert results[k]["best_index"] == expected["best_index"], (script, seed)
        assert results[k]["info"] == expected["info"], (script, seed)
