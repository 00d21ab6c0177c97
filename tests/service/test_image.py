"""The Docker image's file set, installed alone, starts and answers /readyz (no Docker engine
in CI: the Dockerfile's COPY lines are replayed into a fresh venv instead)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import urllib.request
from pathlib import Path, PurePosixPath

import pytest

from evaluation.child import free_port, stop, wait_until_ready

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
_INSTALL_TIMEOUT_S = 300
_READY_TIMEOUT_S = 60


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) per instruction, continuation lines joined."""
    joined = text.replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for parts in (line.split(None, 1) for line in lines if line and not line.startswith("#"))
    ]


def copy_file_set(dockerfile: Path, context: Path, app: Path) -> list[str]:
    """Copy what the Dockerfile's COPY lines copy from `context` into `app` (its WORKDIR)."""
    instructions = dockerfile_instructions(dockerfile.read_text())
    workdir = PurePosixPath(next(args for name, args in instructions if name == "WORKDIR"))
    ignored = [
        line.strip().removeprefix("**/")
        for line in (context / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = []
    for name, args in instructions:
        if name != "COPY":
            continue
        assert not args.startswith("["), f"COPY in JSON form is not replayed: {args}"
        *sources, dest = [word for word in shlex.split(args) if not word.startswith("--")]
        target = app / (PurePosixPath(workdir, dest).relative_to(workdir))
        for source in sources:
            path = context / source
            if path.is_dir():
                shutil.copytree(path, target, ignore=shutil.ignore_patterns(*ignored))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / path.name)
            copied.append(source)
    return copied


def image_command(dockerfile: Path) -> list[str]:
    """Return the image's CMD (exec form)."""
    instructions = dockerfile_instructions(dockerfile.read_text())
    command: list[str] = json.loads([args for name, args in instructions if name == "CMD"][-1])
    return command


def _runtime_venv(root: Path) -> Path:
    """Create a venv that sees the test venv's third-party packages but none of ours."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # A plain path line: its directory joins sys.path but its own .pth files (the editable
    # install of this repository among them) are not processed.
    paths = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    Path(site, "test_venv_packages.pth").write_text("".join(f"{p}\n" for p in paths))
    return venv


def _clean_env(**extra: str) -> dict[str, str]:
    drop = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANDITREC_") and k not in drop}
    return env | extra


def test_dockerfile_copy_lines_are_replayed(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM python:3.11-slim\nWORKDIR /app\n# COPY nothing\nCOPY a.txt b.txt ./\n"
        "COPY --chown=1:1 pkg \\\n    ./pkg\nCOPY other /app/renamed\n"
    )
    context = tmp_path / "context"
    for relative in ("a.txt", "b.txt", "pkg/m.py", "pkg/__pycache__/m.pyc", "other/n.py", "x"):
        (context / relative).parent.mkdir(parents=True, exist_ok=True)
        (context / relative).write_text(relative)
    (context / ".dockerignore").write_text("**/__pycache__\n")
    app = tmp_path / "app"
    assert copy_file_set(dockerfile, context, app) == ["a.txt", "b.txt", "pkg", "other"]
    files = sorted(str(p.relative_to(app)) for p in app.rglob("*") if p.is_file())
    assert files == ["a.txt", "b.txt", "pkg/m.py", "renamed/n.py"]


def test_the_image_file_set_installs_alone_and_serves(tmp_path: Path, redis_url: str) -> None:
    dockerfile = ROOT / "Dockerfile"
    app = tmp_path / "app"
    copied = copy_file_set(dockerfile, ROOT, app)
    assert {"bandits", "service"} <= set(copied)
    venv = _runtime_venv(tmp_path)
    python = venv / "bin" / "python"
    env = _clean_env()
    # Non-editable, as the image's `pip install .`; dependencies come from the test venv.
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--ignore-installed", str(app)],
        check=True, cwd=tmp_path, env=env, timeout=_INSTALL_TIMEOUT_S,
    )  # fmt: skip
    # Our packages come from the installed copy, and only those the image copies are there.
    service = subprocess.run(
        [python, "-c", "import service; print(service.__file__)"],
        check=True, capture_output=True, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert Path(service.stdout.strip()).is_relative_to(venv), service.stdout
    evaluation = subprocess.run(
        [python, "-c", "import evaluation"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert evaluation.returncode == 1, "the venv sees more packages of ours than the image"
    assert "No module named 'evaluation'" in evaluation.stderr

    command = image_command(dockerfile)
    executable = str(venv / "bin" / command[0])
    port = free_port()
    log = tmp_path / "serve.log"
    serve_env = _clean_env(
        BANDITREC_REDIS_URL=redis_url,
        BANDITREC_HOST="127.0.0.1",
        BANDITREC_PORT=str(port),
        BANDITREC_DATA_DIR=str(tmp_path / "data"),
        # Its own keys in the session's Redis (every other test flushes before it starts).
        BANDITREC_KEY_PREFIX="image",
    )
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [executable, *command[1:]],
            cwd=tmp_path, env=serve_env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", process, log, _READY_TIMEOUT_S)
        # The dashboard's files are package data: the installed copy serves every one.
        static = sorted(p.name for p in (ROOT / "service" / "dashboard" / "static").iterdir())
        for path in ["dashboard", *(f"dashboard/static/{name}" for name in static)]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=10) as answer:
                assert answer.status == 200, path
    finally:
        code = stop(process)
    assert code == 0, log.read_text()

    simulate = subprocess.run(
        [executable, "simulate", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60,
    )  # fmt: skip
    assert simulate.returncode == 2, simulate.stderr
    assert "needs the evaluation package" in simulate.stderr
