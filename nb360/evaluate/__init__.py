"""Retrain an NB201 architecture, a DARTS-space genotype or a backbone with a task's protocol; score it on test.

`evaluate(EvalSpec(...), run_dir)` trains once per seed on the retrain split (train + val) and
evaluates on the test split, writing a run directory:

    RUN_DIR/config.json                  everything that decides the numbers; a rerun with the same
                                         config resumes, a different one is refused
    RUN_DIR/manifest.json                provenance: nb360 version and git revision, torch/CUDA/cuDNN,
                                         device, command lines, seeds, sha256 of every data file, and
                                         one entry per session (start/end times, status)
    RUN_DIR/seed-<s>/log.jsonl           one JSON line per epoch (lr, train and test figures, times)
    RUN_DIR/seed-<s>/checkpoints/last.pt the full training state after the last finished epoch
    RUN_DIR/seed-<s>/result.json         that seed's final figures
    RUN_DIR/seed-<s>/attacks/*.json      with attacks: the final network's test figures clean and under
                                         each attack (attacks.py; the card's threat model, threats)
    RUN_DIR/results.json                 every seed, mean +- std, the card's reference results, and
                                         "robustness" (per seed, mean +- std, the paper's row) with attacks

A DARTS-space genotype (`genotype=`: DARTS text, JSON, a published name such as "DARTS_V2", or a
file holding one, e.g. a search's genotype.json) is retrained as its evaluation network (20 cells,
C=36) with NAS-Bench-360's GAEA evaluation protocol for the task (`protocol="nb360"`: 150 epochs,
SGD lr 0.025 cosine, drop-path 0.3, grad clip 5, the task's batch size; tasks.md §7,
`nb360.search.supernet.darts_settings`) or DARTS's CIFAR protocol (`protocol="darts"`: 600
epochs, batch 96, auxiliary head 0.4, drop-path 0.2).

NAS-Bench-360's non-NAS baselines run through the same directory layout: `backbone="wrn-asha"` tunes the card's
backbone per seed with Ray Tune's ASHA (`nb360.evaluate.asha`: the tuning files' space, trials and rungs; the
trials under seed-<s>/tuning/) and retrains it with the best trial's values; `backbone="xgboost"` fits
gradient-boosted trees on the flattened inputs (`nb360.evaluate.xgboost_baseline`: the script's settings, the
search split, seed-<s>/model.json). Their settings go in `EvalSpec.baseline_options`.

results.json and result.json hold no times or dates, so identical runs write identical bytes
(on the CPU, where torch's algorithms are deterministic). An interrupted run resumes from each
seed's last checkpoint and ends with the same results as an uninterrupted one. Under torchrun
the ranks train data-parallel and only rank 0 writes.
"""

from __future__ import annotations

from .files import RunDir, default_run_dir, load_checkpoint, read_json, read_log, save_checkpoint, write_json
from .protocols import (
                    build_model,
                    darts_protocol,
                    model_description,
                    model_label,
                    read_genotype,
                    retrain_protocol,
                    train_config,
)
from .results import data_source, describe_data, generator_settings, summarize
from .spec import (
                    BACKBONE_CHOICES,
                    BASELINE_CHOICES,
                    CONFIG_FORMAT,
                    DARTS_PROTOCOLS,
                    MANIFEST_FORMAT,
                    RESULTS_FORMAT,
                    STD_NOTE,
                    EpochHook,
                    EvalSpec,
)
from .workflow import Evaluation, evaluate

__all__ = ["BACKBONE_CHOICES", "BASELINE_CHOICES", "CONFIG_FORMAT", "DARTS_PROTOCOLS", "MANIFEST_FORMAT", "RESULTS_FORMAT", "STD_NOTE",
           "EpochHook", "EvalSpec", "Evaluation", "RunDir", "build_model", "darts_protocol", "data_source",
           "default_run_dir", "describe_data", "evaluate", "generator_settings", "load_checkpoint",
           "model_description", "model_label", "read_genotype", "read_json", "read_log", "retrain_protocol",
           "save_checkpoint", "summarize", "train_config", "write_json"]
