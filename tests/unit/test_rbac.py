"""Azure RBAC's rules without I/O: action patterns, built-in roles, scope ancestry, what a list may show, and the
sources a create names."""

from __future__ import annotations

import pytest

from vmgallery.domain import rbac
from vmgallery.domain.errors import InvalidParameter
from vmgallery.domain.ids import parse_resource_id
from vmgallery.domain.rbac import Access, Grant

SUB = "/subscriptions/11111111-1111-1111-1111-111111111111"
RG = SUB + "/resourceGroups/rg"
GALLERY = RG + "/providers/Microsoft.Compute/galleries/g1"
DEFINITION = GALLERY + "/images/linux"
VERSION = DEFINITION + "/versions/1.0.0"
OTHER_DEFINITION = GALLERY + "/images/windows"
VERSIONS_WRITE = "Microsoft.Compute/galleries/images/versions/write"


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("*", VERSIONS_WRITE, True),
        ("*/read", "Microsoft.Compute/galleries/read", True),
        ("*/read", VERSIONS_WRITE, False),
        ("Microsoft.Compute/galleries/*", VERSIONS_WRITE, True),
        ("Microsoft.Compute/galleries/*", "Microsoft.Compute/disks/write", False),
        ("Microsoft.Authorization/*/Write", "Microsoft.Authorization/roleAssignments/write", True),
        ("microsoft.compute/GALLERIES/images/versions/WRITE", VERSIONS_WRITE, True),
        ("Microsoft.Compute/*/beginGetAccess/action", "Microsoft.Compute/disks/beginGetAccess/action", True),
        ("Microsoft.Compute/galleries/read", "Microsoft.Compute/galleries/readx", False),
        ("Microsoft.Compute/galleries.read", "Microsoft.Compute/galleriesxread", False),  # a dot is a dot
    ],
)
def test_patterns(pattern, action, matches):
    assert rbac.pattern_matches(pattern, action) is matches


def test_built_in_roles_have_azures_guids_and_names():
    names = {r.guid: r.name for r in rbac.BUILT_IN_ROLES.values()}
    assert names["8e3af657-a8ff-443c-a75c-2fe8c4bcb635"] == "Owner"
    assert names["b24988ac-6180-42a0-ab88-20f7382dd24c"] == "Contributor"
    assert names["acdd72a7-3385-48ef-bd42-f606fba81ae7"] == "Reader"
    assert names["18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"] == "User Access Administrator"
    assert names["1ef6a3be-d0ac-425d-8c01-acb62866290b"] == "Compute Gallery Sharing Admin"
    assert names["85a2d0d9-2eba-4c9c-b355-11c2cc0788ab"] == "Compute Gallery Artifacts Publisher"
    assert names["cf7c76d2-98a3-4358-a134-615aa78bf44d"] == "Compute Gallery Image Reader"


@pytest.mark.parametrize(
    ("role", "action", "permitted"),
    [
        (rbac.OWNER, "Microsoft.Authorization/roleAssignments/write", True),
        (rbac.OWNER, rbac.SHARE, True),
        (rbac.CONTRIBUTOR, VERSIONS_WRITE, True),
        (rbac.CONTRIBUTOR, "Microsoft.Authorization/roleAssignments/write", False),
        (rbac.CONTRIBUTOR, "Microsoft.Authorization/roleAssignments/delete", False),
        (rbac.CONTRIBUTOR, "Microsoft.Authorization/roleAssignments/read", True),
        (rbac.CONTRIBUTOR, rbac.SHARE, False),
        (rbac.READER, "Microsoft.Compute/galleries/images/versions/read", True),
        (rbac.READER, VERSIONS_WRITE, False),
        (rbac.READER, "Microsoft.Compute/disks/beginGetAccess/action", False),
        (rbac.USER_ACCESS_ADMINISTRATOR, "Microsoft.Authorization/roleAssignments/write", True),
        (rbac.USER_ACCESS_ADMINISTRATOR, VERSIONS_WRITE, False),
        (rbac.COMPUTE_GALLERY_SHARING_ADMIN, rbac.SHARE, True),
        (rbac.COMPUTE_GALLERY_SHARING_ADMIN, "Microsoft.Compute/galleries/read", False),
        (rbac.COMPUTE_GALLERY_ARTIFACTS_PUBLISHER, VERSIONS_WRITE, True),
        (rbac.COMPUTE_GALLERY_ARTIFACTS_PUBLISHER, rbac.SHARE, False),
        (rbac.COMPUTE_GALLERY_ARTIFACTS_PUBLISHER, "Microsoft.Compute/snapshots/write", False),
        (rbac.COMPUTE_GALLERY_IMAGE_READER, "Microsoft.Compute/galleries/images/versions/read", True),
        (rbac.COMPUTE_GALLERY_IMAGE_READER, "Microsoft.Compute/galleries/read", False),
    ],
)
def test_built_in_permissions(role, action, permitted):
    assert role.permits(action) is permitted


