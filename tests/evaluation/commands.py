"""Run the evaluation package's subcommands through its own argparse wiring (add_commands)."""

from __future__ import annotations

import argparse

from evaluation.cli import add_commands


def run(argv: list[str]) -> int:
    """Run `banditrec ARGV` for a simulate or evaluate command line; return the exit code."""
    parser = argparse.ArgumentParser(prog="banditrec")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code
