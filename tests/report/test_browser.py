"""The HTML report opened in a real browser (headless Chromium) with the network off."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import REPORT_FIGURES

import study

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless Chromium is not installed at /usr/bin/chromium (Debian package "
    "'chromium', listed in .ci/apt-packages); the report cannot be checked in a browser",
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # Network off: every connection goes to a closed local port, every name fails to resolve.
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    # Console messages (console.*, uncaught exceptions) are logged as "...:CONSOLE...".
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=10000",
)
FIGURES = REPORT_FIGURES


class Rendered(NamedTuple):
    dom: str
    console: list[str]


def render(page: Path, profile: Path) -> Rendered:
    """The DOM after the page's scripts ran, and every console line Chromium logged."""
    proc = subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return Rendered(proc.stdout, console)


class Drawn(HTMLParser):
    """Per figure div: its classes, and how many plot surfaces, traces and points it holds."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.inside: tuple[str, int] | None = None
        self.classes: dict[str, set[str]] = {}
        self.counts: dict[str, dict[str, int]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = set((a.get("class") or "").split())
        if tag == "div":
            self.depth += 1
            if a.get("id") in FIGURES:
                self.inside = (a["id"], self.depth)
                self.classes[a["id"]] = classes
                self.counts[a["id"]] = {"main-svg": 0, "trace": 0, "point": 0}
                return
        if self.inside is not None:
            for name in self.counts[self.inside[0]]:
                self.counts[self.inside[0]][name] += name in classes

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            if self.inside is not None and self.inside[1] == self.depth:
                self.inside = None
            self.depth -= 1


@pytest.fixture(scope="module")
def rendered(tiny_study, tmp_path_factory) -> Rendered:
    folder = tmp_path_factory.mktemp("browser")
    page = folder / "report.html"
    argv = ["--storage", tiny_study.url, "--study-name", tiny_study.name, "--html", str(page)]
    assert study.main(["report", *argv, "--artifacts", str(folder / "artifacts")]) == 0
    return render(page, folder / "profile")


def test_every_figure_drew(rendered: Rendered) -> None:
    parser = Drawn()
    parser.feed(rendered.dom)
    assert set(parser.counts) == set(FIGURES)
    for fig, counts in parser.counts.items():
        assert "js-plotly-plot" in parser.classes[fig], fig  # plotly.js took the div over
        assert counts["main-svg"] >= 1, (fig, counts)
        assert counts["trace"] >= 1, (fig, counts)
    # The model's output is one dot per sample of the window (200 samples = 0.2 s here).
    assert parser.counts["fig-focus"]["point"] >= 200
    assert re.search(r"floor \(no clock\): MSE 0\.\d+", rendered.dom)  # the floor is labelled


def test_the_console_is_silent(rendered: Rendered) -> None:
    assert rendered.console == []


def test_the_console_check_would_see_an_error_and_a_network_request(tmp_path: Path) -> None:
    """The two checks above prove something only if this browser reports console errors and
    really has no network: a page that logs an error and tries a URL must show both."""
    page = tmp_path / "control.html"
    page.write_text(
        '<!DOCTYPE html><html><body><script>console.error("control error");</script>'
        '<img src="http://example.com/x.png" onerror="console.log(\'network off\')" '
        "onload=\"console.log('network on')\"><script>notDefined();</script></body></html>"
    )
    console = "\n".join(render(page, tmp_path / "profile").console)
    assert "control error" in console
    assert "Uncaught ReferenceError: notDefined is not defined" in console
    assert "network off" in console and "network on" not in console


def figure_dom(dom: str, fig: str) -> str:
    """The DOM of one figure's div (up to the next figure's)."""
    start = dom.index(f'id="{fig}"')
    later = [dom.find(f'id="{f}"', start + 1) for f in FIGURES]
    return dom[start : min([i for i in later if i > start] or [len(dom)])]


def y_ticks(fig_dom: str) -> list[str]:
    return re.findall(r'<g class="ytick"><text[^>]*data-unformatted="([^"]*)"', fig_dom)


def legend(fig_dom: str) -> list[str]:
    return re.findall(r'class="legendtext"[^>]*>([^<]*)<', fig_dom)


@pytest.fixture(scope="module")
def at_the_floor(tmp_path_factory) -> Rendered:
    """Six hand-made trials at the predict-zero floor, 5e-5 apart (no models on disk)."""
    from test_html_report import floor_sweep

    from sweep.report.html import build

    folder = tmp_path_factory.mktemp("floor")
    page = folder / "report.html"
    page.write_text(build(floor_sweep(6)), encoding="utf-8")
    return render(page, folder / "profile")


def test_no_axis_of_the_real_report_has_a_bare_digit_label(rendered: Rendered) -> None:
    for fig in ("fig-sweep", "fig-curves", "fig-criteria"):
        ticks = y_ticks(figure_dom(rendered.dom, fig))
        assert ticks, fig
        assert not [t for t in ticks if re.fullmatch(r"[1-9]", t) and t != "1"], (fig, ticks)


def test_at_the_floor_the_page_shows_the_differences_and_says_they_are_noise(
    at_the_floor: Rendered,
) -> None:
    dom = at_the_floor.dom
    sweep = figure_dom(dom, "fig-sweep")
    ticks = y_ticks(sweep)
    # Zoomed: several distinct ticks between 0.5 and the worst trial, 0.50025.
    assert len(set(ticks)) >= 3 and all(t.startswith("0.500") for t in ticks), ticks
    assert "floor (no clock): MSE 0.5" in sweep and "within noise of the best" in sweep
    assert "tier limits" in sweep  # the tiers are off the zoomed axis, and it says so
    assert sorted(legend(sweep)) == ["healthy", "plateau"]  # colours only: every mark a circle
    assert len(legend(figure_dom(dom, "fig-curves"))) == 6  # one entry per trial
    assert "these differences are noise" in dom
    criteria = figure_dom(dom, "fig-criteria")
    assert "not meaningful at the floor" in criteria
    assert dom.count('class="na">1.00: not meaningful at the floor') == 3


def test_the_floor_page_console_is_silent(at_the_floor: Rendered) -> None:
    assert at_the_floor.console == []


# --- the report at 20 clock trials, at a desktop's and a phone's width (issue 22) -------------

#: Run in the page once plotly has drawn: what a person would see as collisions or a page
#: wider than the screen, measured, and written into the DOM for --dump-dom to carry out.
LAYOUT_PROBE = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const box = (e) => { const r = e.getBoundingClientRect();
    return {l: r.left, r: r.right, t: r.top, b: r.bottom, text: e.textContent}; };
  const curves = document.getElementById("fig-curves");
  const titles = [...curves.querySelectorAll("g.annotation")].map(box)
    .filter((a) => /validation MSE|training loss|prefix length/.test(a.text));
  const legend = [...curves.querySelectorAll(".legendtext")].map((e) => e.textContent);
  const sweep = document.getElementById("fig-sweep");
  const xticks = [...sweep.querySelectorAll("g.xtick text")].map((e) => e.textContent);
  const out = {width: window.innerWidth, scroll: document.documentElement.scrollWidth,
               titles, legend, xticks};
  const pre = document.createElement("pre");
  pre.id = "layout-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
  if (window.parent !== window) window.parent.postMessage(pre.textContent, "*");
}, 1000));
</script>"""
#: Chromium's window is at least 500 px wide: a phone's width is a frame of that width in it,
#: whose page measures itself and posts what it saw to this one.
PHONE_FRAME = """<!DOCTYPE html><html><body style="margin:0">
<iframe src="{src}" style="width:{width}px;height:2400px;border:0"></iframe>
<script>window.addEventListener("message", (e) => {{
  const pre = document.createElement("pre");
  pre.id = "layout-probe";
  pre.textContent = e.data;
  document.body.appendChild(pre);
}});</script></body></html>"""
#: The narrowest window Chromium opens.
MIN_WINDOW = 500