def test_scope_path_runs_from_the_root_to_the_resource():
    assert rbac.scope_path(parse_resource_id(VERSION)) == (
        "/",
        SUB.lower(),
        RG.lower(),
        GALLERY.lower(),
        DEFINITION.lower(),
        VERSION.lower(),
    )


def test_parse_scope():
    assert rbac.parse_scope("/").path == ("/",)
    assert rbac.parse_scope(SUB + "/").path == ("/", SUB.lower())
    scope = rbac.parse_scope(GALLERY.replace("resourceGroups", "RESOURCEGROUPS"))
    assert scope.text == GALLERY and scope.path[-1] == GALLERY.lower()
    with pytest.raises(InvalidParameter):
        rbac.parse_scope("/subscriptions/s/bogus")


def test_a_role_on_a_gallery_reaches_its_definitions_and_versions_a_role_on_a_definition_not_the_gallery():
    on_gallery = Access([Grant(GALLERY.lower(), rbac.READER)])
    on_definition = Access([Grant(DEFINITION.lower(), rbac.READER)])
    read = "Microsoft.Compute/galleries/images/versions/read"
    for scope in (GALLERY, DEFINITION, VERSION, OTHER_DEFINITION):
        assert on_gallery.permits(read, scope.lower())
    assert on_definition.permits(read, DEFINITION.lower())
    assert on_definition.permits(read, VERSION.lower())
    assert not on_definition.permits("Microsoft.Compute/galleries/read", GALLERY.lower())
    assert not on_definition.permits(read, OTHER_DEFINITION.lower())
    assert not on_definition.permits(read, (GALLERY + "2").lower())  # a sibling with a longer name


def test_not_actions_of_one_role_do_not_take_away_what_another_grants():
    access = Access([Grant(SUB.lower(), rbac.CONTRIBUTOR), Grant(GALLERY.lower(), rbac.COMPUTE_GALLERY_SHARING_ADMIN)])
    assert access.permits(rbac.SHARE, GALLERY.lower())
    assert not access.permits(rbac.SHARE, (RG + "/providers/Microsoft.Compute/galleries/g2").lower())


def test_list_visibility():
    access = Access([Grant(DEFINITION.lower(), rbac.READER), Grant(SUB.lower(), rbac.COMPUTE_GALLERY_SHARING_ADMIN)])
    read = "Microsoft.Compute/galleries/images/read"
    assert access.visible_under(read, GALLERY.lower()) == {DEFINITION.lower()}
    assert access.visible_under(read, DEFINITION.lower()) is None
    assert access.visible_under(read, (RG + "2").lower()) == set()


def test_definition_ids():
    guid = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
    assert rbac.definition_guid(f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid.upper()}") == guid
    assert rbac.definition_guid(f"/providers/Microsoft.Authorization/roleDefinitions/{guid}") == guid
    assert rbac.definition_guid(guid) == guid
    assert rbac.definition_guid(f"{SUB}/providers/Microsoft.Compute/disks/{guid}") is None
    assert rbac.definition_guid("Reader") is None


DISK = RG + "/providers/Microsoft.Compute/disks/d1"
SNAPSHOT = RG + "/providers/Microsoft.Compute/snapshots/s1"
IMAGE = RG + "/providers/Microsoft.Compute/images/i1"
VM = RG + "/providers/Microsoft.Compute/virtualMachines/vm1"
ACCOUNT = RG + "/providers/Microsoft.Storage/storageAccounts/vhds"
BLOB = "https://vhds.blob.core.windows.net/c/a.vhd"


def _found(resource_type, body):
    return {(x.action, x.scope, x.target) for x in rbac.linked_sources(resource_type, body)}


def test_the_sources_of_a_version():
    body = {
        "properties": {
            "storageProfile": {
                "osDiskImage": {"source": {"id": SNAPSHOT}},
                "dataDiskImages": [
                    {"lun": 0, "source": {"id": DISK}},
                    {"lun": 1, "source": {"uri": BLOB, "storageAccountId": ACCOUNT}},
                ],
            }
        }
    }
    at = "properties.storageProfile"
    assert _found("Microsoft.Compute/galleries/images/versions", body) == {
        ("Microsoft.Compute/snapshots/write", SNAPSHOT, f"{at}.osDiskImage.source.id"),
        ("Microsoft.Compute/disks/write", DISK, f"{at}.dataDiskImages[0].source.id"),
        (rbac.LIST_KEYS, ACCOUNT, f"{at}.dataDiskImages[1].source.storageAccountId"),
    }
    image = {"properties": {"storageProfile": {"source": {"id": IMAGE}}}}
    assert _found("Microsoft.Compute/galleries/images/versions", image) == {
        ("Microsoft.Compute/images/read", IMAGE, f"{at}.source.id")
    }
    version = {"properties": {"storageProfile": {"source": {"id": VERSION}}}}
    assert _found("Microsoft.Compute/galleries/images/versions", version) == {
        ("Microsoft.Compute/galleries/images/versions/read", VERSION, f"{at}.source.id")
    }
    vm = {"properties": {"storageProfile": {"source": {"virtualMachineId": VM}}}}
    assert _found("Microsoft.Compute/galleries/images/versions", vm) == {
        (rbac.VM_WRITE, VM, f"{at}.source.virtualMachineId")
    }


