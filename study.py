"""Command line of the LSTM learning-rate sweep.

python study.py --trials 20         run (or continue) the sweep into ./studies.db
python study.py report [--json]     compare every trial with the plan's success criteria
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import MISSING, fields
from typing import NoReturn

from sweep.settings import DEFAULT_STORAGE, DEFAULT_STUDY, SweepConfig

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage dump: the user sees what is wrong and nothing else.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def run_parser() -> Parser:
    p = Parser(
        prog="study.py",
        description="Search the learning rate of the plan's L=1 LSTM training with Optuna. "
        "Each trial trains one model (30 epochs at most, pruned by the plan's divergence rules) "
        "and is scored by its honest validation MSE. Results go to an Optuna database that "
        "optuna-dashboard can open; rerun the same command to continue an interrupted sweep.",
        epilog="Other commands: 'study.py report --help'.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for f in fields(SweepConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        if isinstance(default, bool):
            p.add_argument(flag, action="store_true", help=f.metadata["help"])
        else:
            p.add_argument(flag, type=type(default), default=default, help=f.metadata["help"],
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
    # Imported here so that --help and argument errors answer at once, without torch.
    from sweep.runner import ConfigConflict, run_sweep
    from sweep.storage import StorageError

    try:
        run_sweep(config, log=lambda m: print(m, flush=True))
    except (StorageError, ConfigConflict) as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        again = shlex.join(["python", "study.py", *argv])
        print(
            "\ninterrupted: finished trials are saved; the cut-off trial continues from its "
            f"last completed epoch when you run:\n  {again}",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_INTERRUPTED
    print(f"done. See the results with:\n  python study.py report"
          f"{'' if config.storage == DEFAULT_STORAGE else ' --storage ' + config.storage}"
          f"{'' if config.study_name == DEFAULT_STUDY else ' --study-name ' + config.study_name}"
          f"\n  optuna-dashboard {config.storage}")  # fmt: skip
    return 0


def cmd_report(argv: list[str]) -> int:
    args = report_parser().parse_args(argv)
    from sweep.report import collect, render_text, to_json
    from sweep.storage import StorageError, load_study

    try:
        study = load_study(args.storage, args.study_name)
    except StorageError as exc:
        return fail(str(exc))
    summary = collect(study)
    print(json.dumps(to_json(summary), indent=2) if args.json else render_text(summary))
    return 0


COMMANDS = {"report": cmd_report}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    return cmd_run(argv)


if __name__ == "__main__":
    sys.exit(main())
