"""Property-based fuzzing of the ARM API over Azure's own spec (schemathesis), against a real server.

Every operation vmgallery serves from the vendored swagger (galleries, gallery image definitions and versions, disks,
snapshots, managed images) gets schemathesis-generated requests, valid ones and ones that break the schema, over
loopback HTTPS with the admin token. Checked: no 5xx ever (nor a dropped connection); the status code, content type,
headers and body conform to the spec's responses, errors included (the gallery and image specs' `default` is ARM's
CloudError; DiskRP documents no errors, so there `arm_error` checks the envelope).

Requests are steered so that most of them reach the handlers rather than a 404: the subscription, resource group and
parent names are mostly those of resources created beforehand, the leaf names half the time, api-version is mostly
the spec's own and a body's location mostly the one the resources are in. The run is derandomized (the same requests
every time; a failure replays by rerunning) unless VMGALLERY_FUZZ_SEED=N asks for other ones, and bounded by
examples per operation and generation mode: VMGALLERY_FUZZ_EXAMPLES (default 20: about 3,000 requests and a minute
over both databases) scales it.

Schemathesis checks left out, and why:
- negative_data_rejection: a request that breaks the swagger is not always refused, rightly: ARM ignores query
  parameters it does not know, and the steering above replaces many a broken subscription, group or api-version
  with a valid one.
- positive_data_acceptance: the swagger is looser than the service (names, locations, sizes, source ids; DiskRP's
  update bodies do not even say `type: object`), so Azure too refuses many schema-valid requests with a 400.
- ignored_auth: every request here carries the admin token; authentication has its own tests (tests/api).
- the stateful checks (use_after_free, ensure_resource_availability): the swagger declares no links.
- max_response_time: a shared CI machine makes any bound either flaky or meaningless; the request timeout (30 s)
  catches a hang.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ..api.sdk import compute_client
from .conftest import TALLIES, Tally

SPECS = Path(__file__).parents[2] / "spec/specification/compute/resource-manager/Microsoft.Compute"
GALLERY_PATHS = (
    r"/galleries(/\{galleryName\}(/images(/\{galleryImageName\}(/versions(/\{galleryImageVersionName\})?)?)?)?)?$"
    r"|/galleries/\{galleryName\}/share$|/locations/\{location\}/(sharedGalleries|communityGalleries)"
)
SCHEMAS = {
    "gallery": schemathesis.openapi.from_path(SPECS / "GalleryRP/stable/2025-03-03/GalleryRP.json").include(
        path_regex=GALLERY_PATHS
    ),
    "disk": schemathesis.openapi.from_path(SPECS / "DiskRP/stable/2023-10-02/disk.json"),
    "snapshot": schemathesis.openapi.from_path(SPECS / "DiskRP/stable/2023-10-02/snapshot.json"),
    "image": schemathesis.openapi.from_path(SPECS / "ComputeRP/stable/2024-03-01/image.json"),
}


def short_id(op) -> str:
    """The method, the path below the provider, and whether a list spans the subscription."""
    scope = "" if "resourceGroups" in op.path else " (subscription)"
    return f"{op.method.upper()} {op.path.split('Microsoft.Compute/')[1]}{scope}"


OPERATIONS = {
    short_id(op): op
    for op in sorted(
        (result.ok() for schema in SCHEMAS.values() for result in schema.get_all_operations()),
        # Deletes last, children before parents: the existing resources serve every other operation first.
        key=lambda op: (op.method == "delete", -op.path.count("/")),
    )
}


def clip(text: str, limit: int = 1500) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def documented_status(ctx, response, case):
    """The status is one the spec documents. DiskRP's swagger documents no error answers at all (only successes),
    so there an error status is not a mismatch: `arm_error` checks those answers instead."""
    if response.status_code >= 400 and "default" not in case.operation.responses.status_codes:
        return None
    return status_code_conformance(ctx, response, case)


def typed_content(ctx, response, case):
    """A body has the spec's content type. An empty answer (a 204, a delete's 200, which the spec gives no schema)
    has no content to type; an empty body where the spec wants one fails response_schema_conformance."""
    if not response.content:
        return None
    return content_type_conformance(ctx, response, case)


def arm_error(ctx, response, case):
    """Every 4xx is an ARM error, {"error": {"code", "message", "target"?}}, documented by the spec or not."""
    if response.status_code < 400:
        return None
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    assert (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and isinstance(error.get("message"), str)
        and isinstance(error.get("target", ""), str | None)
    ), f"{response.status_code} is not an ARM error: {clip(response.text)}"


CHECKS = [
    not_a_server_error,
    documented_status,
    typed_content,
    response_headers_conformance,
    response_schema_conformance,
    arm_error,
]
EXAMPLES = int(os.environ.get("VMGALLERY_FUZZ_EXAMPLES", "20"))
SEED = os.environ.get("VMGALLERY_FUZZ_SEED")

SUBSCRIPTION = str(uuid.uuid4())
GROUP = "fuzz"
LOCATION = "eastus"
# The resources every request may name: (path parameter, existing name).
EXISTING = {
    "galleryName": "fzgallery",
    "galleryImageName": "fzdefinition",
    "galleryImageVersionName": "1.0.0",
    "diskName": "fzdisk",
    "snapshotName": "fzsnapshot",
    "imageName": "fzimage",
    "location": LOCATION,
    "galleryUniqueName": f"{SUBSCRIPTION}-FZGALLERY",
}


@pytest.fixture(scope="module")
def target(server, backend):
    """The server with a resource group and one resource of each kind already in it."""
    with server.http() as http:
        http.put(
            f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}",
            params={"api-version": "2024-11-01"},
            json={"location": LOCATION},
        ).raise_for_status()
    linux_v2 = {"osType": "Linux", "hyperVGeneration": "V2"}
    with compute_client(server, SUBSCRIPTION) as compute:
        disk = compute.disks.begin_create_or_update(
            GROUP,
            EXISTING["diskName"],
            {
                "location": LOCATION,
                "properties": {**linux_v2, "diskSizeGB": 1, "creationData": {"createOption": "Empty"}},
            },
        ).result()
        compute.snapshots.begin_create_or_update(
            GROUP,
            EXISTING["snapshotName"],
            {
                "location": LOCATION,
                "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk.id}},
            },
        ).result()
        compute.images.begin_create_or_update(
            GROUP,
            EXISTING["imageName"],
            {
                "location": LOCATION,
                "properties": {
                    "storageProfile": {
                        "osDisk": {"osType": "Linux", "osState": "Generalized", "managedDisk": {"id": disk.id}}
                    }
                },
            },
        ).result()
        compute.galleries.begin_create_or_update(GROUP, EXISTING["galleryName"], {"location": LOCATION}).result()
        compute.gallery_images.begin_create_or_update(
            GROUP,
            EXISTING["galleryName"],
            EXISTING["galleryImageName"],
            {
                "location": LOCATION,
                "properties": {
                    "osType": "Linux",
                    "osState": "Generalized",
                    "hyperVGeneration": "V2",
                    "identifier": {"publisher": "fuzz", "offer": "fuzz", "sku": "fuzz"},
                },
            },
        ).result()
        compute.gallery_image_versions.begin_create_or_update(
            GROUP,
            EXISTING["galleryName"],
            EXISTING["galleryImageName"],
            EXISTING["galleryImageVersionName"],
            {"location": LOCATION, "properties": {"storageProfile": {"osDiskImage": {"source": {"id": disk.id}}}}},
        ).result()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {server.token}"
    yield server, session, TALLIES.setdefault(backend, Tally())
    session.close()


def steer(draw, case) -> None:
    """Point most generated requests at the existing resources and the spec's api-version (see the module doc)."""
    mostly = st.integers(0, 7).map(bool)
    half = st.booleans()
    params = case.path_parameters or {}
    leaf = list(params)[-1] if params else None
    for name in params:
        if name == "subscriptionId" and draw(mostly):
            params[name] = SUBSCRIPTION
        elif name == "resourceGroupName" and draw(mostly):
            params[name] = GROUP
        elif name in EXISTING and draw(half if name == leaf else mostly):
            params[name] = EXISTING[name]
    if case.query is not None and "api-version" in case.query and draw(mostly):
        case.query["api-version"] = case.operation.schema.raw_schema["info"]["version"]
    if isinstance(case.body, dict) and "location" in case.body and draw(mostly):
        case.body["location"] = LOCATION


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize("label", list(OPERATIONS))
def test_no_server_error_and_responses_conform(target, label, mode):
    server, session, tally = target
    operation = OPERATIONS[label]
    tally.operations.add(label)
    failures: list[str] = []
    cases = operation.as_strategy(mode)

    # Generation of Azure's large bodies is slow by Hypothesis' standards, and negative cases filter a lot; shrinking
    # is off because the server is stateful (a shrunk request meets another state): every failing request is kept as
    # it was sent instead, and all of them are reported together. No per-example deadline: the request timeout
    # catches a hang, and timing on a shared CI machine proves nothing.
    @settings(
        max_examples=EXAMPLES,
        derandomize=SEED is None,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(int(SEED or 0))
    @given(data=st.data())
    def run(data):
        case = data.draw(cases)
        steer(data.draw, case)
        try:
            response = case.call(base_url=server.url, session=session, verify=server.ca, timeout=30)
        except requests.RequestException as exc:
            tally.server_errors += 1
            failures.append(f"{clip(case.as_curl_command())}\n  -> no response: {exc}")
            return
        tally.requests += 1
        tally.statuses[mode.value, response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (FailureGroup, AssertionError) as exc:
            if response.status_code >= 500:
                tally.server_errors += 1
            else:
                tally.mismatches += 1
            failures.append(
                f"{clip(case.as_curl_command())}\n  -> {response.status_code} {clip(response.text)}\n  {exc}"
            )

    run()
    assert not failures, f"{len(failures)} failing requests:\n" + "\n\n".join(failures)
