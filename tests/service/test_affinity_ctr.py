"""With informative embeddings, the default (affinity) prior earns more clicks than the catalog
prior: a synthetic population driven through the engine (real Redis)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from service.schemas import FeedbackBatch, FeedbackEvent, RecommendRequest
from tests.service.helpers import add_items

pytestmark = pytest.mark.anyio

GROUPS, DIM, ITEMS, USERS_PER_GROUP = 4, 6, 120, 25
ROUNDS, K = 12, 5
_ids = itertools.count()


class World:
    """Taste groups around unit centres; items are noisy group directions (the embeddings
    reveal genre); a user's CTR is logistic in the cosine of their group's centre and the item."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        centres = rng.normal(size=(GROUPS, DIM))
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        genre = rng.integers(GROUPS, size=ITEMS)
        embeddings = self.centres[genre] + rng.normal(0.0, 0.5, size=(ITEMS, DIM))
        self.embeddings = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
        # Item quality varies too, so the global arms have something to learn as well.
        quality = rng.normal(0.0, 0.5, size=ITEMS)
        logit = -3.5 + quality + 3.0 * (self.centres @ self.embeddings.T)
        self.ctr = 1.0 / (1.0 + np.exp(-logit))  # (groups, items)
        self.items = [f"i{n:03d}" for n in range(ITEMS)]
        self.users = [f"g{g}u{n}" for g in range(GROUPS) for n in range(USERS_PER_GROUP)]
        self.group = {u: int(u[1]) for u in self.users}
        self.rng = np.random.default_rng(seed + 1)


def _event(kind: str, user: str, item: str, rec_id: str | None = None) -> FeedbackEvent:
    return FeedbackEvent(
        event_id=f"c{next(_ids)}", type=kind, user_id=user, item_id=item, rec_id=rec_id
    )


async def _ctr(start, prior: str, seed: int) -> float:
    """Return the CTR of the last half of the rounds under ``prior``."""
    running = await start(
        seed=seed,
        key_prefix=f"ctr_{prior}_{seed}",
        prior=prior,
        snapshot_ms=600_000,
        stale_after_s=700,
        affinity_refit_s=0,
        propensity_samples=0,
    )
    world = World(seed)
    engine = running.recommender
    await add_items(running.client, world.items, world.embeddings.tolist())
    # History: every user read 3 items, chosen in proportion to their CTR.
    history = []
    for user in world.users:
        chance = world.ctr[world.group[user]]
        for n in world.rng.choice(ITEMS, size=3, replace=False, p=chance / chance.sum()):
            history += [
                _event("impression", user, world.items[n]),
                _event("click", user, world.items[n]),
            ]
    await engine.feedback.record(FeedbackBatch(events=history))
    fit = await running.client.post("/v1/admin/clusters/fit", json={"k": GROUPS, "seed": seed})
    assert fit.status_code == 200, fit.text
    await engine.refresh()
    shown = clicked = 0
    for round_ in range(ROUNDS):
        events = []
        for user in world.users:
            served = await engine.recommender.recommend(RecommendRequest(user_id=user, k=K))
            for item in served.items:
                hit = (
                    world.rng.random()
                    < world.ctr[world.group[user], world.items.index(item.item_id)]
                )
                events.append(_event("impression", user, item.item_id, served.rec_id))
                if hit:
                    events.append(_event("click", user, item.item_id, served.rec_id))
                if round_ >= ROUNDS // 2:
                    shown, clicked = shown + 1, clicked + hit
        for at in range(0, len(events), 1000):
            await engine.feedback.record(FeedbackBatch(events=events[at : at + 1000]))
        await engine.refresh()
    return clicked / shown


@pytest.mark.slow
async def test_the_affinity_prior_beats_the_catalog_prior_where_embeddings_reveal_taste(start):
    """4 taste groups of 25 users, 120 items whose embeddings reveal their genre with noise,
    3 reads per user, a k=4 fit, then 12 rounds of one 5-item list per user.

    CTR over rounds 7-12, seeds 0-2: affinity 0.226/0.294/0.252, catalog 0.154/0.210/0.205
    (1.23-1.46x, means 1.36x). Asserted: affinity's mean >= 1.15x catalog's, and affinity
    ahead in every seed (a per-seed binomial sd is ~0.011 on 1 500 impressions).
    """
    affinity = [await _ctr(start, "affinity", seed) for seed in range(3)]
    catalog = [await _ctr(start, "catalog", seed) for seed in range(3)]
    assert np.mean(affinity) >= 1.15 * np.mean(catalog), (affinity, catalog)
    assert all(a > c for a, c in zip(affinity, catalog, strict=True)), (affinity, catalog)