def test_the_sources_of_disks_snapshots_and_images():
    copy = {"properties": {"creationData": {"createOption": "Copy", "sourceResourceId": DISK}}}
    assert _found("Microsoft.Compute/snapshots", copy) == {
        ("Microsoft.Compute/disks/write", DISK, "properties.creationData.sourceResourceId")
    }
    from_image = {"properties": {"creationData": {"galleryImageReference": {"id": DEFINITION + "/versions/latest"}}}}
    assert _found("Microsoft.Compute/disks", from_image) == {
        (
            "Microsoft.Compute/galleries/images/versions/read",
            DEFINITION + "/versions/latest",
            "properties.creationData.galleryImageReference.id",
        )
    }
    imported = {"properties": {"creationData": {"sourceUri": BLOB, "storageAccountId": ACCOUNT}}}
    assert _found("Microsoft.Compute/disks", imported) == {
        (rbac.LIST_KEYS, ACCOUNT, "properties.creationData.storageAccountId")
    }
    image = {
        "properties": {
            "sourceVirtualMachine": {"id": VM},
            "storageProfile": {"osDisk": {"blobUri": BLOB}, "dataDisks": [{"lun": 0, "snapshot": {"id": SNAPSHOT}}]},
        }
    }
    found = rbac.linked_sources("Microsoft.Compute/images", image)
    assert {(x.action, x.scope, x.blob_uri) for x in found} == {
        (rbac.VM_WRITE, VM, None),
        (rbac.LIST_KEYS, BLOB, BLOB),
        ("Microsoft.Compute/snapshots/write", SNAPSHOT, None),
    }
    for junk in (None, [], {"properties": 3}, {"properties": {"creationData": {"sourceResourceId": 7}}}):
        assert rbac.linked_sources("Microsoft.Compute/disks", junk) == []


TEMPLATES = "Microsoft.VirtualMachineImages/imageTemplates"
UAMI = RG + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/builder"


def test_what_an_image_template_reads_and_writes():
    body = {
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {UAMI: {}}},
        "properties": {
            "source": {"type": "ManagedImage", "imageId": IMAGE},
            "distribute": [
                {"type": "SharedImage", "galleryImageId": DEFINITION, "runOutputName": "g"},
                {"type": "ManagedImage", "imageId": IMAGE + "2", "location": "eastus", "runOutputName": "m"},
                {"type": "VHD", "uri": BLOB, "runOutputName": "v"},
                {"type": "VHD", "runOutputName": "served"},  # served by this server: nothing to write elsewhere
            ],
        },
    }
    assert _found(TEMPLATES, body) == {
        ("Microsoft.Compute/images/read", IMAGE, "properties.source.imageId"),
        ("Microsoft.Compute/galleries/images/versions/write", DEFINITION, "properties.distribute[0].galleryImageId"),
        ("Microsoft.Compute/images/write", IMAGE + "2", "properties.distribute[1].imageId"),
        (rbac.LIST_KEYS, BLOB, "properties.distribute[2].uri"),
    }
    assert rbac.named_identities(TEMPLATES, body) == [UAMI]
    version = {"properties": {"source": {"type": "SharedImageVersion", "imageVersionId": VERSION}}}
    assert _found(TEMPLATES, version) == {
        ("Microsoft.Compute/galleries/images/versions/read", VERSION, "properties.source.imageVersionId")
    }
    platform = {"properties": {"source": {"type": "PlatformImage", "publisher": "p"}, "distribute": "junk"}}
    assert _found(TEMPLATES, platform) == set()
    assert rbac.named_identities(TEMPLATES, {"identity": {"type": "None"}}) == []
    assert rbac.named_identities("Microsoft.Compute/disks", body) == []
    for junk in (None, [], {"properties": 3}, {"properties": {"source": {"type": "ManagedImage", "imageId": 7}}}):
        assert rbac.linked_sources(TEMPLATES, junk) == []
        assert rbac.named_identities(TEMPLATES, junk) == []


def test_an_identity_refusal_names_the_identity_its_object_id_the_action_scope_and_property():
    missing = rbac.Linked(rbac.VERSION_WRITE, DEFINITION, "properties.distribute[0].galleryImageId", "definition")
    error = rbac.identity_denied(UAMI, "0000-oid", [missing])
    assert (error.status, error.code, error.target) == (403, "LinkedAuthorizationFailed", missing.target)
    for part in (UAMI, "'0000-oid'", f"'{rbac.VERSION_WRITE}'", f"'{DEFINITION}'", missing.target):
        assert part in error.message
