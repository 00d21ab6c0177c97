"""What the engine refuses, in domain terms; service/errors.py alone turns these into HTTP."""

from __future__ import annotations


class EngineError(Exception):
    """A refusal with a stable code, a message and optionally the request field at fault."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class InvalidRequest(EngineError):
    """The request names something that does not exist or combines fields that clash."""


class NotFound(EngineError):
    """The item, user view or arm asked for does not exist."""
