"""What an image definition body may hold: required OS facts, defaults, features and security types, recommended
ranges, disallowed disk types, purchase plan, links, dates and tags. Each rule: the allowed case is created, the
rejected case is a 400 naming the value and the property, and no definition is left behind."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError

from .conftest import definition_body
from .rules_support import Arm, assert_error


@pytest.fixture
def arm(http, subscription) -> Arm:
    return Arm(http, subscription)


@pytest.fixture(scope="module")
def private_gallery(server):
    """One private gallery for the module's tests; each test works on a definition name of its own."""
    with server.http() as client:
        arm = Arm(client, str(uuid.uuid4()))
        group = arm.make_group()
        yield arm, group, arm.make_gallery(group)


@pytest.fixture
def where(private_gallery):
    """(arm, path of an image definition that does not exist yet)."""
    arm, group, gallery = private_gallery
    return arm, arm.image_path(group, gallery, f"img{uuid.uuid4().hex[:8]}")


def created(where, body: dict) -> dict:
    arm, path = where
    # Definitions share the module's gallery, so each takes its own name as sku to keep the triples unique.
    body["properties"]["identifier"]["sku"] = path.rsplit("/", 1)[1]
    arm.done(arm.put(path, body))
    return arm.state(path)["properties"]


def refused(where, body: dict, target: str, *mentions, code: str = "InvalidParameter") -> dict:
    arm, path = where
    error = assert_error(arm.put(path, body), 400, code, target, *mentions)
    assert arm.state(path) is None
    return error


# -- required properties and defaults ---------------------------------------------------------------------------
def test_defaults_through_sdk(compute, group, gallery):
    image = compute.gallery_images.begin_create_or_update(group, gallery, "img", definition_body()).result()
    assert image.hyper_v_generation == "V1" and image.architecture == "x64"
    assert image.os_type == "Linux" and image.os_state == "Generalized"


def test_explicit_values_and_canonical_spelling(where):
    props = created(
        where, definition_body(osType="windows", osState="specialized", hyperVGeneration="v2", architecture="ARM64")
    )
    assert (props["osType"], props["osState"], props["hyperVGeneration"], props["architecture"]) == (
        "Windows",
        "Specialized",
        "V2",
        "Arm64",
    )


@pytest.mark.parametrize("key", ["osType", "osState", "identifier"])
def test_required_property_missing(where, key):
    body = definition_body()
    del body["properties"][key]
    refused(where, body, f"properties.{key}", f"properties.{key}")


def test_required_property_missing_through_sdk(compute, group, gallery):
    body = definition_body()
    del body["properties"]["osState"]
    with pytest.raises(HttpResponseError) as exc:
        compute.gallery_images.begin_create_or_update(group, gallery, "img", body).result()
    assert exc.value.status_code == 400 and exc.value.error.target == "properties.osState"
    assert list(compute.gallery_images.list_by_gallery(group, gallery)) == []


@pytest.mark.parametrize("key", ["publisher", "offer", "sku"])
def test_identifier_part_missing(where, key):
    body = definition_body()
    del body["properties"]["identifier"][key]
    refused(where, body, f"properties.identifier.{key}", key)


@pytest.mark.parametrize(
    "key, value", [("osType", "BeOS"), ("osState", "Frozen"), ("hyperVGeneration", "V3"), ("architecture", "x86")]
)
def test_enum_value_rejected(where, key, value):
    refused(where, definition_body(**{key: value}), f"properties.{key}", f"'{value}'")


# -- features -----------------------------------------------------------------------------------------------------
def feature_body(name: str, value: str, gen: str = "V2") -> dict:
    return definition_body(hyperVGeneration=gen, features=[{"name": name, "value": value}])


