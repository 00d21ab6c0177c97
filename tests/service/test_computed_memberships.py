"""A worker keeps the memberships it computed for users without a stored one, while valid."""

from __future__ import annotations

import numpy as np
import pytest

from service.store import UserState
from service.store.codecs import assigned_key
from tests.service.helpers import add_items, event, send

pytestmark = pytest.mark.anyio


async def test_a_computed_membership_is_reused_until_the_clicks_or_clustering_change(svc):
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((2, 8))
    ids = [f"i{n}" for n in range(40)]
    embeddings = [(centres[n % 2] + 0.1 * rng.standard_normal(8)).tolist() for n in range(40)]
    await add_items(svc.client, ids, embeddings)
    clicks = [event("click", f"w{n}", f"i{n}") for n in range(10)]
    assert (await send(svc.client, clicks)).status_code == 200
    fit = await svc.client.post("/v1/admin/clusters/fit", json={"k": 2, "seed": 0})
    assert fit.status_code == 200, fit.text
    await svc.refresh()
    users = svc.app.state.engine.users
    snap = svc.app.state.engine.snapshot
    even = UserState(hist=2, clicks=["i0", "i2"])
    first = users.current(snap, {"u": even})["u"]
    assert users.current(snap, {"u": even})["u"] is first  # not computed again
    # The same key for another user is no hit: they are kept per user.
    odd = UserState(hist=2, clicks=["i1", "i3"])
    other = users.current(snap, {"v": odd})["v"]
    assert other.clusters[0] != first.clusters[0]
    # A click changes the history and so the membership's key: computed anew.
    moved = UserState(hist=5, clicks=["i1", "i3", "i5", "i0", "i2"])
    again = users.current(snap, {"u": moved})["u"]
    assert again is not first and again.clusters[0] == other.clusters[0]
    # A stored membership that is still valid wins over the worker's own.
    key = assigned_key(snap.clusters.gen, 5, svc.app.state.settings.membership)
    shown = f"{first.clusters[0]}:1"
    stored = UserState(hist=5, clicks=moved.clicks, membership=shown, assigned=key)
    assert users.current(snap, {"u": stored})["u"].clusters == (first.clusters[0],)
    refit = await svc.client.post("/v1/admin/clusters/fit", json={"k": 2, "seed": 1})
    assert refit.status_code == 200
    await svc.refresh()
    assert users.current(svc.app.state.engine.snapshot, {"u": moved})["u"] is not again
