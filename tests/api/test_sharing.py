"""Direct shared and community galleries through the real SDK, as real principals: share, read as a consumer, make
disks, revoke.

The owner is a service principal of tenant A with Owner on its subscription; consumers are service principals of
tenants B and C, each with a role in a subscription of its own tenant. Every call carries a token from
azure-identity's ClientSecretCredential against vmgallery's authority, over HTTPS.

(SDK 39 flattens these models' properties onto `identifier`, which breaks `image.os_type`; the tests read
`.properties.*`, which is what the wire carries.)
"""

from __future__ import annotations

import contextlib
import ssl
import uuid
from dataclasses import dataclass

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from vmgallery.domain import rbac

from .conftest import definition_body
from .test_disks import image, read_disk, upload_disk
from .test_versions import make_version

ADMIN_API = "/vmgallery/identity"
ARM = ["https://management.azure.com/.default"]
SHARE_ACTION = "Microsoft.Compute/galleries/share/action"


@dataclass
class Party:
    """A service principal of `tenant`, calling in `subscription` (where it holds a role) with the real SDKs."""

    tenant: str
    subscription: str
    object_id: str
    compute: ComputeManagementClient
    resources: ResourceManagementClient
    token: str

    def http(self, server) -> httpx.Client:
        return httpx.Client(
            base_url=server.url,
            verify=ssl.create_default_context(cafile=server.ca),
            timeout=30,
            headers={"Authorization": f"Bearer {self.token}"},
        )


def _ok(response: httpx.Response, status=(200, 201)) -> dict:
    assert response.status_code in status, response.text
    return response.json() if response.content else {}


def _tenant(http) -> str:
    return _ok(http.post(f"{ADMIN_API}/tenants", json={"name": f"t-{uuid.uuid4().hex[:6]}"}))["tenantId"]


def _subscription(http, tenant: str) -> str:
    made = _ok(http.post(f"{ADMIN_API}/subscriptions", json={"tenantId": tenant, "name": "s"}))
    return made["subscriptionId"]


def assign(http, object_id: str, role: str, scope: str) -> None:
    guid = rbac.BUILT_IN_BY_NAME[role.lower()].guid
    body = {"properties": {"roleDefinitionId": guid, "principalId": object_id, "principalType": "ServicePrincipal"}}
    _ok(
        http.put(
            f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
            params={"api-version": "2022-04-01"},
            json=body,
        ),
        (201,),
    )


class Parties:
    """Makes principals and closes their clients."""

    def __init__(self, server, http, stack: contextlib.ExitStack):
        self.server, self.http, self.stack = server, http, stack

    def make(self, tenant: str, subscription: str, role: str | None, scope: str | None = None) -> Party:
        sp = _ok(self.http.post(f"{ADMIN_API}/tenants/{tenant}/servicePrincipals", json={"displayName": "sp"}))
        if role:
            assign(self.http, sp["objectId"], role, scope or f"/subscriptions/{subscription}")
        credential = ClientSecretCredential(
            tenant,
            sp["appId"],
            sp["password"],
            authority=self.server.url,
            disable_instance_discovery=True,
            connection_verify=self.server.ca,
        )
        self.stack.callback(credential.close)
        kwargs = {"base_url": self.server.url, "credential_scopes": ARM, "connection_verify": self.server.ca}
        compute = self.stack.enter_context(
            ComputeManagementClient(credential, subscription, polling_interval=0, **kwargs)
        )
        resources = self.stack.enter_context(
            ResourceManagementClient(credential, subscription, polling_interval=0, **kwargs)
        )
        token = credential.get_token(*ARM).token
        return Party(tenant, subscription, sp["objectId"], compute, resources, token)


@dataclass
class World:
    owner: Party  # tenant A, Owner on subscription A
    group: str  # the owner's resource group
    consumer: Party  # tenant B, Contributor on subscription B: reads shares and makes disks in group "consumer"
    stranger: Party  # tenant C, Contributor on subscription C: shared with by nobody
    parties: Parties


