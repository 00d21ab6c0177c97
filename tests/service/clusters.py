"""A small world with two opposed tastes, shared by the clustering tests."""

from __future__ import annotations

import numpy as np

from tests.service.helpers import add_items, event, send


async def two_taste_items(client) -> None:
    """Add items 'x0'..'x9' pointing one way and 'y0'..'y9' the other, with a little noise."""
    rng = np.random.default_rng(3)
    ids, embeddings = [], []
    for side, direction in (("x", [1.0, 0.0, 0.0, 0.0]), ("y", [0.0, 1.0, 0.0, 0.0])):
        for n in range(10):
            ids.append(f"{side}{n}")
            embeddings.append(list(np.array(direction) + rng.normal(0, 0.1, 4)))
    await add_items(client, ids, embeddings)


async def two_taste_world(svc) -> None:
    """Items 'x*' point one way, 'y*' the other; users x-fans click x items, y-fans y items."""
    await two_taste_items(svc.client)
    events = []
    for side in ("x", "y"):
        for user in range(20):
            events += [event("click", f"{side}fan{user}", f"{side}{n}") for n in range(5)]
    await send(svc.client, events)
