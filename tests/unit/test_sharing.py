"""The sharing rules, pure: what a share body may say, how it changes the profile, and who sees a shared gallery."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vmgallery.domain import sharing
from vmgallery.domain.errors import InvalidParameter, MissingRequiredProperty, OperationNotAllowed
from vmgallery.domain.principals import Principal, PrincipalType

SUB = "11111111-1111-1111-1111-111111111111"
OTHER_SUB = "22222222-2222-2222-2222-222222222222"
TENANT = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"
OTHER_TENANT = "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb"


def user(tenant: str = TENANT, *aux: str) -> Principal:
    return Principal(
        "u1",
        tenant,
        PrincipalType.USER,
        auxiliary=tuple(Principal("u1", t, PrincipalType.USER) for t in aux),
    )


ADMIN = Principal("admin", OTHER_TENANT, PrincipalType.ADMIN)
SP = Principal("sp", TENANT, PrincipalType.SERVICE_PRINCIPAL, app_id="app")


def groups(subs=(), tenants=()):
    return frozenset(subs), frozenset(tenants)


@pytest.mark.parametrize(
    "caller, sub_tenant, shared, shared_to, allowed",
    [
        (user(), TENANT, groups(subs=[SUB]), None, True),
        (SP, TENANT, groups(subs=[SUB]), None, True),
        (user(), TENANT, groups(tenants=[TENANT]), None, True),
        (user(), TENANT, groups(subs=[OTHER_SUB]), None, False),  # shared with someone else
        (user(), TENANT, groups(tenants=[OTHER_TENANT]), None, False),
        (user(OTHER_TENANT), TENANT, groups(subs=[SUB]), None, False),  # caller of another tenant
        (user(OTHER_TENANT, TENANT), TENANT, groups(subs=[SUB]), None, True),  # ... with an auxiliary token there
        (user(), None, groups(subs=[SUB]), None, False),  # subscription of no known tenant
        (ADMIN, None, groups(subs=[SUB]), None, True),  # the admin acts in every tenant
        (ADMIN, TENANT, groups(), None, False),  # ... but sees only what is shared
        (user(), TENANT, groups(tenants=[TENANT]), "subscription", False),
        (user(), TENANT, groups(subs=[SUB]), "tenant", False),
        (user(), TENANT, groups(tenants=[TENANT]), "tenant", True),
    ],
)
def test_who_may_use_a_shared_gallery(caller, sub_tenant, shared, shared_to, allowed):
    assert sharing.may_use_shared(caller, SUB, sub_tenant, shared, shared_to) is allowed


def test_ids_compare_without_case():
    assert sharing.may_use_shared(user(TENANT.upper()), SUB.upper(), TENANT, groups(subs=[SUB]))


def test_community_needs_a_caller_and_an_enabled_gallery():
    enabled = {
        "properties": {
            "sharingProfile": {"permissions": "Community", "communityGalleryInfo": {"communityGalleryEnabled": True}}
        }
    }
    assert sharing.may_use_community(user(OTHER_TENANT), enabled)
    assert not sharing.may_use_community(None, enabled)
    assert not sharing.may_use_community(user(), {"properties": {"sharingProfile": {"permissions": "Community"}}})


def test_parse_canonicalizes_and_deduplicates():
    update = sharing.parse_sharing_update(
        {
            "operationType": "add",
            "groups": [
                {"type": "subscriptions", "ids": [SUB.upper(), SUB]},
                {"type": "AADTenants", "ids": [TENANT]},
            ],
        }
    )
    assert update == sharing.SharingUpdate("Add", (SUB,), (TENANT,))
    assert update.body() == {
        "operationType": "Add",
        "groups": [{"type": "Subscriptions", "ids": [SUB]}, {"type": "AADTenants", "ids": [TENANT]}],
    }


@pytest.mark.parametrize(
    "body, error, target, mention",
    [
        ({}, MissingRequiredProperty, "operationType", "Add, Remove, Reset, EnableCommunity"),
        ({"operationType": "Remove"}, MissingRequiredProperty, "groups", "at least one"),
        (
            {"operationType": "Reset", "groups": [{"type": "Subscriptions", "ids": [SUB]}]},
            InvalidParameter,
            "groups",
            "takes no",
        ),
        (
            {"operationType": "Add", "groups": [{"type": "Tenants", "ids": [TENANT]}]},
            InvalidParameter,
            "groups[0].type",
            "'AADTenants'",
        ),
        (
            {"operationType": "Add", "groups": [{"type": "Users", "ids": [TENANT]}]},
            InvalidParameter,
            "groups[0].type",
            "'Subscriptions'",
        ),
        (
            {"operationType": "Add", "groups": [{"type": "Subscriptions", "ids": []}]},
            InvalidParameter,
            "groups[0].ids",
            "non-empty",
        ),
        (
            {"operationType": "Add", "groups": [{"type": "Subscriptions", "ids": ["x"]}]},
            InvalidParameter,
            "groups[0].ids[0]",
            "GUID",
        ),
        (
            {
                "operationType": "Add",
                "groups": [{"type": "Subscriptions", "ids": [f"/subscriptions/{SUB}/resourceGroups/rg"]}],
            },
            InvalidParameter,
            "groups[0].ids[0]",
            SUB,
        ),
    ],
)
def test_a_wrong_share_target_says_what_is_wrong(body, error, target, mention):
    with pytest.raises(error) as refused:
        sharing.parse_sharing_update(body)
    assert refused.value.target == target and mention in refused.value.message


def gallery(perm="Groups", groups_=None, info=None):
    profile = {"permissions": perm}
    if groups_ is not None:
        profile["groups"] = groups_
    if info is not None:
        profile["communityGalleryInfo"] = info
    return {"name": "g", "properties": {"sharingProfile": profile}}


def test_add_and_remove_edit_the_groups():
    added = sharing.apply_sharing_update(gallery(), sharing.SharingUpdate("Add", (SUB, OTHER_SUB), (TENANT,)), "x")
    assert added["groups"] == [
        {"type": "Subscriptions", "ids": [SUB, OTHER_SUB]},
        {"type": "AADTenants", "ids": [TENANT]},
    ]
    again = sharing.apply_sharing_update(gallery(groups_=added["groups"]), sharing.SharingUpdate("Add", (SUB,)), "x")
    assert again["groups"] == added["groups"]
    removed = sharing.apply_sharing_update(
        gallery(groups_=added["groups"]), sharing.SharingUpdate("Remove", (SUB,), (TENANT,)), "x"
    )
    assert removed["groups"] == [{"type": "Subscriptions", "ids": [OTHER_SUB]}]


def test_sharing_needs_groups_permissions():
    with pytest.raises(OperationNotAllowed) as refused:
        sharing.apply_sharing_update(gallery("Private"), sharing.SharingUpdate("Add", (SUB,)), "x")
    assert "--permissions Groups" in refused.value.message


def test_reset_makes_the_gallery_private():
    shared = gallery(groups_=[{"type": "Subscriptions", "ids": [SUB]}])
    assert sharing.apply_sharing_update(shared, sharing.SharingUpdate("Reset"), "x") == {
        "permissions": "Private",
        "groups": [],
    }


INFO = {
    "publisherUri": "https://e.com",
    "publisherContact": "a@e.com",
    "eula": "https://e.com/eula",
    "publicNamePrefix": "pfx",
}


def test_enable_community_names_the_gallery_once():
    enabled = sharing.apply_sharing_update(
        gallery("Community", info=INFO), sharing.SharingUpdate("EnableCommunity"), "s1"
    )
    assert enabled["communityGalleryInfo"]["publicNames"] == ["pfx-s1"]
    assert enabled["communityGalleryInfo"]["communityGalleryEnabled"] is True
    again = sharing.apply_sharing_update(
        gallery("Community", info=enabled["communityGalleryInfo"]), sharing.SharingUpdate("EnableCommunity"), "s2"
    )
    assert again["communityGalleryInfo"]["publicNames"] == ["pfx-s1"]


def test_enable_community_needs_the_publisher_facts():
    with pytest.raises(MissingRequiredProperty) as refused:
        sharing.apply_sharing_update(
            gallery("Community", info={**INFO, "eula": None}), sharing.SharingUpdate("EnableCommunity"), "s"
        )
    assert refused.value.target == "properties.sharingProfile.communityGalleryInfo.eula"
    with pytest.raises(OperationNotAllowed):
        sharing.apply_sharing_update(gallery("Groups"), sharing.SharingUpdate("EnableCommunity"), "s")


def test_a_shared_gallery_keeps_its_permissions_until_reset():
    shared = gallery(groups_=[{"type": "AADTenants", "ids": [TENANT]}])
    with pytest.raises(OperationNotAllowed):
        sharing.check_profile_change(shared, {"properties": {"sharingProfile": {"permissions": "Private"}}})
    sharing.check_profile_change(shared, {"properties": {"sharingProfile": {"permissions": "Groups"}}})
    enabled = gallery("Community", info={**INFO, "communityGalleryEnabled": True, "publicNames": ["pfx-1"]})
    with pytest.raises(OperationNotAllowed):
        sharing.check_profile_change(
            enabled,
            {
                "properties": {
                    "sharingProfile": {"permissions": "Community", "communityGalleryInfo": {**INFO, "eula": "x"}}
                }
            },
        )
    sharing.check_profile_change(
        enabled, {"properties": {"sharingProfile": {"permissions": "Community", "communityGalleryInfo": INFO}}}
    )


def test_community_listing_leaves_out_excluded_and_ended_versions():
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def version(**profile):
        return {"properties": {"publishingProfile": profile}}

    assert sharing.listed_in_community(version(), now)
    assert not sharing.listed_in_community(version(excludeFromLatest=True), now)
    assert not sharing.listed_in_community(version(endOfLifeDate="2025-12-31T00:00:00Z"), now)
    assert sharing.listed_in_community(version(endOfLifeDate="2026-06-01T00:00:00+00:00"), now)


def test_the_consumer_view_shows_nothing_else_of_the_owner():
    owner = {
        "id": f"/subscriptions/{SUB}/resourceGroups/secret-rg/providers/Microsoft.Compute/galleries/g/images/linux",
        "name": "linux",
        "tags": {"cost": "secret"},
        "properties": {
            "description": "internal notes",
            "osType": "Linux",
            "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
            "eula": "e",
        },
    }
    body = sharing.View(False, f"{SUB}-G", "eastus").image(owner)
    assert "secret" not in str(body) and "internal" not in str(body)
    assert body["identifier"] == {"uniqueId": f"/SharedGalleries/{SUB}-G/Images/linux"} and "type" not in body
    community = sharing.View(True, "pfx-1", "eastus").image(owner)
    assert community["type"] == "Microsoft.Compute/locations/communityGalleryImage"


@pytest.mark.parametrize(
    "value, community, ok",
    [
        ("/SharedGalleries/u/Images/i/Versions/1.0.0", False, True),
        ("/sharedgalleries/u/images/i/versions/latest", False, True),
        ("/CommunityGalleries/p/Images/i/Versions/1.0.0", False, False),
        ("/CommunityGalleries/p/Images/i/Versions/1.0.0", True, True),
        ("/SharedGalleries/u/Images/i", False, False),
    ],
)
def test_consumer_image_ids(value, community, ok):
    if ok:
        assert sharing.parse_consumer_image_id(value, community, "t").image.lower() == "i"
    else:
        with pytest.raises(InvalidParameter):
            sharing.parse_consumer_image_id(value, community, "t")
