"""Where settings come from: the TOML file named by BANDITREC_CONFIG, the environment
(which wins) and the defaults; errors that name the file or variable at fault; the
effective settings written back as TOML with secrets masked.

Imports nothing of the service: service.config builds Settings on top of it.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import tomllib
import typing
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import BaseSettings, TomlConfigSettingsSource

# Not a setting itself: it names the file the settings are read from.
CONFIG_VARIABLE = "BANDITREC_CONFIG"

_MASK = "********"
# scheme://user:password@host: the password part.
_URL_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^/:@]*:)([^/@]+)(@)", re.IGNORECASE)


class SettingsError(ValueError):
    """Settings that cannot be used; the message names the file, key or variable at fault."""


def config_path(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Return the settings file named by BANDITREC_CONFIG, or None when it is unset or empty."""
    value = environ.get(CONFIG_VARIABLE, "")
    return Path(value) if value else None


def read_config_file(path: Path, known: Collection[str]) -> dict[str, Any]:
    """Return the file's settings; raise SettingsError for an unreadable file or unknown key."""
    try:
        with path.open("rb") as source:
            values = tomllib.load(source)
    except OSError as exc:
        raise SettingsError(f"{path} (named by {CONFIG_VARIABLE}): {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key.lower(), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SettingsError(f"{path}: unknown setting {key!r}{hint}")
    return values


class ConfigFileSource(TomlConfigSettingsSource):
    """The settings file as a pydantic-settings source, refusing keys that are no setting."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        # Set before the parent's __init__, which reads the file through _read_files.
        self.path = path
        self.known = set(settings_cls.model_fields)
        super().__init__(settings_cls, toml_file=path)

    def _read_files(self, files: Any, deep_merge: bool = False) -> dict[str, Any]:
        # The parent skips a missing file silently; a file the operator named must exist.
        return read_config_file(self.path, self.known)


def explain(error: ValidationError, settings_cls: type[BaseSettings]) -> SettingsError:
    """Return a SettingsError saying, for each invalid value, which variable or key set it."""
    origins = origins_of(settings_cls)
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    lines = []
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else None
        if name is None:  # a rule across settings
            lines.append(problem["msg"].removeprefix("Value error, "))
            continue
        origin = origins.get(name, "default")
        shown = "" if _is_secret(settings_cls, name) else f" = {problem['input']!r}"
        if origin == "env":
            where = f"{prefix}{name.upper()}{shown}"
        elif origin == "file":
            where = f"{config_path()}: {name}{shown}"
        else:
            where = name
        lines.append(f"{where}: {problem['msg']}")
    return SettingsError("; ".join(lines))


def origins_of(settings_cls: type[BaseSettings]) -> dict[str, str]:
    """Return where each setting's value comes from: "env", "file" or "default"."""
    prefix = str(settings_cls.model_config.get("env_prefix", "")).lower()
    # pydantic-settings matches variable names case-insensitively, and so do we.
    variables = {name.lower() for name in os.environ}
    path = config_path()
    in_file: Collection[str] = ()
    if path is not None:
        # An unreadable file is reported where the settings are read, not here.
        with contextlib.suppress(SettingsError):
            in_file = read_config_file(path, set(settings_cls.model_fields))
    origins = {}
    for name in settings_cls.model_fields:
        if f"{prefix}{name}" in variables:
            origins[name] = "env"
        elif name in in_file:
            origins[name] = "file"
        else:
            origins[name] = "default"
    return origins


def render_toml(settings: BaseSettings) -> str:
    """Return the effective settings as TOML, each with its origin; secrets are masked."""
    origins = origins_of(type(settings))
    prefix = str(settings.model_config.get("env_prefix", ""))
    path = config_path()
    lines = [
        "# banditrec's effective settings: environment over "
        + (f"{path}" if path is not None else f"a file (unset: {CONFIG_VARIABLE})")
        + " over defaults.",
        "# Secrets are masked; an unset optional setting is shown as a comment.",
    ]
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        origin = origins[name]
        note = {"env": f"env {prefix}{name.upper()}", "file": f"file {path}"}.get(origin, origin)
        if value is None:
            lines.append(f"# {name} is unset  # {note}")
        else:
            lines.append(f"{name} = {_toml_value(value)}  # {note}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    """Return a setting's value as a TOML literal, with secrets and URL passwords masked."""
    if isinstance(value, SecretStr):
        return _quoted(_MASK)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        return _quoted(str(value))
    return _quoted(_URL_PASSWORD.sub(rf"\g<1>{_MASK}\g<3>", str(value)))


def _quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _is_secret(model: type[BaseModel], name: str) -> bool:
    annotation = model.model_fields[name].annotation
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)
