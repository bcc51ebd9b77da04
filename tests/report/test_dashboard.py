"""Artifacts, and optuna-dashboard run as a real process against a tiny real sweep."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from conftest import TinyStudy
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta
from optuna.trial import TrialState, create_trial
from servers import dashboard_server, get, get_json, probing_proxy

import study
from sweep.report.artifacts import (
    ArtifactError,
    artifact_metas,
    attach_after_sweep,
    attach_best_checkpoint,
    attach_report,
    default_artifact_dir,
    open_store,
    resolve_checkpoint,
)
from sweep.report.summary import collect

READABLE = ("verdict", "tier", "train_mse", "val_mse", "test_mse", "test_train_ratio")


def study_artifacts(study: optuna.Study) -> list[dict]:
    """The study's artifacts as Optuna itself lists them (not through sweep.report.artifacts)."""
    return [vars(m) for m in get_all_artifact_meta(study)]


def read(store: FileSystemArtifactStore, artifact_id: str) -> bytes:
    with store.open_reader(artifact_id) as fh:
        return fh.read()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////data/runs/s.db", Path("/data/runs/artifacts")),
        ("sqlite:///studies.db", Path("artifacts")),
        ("postgresql://u@localhost/db", Path.cwd() / "artifacts"),
    ],
)
def test_artifacts_go_beside_the_database_by_default(url: str, expected: Path) -> None:
    assert default_artifact_dir(url) == expected


def test_attaching_the_same_file_twice_uploads_it_once(tmp_path: Path) -> None:
    study = optuna.create_study()
    store = open_store(tmp_path / "store")
    page = tmp_path / "report.html"
    page.write_text("<p>one</p>")
    first = attach_report(study, store, page)
    assert attach_report(study, store, page) == first
    assert [a["filename"] for a in study_artifacts(study)] == ["report.html"]
    page.write_text("<p>two</p>")  # a new report is a new artifact; the old one stays listed
    second = attach_report(study, store, page)
    assert second != first
    assert (read(store, first), read(store, second)) == (b"<p>one</p>", b"<p>two</p>")
    assert study_artifacts(study)[-1]["mimetype"] == "text/html"


def test_a_file_attached_to_another_store_is_uploaded_to_this_one(tmp_path: Path) -> None:
    study = optuna.create_study()
    page = tmp_path / "report.html"
    page.write_text("<p>x</p>")
    first = attach_report(study, open_store(tmp_path / "a"), page)
    other = open_store(tmp_path / "b")
    second = attach_report(study, other, page)
    assert second != first and read(other, second) == b"<p>x</p>"


def copy_of(tiny: TinyStudy, folder: Path) -> optuna.Study:
    """The tiny study in a database of its own, so attaching here leaves the original alone."""
    src, dst = sqlite3.connect(tiny.db), sqlite3.connect(folder / "copy.db")
    src.backup(dst)
    src.close()
    dst.close()
    return optuna.load_study(study_name=tiny.name, storage=f"sqlite:///{folder / 'copy.db'}")


def test_best_checkpoint_is_attached_once_under_its_trial_number(tiny_study, tmp_path) -> None:
    study = copy_of(tiny_study, tmp_path)
    store = open_store(tmp_path / "store")
    best = collect(study).best.number
    # The sweep itself attached it to the store beside its database.
    earlier = [a["filename"] for a in study_artifacts(study)]
    assert earlier == [f"trial-{best:04d}-best.npz"]
    artifact = attach_best_checkpoint(study, store, base=tiny_study.folder)
    assert attach_best_checkpoint(study, store, base=tiny_study.folder) == artifact
    added = [a["filename"] for a in study_artifacts(study)][len(earlier) :]
    assert added == [f"trial-{best:04d}-best.npz"]
    stored = study.trials[best].user_attrs["best_checkpoint"]
    assert not Path(stored).is_absolute()  # relative to where the sweep ran, found via base
    assert read(store, artifact) == (tiny_study.folder / stored).read_bytes()


def test_the_sweeps_closing_step_attaches_beside_the_db_or_says_why_not(
    tiny_study, tmp_path
) -> None:
    logged: list[str] = []
    artifact = attach_after_sweep(tiny_study.load(), tiny_study.url, logged.append)
    store = FileSystemArtifactStore(tiny_study.folder / "artifacts")
    best = collect(tiny_study.load()).best.number
    stored = tiny_study.load().trials[best].user_attrs["best_checkpoint"]
    assert read(store, artifact) == (tiny_study.folder / stored).read_bytes()
    assert logged == [
        f"best checkpoint attached for optuna-dashboard (--artifact-dir "
        f"{tiny_study.folder / 'artifacts'})"
    ]
    # A copy of the database elsewhere: its relative checkpoint paths lead nowhere.
    copy = copy_of(tiny_study, tmp_path)
    logged.clear()
    assert attach_after_sweep(copy, f"sqlite:///{tmp_path / 'copy.db'}", logged.append) is None
    assert len(logged) == 1 and logged[0].startswith("warning: best checkpoint not attached")


