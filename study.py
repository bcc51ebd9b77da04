"""Command line of the LSTM learning-rate sweep.

python study.py --trials 20         run (or continue) the sweep into ./studies.db
python study.py report [--json]     compare every trial with the plan's success criteria
python study.py report --html r.html   the same as an offline page with plots
python study.py eval --trial N      a trial's model on a fresh noise seed
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import sys
from dataclasses import MISSING, fields, replace
from typing import NoReturn

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + signal.SIGTERM


def _interrupted_loading(_signum: int, _frame: object) -> None:
    # Ctrl-C while numpy, torch and Optuna load (up to seconds): nothing has started, so one
    # line and the usual exit status, not a traceback from inside an import.
    print("\ninterrupted while starting: nothing was changed", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_INTERRUPTED)


# Until main() runs; a SIGINT ignored on purpose (a background job's) stays ignored.
if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_loading)

from model.data import TEST_SEED  # noqa: E402
from sweep.settings import DEFAULT_STORAGE, DEFAULT_STUDY, SweepConfig  # noqa: E402


class Terminated(KeyboardInterrupt):
    """SIGTERM: stopped like Ctrl-C (trials marked, workers stopped), exit 143."""


def _terminate(_signum: int, _frame: object) -> None:
    # Once: a second SIGTERM must not cut off the recording of the first.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage dump: the user sees what is wrong and nothing else.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Each flag's default in its help, except where the default is the method's own (None),
    which its help text says in words."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)


def run_parser() -> Parser:
    p = Parser(
        prog="study.py",
        description="Run an Optuna study of the LSTM under one training method. --method l1 "
        "(the default) searches the learning rate of the plan's L=1 training, each trial pruned "
        "by the plan's divergence rules; --method clock searches the seed of the clock method's "
        "initial weights (a stalled grow stage starts over inside its trial). Each trial is "
        "scored by its honest validation MSE. Results go to an Optuna database that "
        "optuna-dashboard can open; rerun the same command to continue an interrupted sweep.",
        epilog="Other commands: 'study.py report --help', 'study.py eval --help'.",
        formatter_class=DefaultsHelp,
    )
    for f in fields(SweepConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        if isinstance(default, bool):
            p.add_argument(flag, action="store_true", help=f.metadata["help"])
        else:
            kind = f.metadata.get("type", type(default))
            p.add_argument(flag, type=kind, default=default, help=f.metadata["help"],
                           metavar=f.name.upper())  # fmt: skip
    return p


def report_parser() -> Parser:
    p = Parser(
        prog="study.py report",
        description="Print every trial of a study and where the best one stands against the "
        "plan's success criteria (minimum, good, excellent).",
    )
    p.add_argument("--storage", default=DEFAULT_STORAGE, help="Optuna storage URL")
    p.add_argument("--study-name", default=DEFAULT_STUDY, help="study to report")
    p.add_argument("--json", action="store_true", help="print one JSON document instead")
    p.add_argument(
        "--html",
        metavar="PATH",
        help="also write a self-contained HTML report "
        "(plots of the sweep and of a trained model; opens with no network)",
    )
    p.add_argument(
        "--trial",
        type=int,
        metavar="N",
        help="with --html: draw the model of trial N instead of the best trial",
    )
    p.add_argument(
        "--freq",
        type=float,
        default=3.0,
        metavar="HZ",
        help="with --html: the frequency shown on its own (default: 3)",
    )
    p.add_argument(
        "--artifacts",
        metavar="DIR",
        help="artifact folder for optuna-dashboard "
        "(default: artifacts/ beside the database); with --html the report and the "
        "best checkpoint are attached there, with this flag alone the checkpoint",
    )
    return p


def fail(message: str) -> int:
    print(f"study.py: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_run(argv: list[str]) -> int:
    args = run_parser().parse_args(argv)
    try:
        config = SweepConfig(**vars(args))
    except ValueError as exc:
        return fail(str(exc))
    from sweep.store.interrupts import deferring

    # Raised only where it is safe: never inside a database write (sweep.store.interrupts).
    signal.signal(signal.SIGINT, deferring(signal.default_int_handler))
    signal.signal(signal.SIGTERM, deferring(_terminate))
    try:
        # Imported here so that --help and argument errors answer at once, without torch.
        import optuna
        from sqlalchemy.exc import SQLAlchemyError

        from sweep.identity import ConfigConflict
        from sweep.processes import WorkerError, WorkerStartError
        from sweep.runner import run_sweep
        from sweep.store.reconnect import DatabaseUnavailable
        from sweep.store.recovery import CheckpointWriteError
        from sweep.store.storage import StorageError, scrub

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        view = live_view(config)
        if view is None:
            study = run_sweep(config, log=lambda m: print(m, flush=True))
        else:
            view.start()
            try:
                # The view shows each running trial's epoch: per-epoch lines would scroll it.
                study = run_sweep(replace(config, quiet=True), log=view.log, watch=view.watch)
            finally:
                view.stop()  # first: what follows is printed below its last frame
    except KeyboardInterrupt as exc:  # first: it may come before the other names are imported
        again = shlex.join(["python", "study.py", *argv])
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(
            f"\n{what}: finished trials are saved; the cut-off trial continues from its "
            f"last completed epoch when you run:\n  {again}",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    except (StorageError, ConfigConflict, CheckpointWriteError, WorkerStartError,
            DatabaseUnavailable) as exc:  # fmt: skip
        return fail(str(exc))
    except SQLAlchemyError as exc:  # e.g. the database locked by another program for too long
        first = scrub((str(exc).strip().splitlines() or [""])[0], config.storage)
        return fail(f"storage failed during the sweep ({type(exc).__name__}: {first}); "
                    "run the same command again to continue")  # fmt: skip
    except WorkerError as exc:
        print(f"study.py: {exc}", file=sys.stderr)
        return 1
    print("\n".join(answer(study, config)), flush=True)
    return 0


def live_view(config: SweepConfig):  # -> sweep.report.live.LiveView | None
    """The live view when stdout is a terminal (and --plain was not given), else None."""
    from sweep.report.live import LiveView, use_live_view

    if not use_live_view(sys.stdout.isatty(), config.plain, os.environ.get("TERM")):
        return None
    return LiveView(config.trials, config.workers)


def answer(study: object, config: SweepConfig) -> list[str]:
    """The run's last lines: the best trial, what it means, and the commands that show more."""
    from sweep.report.answer import NextCommands, answer_lines
    from sweep.report.artifacts import default_artifact_dir
    from sweep.report.summary import collect, sibling_studies

    where: list[str] = []
    if config.storage != DEFAULT_STORAGE:
        where += ["--storage", config.storage]
    if config.study_name != DEFAULT_STUDY:
        where += ["--study-name", config.study_name]
    commands = NextCommands(
        report=shlex.join(["python", "study.py", "report", *where]),
        html=shlex.join(["python", "study.py", "report", *where, "--html", "report.html"]),
        dashboard=f"optuna-dashboard {shlex.quote(config.storage)} --artifact-dir "
        f"{shlex.quote(str(default_artifact_dir(config.storage)))}",
        eval=shlex.join(["python", "study.py", "eval", *where]),
    )
    return answer_lines(collect(study, sibling_studies(study, config.storage)), commands)


