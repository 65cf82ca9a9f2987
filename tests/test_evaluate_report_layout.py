"""The HTML report as a reviewer sees it: rendered by headless Chromium at 1280 px, nothing may
stick out horizontally (tables, figures, long notes), and the page carries what a reader needs.

Skips only when no Chromium is installed (``apt-get install -y chromium``, in .ci/setup).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from station.cli import main
from station.evaluate.report import Report, Section, Table
from station.evaluate.synthetic import make_database

pytestmark = pytest.mark.slow

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)

PROBE = """<script>
window.addEventListener('load', () => {
  const width = document.documentElement.clientWidth;
  const over = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > width + 0.5 || e.scrollWidth > e.clientWidth + 1)
    .map(e => e.tagName + ':' + (e.textContent || e.getAttribute('src') || '').trim().slice(0, 60));
  const imgs = [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth]);
  document.title = JSON.stringify({scroll: document.documentElement.scrollWidth, width, over, imgs});
});
</script>"""


def layout(page: Path, width: int = 1280) -> dict:
    """Render ``page`` in headless Chromium at ``width`` px and return the probe's measurements."""
    probe = page.with_name("layout-probe.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    out = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          f"--window-size={width},900", "--virtual-time-budget=5000", "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=120)
    title = re.search(r"<title>(.*?)</title>", out.stdout, re.S)
    assert title, out.stderr[-2000:]
    import html

    return json.loads(html.unescape(title.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_report_fits_1280_px_in_chromium(tmp_path):
    db = tmp_path / "db"
    make_database(db, n_subjects=4, n_samples=32, classes=("I", "II", "IV", "V", "Others"), size=24, n_frames=8,
                  seed=2)
    out = tmp_path / "report"
    assert main(["evaluate", str(db), "--out", str(out), "--radii", "1,1,2", "--blocks", "2x2", "--repeats", "2",
                 "--jobs", "1", "--no-3d", "--label-sets", "objective,nonobjective,3class"]) == 0
    page = out / "report.html"
    text = page.read_text(encoding="utf-8")
    for needed in ("Run", "Definitions", "UF1", "UAR", "chance (majority)", "chance (uniform)", "class counts",
                   "per-class recall", "database hash", "LBP-TOP", "variant=zhao", "scikit-learn", "Loading notes",
                   "Confusion matrix"):
        assert needed in text, needed
    m = layout(page)
    assert m["scroll"] <= m["width"] == 1280 - 0, m
    assert m["over"] == [], m["over"]
    assert m["imgs"] and all(w > 0 for _, w in m["imgs"])  # every figure loads


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_wide_tables_and_long_notes_wrap_instead_of_overflowing(tmp_path):
    report = Report(tmp_path, "wide")
    headers = [f"a rather long column header number {i}" for i in range(16)]
    report.section(Section("16 columns", "x" * 400, [Table(headers, [[f"cell-{i}-{j}" * 3 for j in range(16)]
                                                                      for i in range(4)])]))
    report.notes.append("/very/long/path/" + "segment/" * 60)
    report.loading_notes.append(("sub01/EP01", "note " + "without-any-space-" * 40))
    m = layout(report.write())
    assert m["scroll"] <= m["width"] and m["over"] == [], m