@pytest.fixture
def world(server, http):
    with contextlib.ExitStack() as stack:
        parties = Parties(server, http, stack)
        a, b, c = _tenant(http), _tenant(http), _tenant(http)
        sub_a, sub_b, sub_c = _subscription(http, a), _subscription(http, b), _subscription(http, c)
        owner = parties.make(a, sub_a, "Owner")
        consumer = parties.make(b, sub_b, "Contributor")
        stranger = parties.make(c, sub_c, "Contributor")
        group = f"rg-{uuid.uuid4().hex[:8]}"
        owner.resources.resource_groups.create_or_update(group, {"location": "eastus"})
        for party in (consumer, stranger):
            party.resources.resource_groups.create_or_update("consumer", {"location": "eastus"})
        yield World(owner, group, consumer, stranger, parties)


def _gallery(compute, group, sharing: dict) -> str:
    name = f"gal{uuid.uuid4().hex[:8]}"
    compute.galleries.begin_create_or_update(
        group, name, {"location": "eastus", "properties": {"sharingProfile": sharing}}
    ).result()
    return name


def _published(compute, server, group, gallery, versions=("1.0.0",), **profiles):
    compute.gallery_images.begin_create_or_update(
        group, gallery, "linux", definition_body(hyperVGeneration="V2", eula="https://example.com/eula")
    ).result()
    data = image(2, seed=7)
    upload_disk(compute, server, group, "os", data)
    disk_id = compute.disks.get(group, "os").id
    for v in versions:
        make_version(compute, group, gallery, "linux", v, disk_id, **profiles.get(v, {}))
    return data


def _disk(compute, name, ref: dict):
    return compute.disks.begin_create_or_update(
        "consumer",
        name,
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "FromImage", "galleryImageReference": ref}},
        },
    ).result()


def _share(owner: Party, group: str, gallery: str, operation: str, kind: str | None = None, ids=()):
    body: dict = {"operationType": operation}
    if kind:
        body["groups"] = [{"type": kind, "ids": list(ids)}]
    return owner.compute.gallery_sharing_profile.begin_update(group, gallery, body).result()


def _not_shared_with(party: Party, server, unique: str, makes_disks: bool = True) -> None:
    """`party` sees nothing of the gallery: every consumer read is 404, as for a gallery that does not exist, and a
    disk from it (if `party` may make disks) is refused without naming the owner's resources."""
    theirs = party.compute
    assert list(theirs.shared_galleries.list("eastus")) == []
    assert list(theirs.shared_galleries.list("eastus", shared_to="tenant")) == []
    never = f"{uuid.uuid4()}-NOSUCHGALLERY"
    for read in (
        lambda name: theirs.shared_galleries.get("eastus", name),
        lambda name: theirs.shared_gallery_images.get("eastus", name, "linux"),
        lambda name: theirs.shared_gallery_image_versions.get("eastus", name, "linux", "1.0.0"),
    ):
        with pytest.raises(ResourceNotFoundError) as hidden:
            read(unique)
        with pytest.raises(ResourceNotFoundError) as missing:
            read(never)
        assert hidden.value.error.code == missing.value.error.code
        assert hidden.value.message.replace(unique, never) == missing.value.message, "existence leaked"
    if not makes_disks:
        return
    name = f"late{uuid.uuid4().hex[:6]}"
    with pytest.raises(HttpResponseError) as refused:
        _disk(theirs, name, {"sharedGalleryImageId": f"/SharedGalleries/{unique}/Images/linux/Versions/1.0.0"})
    assert refused.value.status_code == 404, refused.value.message
    assert "resourcegroups" not in refused.value.message.lower()
    with pytest.raises(ResourceNotFoundError):
        theirs.disks.get("consumer", name)