def probe_layout(page_html: str, folder: Path, width: int) -> dict:
    """The report's layout at a window ``width`` px wide, as LAYOUT_PROBE measured it; a
    screenshot is left beside it for a person to look at."""
    import json

    page = folder / f"report-{width}.html"
    page.write_text(page_html.replace("</body>", LAYOUT_PROBE + "</body>"), encoding="utf-8")
    if width < MIN_WINDOW:
        page = folder / f"phone-{width}.html"
        page.write_text(PHONE_FRAME.format(src=f"report-{width}.html", width=width))
    size = f"--window-size={max(width, MIN_WINDOW)},2400"
    shot = subprocess.run([str(CHROMIUM), *FLAGS, size, f"--user-data-dir={folder / 'p'}",
                           f"--screenshot={folder / f'report-{width}.png'}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert shot.returncode == 0, shot.stderr[-2000:]
    proc = subprocess.run([str(CHROMIUM), *FLAGS, size, f"--user-data-dir={folder / 'p'}",
                           "--dump-dom", page.as_uri()], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r'<pre id="layout-probe">([^<]*)</pre>', proc.stdout)
    assert found, proc.stdout[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def overlap(a: dict, b: dict) -> bool:
    return a["l"] < b["r"] and b["l"] < a["r"] and a["t"] < b["b"] and b["t"] < a["b"]


@pytest.fixture(scope="module")
def clock_page(tmp_path_factory) -> tuple[str, Path]:
    from test_html_report import clock_sweep

    from sweep.report.html import build

    return build(clock_sweep(20)), tmp_path_factory.mktemp("clock-page")


@pytest.mark.parametrize("width", [1400, 390])
def test_the_clock_report_stays_readable_at_a_desktops_and_a_phones_width(
    clock_page: tuple[str, Path], width: int
) -> None:
    page_html, folder = clock_page
    seen = probe_layout(page_html, folder, width)
    assert seen["width"] == width
    # The page never scrolls sideways; a wide figure scrolls inside its own section.
    assert seen["scroll"] <= width, seen["scroll"]
    # Three subplot titles, none running into another.
    titles = seen["titles"]
    assert len(titles) == 3, titles
    for i, a in enumerate(titles):
        for b in titles[i + 1 :]:
            assert not overlap(a, b), (a, b)
    # Seeds are integers in the legend, and the sweep's seed axis is their categories.
    seeds = [re.search(r"seed (\S+):", t).group(1) for t in seen["legend"]]
    assert len(seeds) == 20 and all(s.isdigit() for s in seeds), seeds
    assert seen["xticks"] and all(t.isdigit() for t in seen["xticks"]), seen["xticks"]
    assert (folder / f"report-{width}.png").stat().st_size > 10_000
