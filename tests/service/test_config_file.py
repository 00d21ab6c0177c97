"""Settings from BANDITREC_CONFIG's TOML file: environment over file over defaults, errors
that name the file and key, and `banditrec config` printing the effective settings."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from cli import main
from service.config import Settings, load_settings
from service.config_file import SettingsError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start each test without any BANDITREC_ variable."""
    for name in list(os.environ):
        if name.upper().startswith("BANDITREC_"):
            monkeypatch.delenv(name)


def _config(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "banditrec.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("BANDITREC_CONFIG", str(path))
    return path


def test_file_values_apply_and_the_environment_wins(tmp_path, monkeypatch):
    _config(tmp_path, 'port = 8080\nmode = "baseline"\nseen_gamma = 0.5\n', monkeypatch)
    monkeypatch.setenv("BANDITREC_PORT", "9090")
    settings = load_settings()
    assert (settings.port, settings.mode, settings.seen_gamma) == (9090, "baseline", 0.5)
    assert settings.host == "127.0.0.1"
    # Plain Settings() reads the file too (uvicorn workers build theirs so).
    assert Settings().mode == "baseline"
    # Arguments (tests, embedding code) win over both.
    assert Settings(mode="bandit").mode == "bandit"


def test_without_the_variable_no_file_is_read(tmp_path, monkeypatch):
    (tmp_path / "banditrec.toml").write_text("port = 1\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().port == 8000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prot = 8080\n", "banditrec.toml: unknown setting 'prot' (did you mean 'port'?)"),
        ("BANDITREC_PORT = 1\n", "banditrec.toml: unknown setting 'BANDITREC_PORT'"),
        ("port = 70000\n", "banditrec.toml: port = 70000: Input should be less than or equal"),
        ('mode = "greedy"\n', "banditrec.toml: mode = 'greedy': Input should be 'bandit' or"),
        ("port = \n", "banditrec.toml: not valid TOML: Invalid value (at line 1, column 8)"),
        ("api_key = 5\n", "banditrec.toml: api_key: Input should be a valid string"),
        (
            "snapshot_ms = 60000\n",
            "stale_after_s must be at least one snapshot period (snapshot_ms)",
        ),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_and_key(tmp_path, monkeypatch, text, expected):
    path = _config(tmp_path, text, monkeypatch)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert expected in str(error.value)
    if "snapshot_ms" not in text:
        assert str(error.value).startswith(str(path))


def test_a_bad_variable_is_named_even_when_the_file_has_the_key(tmp_path, monkeypatch):
    _config(tmp_path, "port = 8080\n", monkeypatch)
    monkeypatch.setenv("BANDITREC_PORT", "zero")
    with pytest.raises(SettingsError, match=r"^BANDITREC_PORT = 'zero': Input should be a valid"):
        load_settings()


def test_a_missing_file_is_an_error_not_an_empty_config(tmp_path, monkeypatch):
    monkeypatch.setenv("BANDITREC_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(SettingsError, match=r"nope\.toml \(named by BANDITREC_CONFIG\): No such"):
        load_settings()


def test_config_prints_the_effective_settings_with_origins_and_masked_secrets(
    tmp_path, monkeypatch, capsys
):
    path = _config(
        tmp_path,
        'port = 8080\napi_key = "hunter2"\nredis_url = "redis://app:pa55@redis:6379/0"\n',
        monkeypatch,
    )
    monkeypatch.setenv("BANDITREC_MODE", "baseline")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "pa55" not in out
    lines = {line.split(" = ")[0]: line for line in out.splitlines() if " = " in line}
    assert lines["port"] == f"port = 8080  # file {path}"
    assert lines["mode"] == 'mode = "baseline"  # env BANDITREC_MODE'
    assert lines["host"] == 'host = "127.0.0.1"  # default'
    assert lines["api_key"] == f'api_key = "********"  # file {path}'
    assert lines["redis_url"].startswith('redis_url = "redis://app:********@redis:6379/0"')
    # The output is TOML with every setting: with the masked ones restored, it loads back.
    printed = tomllib.loads(out)
    assert set(printed) == set(Settings.model_fields)
    printed |= {"api_key": "hunter2", "redis_url": "redis://app:pa55@redis:6379/0"}
    assert Settings(**printed) == load_settings()


def test_config_shows_an_unset_optional_setting_as_a_comment(capsys):
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "# redis_url is unset  # default" in out.splitlines()
    assert "# api_key is unset  # default" in out.splitlines()


@pytest.mark.parametrize("command", [["config"], ["serve"], ["export"], ["import", "-"]])
def test_commands_refuse_bad_settings_with_exit_code_2(tmp_path, monkeypatch, capsys, command):
    _config(tmp_path, "workers = 0\n", monkeypatch)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"banditrec {command[0]}: invalid settings: ")
    assert "banditrec.toml: workers = 0: Input should be greater than or equal to 1" in err
