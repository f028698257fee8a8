"""Image definition rules: required OS facts, defaults, features, ranges, plans, URIs, dates and update limits."""

from __future__ import annotations

import copy

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from vmgallery.domain.definitions import (
    DISK_TYPES,
    PRIVATE_ONLY_SECURITY_TYPES,
    SECURITY_TYPES,
    check_definition_update,
    describe_identifier,
    natural_key,
    normalize_definition,
)
from vmgallery.domain.errors import ArmError, MissingRequiredProperty, PropertyChangeNotAllowed


def body(**props) -> dict:
    out = {
        "location": "eastus",
        "properties": {
            "osType": "Linux",
            "osState": "Generalized",
            "identifier": {"publisher": "P", "offer": "O", "sku": "S"},
        },
    }
    out["properties"].update(props)
    return out


def rejected(b: dict, permissions: str = "Private") -> ArmError:
    before = copy.deepcopy(b)
    with pytest.raises(ArmError) as exc:
        normalize_definition(b, permissions)
    assert b == before
    assert exc.value.status == 400
    return exc.value


def features(*pairs, gen="V2") -> dict:
    return body(hyperVGeneration=gen, features=[{"name": n, "value": v} for n, v in pairs])


# -- required and defaults --------------------------------------------------------------------------------------
def test_defaults_filled():
    props = normalize_definition(body())["properties"]
    assert props["hyperVGeneration"] == "V1"
    assert props["architecture"] == "x64"
    assert "features" not in props and "recommended" not in props


def test_enums_canonicalized():
    props = normalize_definition(
        body(osType="windows", osState="SPECIALIZED", hyperVGeneration="v2", architecture="arm64")
    )["properties"]
    assert (props["osType"], props["osState"], props["hyperVGeneration"], props["architecture"]) == (
        "Windows",
        "Specialized",
        "V2",
        "Arm64",
    )


@pytest.mark.parametrize("key", ["osType", "osState", "identifier"])
def test_required_property_missing(key):
    b = body()
    del b["properties"][key]
    err = rejected(b)
    assert isinstance(err, MissingRequiredProperty)
    assert err.code == "InvalidParameter" and err.target == f"properties.{key}"


@pytest.mark.parametrize("key", ["publisher", "offer", "sku"])
def test_identifier_parts_required(key):
    b = body()
    del b["properties"]["identifier"][key]
    assert rejected(b).target == f"properties.identifier.{key}"
    b["properties"]["identifier"][key] = " "
    assert rejected(b).target == f"properties.identifier.{key}"


def test_identifier_lengths():
    normalize_definition(body(identifier={"publisher": "p" * 128, "offer": "o" * 64, "sku": "s" * 64}))
    err = rejected(body(identifier={"publisher": "P", "offer": "o" * 65, "sku": "S"}))
    assert err.target == "properties.identifier.offer" and "65" in err.message


def test_properties_required():
    assert rejected({"location": "eastus"}).target == "properties"


@pytest.mark.parametrize(
    "key, value", [("osType", "BeOS"), ("osState", "Frozen"), ("hyperVGeneration", "V3"), ("architecture", "x86")]
)
def test_enum_rejected_names_value(key, value):
    err = rejected(body(**{key: value}))
    assert err.code == "InvalidParameter" and err.target == f"properties.{key}" and f"'{value}'" in err.message


# -- features ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["IsHibernateSupported", "IsAcceleratedNetworkSupported"])
@pytest.mark.parametrize("value, canonical", [("True", "True"), ("false", "False")])
def test_boolean_features(name, value, canonical):
    props = normalize_definition(features((name, value), gen="V1"))["properties"]
    assert props["features"] == [{"name": name, "value": canonical}]


@pytest.mark.parametrize("name", ["IsHibernateSupported", "IsAcceleratedNetworkSupported"])
def test_boolean_feature_rejected(name):
    err = rejected(features((name, "yes")))
    assert err.target == "properties.features[0].value" and "'yes'" in err.message and name in err.message


@pytest.mark.parametrize(
    "value, canonical", [("SCSI", "SCSI"), ("SCSI, NVMe", "SCSI, NVMe"), ("scsi,nvme", "SCSI, NVMe")]
)
def test_disk_controller_types(value, canonical):
    props = normalize_definition(features(("DiskControllerTypes", value), gen="V1"))["properties"]
    assert props["features"] == [{"name": "DiskControllerTypes", "value": canonical}]


def test_disk_controller_type_alias():
    props = normalize_definition(features(("diskControllerType", "SCSI")))
    assert props["properties"]["features"] == [{"name": "DiskControllerTypes", "value": "SCSI"}]


@pytest.mark.parametrize("value", ["NVMe", "IDE", "NVMe, SCSI"])
def test_disk_controller_types_rejected(value):
    err = rejected(features(("DiskControllerTypes", value)))
    assert err.target == "properties.features[0].value" and f"'{value}'" in err.message


@pytest.mark.parametrize("value", SECURITY_TYPES)
def test_security_types_on_v2_private(value):
    props = normalize_definition(features(("SecurityType", value.lower())))["properties"]
    assert props["features"] == [{"name": "SecurityType", "value": value}]


