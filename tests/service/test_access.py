"""Who may do what: an API key that is set must be a secret, and personal reads need it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from evaluation.child import free_port
from service.config import Settings, load_settings
from service.config_file import SettingsError
from tests.service.helpers import event, send


@pytest.mark.parametrize("key", ["", "   ", "\t"])
def test_an_empty_api_key_is_a_configuration_error(key):
    with pytest.raises(ValidationError, match="set but empty"):
        Settings(api_key=key)


def test_an_api_key_wrapped_in_whitespace_is_a_configuration_error():
    # HTTP strips whitespace around header values: no request could match it.
    with pytest.raises(ValidationError, match="whitespace"):
        Settings(api_key=" s3cret")


def test_the_error_names_the_variable(monkeypatch):
    monkeypatch.setenv("BANDITREC_API_KEY", "")
    with pytest.raises(SettingsError, match=r"^BANDITREC_API_KEY: set but empty"):
        load_settings()


@pytest.mark.slow
def test_serve_refuses_to_start_with_an_empty_api_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANDITREC_")}
    env |= {
        "BANDITREC_API_KEY": "",
        "BANDITREC_DATA_DIR": str(tmp_path / "data"),
        "BANDITREC_PORT": str(free_port()),
    }
    done = subprocess.run(
        [sys.executable, "-m", "cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "invalid settings: BANDITREC_API_KEY: set but empty" in done.stderr
    assert not (tmp_path / "data").exists()  # refused before starting anything


@pytest.mark.anyio
async def test_per_user_reads_need_the_key_when_one_is_set(start):
    running = await start(api_key="k")
    client, key = running.client, {"X-API-Key": "k"}
    assert (await client.put("/v1/items/a", json={}, headers=key)).is_success
    assert (await send(client, [event("click", "alice@example.com", "a")], headers=key)).is_success
    user = "/v1/users/alice@example.com"
    refused = await client.get(user)
    assert refused.status_code == 401
    assert refused.json()["error"]["field"] == "X-API-Key"
    assert (await client.get(user, headers={"X-API-Key": "j"})).status_code == 401
    assert (await client.get(user, headers=key)).json()["recent_clicks"] == ["a"]
    # The log export holds every served list's user_id.
    assert (await client.get("/v1/admin/logs/export")).status_code == 401


@pytest.mark.anyio
async def test_without_a_key_per_user_reads_stay_open(svc):
    assert (await svc.client.get("/v1/users/u")).status_code == 200
