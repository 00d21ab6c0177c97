"""docs/configuration.md is generated from Settings and must be current."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    # docs/ is not a package: load the script by path, as `python docs/generate_config.py` does.
    script = ROOT / "docs" / "generate_config.py"
    spec = importlib.util.spec_from_file_location("generate_config", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_page_is_current():
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert page == _generator().render(), (
        "docs/configuration.md is out of date: run `.venv/bin/python docs/generate_config.py`"
    )


def test_every_setting_has_a_row_with_its_default_and_bounds():
    page = _generator().render()
    rows = {
        line.split(" | ")[0].strip("| `"): line
        for line in page.splitlines()
        if line.startswith("| `BANDITREC_")
    }
    assert set(rows) == {f"BANDITREC_{name.upper()}" for name in Settings.model_fields}
    assert "| integer | `8000` | ≥ 1, ≤ 65535 |" in rows["BANDITREC_PORT"]
    retention = rows["BANDITREC_DEDUPE_RETENTION_S"]
    assert "| `604800` (7 d) | ≥ 60 (1 min), ≤ 7776000 (90 d) |" in retention
    assert "| one of `soft`, `hard` | `hard` |" in rows["BANDITREC_MEMBERSHIP"]
    assert "| string, optional | unset |" in rows["BANDITREC_REDIS_URL"]
    assert "matches `^[a-z0-9_]{1,16}$`" in rows["BANDITREC_KEY_PREFIX"]