def cmd_report(argv: list[str]) -> int:
    args = report_parser().parse_args(argv)
    if args.html is not None:
        from pathlib import Path

        folder = Path(args.html).parent
        if not folder.is_dir():
            return fail(f"cannot write --html {args.html}: folder {folder} does not exist")
    from sweep.report.summary import collect, sibling_studies
    from sweep.report.text import render_text, to_json
    from sweep.store.storage import StorageError, load_study

    # --html and --artifacts attach files to the study: a read-only database is refused first.
    writes = ("report --html (it attaches the page to the study)" if args.html is not None
              else "report --artifacts" if args.artifacts is not None else None)  # fmt: skip
    try:
        study = load_study(args.storage, args.study_name, writes)
    except StorageError as exc:
        return fail(str(exc))
    if args.trial is not None and args.html is None:
        return fail("--trial draws graphs in the HTML report: give --html PATH too")
    summary = collect(study, sibling_studies(study, args.storage))
    text = json.dumps(to_json(summary), indent=2) if args.json else render_text(summary)
    if args.html is None and args.artifacts is None:
        print(text)
        return 0
    from sweep.report.publish import PublishError, publish

    out = sys.stderr if args.json else sys.stdout  # keep --json's stdout one JSON document
    lines: list[str] = []
    try:
        # The text comes first, once the page and artifacts are known to be writable.
        publish(study, summary, args.storage, args.html, args.artifacts, args.trial, args.freq,
                say=lines.append, warn=lambda m: print(m, file=sys.stderr))  # fmt: skip
    except PublishError as exc:
        return fail(str(exc))
    print(text)
    for line in lines:
        print(line, file=out)
    return 0


def eval_parser() -> Parser:
    p = Parser(
        prog="study.py eval",
        description="Evaluate a finished trial's model on a freshly generated set with any noise "
        "seed: honest MSE (frozen weights, state reset at each block start), overall and per "
        "frequency. Shows whether a result holds beyond the seeds it was selected on.",
    )
    p.add_argument("--trial", type=int, required=True, metavar="N", help="trial number")
    p.add_argument("--seed", type=int, default=TEST_SEED, help="noise seed of the new set")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help="Optuna storage URL")
    p.add_argument("--study-name", default=DEFAULT_STUDY, help="study of the trial")
    return p


def cmd_eval(argv: list[str]) -> int:
    args = eval_parser().parse_args(argv)
    from sweep.report.evaluation import EvaluationError, evaluate_trial, render
    from sweep.store.storage import StorageError, load_study, sqlite_path

    try:
        study = load_study(args.storage, args.study_name)
        db = sqlite_path(args.storage)
        print(render(evaluate_trial(study, args.trial, args.seed, db.parent if db else None)))
    except (StorageError, EvaluationError) as exc:
        return fail(str(exc))
    return 0


COMMANDS = {"report": cmd_report, "eval": cmd_eval}
_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$", re.IGNORECASE)


def join_negative_values(argv: list[str]) -> list[str]:
    """argparse takes '-1e-4' for an option; '--lr-min -1e-4' is meant as a value (which the
    validation then refuses with a clear message)."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NUMBER.match(arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    if signal.getsignal(signal.SIGINT) is _interrupted_loading:
        # Loaded: from here on Ctrl-C is a KeyboardInterrupt, which each command handles.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    argv = join_negative_values(list(sys.argv[1:] if argv is None else argv))
    try:
        if argv and argv[0] in COMMANDS:
            return COMMANDS[argv[0]](argv[1:])
        return cmd_run(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:  # report or eval (a sweep says more, in cmd_run)
        print(
            "\ninterrupted (its files are written whole or not at all)",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `study.py report | head`: the reader left; nothing is wrong
        # As Python's docs advise: point stdout at devnull so the flush at exit cannot fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
