"""`nb360 evaluate`: retrain an NB201 architecture, a DARTS genotype or a backbone with a task's protocol; score it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from . import COUNT, EPOCHS, SEED, THREADS, WIDTH, add_common_options, device_arg

_DESCRIPTION = """\
Train a model with the task card's retrain protocol (train on train+val, evaluate on test), once per
seed, and report the task metric per seed and as mean +- std next to the card's reference results.

The model is an NB201 cell network (--arch: index 0..15624 or arch string) or a backbone
(--backbone: wrn = WRN-16-4 for 2D tasks, dense-wrn = the no-downsampling WRN of dense tasks,
resnet1d = the 1D ResNet of 1D tasks, default = the card's baseline backbone). The protocol (SGD,
learning rate, batch size, step schedule, epochs) comes from the card's [baseline]; --epochs
shortens it for quick runs, and the results then say so.

A DARTS-space genotype (--genotype: DARTS text "Genotype(normal=[...], ...)", JSON, a published name
such as DARTS_V2 or NB360_GAEA_<task>, or a file such as a search run's genotype.json) is retrained
as its evaluation network (20 cells, C=36; --layers, --channels) with NAS-Bench-360's GAEA
evaluation protocol for the task (--protocol nb360: 150 epochs, SGD lr 0.025 cosine, drop-path 0.3,
grad clip 5, the task's batch size; the auxiliary head on CIFAR-100) or DARTS's CIFAR protocol
(--protocol darts: 600 epochs, batch 96, auxiliary head 0.4, drop-path 0.2). Parameters are counted
without the auxiliary head, as DARTS does.

NAS-Bench-360's non-NAS baselines, each with its own protocol (names, sources and deviations in
nb360/evaluate/asha.py and xgboost_baseline.py, and in the run's config.json):
  --backbone wrn-asha  the card's backbone (WRN-16-4; the 1D ResNet on 1D tasks) tuned per seed with
                       Ray Tune's ASHA over lr, momentum, weight decay and dropout on the search split
                       (NAS-Bench-360's tuning files: trials, space, rungs), then retrained with the
                       best trial's values and the card's protocol. --asha-trials N shortens it (fewer
                       than the card's trials: not comparable); --epochs shortens tuning and retrain.
                       Needs ray[tune].
  --backbone xgboost   gradient-boosted trees on the flattened inputs (max_depth 3, eta 1, subsample
                       0.9, early stopping 5 rounds on val, 100 rounds), fitted on the search split's
                       train part and scored on test. --xgb-rounds N shortens it. Needs xgboost.
Deviations from NAS-Bench-360 (each with its reason; also in the run's config.json):
  wrn-asha: Ray Tune's ASHAScheduler instead of Determined's adaptive_asha, so rungs fall on whole
    epochs (1, 4, 16, 64, 200 instead of 0.78, 3.1, 12.5, 50, 200: trials report once per epoch);
    mode "standard" taken as 2 brackets [uncertain]; trials validate at rungs, every NAS-Bench-360
    validation period and the last epoch; each seed tunes and retrains with its own best trial (which
    seed NAS-Bench-360 tuned with is not recorded); the tuning file version per task is named in
    nb360/evaluate/asha.py (the repository holds several) [uncertain].
  xgboost: tree_method hist on --device instead of the retired gpu_hist; scored with the card's
    metric by nb360's objectives (ECG: per-recording vote; FSD50K: clip level) on 0/1 predictions
    as the script's model.predict (--xgb-scores proba: probabilities instead); a class absent from a
    small train split is relabelled away (never on the released data); PSICOV refused (no result).

Adversarial evaluation (--attacks): after each seed's training, its final network is attacked on the
test set and the task's own metric is reported under attack, per seed and as mean +- std:
  fgsm        the E2RNAS authors' FGSM: one step of eps, no random start (DARTS/test_adv.py)
  pgd         their PGD-10: steps of 2.5 eps/10, no random start
  pgd-strong  a standard strong attack beside them: PGD-20, steps of eps/4, random start, 5 restarts,
              worst per sample; its gap to pgd shows how much the weak attack overstates robustness
eps and its unit come from the card's [robustness] section (`nb360 tasks show TASK`): e.g. 2/255 in
[0, 1] pixels for CIFAR, converted through the loader's mean/std into the network's units; --eps
and --eps-unit override them (pixel, model, train-std, raw). The E2RNAS suite (cifar10, svhn) runs
all three attacks by default and retrains genotypes with the authors' protocol (--protocol darts);
the ten NAS-Bench-360 tasks attack only when asked. DeepSEA (one-hot DNA) is refused with its reason.
Adding --attacks to a finished run directory attacks its saved networks without retraining.

The run directory (--out, default runs/evaluate-<task>-<model>-<time>) holds config.json,
manifest.json (versions, git revision, device, command, sha256 of every data file), per-seed
log.jsonl and checkpoints/last.pt, and results.json. Rerunning the same command with --out DIR
resumes an interrupted run from each seed's last checkpoint, with the same final result.

Several GPUs (data-parallel, one process per GPU; gloo on the CPU):
  torchrun --nproc_per_node 4 -m nb360 evaluate --task fsd50k --backbone wrn --data-root data --device cuda

Example:
  nb360 evaluate --task ninapro --backbone wrn --data-root data/ninapro --seeds 0 1 2
  nb360 evaluate --task darcyflow --arch 1462 --data-root data/darcyflow --epochs 20
  nb360 evaluate --task ninapro --genotype runs/gaea-ninapro/genotype.json --data-root data --seeds 0 1 2
  nb360 evaluate --task cifar100 --genotype DARTS_V2 --data-root data
  nb360 evaluate --task cifar10 --genotype E2RNAS_V1_cifar10 --data-root data --attacks fgsm,pgd,pgd-strong
  nb360 evaluate --task darcyflow --arch 1462 --data-root data --epochs 20 --attacks default --attack-limit 20
  nb360 evaluate --task ecg --arch '|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|\
nor_conv_3x3~2|' --data-root data/ecg
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `evaluate` subcommand."""
    from ..evaluate import BACKBONE_CHOICES
    from ..evaluate.spec import BASELINE_CHOICES

    parser = subparsers.add_parser("evaluate", help="retrain a model with a task's protocol and score it on test",
                                   description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, metavar="NAME", help="task to evaluate on (see `nb360 tasks list`)")
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--arch", metavar="ARCH", help="NB201 cell: index (0..15624) or arch string")
    model.add_argument("--backbone", choices=BACKBONE_CHOICES + BASELINE_CHOICES,
                       help="baseline backbone, or a NAS-Bench-360 baseline (wrn-asha, xgboost)")
    model.add_argument("--genotype", metavar="G",
                       help="DARTS-space genotype: DARTS text, JSON, a published name (e.g. DARTS_V2) or a file")
    parser.add_argument("--data-root", required=True, metavar="DIR",
                        help="the task's data directory, or a data root holding <task>/ (see `nb360 data download`)")
    parser.add_argument("--seeds", type=SEED, nargs="+", default=[0, 1, 2], metavar="S",
                        help="seeds, one training run each (default 0 1 2)")
    parser.add_argument("--epochs", type=EPOCHS, metavar="E",
                        help="train E epochs instead of the card's (shortens the protocol; recorded in the results)")
    parser.add_argument("--device", default="cpu", type=device_arg, help="cpu or cuda (default cpu; under torchrun: cuda:LOCAL_RANK)")
    parser.add_argument("--out", metavar="DIR", help="run directory (default runs/evaluate-<task>-<model>-<time>); "
                                                     "an existing one with the same configuration is resumed")
    parser.add_argument("--channels", type=WIDTH, metavar="C",
                        help="network channels C (NB201 default 16; DARTS: the protocol's, 36)")
    parser.add_argument("--cells", type=WIDTH, default=5, metavar="N", help="NB201 cells per stage N (default 5)")
    parser.add_argument("--layers", type=WIDTH, metavar="L", help="DARTS network cells (default 20)")
    parser.add_argument("--protocol", choices=("nb360", "darts"),
                        help="DARTS genotypes: NAS-Bench-360's GAEA evaluation (default on the ten tasks) or DARTS's "
                             "CIFAR protocol, which E2RNAS uses (default on the E2RNAS suite)")
    parser.add_argument("--pooling", choices=("original", "global"), default="original",
                        help="point-2D WRN pooling: NB360's rules (default) or global average pooling")
    parser.add_argument("--eval-every", type=EPOCHS, default=1, metavar="K",
                        help="evaluate on the test split every K epochs and after the last (default 1)")
    parser.add_argument("--threads", type=THREADS, metavar="T",
                        help="torch CPU threads (default: torch's choice, one per core; the float rounding depends "
                             "on it). OpenMP threads sleep while they wait (OMP_WAIT_POLICY=PASSIVE unless set), so "
                             "a shared machine slows training only in proportion to the cores it gets")
    baselines = parser.add_argument_group("NAS-Bench-360 baselines (--backbone wrn-asha / xgboost)")
    baselines.add_argument("--asha-trials", type=COUNT, metavar="N",
                           help="ASHA trials per seed (default: the task's NAS-Bench-360 tuning file, e.g. 28)")
    baselines.add_argument("--asha-concurrency", type=COUNT, metavar="N",
                           help="trials trained at once (default 4, NAS-Bench-360's max_concurrent_trials)")
    baselines.add_argument("--baseline-threads", type=THREADS, metavar="T",
                           help="CPU threads per ASHA trial / for XGBoost (default 1)")
    baselines.add_argument("--xgb-rounds", type=COUNT, metavar="N", help="XGBoost boosting rounds (default 100)")
    baselines.add_argument("--xgb-scores", choices=("hard", "proba"),
                           help="multi-label tasks: score 0/1 predictions as NAS-Bench-360 did (hard, default) or the "
                                "predicted probabilities")
    robust = parser.add_argument_group("adversarial evaluation after retraining")
    robust.add_argument("--attacks", metavar="LIST",
                        help="comma-separated from fgsm, pgd, pgd-strong; 'default' = all three, 'none' = no attack "
                             "(default: all three on the E2RNAS suite, none on the ten tasks)")
    robust.add_argument("--eps", type=float, metavar="E", help="attack radius in --eps-unit (default: the card's)")
    robust.add_argument("--eps-unit", choices=("pixel", "model", "train-std", "raw"),
                        help="unit of --eps (default: the card's; pixel = [0,1] intensity through the loader's "
                             "mean/std, model = the network's input values, train-std = training standard "
                             "deviations, raw = before the loader's pointwise normaliser)")
    robust.add_argument("--attack-setting", action="append", default=[], metavar="ATTACK.KEY=VALUE",
                        help="change an attack's steps, step (in eps) or restarts, e.g. pgd-strong.restarts=2 "
                             "(repeatable; recorded, and the paper row is then not comparable)")
    robust.add_argument("--attack-limit", type=COUNT, metavar="N",
                        help="attack only the first N test items (a quick look; marked not comparable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print results.json instead of the table")
    add_common_options(parser)
    parser.set_defaults(func=run)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def render(results: dict[str, Any], run_dir: Path) -> str:
    """The results of a run as a plain-text table, with the card's reference results."""
    from ..evaluate import describe_data

    metric = results["metric"]["name"]
    summary = results["summary"]
    protocol = results["protocol"]
    model = results["model"]
    if model["kind"] == "nb201":
        label = f"NB201 #{model['index']} {model['arch']} (C={model['C']}, N={model['N']})"
    elif model["kind"] == "darts":
        label = f"DARTS network of {model['genotype']} (C={model['C']}, {model['layers']} cells)"
    else:
        from ..evaluate import model_label

        label = model_label(model)
    data = results.get("data") or {"source": "released"}
    lines = [f"{results['title']} ({results['task']}): {label}, {model.get('params') or 0:,} parameters",
             f"data: {describe_data(data)}" + ("" if data["source"] == "released" else
                                               ": not comparable with the reference results"),
             f"protocol: {protocol['epochs']} epochs" + (
                 f" (SHORTENED from the card's {protocol['card_epochs']}: not comparable with the reference results)"
                 if protocol["shortened"] else (" (changed from the card's "
                                                f"{protocol['card_epochs']})" if protocol["changed"] else "")),
             "", f"{'seed':>6}  {metric:>12}  {'reported':>12}  {'test loss':>10}  {'train loss':>10}"]
    for r in results["per_seed"]:
        lines.append(f"{r['seed']:>6}  {_fmt(r['test'].get(metric)):>12}  {_fmt(r['test'].get('reported')):>12}  "
                     f"{_fmt(r['test'].get('loss')):>10}  {_fmt(r['train'].get('loss')):>10}")
    rep, raw = summary["reported"], summary[metric]
    lines.append(f"{'mean':>6}  {_fmt(raw['mean']):>12}  {_fmt(rep['mean']):>12}")
    lines.append(f"{'std':>6}  {_fmt(raw['std']):>12}  {_fmt(rep['std']):>12}   ({summary['std']})")
    ref = results["reference"]
    lines += ["", f"reference results ({ref['units']})", f"  source: {ref['source']}"]
    comparable = ref["comparable"]
    for row in ref["rows"]:
        value = (f"{row['value']}" + (f" +- {row['std']}" if row.get("std") is not None else "")
                 if row.get("value") is not None else row.get("note", "n/a"))
        mark = "  <- comparable" if (row["method"], row["variant"]) == (comparable["method"],
                                                                        comparable["variant"]) else ""
        lines.append(f"  {row['method'] + ' / ' + row['variant']:<28} {value}{mark}")
    spread = f" +- {_fmt(rep['std'])}" if summary["n"] > 1 else " (1 seed)"
    lines.append(f"  this run ({results['metric']['reported_as']}): {_fmt(rep['mean'])}{spread}"
                 f"  [{comparable['note']}]")
    for r in results["per_seed"]:
        if "tuned" in r:
            t = r["tuned"]
            hp = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(t["hparams"].items()))
            lines.append(f"  seed {r['seed']} tuned by ASHA: {hp} (best val {_fmt(t['best_val'])} of {t['trials']} "
                         "trials)")
    if results.get("robustness"):
        lines += render_robustness(results)
    lines += ["", f"run directory: {run_dir}", f"results:       {run_dir / 'results.json'}",
              f"report:        nb360 report {run_dir}"]
    return "\n".join(lines)


def baseline_options(args: argparse.Namespace) -> dict[str, Any]:
    """EvalSpec.baseline_options from the wrn-asha / xgboost flags (only those given)."""
    given = {"trials": args.asha_trials, "concurrency": args.asha_concurrency, "rounds": args.xgb_rounds,
             "scores": args.xgb_scores, "threads": args.baseline_threads}
    asha_only, xgb_only = ("trials", "concurrency"), ("rounds", "scores")
    options = {k: v for k, v in given.items() if v is not None}
    wrong = [k for k in options if (k in asha_only and args.backbone != "wrn-asha")
             or (k in xgb_only and args.backbone != "xgboost")
             or (k == "threads" and args.backbone not in ("wrn-asha", "xgboost"))]
    if wrong:
        from ..errors import InputError

        flags = {"trials": "--asha-trials", "concurrency": "--asha-concurrency", "rounds": "--xgb-rounds",
                 "scores": "--xgb-scores", "threads": "--baseline-threads"}
        raise InputError(f"{', '.join(flags[k] for k in wrong)} do not apply to this model; they belong to "
                         "--backbone wrn-asha / xgboost")
    return options


def _attack_overrides(items: list[str]) -> dict[str, Any]:
    from ..errors import InputError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise InputError(f"--attack-setting takes ATTACK.KEY=VALUE (e.g. pgd-strong.restarts=2), got {item!r}")
        try:
            out[key] = float(value) if key.endswith(".step") else int(value)
        except ValueError:
            raise InputError(f"--attack-setting {item!r}: the value must be a number") from None
    return out


def render_robustness(results: dict[str, Any]) -> list[str]:
    """The adversarial evaluation: the threat model, each attack's figures per seed and mean +- std, the paper row."""
    r = results["robustness"]
    t = r["threat"]
    metric = results["metric"]["name"]
    eps_model = ", ".join(f"{lo:.4g}" if lo == hi else f"{lo:.4g}..{hi:.4g}"
                          for lo, hi in t["eps_model_units_per_channel"])
    lines = ["", f"robustness on the test set ({r['samples']}): L-inf eps = {t['eps_text']} in {t['unit']} units "
             f"({t['conversion']}; in the network's units per channel: {eps_model})",
             f"  perturbed: {t['perturb']}", f"  robust metric: {r['robust_metric']}",
             f"  {'attack':<11} {'accuracy (%)':>18} {metric + ' (reported)':>24}   settings"]
    for name, entry in r["summary"].items():
        acc = entry.get("accuracy")
        rep = entry.get("reported", {})
        settings = "no attack" if name == "clean" else r["attacks"][name]["description"]
        lines.append(f"  {name:<11} {_ms(acc):>18} {_ms(rep):>24}   {settings}")
    per_seed = "; ".join(f"seed {row['seed']}: " + ", ".join(
        f"{name} {_fmt(row[name].get('reported'))}" for name in r["summary"] if name in row) for row in r["per_seed"])
    lines.append(f"  per seed ({metric}, reported form): {per_seed}")
    gap = r.get("overstatement")
    if gap:
        lines.append(f"  the standard strong attack is worse than the authors' PGD by {_fmt(gap['reported_difference'])} "
                     f"({metric}, reported form): what the weak attack overstates")
    ref = r.get("reference")
    if ref:
        lines.append(f"  published robust results ({ref['units']}); source: {ref['source']}")
        for row in ref["rows"]:
            figures = ", ".join(f"{k} {row[k]}" for k in ("clean", "fgsm", "pgd", "params_m") if k in row)
            lines.append(f"    {row['method']} / {row['variant']}: {figures or row.get('note', 'n/a')}")
        lines.append(f"    this run: {ref['note_on_this_run']}")
    return lines


def _ms(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "n/a"
    return f"{_fmt(entry['mean'])} +- {_fmt(entry['std'])}"


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the results (rank 0 only under torchrun)."""
    from ..devices import require_available
    from ..evaluate import EvalSpec, default_run_dir, evaluate, read_json
    from ..evaluate.attacks import parse_attacks
    from ..training.distributed import launch_from_env

    if launch_from_env().world_size == 1:  # under torchrun each rank picks its own cuda:LOCAL_RANK
        require_available(args.device)
    if args.threads is not None:
        import torch

        if args.threads < 1:
            from ..errors import InputError

            raise InputError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    spec = EvalSpec(task=args.task, data_root=args.data_root, arch=args.arch, backbone=args.backbone,
                    genotype=args.genotype, protocol=args.protocol, layers=args.layers,
                    seeds=tuple(args.seeds), epochs=args.epochs, device=args.device, channels=args.channels,
                    cells=args.cells, pooling=args.pooling, eval_every=args.eval_every,
                    baseline_options=baseline_options(args),
                    attacks=parse_attacks(args.attacks), eps=args.eps, eps_unit=args.eps_unit,
                    attack_overrides=_attack_overrides(args.attack_setting), attack_limit=args.attack_limit)
    spec.validate()
    main = launch_from_env().rank == 0
    out = Path(args.out) if args.out else None
    if out is None and launch_from_env().world_size == 1:
        out = default_run_dir(spec)
    try:
        evaluation = evaluate(spec, out, progress=not args.no_progress, command=["nb360", *sys.argv[1:]])
    except KeyboardInterrupt:
        if main and out is not None:
            print(f"nb360: interrupted; {out} keeps every finished epoch: rerun the same command with --out {out} to "
                  "resume", file=sys.stderr)
        raise
    if main:
        results = read_json(evaluation.run_dir / "results.json", "results")
        print(json.dumps(results, indent=2) if args.json else render(results, evaluation.run_dir))
    return 0