def test_a_missing_checkpoint_is_named() -> None:
    no_attr = create_trial(state=TrialState.PRUNED, value=None)
    with pytest.raises(ArtifactError, match="has no best checkpoint"):
        resolve_checkpoint(no_attr)
    gone = create_trial(
        state=TrialState.COMPLETE,
        value=0.5,
        user_attrs={"best_checkpoint": "checkpoints/s/trial-0000/best.npz"},
    )
    with pytest.raises(ArtifactError, match=r"not there \(tried checkpoints/s/trial-0000") as e:
        resolve_checkpoint(gone, base=Path("/nowhere"))
    # base/path and base/checkpoints/<study>/... are the same file here: named once.
    assert str(e.value).count("/nowhere/checkpoints/s/trial-0000/best.npz") == 1


def test_an_artifact_deleted_in_the_dashboard_does_not_break_attaching(tmp_path: Path) -> None:
    """optuna-dashboard marks a deleted artifact with a null entry, on which
    optuna.artifacts.get_all_artifact_meta fails; with the storage named, the others are
    still recognised."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(storage=storage, study_name="s")
    store = open_store(tmp_path / "store")
    page = tmp_path / "report.html"
    page.write_text("<p>one</p>")
    first = attach_report(study, store, page, url)
    study_id = storage.get_study_id_from_name("s")
    storage.set_study_system_attr(study_id, "artifacts:gone", json.dumps(None))
    assert [m["filename"] for m in artifact_metas(study, url)] == ["report.html"]
    assert attach_report(study, store, page, url) == first


def dashboard_command() -> list[str]:
    beside = Path(sys.executable).with_name("optuna-dashboard")
    exe = str(beside) if beside.exists() else shutil.which("optuna-dashboard")
    if exe is None:
        pytest.fail("optuna-dashboard is not installed (it is in requirements.txt)")
    return [exe]


@pytest.fixture(scope="module")
def dashboard(tiny_study: TinyStudy, tmp_path_factory) -> Iterator[str]:
    """The report made with the default artifact folder, then the dashboard on that folder."""
    argv = ["--storage", tiny_study.url, "--study-name", tiny_study.name]
    assert study.main(["report", *argv, "--html", str(tiny_study.folder / "report.html")]) == 0
    command = [*dashboard_command(), tiny_study.url,
               "--artifact-dir", str(tiny_study.folder / "artifacts")]  # fmt: skip
    log = tmp_path_factory.mktemp("dashboard") / "log.txt"
    with dashboard_server(command, log) as base:
        yield base


def study_detail(base: str, name: str) -> tuple[int, dict]:
    summaries = get_json(base + "/api/studies")["study_summaries"]
    (study_id,) = [s["study_id"] for s in summaries if s["study_name"] == name]
    return study_id, get_json(f"{base}/api/studies/{study_id}")


def test_dashboard_shows_the_trials_with_readable_attributes(dashboard, tiny_study) -> None:
    assert get_json(dashboard + "/api/meta")["artifact_is_available"] is True
    _, detail = study_detail(dashboard, tiny_study.name)
    stored = {t.number: t.user_attrs for t in tiny_study.load().trials}
    assert sorted(t["number"] for t in detail["trials"]) == sorted(stored)
    for t in detail["trials"]:
        shown = {a["key"]: a["value"] for a in t["user_attrs"]}
        for key in READABLE:
            # Strings as they are (not JSON-quoted), numbers as Python prints them.
            assert shown[key] == str(stored[t["number"]][key]), key
        # The long texts are the note's, not lines of their own beside it.
        assert not {"action", "plan_action", "verdict_reason"} & set(shown)
        assert "**What to do:**" in t["note"]["body"]
        assert t["state"] in ("Complete", "Pruned")
    assert "config" in {a["key"] for a in detail["user_attrs"]}
    content_type, page = get(dashboard + "/dashboard")
    assert content_type.startswith("text/html") and b"<html" in page.lower()


def test_dashboard_lists_and_serves_the_report_and_best_checkpoint(dashboard, tiny_study) -> None:
    study_id, detail = study_detail(dashboard, tiny_study.name)
    best = collect(tiny_study.load()).best.number
    by_name = {a["filename"]: a for a in detail["artifacts"]}
    assert set(by_name) == {"report.html", f"trial-{best:04d}-best.npz"}
    content_type, body = get(
        f"{dashboard}/artifacts/{study_id}/{by_name['report.html']['artifact_id']}"
    )
    assert content_type.startswith("text/html")
    assert body == (tiny_study.folder / "report.html").read_bytes()
    ckpt = by_name[f"trial-{best:04d}-best.npz"]["artifact_id"]
    _, body = get(f"{dashboard}/artifacts/{study_id}/{ckpt}")
    stored = tiny_study.load().trials[best].user_attrs["best_checkpoint"]
    assert body == (tiny_study.folder / stored).read_bytes()


def test_a_trial_page_shows_its_note_verdict_and_model_in_a_browser(
    dashboard, tiny_study, tmp_path
) -> None:
    """What a person sees on optuna-dashboard's trial page, rendered by headless Chromium
    (no network beyond the local dashboard): the note first, with the verdict, the tool's own
    advice at the floor, the plan's row labelled as the plan's; the model as an artifact."""
    from test_browser import CHROMIUM

    if not CHROMIUM.exists():
        pytest.skip("headless Chromium is not installed at /usr/bin/chromium")
    study_id, _ = study_detail(dashboard, tiny_study.name)
    trial = tiny_study.load().trials[0]
    proc = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
         "--dump-dom", f"{dashboard}/dashboard/studies/{study_id}/trials?numbers={trial.number}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    dom = proc.stdout
    verdict = trial.user_attrs["verdict"]
    assert f"Trial {trial.number}: {verdict} (at the floor)" in dom, dom[-2000:]
    assert "the learning rate is not the cause" in dom and "--method clock" in dom
    assert f"The plan's row for '{verdict}' says:" in dom
    assert "not meaningful at the floor" in dom
    assert "best.npz" in dom  # the trial's own artifact


#: Measures a trial page once the dashboard has drawn it: the page's width, and how far right
#: each paragraph of the note reaches; written into the DOM for --dump-dom to carry out. It
#: waits for the note (up to 12 s), then 1 s more for the layout to settle: a fixed 4 s found
#: no note once, the suite run in two processes beside a CPU-bound job on 2 cores.
NOTE_PROBE = """<script>(() => {
  const why = () => [...document.querySelectorAll("p")]
    .find((p) => p.textContent.startsWith("Why:"));
  const measure = () => {
    const found = why();
    const note = found ? [...found.parentElement.querySelectorAll("p")] : [];
    const pre = document.createElement("pre");
    pre.id = "note-probe";
    pre.textContent = JSON.stringify({width: window.innerWidth,
      scroll: document.documentElement.scrollWidth,
      right: Math.max(0, ...note.map((p) => p.getBoundingClientRect().right)),
      paragraphs: note.length});
    document.body.appendChild(pre);
  };
  const started = Date.now();
  const wait = setInterval(() => {
    if (why() || Date.now() - started > 12000) {
      clearInterval(wait);
      setTimeout(measure, 1000);
    }
  }, 200);
})();</script>"""


def test_a_trial_note_wraps_inside_the_window_at_1400_px(dashboard, tiny_study, tmp_path) -> None:
    """optuna-dashboard 0.21 draws each user attribute on one unwrapped line in a flex item that
    does not shrink (its issue #448), so the longest attribute sets the trial pane's width: a
    line of about 100 characters still fits at 1400 px, one of 120 does not. The curves and the
    long texts (the advice, the reason) are system attributes, the test MSE is kept a frequency
    a key (``sweep.trial_record``); before, 'action' at the floor (156 characters) put the
    note's right edge at 1601 px, now about 1330."""
    from test_browser import CHROMIUM

    if not CHROMIUM.exists():
        pytest.skip("headless Chromium is not installed at /usr/bin/chromium")
    study_id, _ = study_detail(dashboard, tiny_study.name)
    with probing_proxy(dashboard, NOTE_PROBE) as base:
        proc = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--window-size=1400,1600", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=15000", "--dump-dom",
             f"{base}/dashboard/studies/{study_id}/trials?numbers=0"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    found = re.search(r'<pre id="note-probe">([^<]*)</pre>', proc.stdout)
    assert found, proc.stdout[-2000:]
    seen = json.loads(found.group(1).replace("&quot;", '"'))
    assert seen["width"] == 1400 and seen["paragraphs"] >= 5, seen
    assert seen["right"] <= 1400, seen  # every line of the note within the window
    assert seen["scroll"] <= 1400, seen  # and the page does not scroll sideways