def test_subscription_share_read_disk_and_revoke(world, server):
    owner, group, theirs = world.owner, world.group, world.consumer.compute
    gallery = _gallery(owner.compute, group, {"permissions": "Groups"})
    data = _published(owner.compute, server, group, gallery, ("1.0.0", "1.1.0"))
    unique = owner.compute.galleries.get(group, gallery).identifier.unique_name
    assert unique == f"{owner.subscription}-{gallery.upper()}"

    assert list(theirs.shared_galleries.list("eastus")) == []
    result = _share(owner, group, gallery, "Add", "Subscriptions", [world.consumer.subscription])
    assert result.operation_type == "Add" and result.groups[0].ids == [world.consumer.subscription]
    shown = owner.compute.galleries.get(group, gallery, select="Permissions", expand="SharingProfile/Groups")
    assert shown.sharing_profile.permissions == "Groups"
    assert shown.sharing_profile.groups[0].type == "Subscriptions"
    assert shown.sharing_profile.groups[0].ids == [world.consumer.subscription]
    assert shown.sharing_status.aggregated_state == "Succeeded"

    listed = list(theirs.shared_galleries.list("eastus"))
    assert [g.name for g in listed] == [unique]
    assert listed[0].unique_id == f"/SharedGalleries/{unique}"
    assert list(theirs.shared_galleries.list("eastus", shared_to="tenant")) == []
    got = theirs.shared_galleries.get("eastus", unique)
    assert got.unique_id == f"/SharedGalleries/{unique}"
    images = list(theirs.shared_gallery_images.list("eastus", unique))
    assert [(i.name, i.properties.identifier.publisher, i.properties.os_type, i.properties.eula) for i in images] == [
        ("linux", "pub", "Linux", "https://example.com/eula")
    ]
    assert theirs.shared_gallery_images.get("eastus", unique, "linux").name == "linux"
    versions = list(theirs.shared_gallery_image_versions.list("eastus", unique, "linux"))
    assert sorted(v.name for v in versions) == ["1.0.0", "1.1.0"]
    one = theirs.shared_gallery_image_versions.get("eastus", unique, "linux", "1.1.0")
    assert one.unique_id == f"/SharedGalleries/{unique}/Images/linux/Versions/1.1.0"
    assert one.properties.storage_profile.os_disk_image.disk_size_gb == 1

    raw = theirs.shared_gallery_image_versions.get("eastus", unique, "linux", "1.0.0").as_dict()
    text = str(raw).lower()
    assert group.lower() not in text and "/resourcegroups/" not in text, "the owner's resource group leaked"

    base = f"/SharedGalleries/{unique}/Images/linux/Versions"
    made = _disk(theirs, "from-shared", {"sharedGalleryImageId": f"{base}/latest"})
    assert made.os_type == "Linux"
    assert made.id.lower().startswith(f"/subscriptions/{world.consumer.subscription}/resourcegroups/consumer/")
    assert made.creation_data.gallery_image_reference.shared_gallery_image_id.endswith("/Versions/latest")
    assert read_disk(theirs, server, "consumer", "from-shared") == data
    pinned = _disk(theirs, "pinned", {"sharedGalleryImageId": f"{base}/1.0.0"})
    assert pinned.creation_data.gallery_image_reference.shared_gallery_image_id == f"{base}/1.0.0"

    # Another tenant's principal, in its own subscription, learns nothing: not even that the gallery exists.
    _not_shared_with(world.stranger, server, unique)

    _share(owner, group, gallery, "Remove", "Subscriptions", [world.consumer.subscription])
    _not_shared_with(world.consumer, server, unique)
    assert read_disk(theirs, server, "consumer", "from-shared") == data, "a disk made before stays the consumer's"


