"""What serving would build lazily is built before the startup objects are frozen out of the cyclic
GC, so that full collections stay short while the service runs (issue 14, the API load's tail)."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from serving.app import create_app
from serving.services import checkpoints
from serving.services.querylog import keys_for

READ = {"X-Purpose": "case review"}


def test_routes_and_the_checkpoint_signer_are_ready_before_the_freeze(settings, auth, world):
    checkpoints._signer.cache_clear()
    app = create_app(settings)
    with TestClient(app) as client:
        # the key parsed at startup, not in the checkpoint thread: asking for it now is a cache hit
        # (other apps' threads of this test process may have parsed their own keys meanwhile)
        misses = checkpoints._signer.cache_info().misses
        checkpoints._signer(keys_for(app.state.settings.database_url).signing_key)
        assert misses >= 1 and checkpoints._signer.cache_info().misses == misses
        headers = auth("reg_samr")
        gc.collect()
        before = len(gc.get_objects())  # the objects the cyclic GC still walks
        for _ in range(20):
            assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
            assert client.get(f"/api/v1/subjects/{world.ent1}/grade", headers=headers | READ).status_code == 200
        gc.collect()
        # FastAPI's state of every route (≈ 2,500 objects for these two alone) was built by the
        # first requests, after the freeze; what remains is caches (tokens, statements)
        assert len(gc.get_objects()) - before < 2_000
