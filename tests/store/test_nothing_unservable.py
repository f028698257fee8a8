"""Nothing is stored that GET and the lists cannot render, even past the HTTP parser: the use case refuses a body
that is not strict JSON inside its transaction, so the database is left as it was (real SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

import pytest

from vmgallery.app.kinds import GALLERY, RESOURCE_GROUP
from vmgallery.config import load_settings
from vmgallery.domain import errors
from vmgallery.domain.ids import ResourceId
from vmgallery.wiring import build_service

from ..conftest import PgDatabase


@pytest.fixture
def resources(backend, tmp_path):
    pg = PgDatabase() if backend == "postgresql" else None
    service = build_service(
        load_settings(tmp_path, database_url=pg.url if pg else None, workers=0, sync_wait_seconds=0)
    )
    yield service.resources
    service.db.dispose()
    if pg:
        pg.drop()


BAD_IDENTITIES = (
    {"type": float("nan")},
    {"type": float("inf")},
    {"type": "x\udfffy"},
    {"type": "UserAssigned", "userAssignedIdentities": {"\ud800": {}}},
)


def test_a_body_json_cannot_carry_is_not_stored(resources):
    subscription = str(uuid.uuid4())
    group = ResourceId(subscription, "rg", None, ())
    resources.put(group, {"location": "eastus"}, RESOURCE_GROUP)
    gallery = ResourceId(subscription, "rg", "Microsoft.Compute", (("galleries", "g"),))
    for identity in BAD_IDENTITIES:
        with pytest.raises(errors.InvalidRequestContent):
            resources.put(gallery, {"location": "eastus", "identity": identity}, GALLERY)
        with pytest.raises(errors.NotFound):
            resources.get(gallery, GALLERY)
        assert resources.list(kind=GALLERY, after=0, limit=10, subscription=subscription).items == []
    assert resources.put(gallery, {"location": "eastus", "identity": {"type": "None"}}, GALLERY).status == 201