def test_tenant_share_and_reset(world, server):
    owner, group = world.owner, world.group
    gallery = _gallery(owner.compute, group, {"permissions": "Groups"})
    data = _published(owner.compute, server, group, gallery)
    unique = owner.compute.galleries.get(group, gallery).identifier.unique_name
    # A reader in another subscription of tenant B: a tenant share reaches every subscription of the tenant.
    other_sub = _subscription(world.parties.http, world.consumer.tenant)
    reader = world.parties.make(world.consumer.tenant, other_sub, "Reader")
    _share(owner, group, gallery, "Add", "AADTenants", [world.consumer.tenant])

    for party in (world.consumer, reader):
        theirs = party.compute
        assert [g.name for g in theirs.shared_galleries.list("eastus", shared_to="tenant")] == [unique]
        assert list(theirs.shared_galleries.list("eastus")) == []  # shared with the tenant, not the subscription
        assert theirs.shared_galleries.get("eastus", unique).unique_id == f"/SharedGalleries/{unique}"
        assert [i.name for i in theirs.shared_gallery_images.list("eastus", unique, shared_to="tenant")] == ["linux"]
        listed = theirs.shared_gallery_image_versions.list("eastus", unique, "linux", shared_to="tenant")
        assert [v.name for v in listed] == ["1.0.0"]
    latest = f"/SharedGalleries/{unique}/Images/linux/Versions/latest"
    _disk(world.consumer.compute, "from-tenant-share", {"sharedGalleryImageId": latest})
    assert read_disk(world.consumer.compute, server, "consumer", "from-tenant-share") == data
    with pytest.raises(HttpResponseError) as refused:
        _disk(reader.compute, "by-a-reader", {"sharedGalleryImageId": latest})
    assert refused.value.status_code == 403 and refused.value.error.code == "AuthorizationFailed"
    _not_shared_with(world.stranger, server, unique)

    _share(owner, group, gallery, "Reset")
    after = owner.compute.galleries.get(group, gallery, expand="SharingProfile/Groups")
    assert after.sharing_profile.permissions == "Private" and not after.sharing_profile.groups
    _not_shared_with(world.consumer, server, unique)
    _not_shared_with(reader, server, unique, makes_disks=False)


def test_share_needs_the_share_action(world, server):
    owner, group = world.owner, world.group
    gallery = _gallery(owner.compute, group, {"permissions": "Groups"})
    scope = (
        f"/subscriptions/{owner.subscription}/resourceGroups/{group}/providers/Microsoft.Compute/galleries/{gallery}"
    )
    contributor = world.parties.make(owner.tenant, owner.subscription, "Contributor")
    sharer = world.parties.make(owner.tenant, owner.subscription, "Compute Gallery Sharing Admin", scope)
    add = {"operationType": "Add", "groups": [{"type": "Subscriptions", "ids": [world.consumer.subscription]}]}

    with pytest.raises(HttpResponseError) as refused:
        contributor.compute.gallery_sharing_profile.begin_update(group, gallery, add).result()
    assert refused.value.status_code == 403 and refused.value.error.code == "AuthorizationFailed"
    assert SHARE_ACTION in refused.value.message and contributor.object_id in refused.value.message
    assert list(world.consumer.compute.shared_galleries.list("eastus")) == [], "a refused share changed nothing"
    assert not owner.compute.galleries.get(group, gallery, expand="SharingProfile/Groups").sharing_profile.groups

    assert sharer.compute.gallery_sharing_profile.begin_update(group, gallery, add).result().operation_type == "Add"
    listed = [g.name for g in world.consumer.compute.shared_galleries.list("eastus")]
    assert listed == [owner.compute.galleries.get(group, gallery).identifier.unique_name]


