"""Hot-path responses serialised once, straight from the model the engine built."""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


class ModelResponse(Response):
    """A 200 whose JSON body is the model's own serialisation, without re-validation.

    FastAPI re-validates a returned model against the route's response_model and encodes
    it in a second pass; the engine already built a valid model, so recommend and
    feedback skip both (the route still declares response_model for the OpenAPI spec).
    """

    media_type = "application/json"

    def __init__(self, model: BaseModel) -> None:
        super().__init__(model.model_dump_json(by_alias=True))
