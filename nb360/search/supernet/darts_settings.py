"""NAS-Bench-360's per-task settings for the DARTS space: GAEA PC-DARTS search and evaluation (retraining).

Read from the Determined configs and trial code of rtu715/NAS-Bench-360 (tasks.md §7; files at
commits 6edf265 / 440f85f / 04e195e / 587bb09 of the repository):

search (`darts/gaea/search/<task>.yaml`, `darts/gaea-dense/*_search.yaml`, `darts/gaea-grid/cosmic_search.yaml`,
`darts_1d/gaea/search/<task>.yaml`; trial `model_def.py::GAEASearchTrial`):
    50 epochs, 8 cells, C=16, 4 nodes, shuffle factor (partial channels) 4, SGD lr 0.1 cosine
    (per epoch) to 0, momentum 0.9, weight decay 3e-4, grad clip 5, arch lr 0.1; the batch size
    and `records_per_epoch` per task below. The train split is halved (`BilevelDataset`: first
    half for weights, second half for the architecture), so an epoch is half the train split,
    except ECG (20,000 records per epoch, about 1/13 of its half).
evaluation (`darts/gaea/eval/<task>.yaml` + `model_def.py` / `model_aux.py` / `model_audio.py`,
`darts/gaea-grid/*_eval.yaml` + `model_def.py`, `darts_1d/gaea/eval/scripts/<task>.yaml` + `model_def.py`):
    150 epochs, 20 cells, C=36 (FSD50K: 16), SGD lr 0.025, momentum 0.9, weight decay 3e-4, grad
    clip 5, drop-path 0.3; cosine annealing stepped per epoch with T_max = 600 on the 2D point
    tasks (the DARTS value, kept although they train 150 epochs) and 150 on dense and 1D tasks;
    drop-path probability 0.3·epoch/600 on 2D tasks and 0.3·epoch/150 on 1D tasks; the
    auxiliary head (weight 0.4) only in the CIFAR-100 config `cifar_aux.yaml`.

Quirks of the NAS-Bench-360 code that nb360 does NOT copy (documented, not silent):
- its GAEA search softmaxes the parameters that exponentiated gradient updates (and normalises the
  14 edge parameters jointly rather than per node); nb360 mixes with the simplex weights directly, as
  GAEA (liamcli/gaea_release) defines it;
- its search steps the architecture only after epoch 10 (`if epoch_idx > 10`); nb360's GAEA has no
  warm-up, as the issue and gaea_release (`warmup_epochs=11` reproduces NB360's code);
- the dense search network's file (`model_search_expansion.py`) is not public; nb360's dense
  search network has no reductions and constant width, like the dense evaluation network.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import InputError

_REPO = "rtu715/NAS-Bench-360"


@dataclass(frozen=True)
class DartsTaskSettings:
    """One task's NAS-Bench-360 GAEA settings: search batch size and epoch length, evaluation network and protocol."""

    task: str
    search_batch_size: int
    records_per_epoch: int  # NB360's epoch length of the search (records of the weights half)
    search_source: str
    eval_batch_size: int
    eval_C: int
    eval_source: str
    lr_horizon: int  # T_max of the per-epoch cosine schedule, in epochs
    drop_path_horizon: int  # drop-path probability = 0.3 · epoch / horizon
    auxiliary_weight: float = 0.0
    cap_records: bool = False  # True where records_per_epoch truncates the half split (ECG)
    note: str = ""


def _s(path: str) -> str:
    return f"{_REPO} {path}"


SETTINGS: dict[str, DartsTaskSettings] = {s.task: s for s in (
    DartsTaskSettings("cifar100", 256, 20000, _s("darts/gaea/search/cifar100.yaml"), 128, 36,
                      _s("darts/gaea/eval/cifar_aux.yaml + model_aux.py"), 600, 600, auxiliary_weight=0.4,
                      note="cifar.yaml (no auxiliary head, 600 epochs) also exists; which produced the published "
                           "number is not established [uncertain]"),
    DartsTaskSettings("spherical", 64, 20000, _s("darts/gaea/search/scifar100.yaml"), 64, 36,
                      _s("darts/gaea/eval/scifar100.yaml + model_def.py"), 600, 600),
    DartsTaskSettings("ninapro", 256, 1319, _s("darts/gaea/search/ninapro.yaml"), 128, 36,
                      _s("darts/gaea/eval/ninapro.yaml + model_def.py"), 600, 600),
    DartsTaskSettings("fsd50k", 32, 18398, _s("darts/gaea/search/FSD50k.yaml"), 32, 16,
                      _s("darts/gaea/eval/FSD50k.yaml + model_audio.py"), 600, 600),
    DartsTaskSettings("darcyflow", 4, 450, _s("darts/gaea-dense/pde_search.yaml"), 4, 36,
                      _s("darts/gaea-grid/pde_eval.yaml + model_def.py"), 150, 600),
    DartsTaskSettings("psicov", 8, 1678, _s("darts/gaea-dense/protein_search.yaml"), 4, 36,
                      _s("darts/gaea-grid/protein_eval.yaml + model_def.py"), 150, 600),
    DartsTaskSettings("cosmic", 8, 2173, _s("darts/gaea-grid/cosmic_search.yaml"), 4, 36,
                      _s("darts/gaea-grid/cosmic_eval.yaml + model_def.py"), 150, 600),
    DartsTaskSettings("ecg", 256, 20000, _s("darts_1d/gaea/search/ECG.yaml"), 64, 36,
                      _s("darts_1d/gaea/eval/scripts/ECG.yaml + model_def.py"), 150, 150, cap_records=True),
    DartsTaskSettings("satellite", 4096, 400000, _s("darts_1d/gaea/search/satellite.yaml"), 1024, 36,
                      _s("darts_1d/gaea/eval/scripts/satellite.yaml + model_def.py"), 150, 150),
    DartsTaskSettings("deepsea", 64, 35877, _s("darts_1d/gaea/search/deepsea.yaml"), 64, 36,
                      _s("darts_1d/gaea/eval/scripts/deepsea.yaml + model_def.py"), 150, 150),
)}

SEARCH_COMMON = {"epochs": 50, "C": 16, "layers": 8, "partial_channels": 4, "lr": 0.1, "lr_min": 0.0,
                 "momentum": 0.9, "weight_decay": 3e-4, "grad_clip": 5.0, "arch_lr": 0.1}
EVAL_COMMON = {"epochs": 150, "layers": 20, "lr": 0.025, "momentum": 0.9, "nesterov": False, "weight_decay": 3e-4,
               "grad_clip": 5.0, "drop_path": 0.3, "eta_min": 0.0}
# DARTS's own CIFAR-10 evaluation (quark0/darts cnn/train.py; E2RNAS DARTS/train.py, search-methods.md §1.6).
DARTS_EVAL = {"epochs": 600, "layers": 20, "C": 36, "batch_size": 96, "lr": 0.025, "momentum": 0.9, "nesterov": False,
              "weight_decay": 3e-4, "grad_clip": 5.0, "drop_path": 0.2, "auxiliary_weight": 0.4, "eta_min": 0.0,
              "source": "quark0/darts cnn/train.py defaults (600 epochs, batch 96, lr 0.025 cosine, auxiliary 0.4, "
                        "drop-path 0.2, grad clip 5; search-methods.md §1.6)"}


def task_settings(task: str) -> DartsTaskSettings:
    """The NAS-Bench-360 DARTS-space settings of a task."""
    try:
        return SETTINGS[task]
    except KeyError:
        raise InputError(f"no DARTS-space settings for task {task!r}: known {', '.join(SETTINGS)}") from None