def test_share_errors_are_plain_and_change_nothing(world):
    owner, group = world.owner, world.group
    gallery = _gallery(owner.compute, group, {"permissions": "Private"})
    path = (
        f"/subscriptions/{owner.subscription}/resourceGroups/{group}/providers/Microsoft.Compute/galleries/{gallery}"
        "/share?api-version=2023-07-03"
    )
    before = owner.compute.galleries.get(group, gallery).as_dict()
    cases = [
        (
            {"operationType": "Add", "groups": [{"type": "Subscriptions", "ids": [str(uuid.uuid4())]}]},
            409,
            "needs 'Groups'",
        ),
        (
            {"operationType": "Add", "groups": [{"type": "Subscription", "ids": [str(uuid.uuid4())]}]},
            400,
            "Did you mean 'Subscriptions'",
        ),
        (
            {
                "operationType": "Add",
                "groups": [{"type": "Subscriptions", "ids": [f"/subscriptions/{owner.subscription}"]}],
            },
            400,
            "subscription id alone",
        ),
        (
            {"operationType": "Add", "groups": [{"type": "AADTenants", "ids": ["contoso.onmicrosoft.com"]}]},
            400,
            "not its domain name",
        ),
        ({"operationType": "Add"}, 400, "at least one"),
        ({"operationType": "Share"}, 400, "Add, Remove, Reset, EnableCommunity"),
        ({"operationType": "EnableCommunity"}, 409, "Community"),
    ]
    with owner.http(world.parties.server) as http:
        for body, status, mention in cases:
            answer = http.post(path, json=body)
            assert answer.status_code == status, (body, answer.text)
            assert mention in answer.json()["error"]["message"], answer.text
    assert owner.compute.galleries.get(group, gallery).as_dict() == before


def test_permissions_change_guarded_while_shared(world):
    owner, group = world.owner, world.group
    gallery = _gallery(owner.compute, group, {"permissions": "Private"})
    owner.compute.galleries.begin_update(
        group, gallery, {"properties": {"sharingProfile": {"permissions": "Groups"}}}
    ).result()
    _share(owner, group, gallery, "Add", "Subscriptions", [str(uuid.uuid4())])
    with pytest.raises(HttpResponseError) as refused:
        owner.compute.galleries.begin_update(
            group, gallery, {"properties": {"sharingProfile": {"permissions": "Private"}}}
        ).result()
    assert "reset" in refused.value.message
    assert owner.compute.galleries.get(group, gallery).sharing_profile.permissions == "Groups"


def test_community_gallery(world, server):
    owner, group = world.owner, world.group
    info = {
        "publisherUri": "https://example.com",
        "publisherContact": "images@example.com",
        "eula": "https://example.com/eula",
        "publicNamePrefix": "contoso",
    }
    gallery = _gallery(owner.compute, group, {"permissions": "Community", "communityGalleryInfo": info})
    data = _published(
        owner.compute,
        server,
        group,
        gallery,
        ("1.0.0", "1.1.0", "2.0.0"),
        **{"1.1.0": {"excludeFromLatest": True}, "2.0.0": {"endOfLifeDate": "2001-01-01T00:00:00Z"}},
    )
    _share(owner, group, gallery, "EnableCommunity")
    community = owner.compute.galleries.get(group, gallery).sharing_profile.community_gallery_info
    assert community.community_gallery_enabled is True
    (public,) = community.public_names
    assert public.startswith("contoso-") and len(public) > len("contoso-")

    base = f"/CommunityGalleries/{public}/Images/linux/Versions"
    # Principals of any tenant, each in its own subscription, nobody shared with by name.
    for party in (world.consumer, world.stranger):
        theirs = party.compute
        got = theirs.community_galleries.get("eastus", public)
        assert got.unique_id == f"/CommunityGalleries/{public}"
        assert got.properties.community_metadata.publisher_contact == "images@example.com"
        assert got.properties.community_metadata.public_names == [public]
        images = list(theirs.community_gallery_images.list("eastus", public))
        assert [(i.name, i.properties.identifier.offer, i.properties.eula) for i in images] == [
            ("linux", "off", "https://example.com/eula")
        ]
        assert theirs.community_gallery_images.get("eastus", public, "linux").name == "linux"
        listed = [v.name for v in theirs.community_gallery_image_versions.list("eastus", public, "linux")]
        assert listed == ["1.0.0"], "excluded-from-latest and end-of-life versions are left out of the listing"
        pinned = theirs.community_gallery_image_versions.get("eastus", public, "linux", "2.0.0")
        assert pinned.unique_id == f"/CommunityGalleries/{public}/Images/linux/Versions/2.0.0"
        _disk(theirs, "pinned", {"communityGalleryImageId": f"{base}/1.1.0"})
        made = _disk(theirs, "latest", {"communityGalleryImageId": f"{base}/latest"})
        assert made.id.lower().startswith(f"/subscriptions/{party.subscription}/")
        assert read_disk(theirs, server, "consumer", "latest") == data

    _share(owner, group, gallery, "Reset")
    for party in (world.consumer, world.stranger):
        with pytest.raises(ResourceNotFoundError):
            party.compute.community_galleries.get("eastus", public)
        with pytest.raises(HttpResponseError) as refused:
            _disk(party.compute, "gone", {"communityGalleryImageId": f"{base}/1.0.0"})
        assert refused.value.status_code == 404