@pytest.mark.parametrize(
    "name, value, canonical",
    [
        ("IsHibernateSupported", "True", "True"),
        ("IsHibernateSupported", "false", "False"),
        ("IsAcceleratedNetworkSupported", "True", "True"),
        ("IsAcceleratedNetworkSupported", "False", "False"),
        ("DiskControllerTypes", "SCSI", "SCSI"),
        ("DiskControllerTypes", "SCSI, NVMe", "SCSI, NVMe"),
    ],
)
def test_feature_value_allowed(where, name, value, canonical):
    props = created(where, feature_body(name, value, gen="V1"))
    assert props["features"] == [{"name": name, "value": canonical}]


@pytest.mark.parametrize(
    "name, value",
    [
        ("IsHibernateSupported", "maybe"),
        ("IsAcceleratedNetworkSupported", "1"),
        ("DiskControllerTypes", "NVMe"),
        ("DiskControllerTypes", "IDE"),
        ("SecurityType", "Standard"),
    ],
)
def test_feature_value_rejected(where, name, value):
    refused(where, feature_body(name, value), "properties.features[0].value", f"'{value}'")


def test_unknown_feature_rejected(where):
    refused(where, feature_body("IsWarpDriveSupported", "True"), "properties.features[0].name", "IsWarpDriveSupported")


@pytest.mark.parametrize(
    "value",
    [
        "TrustedLaunchSupported",
        "TrustedLaunch",
        "ConfidentialVmSupported",
        "ConfidentialVM",
        "TrustedLaunchAndConfidentialVmSupported",
    ],
)
def test_security_types_on_v2(compute, group, gallery, value):
    image = compute.gallery_images.begin_create_or_update(
        group, gallery, "img", feature_body("SecurityType", value)
    ).result()
    assert [(f.name, f.value) for f in image.features] == [("SecurityType", value)]


@pytest.mark.parametrize("value", ["TrustedLaunchSupported", "ConfidentialVM"])
def test_security_types_need_v2(where, value):
    refused(where, feature_body("SecurityType", value, gen="V1"), "properties.features[0].value", value, "V2")


def test_security_type_needs_v2_through_sdk(compute, group, gallery):
    body = definition_body(features=[{"name": "SecurityType", "value": "TrustedLaunchSupported"}])
    with pytest.raises(HttpResponseError) as exc:
        compute.gallery_images.begin_create_or_update(group, gallery, "img", body).result()
    assert exc.value.status_code == 400 and exc.value.error.target == "properties.features[0].value"
    assert "V2" in exc.value.error.message
    assert list(compute.gallery_images.list_by_gallery(group, gallery)) == []


@pytest.fixture(params=["Groups", "Community"])
def shared_gallery(request, arm, group):
    sharing = {"permissions": request.param}
    if request.param == "Community":
        sharing["communityGalleryInfo"] = {
            "publisherUri": "https://example.com",
            "publisherContact": "a@b.c",
            "eula": "https://example.com/eula",
            "publicNamePrefix": "pfx",
        }
    return request.param, arm.make_gallery(
        group, body={"location": "eastus", "properties": {"sharingProfile": sharing}}
    )


@pytest.mark.parametrize(
    "value, instead", [("TrustedLaunch", "TrustedLaunchSupported"), ("ConfidentialVM", "ConfidentialVmSupported")]
)
def test_only_security_types_refused_in_shared_gallery(arm, group, shared_gallery, value, instead):
    permissions, gallery = shared_gallery
    path = arm.image_path(group, gallery, "img")
    refused(
        (arm, path), feature_body("SecurityType", value), "properties.features[0].value", value, permissions, instead
    )
    # The "supported" form is what a shared gallery takes.
    assert created((arm, path), feature_body("SecurityType", instead))["features"][0]["value"] == instead


def test_only_security_type_allowed_in_private_gallery(arm, group):
    gallery = arm.make_gallery(
        group, body={"location": "eastus", "properties": {"sharingProfile": {"permissions": "Private"}}}
    )
    props = created((arm, arm.image_path(group, gallery, "img")), feature_body("SecurityType", "TrustedLaunch"))
    assert props["features"][0]["value"] == "TrustedLaunch"