@pytest.mark.parametrize("value", SECURITY_TYPES)
def test_security_types_need_v2(value):
    err = rejected(features(("SecurityType", value), gen="V1"))
    assert err.target == "properties.features[0].value" and "V2" in err.message and value in err.message


def test_security_type_needs_v2_also_by_default():
    b = body(features=[{"name": "SecurityType", "value": "TrustedLaunchSupported"}])
    assert "V1" in rejected(b).message


def test_security_type_unknown():
    err = rejected(features(("SecurityType", "Standard")))
    assert err.target == "properties.features[0].value" and "'Standard'" in err.message


@pytest.mark.parametrize("permissions", ["Groups", "Community"])
@pytest.mark.parametrize("value", sorted(PRIVATE_ONLY_SECURITY_TYPES))
def test_only_types_rejected_in_shared_galleries(value, permissions):
    err = rejected(features(("SecurityType", value)), permissions)
    assert err.target == "properties.features[0].value"
    assert value in err.message and permissions in err.message
    assert PRIVATE_ONLY_SECURITY_TYPES[value] in err.message


@pytest.mark.parametrize("permissions", ["Groups", "Community"])
@pytest.mark.parametrize("value", sorted(set(SECURITY_TYPES) - set(PRIVATE_ONLY_SECURITY_TYPES)))
def test_supported_types_fine_in_shared_galleries(value, permissions):
    normalize_definition(features(("SecurityType", value)), permissions)


def test_unknown_and_duplicate_features():
    err = rejected(features(("IsTurboSupported", "True")))
    assert err.target == "properties.features[0].name" and "IsTurboSupported" in err.message
    err = rejected(features(("IsHibernateSupported", "True"), ("ishibernatesupported", "False")))
    assert err.target == "properties.features[1].name" and "more than once" in err.message


def test_feature_shape():
    assert rejected(body(features={"SecurityType": "x"})).target == "properties.features"
    assert rejected(body(features=["SecurityType"])).target == "properties.features[0]"
    assert rejected(body(features=[{"name": "SecurityType"}])).target == "properties.features[0].value"


# -- recommended, disallowed, purchase plan ---------------------------------------------------------------------
@given(st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1))
def test_recommended_min_not_above_max(a, b):
    lo, hi = min(a, b), max(a, b)
    for key in ("vCPUs", "memory"):
        normalize_definition(body(recommended={key: {"min": lo, "max": hi}}))
        if lo < hi:
            err = rejected(body(recommended={key: {"min": hi, "max": lo}}))
            assert err.target == f"properties.recommended.{key}.min"
            assert str(hi) in err.message and str(lo) in err.message


def test_recommended_open_ranges_and_bad_values():
    normalize_definition(body(recommended={"vCPUs": {"min": 2}, "memory": {"max": 64}}))
    assert rejected(body(recommended={"vCPUs": {"min": 0}})).target == "properties.recommended.vCPUs.min"
    assert rejected(body(recommended={"memory": {"max": "lots"}})).target == "properties.recommended.memory.max"


def test_empty_recommended_dropped():
    assert "recommended" not in normalize_definition(body(recommended={"vCPUs": {}}))["properties"]


def test_disallowed_disk_types():
    props = normalize_definition(body(disallowed={"diskTypes": ["standard_lrs", "Premium_LRS"]}))["properties"]
    assert props["disallowed"] == {"diskTypes": ["Standard_LRS", "Premium_LRS"]}
    for t in DISK_TYPES:
        normalize_definition(body(disallowed={"diskTypes": [t]}))
    err = rejected(body(disallowed={"diskTypes": ["Premium_LRS", "Floppy"]}))
    assert err.target == "properties.disallowed.diskTypes[1]" and "'Floppy'" in err.message
    assert rejected(body(disallowed={"diskTypes": "Premium_LRS"})).target == "properties.disallowed.diskTypes"


def test_purchase_plan_together():
    plan = {"name": "n", "publisher": "p", "product": "x"}
    assert normalize_definition(body(purchasePlan=plan))["properties"]["purchasePlan"] == plan
    err = rejected(body(purchasePlan={"name": "n", "publisher": "p"}))
    assert err.target == "properties.purchasePlan.product" and "product" in err.message
    err = rejected(body(purchasePlan={"product": "x"}))
    assert err.target == "properties.purchasePlan.name"
    assert rejected(body(purchasePlan={"name": "n", "publisher": 1, "product": "x"})).target == (
        "properties.purchasePlan.publisher"
    )


# -- strings, URIs, dates, tags ---------------------------------------------------------------------------------
def test_text_and_links_allowed():
    normalize_definition(
        body(
            description="d",
            eula="You agree.",
            privacyStatementUri="https://example.com/p",
            releaseNoteUri="http://example.com/r",
            endOfLifeDate="2030-01-01T00:00:00Z",
        ),
        "Private",
    )


@pytest.mark.parametrize(
    "key, value",
    [
        ("privacyStatementUri", "not a uri"),
        ("releaseNoteUri", "example.com/notes"),
        ("endOfLifeDate", "someday"),
        ("description", 42),
        ("eula", ["x"]),
    ],
)
def test_text_and_links_rejected(key, value):
    err = rejected(body(**{key: value}))
    assert err.target == f"properties.{key}" and str(value) in err.message


