"""A Python client of the banditrec API: blocking and asyncio, typed results, retries, batching.

Imports only the API's schemas of the service, never its engine or store (docs/client.md).
"""

from service.client.async_client import AsyncClient
from service.client.batch import AsyncFeedbackBatcher, FeedbackBatcher
from service.client.errors import (
    BadRequest,
    BanditrecError,
    ConnectionFailed,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    ServerError,
    Unauthorized,
    Unavailable,
)
from service.client.events import event_id, served_events
from service.client.retry import NO_RETRY, Retry
from service.client.sync_client import Client
from service.schemas import FeedbackEvent, ItemIn

__all__ = [
    "NO_RETRY",
    "AsyncClient",
    "AsyncFeedbackBatcher",
    "BadRequest",
    "BanditrecError",
    "Client",
    "ConnectionFailed",
    "FeedbackBatcher",
    "FeedbackEvent",
    "InvalidRequest",
    "ItemIn",
    "NotFound",
    "PayloadTooLarge",
    "Retry",
    "ServerError",
    "Unauthorized",
    "Unavailable",
    "event_id",
    "served_events",
]
