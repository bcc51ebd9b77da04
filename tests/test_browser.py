"""The HTML report opened in a real browser (headless Chromium) with the network off."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

import pytest

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
FIGURES = ("fig-sweep", "fig-curves", "fig-criteria", "fig-focus", "fig-panels", "fig-per-freq")


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
