"""The `banditrec` command joins the service's and the evaluation's subcommands."""

from __future__ import annotations

import sys

import pytest

from cli import main


@pytest.fixture
def without_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `import evaluation...` fail as it does where only the runtime is installed."""
    for name in list(sys.modules):
        if name == "evaluation" or name.startswith("evaluation."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "evaluation", None)


@pytest.mark.parametrize("command", ["simulate", "evaluate"])
def test_an_evaluation_command_without_the_package_says_what_is_missing(
    without_evaluation: None, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--out", "run", "--impressions", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"banditrec {command}: needs the evaluation package")
    assert "[sim]" in err


def test_the_service_commands_do_not_need_the_evaluation_package(
    without_evaluation: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--help"])
    assert exit_.value.code == 0
    assert "--workers" in capsys.readouterr().out


def test_unknown_arguments_of_an_installed_command_are_still_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--bogus"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "defaults"),
    [
        ("serve", ["(default: BANDITREC_HOST, else 127.0.0.1)", "BANDITREC_PORT, else 8000"]),
        ("export", ["(default: stdout)", "(default: off)", "(default: refuse it)"]),
        ("import", ["(default: refuse a store with state)", "BANDITREC_DATA_DIR"]),
        ("import-events", ["(default: auto", "(default: refuse a file with a bad", "./data"]),
    ],
)
def test_the_service_commands_help_shows_their_defaults(
    command: str, defaults: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for default in defaults:
        assert default in shown