# -- recommended, disallowed, purchase plan -----------------------------------------------------------------------
@pytest.mark.parametrize("key", ["vCPUs", "memory"])
def test_recommended_range(where, key):
    arm, path = where
    refused(
        where, definition_body(recommended={key: {"min": 16, "max": 4}}), f"properties.recommended.{key}.min", "16", "4"
    )
    props = created(where, definition_body(recommended={key: {"min": 4, "max": 4}}))
    assert props["recommended"] == {key: {"min": 4, "max": 4}}


def test_recommended_range_through_sdk(compute, group, gallery):
    body = definition_body(recommended={"vCPUs": {"min": 1, "max": 8}, "memory": {"min": 2, "max": 64}})
    image = compute.gallery_images.begin_create_or_update(group, gallery, "img", body).result()
    assert image.recommended.v_cp_us.max == 8 and image.recommended.memory.min == 2
    bad = definition_body(recommended={"memory": {"min": 64, "max": 2}})
    with pytest.raises(HttpResponseError) as exc:
        compute.gallery_images.begin_create_or_update(group, gallery, "img2", bad).result()
    assert exc.value.error.target == "properties.recommended.memory.min"


def test_disallowed_disk_types(where):
    refused(
        where,
        definition_body(disallowed={"diskTypes": ["Premium_LRS", "Floppy_LRS"]}),
        "properties.disallowed.diskTypes[1]",
        "'Floppy_LRS'",
    )
    props = created(where, definition_body(disallowed={"diskTypes": ["Premium_LRS", "standardssd_lrs"]}))
    assert props["disallowed"] == {"diskTypes": ["Premium_LRS", "StandardSSD_LRS"]}


def test_purchase_plan_needs_all_three(where):
    refused(
        where,
        definition_body(purchasePlan={"name": "plan", "publisher": "pub"}),
        "properties.purchasePlan.product",
        "product",
    )
    refused(where, definition_body(purchasePlan={"product": "prod"}), "properties.purchasePlan.name", "name")
    plan = {"name": "plan", "publisher": "pub", "product": "prod"}
    assert created(where, definition_body(purchasePlan=plan))["purchasePlan"] == plan


# -- links, dates, text, tags -------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["privacyStatementUri", "releaseNoteUri"])
def test_uris(where, key):
    refused(where, definition_body(**{key: "not a link"}), f"properties.{key}", "'not a link'")
    refused(where, definition_body(**{key: "ftp://example.com/x"}), f"properties.{key}", "'ftp://example.com/x'")
    assert created(where, definition_body(**{key: "https://example.com/x"}))[key] == "https://example.com/x"


def test_end_of_life_date(where):
    refused(where, definition_body(endOfLifeDate="next tuesday"), "properties.endOfLifeDate", "'next tuesday'")
    assert created(where, definition_body(endOfLifeDate="2030-01-01T00:00:00Z"))["endOfLifeDate"] == (
        "2030-01-01T00:00:00Z"
    )


def test_end_of_life_date_through_sdk(compute, group, gallery):
    import datetime

    eol = datetime.datetime(2031, 6, 1, tzinfo=datetime.UTC)
    image = compute.gallery_images.begin_create_or_update(
        group,
        gallery,
        "img",
        definition_body(endOfLifeDate=eol.isoformat(), description="base", eula="By using this image you agree."),
    ).result()
    assert image.end_of_life_date == eol
    assert image.description == "base" and image.eula == "By using this image you agree."


@pytest.mark.parametrize("key", ["description", "eula"])
def test_text_must_be_text(where, key):
    refused(where, definition_body(**{key: 12345}), f"properties.{key}", "12345")
    assert created(where, definition_body(**{key: "words"}))[key] == "words"


def test_tags(where):
    arm, path = where
    body = definition_body()
    body["tags"] = {"team": 7}
    refused(where, body, "tags.team", "team")
    body["tags"] = {f"t{i}": "" for i in range(51)}
    refused(where, body, "tags", "51")
    body["tags"] = {"team": "infra"}
    created(where, body)
    assert arm.state(path)["tags"] == {"team": "infra"}
