"""User-assigned identities' rules: names, the writable body, what an update may change."""

from __future__ import annotations

import pytest

from vmgallery.domain import errors
from vmgallery.domain import managed_identities as rules


@pytest.mark.parametrize("name", ["abc", "my-identity_1", "A" * 128, "0ab"])
def test_good_names(name):
    rules.check_identity_name(name)


@pytest.mark.parametrize("name", ["ab", "-abc", "_abc", "a" * 129, "a.b.c", "id entity"])
def test_bad_names(name):
    with pytest.raises(errors.InvalidResourceName):
        rules.check_identity_name(name)


def test_the_servers_ids_are_dropped_from_a_request_and_location_folded():
    body = {
        "id": "x",
        "location": "East US",
        "tags": {"a": "b"},
        "properties": {"principalId": "p", "clientId": "c", "tenantId": "t"},
    }
    assert rules.normalize_identity(body) == {"location": "eastus", "tags": {"a": "b"}}
    regional = rules.normalize_identity({"location": "eastus", "properties": {"isolationScope": "Regional"}})
    assert regional["properties"] == {"isolationScope": "Regional"}
    with pytest.raises(errors.InvalidParameter):
        rules.normalize_identity({"location": "eastus", "properties": {"isolationScope": "Global"}})


def test_only_tags_and_isolation_scope_change():
    old = {"location": "eastus", "tags": {"a": "b"}}
    rules.check_identity_update(old, {"location": "eastus", "tags": {}, "properties": {"isolationScope": "None"}})
    with pytest.raises(errors.PropertyChangeNotAllowed):
        rules.check_identity_update(old, {"location": "westus", "tags": {"a": "b"}})
