"""The report as one self-contained HTML file: sortable tables, plots inline, every number's provenance on hover.

No external resource is loaded (styles, the sorting script and the PNG plots are inside the file),
so the page can be mailed, attached to a paper's supplement or opened offline. Clicking a column
header sorts the table by it (numerically where the column holds numbers; again to reverse);
cells with a provenance show it on hover (`title`) and as numbered notes under their table.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from .document import Block, Bullets, Heading, Image, Para, Table, cell

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1180px;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.3em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
h3{font-size:1.1em}code{background:#f4f4f4;padding:0 .25em;border-radius:3px;font-size:.92em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.86em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f0f3f7;cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td[title]{text-decoration:underline dotted #888;cursor:help}
td.apart{background:#fff4e5}td.comparable{background:#e8f1fb}td.published{background:#f3f3f3}
td.missing{color:#999}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.notes{font-size:.8em;color:#444;margin:-.6em 0 1.2em}.notes p{margin:.1em 0}
"""

# Sorting: numbers by data-sort where every non-empty cell of the column has one, text otherwise; empty last.
_SCRIPT = """
(function(){
  function key(td){ if(!td) return null; var s=td.getAttribute('data-sort');
    return (s===null||s==='')?null:parseFloat(s); }
  function sortTable(table, col, th){
    var body=table.tBodies[0]; var rows=Array.prototype.slice.call(body.rows);
    var numeric=rows.every(function(r){var t=r.cells[col]; return !t || t.textContent.trim()==='' ||
      key(t)!==null || /^(n\\/a|—|-)$/.test(t.textContent.trim());});
    var dir=th.getAttribute('aria-sort')==='ascending'?-1:1;
    rows.sort(function(a,b){
      var x=a.cells[col], y=b.cells[col];
      if(numeric){ var p=key(x), q=key(y);
        if(p===null&&q===null) return 0; if(p===null) return 1; if(q===null) return -1; return dir*(p-q); }
      return dir*((x?x.textContent:'').localeCompare(y?y.textContent:''));
    });
    rows.forEach(function(r){body.appendChild(r);});
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function(h){h.removeAttribute('aria-sort');});
    th.setAttribute('aria-sort', dir===1?'ascending':'descending');
  }
  document.querySelectorAll('table.sortable').forEach(function(table){
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function(th, col){
      th.addEventListener('click', function(){ sortTable(table, col, th); });
    });
  });
})();
"""


def inline(text: str) -> str:
    """Escaped text with nb360's Markdown inline marks: **bold**, `code`."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", out)


def _image(block: Image, base: Path) -> str:
    path = base / block.path
    if not path.is_file():
        return f'<p class="missing">(plot {html.escape(block.path)} not written)</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    kind = "svg+xml" if path.suffix == ".svg" else "png"
    return (f'<figure><img alt="{html.escape(block.alt)}" src="data:image/{kind};base64,{data}">'
            f"<figcaption>{inline(block.alt)}</figcaption></figure>")


def _table(block: Table, index: int) -> str:
    parts = []
    if block.caption:
        parts.append(f"<p>{inline(block.caption)}</p>")
    parts.append(f'<table class="sortable" id="table-{index}"><thead><tr>' +
                 "".join(f"<th>{inline(h)}</th>" for h in block.header) + "</tr></thead><tbody>")
    notes: dict[str, int] = {}
    for row in block.rows:
        tds = []
        for c in map(cell, row):
            attrs = ""
            if c.title:
                number = notes.setdefault(c.title, len(notes) + 1)
                attrs += f' title="{html.escape(c.title)}" data-note="{number}"'
            if c.sort is not None:
                attrs += f' data-sort="{c.sort!r}"'
            if c.css:
                attrs += f' class="{html.escape(c.css)}"'
            mark = f"<sup>{notes[c.title]}</sup>" if c.title else ""
            tds.append(f"<td{attrs}>{inline(c.text)}{mark}</td>")
        parts.append("<tr>" + "".join(tds) + "</tr>")
    parts.append("</tbody></table>")
    if notes or block.notes:
        parts.append('<div class="notes">' + "".join(f"<p><sup>{n}</sup> {inline(t)}</p>" for t, n in notes.items())
                     + "".join(f"<p>{inline(t)}</p>" for t in block.notes) + "</div>")
    return "\n".join(parts)


def to_html(blocks: list[Block], base: str | Path, *, title: str) -> str:
    """One self-contained HTML page of the blocks; images are read from `base` and inlined."""
    base = Path(base)
    body = []
    tables = 0
    for block in blocks:
        if isinstance(block, Heading):
            level = min(max(block.level, 1), 6)
            body.append(f"<h{level}>{inline(block.text)}</h{level}>")
        elif isinstance(block, Para):
            body.append(f"<p>{inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            body.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Image):
            body.append(_image(block, base))
        elif isinstance(block, Table):
            tables += 1
            body.append(_table(block, tables))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{html.escape(title)}"
            f"</title><style>{_STYLE}</style></head>\n<body>\n" + "\n".join(body) +
            f"\n<script>{_SCRIPT}</script>\n</body></html>\n")


def write_html(blocks: list[Block], out_dir: str | Path, *, title: str, name: str = "report.html") -> Path:
    """Write the page into `out_dir` (atomically); return its path."""
    import os

    path = Path(out_dir) / name
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(to_html(blocks, out_dir, title=title), encoding="utf-8")
    os.replace(tmp, path)
    return path