def test_allow_update_image_must_be_bool():
    assert rejected(body(allowUpdateImage="yes")).target == "properties.allowUpdateImage"


def test_tags_checked():
    b = body()
    b["tags"] = {"a": 1}
    assert rejected(b).target == "tags.a"


def test_read_only_fields_dropped():
    b = body()
    b.update(id="/x", name="n", type="Microsoft.Compute/galleries/images")
    b["properties"]["provisioningState"] = "Succeeded"
    spec = normalize_definition(b)
    assert not {"id", "name", "type"} & set(spec) and "provisioningState" not in spec["properties"]


# -- natural key -------------------------------------------------------------------------------------------------
def test_natural_key_ignores_case():
    a = normalize_definition(body(identifier={"publisher": "Pub", "offer": "Off", "sku": "Sku"}))
    b = normalize_definition(body(identifier={"publisher": "pub", "offer": "OFF", "sku": "sku"}))
    c = normalize_definition(body(identifier={"publisher": "pub", "offer": "OFF", "sku": "sku2"}))
    assert natural_key(a) == natural_key(b) != natural_key(c)
    assert describe_identifier(a) == "publisher 'Pub', offer 'Off', sku 'Sku'"


@given(
    st.lists(st.text(alphabet="ab|", min_size=1, max_size=3), min_size=3, max_size=3),
    st.lists(st.text(alphabet="ab|", min_size=1, max_size=3), min_size=3, max_size=3),
)
@example(["a", "|", "||"], ["a", "||", "|"])  # joined plainly, both were "a|||||"
@example(["a\\", "b", "c"], ["a", "\\b", "c"])
def test_natural_key_separates_triples(x, y):
    kx = natural_key(body(identifier=dict(zip(("publisher", "offer", "sku"), x))))
    ky = natural_key(body(identifier=dict(zip(("publisher", "offer", "sku"), y))))
    assert (kx == ky) == ([s.lower() for s in x] == [s.lower() for s in y])


# -- updates -----------------------------------------------------------------------------------------------------
def spec(**props) -> dict:
    return normalize_definition(body(**props))


def test_updatable_properties():
    old = spec(description="a", recommended={"vCPUs": {"min": 1, "max": 2}})
    new = spec(
        description="b",
        recommended={"vCPUs": {"min": 2, "max": 4}, "memory": {"min": 1, "max": 8}},
        endOfLifeDate="2031-01-01",
        releaseNoteUri="https://example.com/r",
    )
    new["tags"] = {"t": "1"}
    check_definition_update(old, new)


@pytest.mark.parametrize(
    "change, target",
    [
        ({"osType": "Windows"}, "properties.osType"),
        ({"osState": "Specialized"}, "properties.osState"),
        ({"hyperVGeneration": "V2"}, "properties.hyperVGeneration"),
        ({"architecture": "Arm64"}, "properties.architecture"),
        ({"identifier": {"publisher": "P", "offer": "O", "sku": "S2"}}, "properties.identifier.sku"),
        ({"eula": "new"}, "properties.eula"),
        ({"privacyStatementUri": "https://example.com/p"}, "properties.privacyStatementUri"),
        ({"purchasePlan": {"name": "n", "publisher": "p", "product": "x"}}, "properties.purchasePlan.name"),
        ({"disallowed": {"diskTypes": ["Premium_LRS"]}}, "properties.disallowed.diskTypes"),
        ({"features": [{"name": "IsHibernateSupported", "value": "True"}]}, "properties.features"),
    ],
)
def test_fixed_properties_rejected(change, target):
    old = spec()
    with pytest.raises(PropertyChangeNotAllowed) as exc:
        check_definition_update(old, spec(**change))
    assert exc.value.code == "PropertyChangeNotAllowed" and exc.value.target == target


def test_features_change_with_allow_update_image():
    old = spec(hyperVGeneration="V2")
    new = spec(
        hyperVGeneration="V2",
        allowUpdateImage=True,
        features=[{"name": "SecurityType", "value": "TrustedLaunchSupported"}],
    )
    check_definition_update(old, new)
    with pytest.raises(PropertyChangeNotAllowed):
        check_definition_update(
            old,
            spec(
                hyperVGeneration="V2",
                allowUpdateImage=False,
                features=[{"name": "SecurityType", "value": "TrustedLaunchSupported"}],
            ),
        )


def test_echoing_the_stored_body_is_no_change():
    stored = spec(description="d", features=[{"name": "IsHibernateSupported", "value": "True"}])
    echoed = copy.deepcopy(stored)
    echoed.update(id="/x", name="n", type="Microsoft.Compute/galleries/images")
    echoed["properties"]["provisioningState"] = "Succeeded"
    check_definition_update(stored, normalize_definition(echoed))


def test_location_spelled_for_display_is_no_change():
    echoed = body()
    echoed["location"] = "East US"
    assert normalize_definition(echoed)["location"] == "eastus"
    check_definition_update(spec(), normalize_definition(echoed))
