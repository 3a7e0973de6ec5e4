"""The static HTML report: one self-contained file, checked in a real headless chromium (Debian's package).

The suite behind it is tiny: XGBoost (few rounds) on the SYNTHETIC NinaPro fixture, two seeds. In CI
(CI=true) a missing chromium fails the test; elsewhere it skips, naming the package to install.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from nb360.report.document import Cell, Heading, Image, Para, Table, from_markdown, to_markdown
from nb360.report.html import to_html

PNG = b"\x89PNG\r\n\x1a\n"


def _need_chromium() -> None:
    from headless_browser import chromium_path

    if chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: .ci/run installs it (apt-get install -y chromium)")
        pytest.skip("chromium is not installed: apt-get install -y chromium (Debian's package) to run the browser test")
    pytest.importorskip("websocket", reason="pip install websocket-client (a test extra)")


@pytest.fixture(scope="module")
def suite_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("xgboost")
    from nb360.report import write_suite_report
    from nb360.suite import SuiteSpec, run_suite
    from task_fixtures import build_ninapro

    tmp = tmp_path_factory.mktemp("html")
    build_ninapro(tmp / "data" / "ninapro", sizes=(40, 12, 12))
    run_suite(SuiteSpec(methods=("xgboost",), tasks=("ninapro",), seeds=(0, 1), data_root=str(tmp / "data"),
                        xgb_rounds=4), tmp / "suite", progress=False, say=lambda line: None)
    return write_suite_report(tmp / "suite", tmp / "suite" / "report").with_name("report.html")


def test_html_is_self_contained_with_provenance(tmp_path: Path) -> None:
    (tmp_path / "p.png").write_bytes(PNG + b"fake")
    blocks = [Heading(1, "T"), Para("a **b** `c` <d>"),
              Table(["x", "y"], [[Cell("1.5", title="from run A", sort=1.5), "2"]], notes=["a note"]),
              Image("p.png", "plot")]
    page = to_html(blocks, tmp_path, title="t")
    assert "<strong>b</strong>" in page and "<code>c</code>" in page and "&lt;d&gt;" in page
    assert 'title="from run A"' in page and 'data-sort="1.5"' in page and "a note" in page
    assert "data:image/png;base64," in page and "p.png\"" not in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page) and "<link" not in page
    md = to_markdown(blocks)
    assert "| 1.5 [1] | 2 |" in md and "[1] from run A" in md
    parsed = from_markdown(md.splitlines())
    assert [type(b).__name__ for b in parsed] == ["Heading", "Para", "Table", "Para", "Image"]


def test_suite_report_html_has_every_section(suite_report: Path) -> None:
    page = suite_report.read_text()
    for heading in ("Methods × tasks", "Published results beside them", "Performance profiles", "Leaderboards per task",
                    "Units"):
        assert f">{heading}<" in page
    assert "Dolan" in page and "r = v / min v" in page  # the profile definition is stated
    assert page.count("data:image/png;base64,") >= 2 and "NOT comparable" in page


def test_the_page_in_headless_chromium(suite_report: Path) -> None:
    _need_chromium()
    from headless_browser import Browser

    browser = Browser()
    try:
        browser.open(suite_report.as_uri())
        assert browser.errors() == []
        assert browser.js("document.querySelectorAll('table.sortable').length") >= 4
        images = browser.js("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
        assert len(images) >= 2 and all(done and width > 100 for done, width in images)
        # the units table: sort by the test value with a real click on its header, then reverse it
        index = browser.js("Array.from(document.querySelectorAll('table.sortable')).findIndex(t => "
                           "t.tHead.textContent.includes('seconds'))")
        table = f"table.sortable:nth-of-type(1)"
        table_id = browser.js(f"document.querySelectorAll('table.sortable')[{index}].id")
        column = browser.js(f"Array.from(document.querySelectorAll('#{table_id} th')).findIndex(th => "
                            "th.textContent.startsWith('test'))")
        read = (f"Array.from(document.querySelectorAll('#{table_id} tbody tr')).map(r => "
                f"parseFloat(r.cells[{column}].getAttribute('data-sort')))")
        before = browser.js(read)
        browser.click(f"#{table_id} th:nth-child({column + 1})")
        ascending = browser.js(read)
        assert ascending == sorted(before)
        assert browser.js(f"document.querySelector('#{table_id} th:nth-child({column + 1})')"
                          ".getAttribute('aria-sort')") == "ascending"
        browser.click(f"#{table_id} th:nth-child({column + 1})")
        assert browser.js(read) == sorted(before, reverse=True)
        # provenance on hover: the methods x tasks cell says where its number comes from
        title = browser.js("document.querySelector('td.apart[title]').title")
        assert "seeds 0, 1" in title and "NOT comparable" in title and table
        assert browser.errors() == []
    finally:
        browser.close()


@pytest.mark.slow
def test_screenshot_of_the_report(suite_report: Path, tmp_path: Path) -> None:
    _need_chromium()
    from headless_browser import Browser

    browser = Browser()
    try:
        browser.open(suite_report.as_uri())
        browser.screenshot(tmp_path / "report.png")
    finally:
        browser.close()
    data = (tmp_path / "report.png").read_bytes()
    assert data.startswith(PNG)
    import matplotlib.image as mpimg

    pixels = mpimg.imread(tmp_path / "report.png")
    assert pixels.shape[1] >= 1000 and pixels.shape[0] > 900  # the whole page, not a blank viewport
    assert pixels[..., :3].std() > 0.05  # text, tables and plots drawn
