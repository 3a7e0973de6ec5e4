"""`nb360 tasks`: list the task cards, or show one card in full (`--json` for machines)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from . import add_common_options


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `tasks` subcommand with `list` and `show`."""
    parser = subparsers.add_parser(
        "tasks", help="list the ten NAS-Bench-360 tasks (and the E2RNAS suite) or show one task card",
        description="The task cards (tasks/<name>.toml): shapes, loss, metric, splits, released files and their "
                    "sources, the baseline protocol, the threat model of the robustness evaluation and the published "
                    "reference results with their source. The ten NAS-Bench-360 tasks are listed first; the E2RNAS "
                    "paper's own datasets (CIFAR-10, SVHN) follow as a separate suite, outside the benchmark.")
    add_common_options(parser)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    p = commands.add_parser("list", help="one line per task",
                            description="List every task card as a table, one table per suite.")
    p.add_argument("--suite", choices=("nb360", "e2rnas"),
                   help="only one suite: nb360 (the ten NAS-Bench-360 tasks) or e2rnas (CIFAR-10, SVHN)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_common_options(p)
    p.set_defaults(func=run_list)

    p = commands.add_parser("show", help="print one task card",
                            description="Print one task card in full: data files and sources (dead links marked), "
                                        "splits, preprocessing, metric, baseline protocol, reference results.")
    p.add_argument("name", help="task name, e.g. ninapro (see `nb360 tasks list`)")
    p.add_argument("--json", action="store_true", help="print the card as JSON")
    add_common_options(p)
    p.set_defaults(func=run_show)


def _shape(card: Any) -> str:
    return "x".join(str(v) for v in card.input_shape)


def render_list(cards: list[Any]) -> str:
    """One task table per suite, each under its title."""
    from ..tasks import SUITE_TITLES

    blocks = []
    for suite, title in SUITE_TITLES.items():
        members = [c for c in cards if c.suite == suite]
        if members:
            blocks.append(f"{title} ({len(members)})\n{render_table(members)}")
    return "\n\n".join(blocks)


def render_table(cards: list[Any]) -> str:
    """The task table of `cards`."""
    header = ("name", "title", "type", "input", "outputs", "problem", "metric (reported as)", "license")
    rows = [(c.name, c.title, c.topology, _shape(c), str(c.num_outputs), c.problem,
             f"{c.metric.name}: {c.metric.reported_as}", c.license) for c in cards]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    widths[-2] = min(widths[-2], 48)  # long metric descriptions are cut, `show` prints them in full

    def line(cells: tuple[str, ...]) -> str:
        out = []
        for cell, width in zip(cells, widths, strict=True):
            cell = cell if len(cell) <= width else cell[: width - 3] + "..."
            out.append(cell.ljust(width))
        return "  ".join(out).rstrip()

    return "\n".join([line(header), line(tuple("-" * w for w in widths))] + [line(r) for r in rows])


def _bullets(items: Any, indent: str = "  ") -> list[str]:
    return [f"{indent}- {item}" for item in items]


def _table(data: dict[str, Any], indent: str = "  ") -> list[str]:
    lines = []
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines += _table(value, indent + "  ")
        elif isinstance(value, list):
            lines.append(f"{indent}{key}:")
            lines += _bullets(value, indent + "  ")
        else:
            lines.append(f"{indent}{key}: {value}")
    return lines


def render_card(card: Any) -> str:
    """One card for humans."""
    lines = [f"{card.name}: {card.title}"]
    if card.description:
        lines.append(card.description)
    lines += [
        "",
        f"type           {card.topology}, {card.problem}",
        f"input          {_shape(card)} ({card.input_layout})",
        f"outputs        {card.num_outputs}" + (f" ({card.output})" if card.output else ""),
        f"item           {card.sample or 'see the loader'}",
        f"loss           {card.loss}",
        f"metric         {card.metric.name} ({card.metric.direction}): {card.metric.reported_as}",
    ]
    if card.metric.secondary:
        lines.append(f"               also: {', '.join(card.metric.secondary)}")
    if card.metric.computation:
        lines.append(f"               {card.metric.computation}")
    lines.append(f"license        {card.license}" + (f" ({card.license_note})" if card.license_note else ""))
    if card.suite != "nb360":
        from ..tasks import SUITE_TITLES

        lines.append(f"suite          {SUITE_TITLES.get(card.suite, card.suite)}")

    lines += ["", "splits"]
    lines += _table(card.splits)
    if card.preprocessing:
        lines += ["", "preprocessing"]
        lines += _table(card.preprocessing)
    lines += ["", "released files"]
    for f in card.files:
        size = f"{f.size} bytes" if f.size else (f.approx_size or "size not published")
        checks = ", ".join(x for x in (f"sha256 {f.sha256}" if f.sha256 else "", f"md5 {f.md5}" if f.md5 else "") if x)
        lines.append(f"  {f.name} ({size}{', ' + checks if checks else ''}){' [archive]' if f.extract else ''}")
        if f.role:
            lines.append(f"    {f.role}")
        for i, src in enumerate(f.sources, 1):
            lines.append(f"    {i}. [{src.status.upper()}] {src.url}" + (f" - {src.note}" if src.note else ""))
    lines += ["", "baseline protocol"]
    lines += _table(card.baseline)
    results = card.reference_results
    lines += ["", f"reference results ({results['units']})", f"  source: {results['source']}"]
    for row in results["rows"]:
        if "value" in row:
            value = f"{row['value']}" + (f" +- {row['std']}" if "std" in row else "")
        else:
            value = row.get("note", "n/a")
        lines.append(f"  {row['method'] + ' / ' + row['variant']:<28} {value}{'  (best)' if row.get('best') else ''}")
    for extra in results.get("other", []):
        lines.append(f"  other: {extra['text']} [source: {extra['source']}]")
    lines += render_robustness(card)
    if card.quirks:
        lines += ["", "quirks"] + _bullets(card.quirks)
    if card.uncertain:
        lines += ["", "uncertain"] + _bullets(card.uncertain)
    lines += ["", f"card: {card.card_path}"]
    return "\n".join(lines)


def render_robustness(card: Any) -> list[str]:
    """The card's threat model and robust metric (and published robust results) for `tasks show`."""
    r = card.robustness
    if not r:
        return ["", "robustness: not defined in this card"]
    lines = ["", "robustness (nb360 evaluate --attacks)"]
    if r["attackable"]:
        box = f", box {r['box']}" if "box" in r else ""
        lines += [f"  threat         L∞ ε = {r['eps_text']} in {r['unit']} units{box}",
                  f"  perturbed      {r['perturb']}"]
    else:
        lines += [f"  NOT ATTACKED   {r['reason']}"]
        if r.get("relaxation"):
            lines.append(f"  relaxation     {r['relaxation']}")
    lines += [f"  robust metric  {r['robust_metric']}", f"  source         {r['source']}"]
    ref = r.get("reference")
    if ref:
        lines += [f"  published robust results ({ref['units']}); source: {ref['source']}",
                  f"    protocol: {ref['protocol']}"]
        for row in ref["rows"]:
            figures = ", ".join(f"{k} {row[k]}" for k in ("clean", "fgsm", "pgd", "params_m") if k in row)
            lines.append(f"    {row['method']} / {row['variant']}: {figures or row.get('note', 'n/a')}")
    return lines


def card_to_json(card: Any) -> dict[str, Any]:
    """The card as plain JSON-able data (dataclass fields, tuples as lists)."""
    return json.loads(json.dumps(dataclasses.asdict(card)))


def run_list(args: argparse.Namespace) -> int:
    """Print the task table."""
    from ..tasks import list_tasks

    cards = list_tasks(args.suite)
    if args.json:
        print(json.dumps([card_to_json(c) for c in cards], indent=2))
    else:
        print(render_list(cards))
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print one card."""
    from ..tasks import get_task

    card = get_task(args.name)
    print(json.dumps(card_to_json(card), indent=2) if args.json else render_card(card))
    return 0
