"""A report as blocks (headings, paragraphs, tables, images, lists), rendered to Markdown or (html.py) HTML.

Tables carry their numbers' provenance per cell (`Cell.title`: shown on hover in HTML, as a
footnote in Markdown) and a sort key per cell, so the HTML page sorts numerically. Reports written
as Markdown lines convert with `from_markdown` (the subset nb360's reports use).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union


@dataclass
class Cell:
    """One table cell: its text, where its number comes from, and how it sorts."""

    text: str
    title: str | None = None  # provenance, on hover
    sort: float | None = None  # numeric sort key (None: sort by text)
    css: str | None = None  # e.g. "apart" for a result not comparable with the published ones


@dataclass
class Table:
    """A sortable table."""

    header: list[str]
    rows: list[list[Cell | str]]
    caption: str = ""
    notes: list[str] = field(default_factory=list)  # footnotes under the table (provenance, definitions)


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str


@dataclass
class Image:
    path: str  # relative to the report directory
    alt: str


@dataclass
class Bullets:
    items: list[str]


Block = Union[Heading, Para, Table, Image, Bullets]


def cell(value: Cell | str) -> Cell:
    """A Cell from a Cell or plain text."""
    return value if isinstance(value, Cell) else Cell(str(value))


def to_markdown(blocks: list[Block]) -> str:
    """The blocks as Markdown; cell provenance becomes numbered footnotes under each table."""
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Para):
            lines += [block.text, ""]
        elif isinstance(block, Image):
            lines += [f"![{block.alt}]({block.path})", ""]
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            if block.caption:
                lines += [block.caption, ""]
            notes: dict[str, int] = {}
            rows = []
            for row in block.rows:
                texts = []
                for c in map(cell, row):
                    text = c.text
                    if c.title:
                        number = notes.setdefault(c.title, len(notes) + 1)
                        text += f" [{number}]"
                    texts.append(text.replace("|", "\\|"))
                rows.append(texts)
            lines.append("| " + " | ".join(block.header) + " |")
            lines.append("|" + "|".join("---" for _ in block.header) + "|")
            lines += ["| " + " | ".join(r) + " |" for r in rows]
            lines.append("")
            for title, number in notes.items():
                lines.append(f"[{number}] {title}  ")
            lines += [f"{n}  " for n in block.notes]
            if notes or block.notes:
                lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


_TABLE_SEP = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")


def _split_row(line: str) -> list[str]:
    body = line.strip()[1:-1]
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", body)]


def _sort_key(text: str) -> float | None:
    match = re.match(r"^\**\s*(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)", text.strip())
    return float(match.group(1)) if match else None


def from_markdown(lines: list[str]) -> list[Block]:
    """Blocks of the Markdown subset nb360's reports write (headings, pipe tables, images, '- ' lists, paragraphs)."""
    blocks: list[Block] = []
    i = 0
    para: list[str] = []

    def flush() -> None:
        if para:
            blocks.append(Para(" ".join(para)))
            para.clear()

    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            flush()
        elif line.startswith("#"):
            flush()
            level = len(line) - len(line.lstrip("#"))
            blocks.append(Heading(level, line[level:].strip()))
        elif line.startswith("|") and i + 1 < len(lines) and _TABLE_SEP.match(lines[i + 1].strip()):
            flush()
            header = _split_row(line)
            i += 2
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append([Cell(t, sort=_sort_key(t)) for t in _split_row(lines[i])])
                i += 1
            blocks.append(Table(header, rows))  # type: ignore[arg-type]
            continue
        elif (m := re.match(r"^!\[(.*)\]\((.+)\)\s*$", line)):
            flush()
            blocks.append(Image(m.group(2), m.group(1)))
        elif line.startswith("- "):
            flush()
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(lines[i][2:].rstrip())
                i += 1
            blocks.append(Bullets(items))
            continue
        else:
            para.append(line.strip())
        i += 1
    flush()
    return blocks


def as_dict(block: Block) -> dict[str, Any]:
    """A block as plain data (for tests and JSON dumps)."""
    return {"type": type(block).__name__, **{k: v for k, v in vars(block).items()}}
