"""The deploy files keep their shape: compose, CI, what make installs (no Docker engine in CI)."""

from __future__ import annotations

import fnmatch
import subprocess
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_redis_with_aof_and_the_api_after_it_is_healthy():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    redis, api = compose["services"]["redis"], compose["services"]["api"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "redis-cli" in redis["healthcheck"]["test"] and "ping" in redis["healthcheck"]["test"]
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"
    assert api["environment"]["BANDITREC_REDIS_URL"].startswith("redis://redis:")
    assert api["build"] == "."
    assert (ROOT / "Dockerfile").read_text().count("banditrec") >= 1


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()


def _installs(target: str, venv: Path) -> list[str]:
    """Return the pip install commands `make target` would run to build `venv` from scratch."""
    plan = subprocess.run(
        ["make", "--dry-run", target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [line for line in plan if "pip install" in line and "--upgrade pip" not in line]


def test_make_run_installs_the_runtime_only_and_test_and_lint_the_test_extra(tmp_path):
    venv = tmp_path / "venv"
    [run] = _installs("run", venv)
    assert run.endswith(" -e .")
    for target in ("test", "lint"):
        [install] = _installs(target, venv)
        assert install.endswith(" -e '.[test]'")


def test_a_non_editable_install_ships_the_store_s_lua_scripts():
    # The image runs `pip install .`: files outside Python packages need package-data.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["service.store"]
    store = ROOT / "service" / "store"
    scripts = sorted(store.glob("scripts/*.lua"))
    assert scripts
    for script in scripts:
        relative = script.relative_to(store).as_posix()
        assert any(fnmatch.fnmatch(relative, glob) for glob in globs), relative
