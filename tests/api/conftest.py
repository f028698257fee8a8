from __future__ import annotations

import uuid

import pytest

from .sdk import compute_client, resource_client


@pytest.fixture
def compute(server, subscription):
    with compute_client(server, subscription) as client:
        yield client


@pytest.fixture
def resources(server, subscription):
    with resource_client(server, subscription) as client:
        yield client


@pytest.fixture
def group(resources) -> str:
    name = f"rg-{uuid.uuid4().hex[:8]}"
    resources.resource_groups.create_or_update(name, {"location": "eastus"})
    return name


@pytest.fixture
def gallery(compute, group) -> str:
    name = f"gal{uuid.uuid4().hex[:8]}"
    compute.galleries.begin_create_or_update(group, name, {"location": "eastus"}).result()
    return name


def definition_body(publisher="pub", offer="off", sku="sku", **props) -> dict:
    body = {
        "location": "eastus",
        "properties": {
            "osType": "Linux",
            "osState": "Generalized",
            "identifier": {"publisher": publisher, "offer": offer, "sku": sku},
        },
    }
    body["properties"].update(props)
    return body
