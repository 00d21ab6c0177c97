"""The `banditrec` command: `serve` runs the API (with an embedded Redis if needed);
`export` and `import` back up, move or seed its state (see docs/state-format.md);
`import-events` counts a platform's past events (see docs/import-events.md);
`simulate`, `evaluate` and `experiments` prove that it learns (see docs/evaluation.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from service.cli import add_commands as add_service_commands

# The runtime (the Docker image) ships without evaluation/: these then explain what is missing.
_EVALUATION_COMMANDS = ("simulate", "evaluate", "experiments")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen command; return the exit code."""
    parser = argparse.ArgumentParser(prog="banditrec", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_service_commands(commands)
    _add_evaluation_commands(commands)
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "takes_any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return int(args.run(args))


def _add_evaluation_commands(commands: Any) -> None:
    try:
        from evaluation.cli import add_commands
    except ModuleNotFoundError as exc:
        if exc.name not in ("evaluation", "evaluation.cli"):
            raise
        for name in _EVALUATION_COMMANDS:
            missing = commands.add_parser(name, help="needs the evaluation package (not installed)")
            missing.set_defaults(run=_needs_evaluation(name), takes_any_arguments=True)
        return
    add_commands(commands)


def _needs_evaluation(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        print(
            f"banditrec {name}: needs the evaluation package, which this installation lacks; "
            "install banditrec from its source tree with the sim extra: pip install '.[sim]'",
            file=sys.stderr,
        )
        return 2

    return run