def test_consumer_listing_pages_and_refuses_bad_queries(world, server):
    owner, group, consumer = world.owner, world.group, world.consumer
    names = [_gallery(owner.compute, group, {"permissions": "Groups"}) for _ in range(3)]
    for name in names:
        _share(owner, group, name, "Add", "Subscriptions", [consumer.subscription])
    base = f"/subscriptions/{consumer.subscription}/providers/Microsoft.Compute/locations/eastus/sharedGalleries"
    with consumer.http(server) as http:
        first = http.get(base, params={"api-version": "2023-07-03", "$top": "2"}).json()
        assert len(first["value"]) == 2 and "nextLink" in first
        rest = http.get(first["nextLink"]).json()
        assert len(rest["value"]) == 1 and "nextLink" not in rest
        assert len(list(consumer.compute.shared_galleries.list("eastus"))) == 3

        bad = http.get(base, params={"api-version": "2023-07-03", "sharedTo": "everyone"})
        assert bad.status_code == 400 and bad.json()["error"]["target"] == "sharedTo"
        nowhere = http.get(base.replace("eastus", "moon"), params={"api-version": "2023-07-03"})
        assert nowhere.status_code == 400 and nowhere.json()["error"]["target"] == "location"


def test_a_consumer_needs_a_role_in_the_subscription_it_reads_from(world, server):
    owner, group = world.owner, world.group
    gallery = _gallery(owner.compute, group, {"permissions": "Groups"})
    _published(owner.compute, server, group, gallery)
    unique = owner.compute.galleries.get(group, gallery).identifier.unique_name
    _share(owner, group, gallery, "Add", "Subscriptions", [world.consumer.subscription])
    # Of the consumer subscription's tenant, but with no role in it.
    roleless = world.parties.make(world.consumer.tenant, world.consumer.subscription, None)
    for read, action in (
        (lambda c: list(c.shared_galleries.list("eastus")), "sharedGalleries/read"),
        (lambda c: c.shared_galleries.get("eastus", unique), "sharedGalleries/read"),
        (lambda c: list(c.shared_gallery_images.list("eastus", unique)), "sharedGalleries/images/read"),
        (lambda c: c.shared_gallery_image_versions.get("eastus", unique, "linux", "1.0.0"), "versions/read"),
        (lambda c: c.community_galleries.get("eastus", "contoso-x"), "communityGalleries/read"),
    ):
        with pytest.raises(HttpResponseError) as refused:
            read(roleless.compute)
        assert refused.value.status_code == 403 and refused.value.error.code == "AuthorizationFailed"
        assert action in refused.value.message and f"/subscriptions/{world.consumer.subscription}'" in (
            refused.value.message
        )
    assert world.consumer.compute.shared_galleries.get("eastus", unique).name == unique
