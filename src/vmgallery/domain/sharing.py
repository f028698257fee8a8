"""Sharing a gallery: direct sharing with subscriptions and tenants, community galleries, and who may see what.

What this module decides, without I/O:
- what a `POST .../share` body (`SharingUpdate`) may say, with errors that say what a right target looks like;
- how an accepted update changes the gallery's `sharingProfile` (groups, permissions, community names);
- which gallery changes a PUT/PATCH may make while the gallery is shared (none that would strand a share);
- whether a caller may see a gallery through the consumer view (`sharedGalleries`, `communityGalleries`);
- the consumer view's bodies: what of the owner's resources a consumer sees (identifiers, OS facts, EULA), and
  nothing else (no owner id, resource group, tags, descriptions or replication details).

Sharing takes effect in the transaction that accepts it: there is no propagation delay to wait for, and a Remove or
Reset refuses the next consumer request at once.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import datetime

from .errors import InvalidParameter, InvalidRequestContent, MissingRequiredProperty, OperationNotAllowed
from .principals import Principal
from .validate import Body

SHARE_ACTION = "Microsoft.Compute/galleries/share/action"
OPERATION_TYPES = ("Add", "Remove", "Reset", "EnableCommunity")
SUBSCRIPTIONS, TENANTS = "Subscriptions", "AADTenants"
GROUP_TYPES = (SUBSCRIPTIONS, TENANTS)
SHARED_TO = ("subscription", "tenant")
COMMUNITY_INFO_REQUIRED = ("publisherUri", "publisherContact", "eula", "publicNamePrefix")
MAX_SHARE_IDS = 1000

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_GROUP_TYPE_HINTS = {
    "subscription": SUBSCRIPTIONS,
    "subscriptions": SUBSCRIPTIONS,
    "tenant": TENANTS,
    "tenants": TENANTS,
    "aadtenant": TENANTS,
    "aadtenants": TENANTS,
}


@dataclass(frozen=True)
class SharingUpdate:
    operation: str
    subscriptions: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()

    def body(self) -> Body:
        """The SharingUpdate as Azure echoes it: operationType, and groups when there are any."""
        body: Body = {"operationType": self.operation}
        groups = [
            {"type": t, "ids": list(ids)} for t, ids in ((SUBSCRIPTIONS, self.subscriptions), (TENANTS, self.tenants))
        ]
        groups = [g for g in groups if g["ids"]]
        if groups:
            body["groups"] = groups
        return body


def _guid(value: object, what: str, target: str) -> str:
    if isinstance(value, str) and _GUID.match(value.strip()):
        return value.strip().lower()
    shown = repr(value) if not isinstance(value, str) else f"'{value}'"
    hint = ""
    if isinstance(value, str):
        match = re.search(r"/subscriptions/([0-9a-fA-F-]{36})", value, re.IGNORECASE)
        if match:
            hint = f" Give the subscription id alone ('{match.group(1)}'), not a resource path."
        elif "@" in value or "." in value:
            hint = " Give the tenant's id (a GUID), not its domain name or a user's address."
    raise InvalidParameter(
        f"{shown} is not a {what} id: a share target is a GUID such as 00000000-0000-0000-0000-000000000000.{hint}",
        target,
    )


def parse_sharing_update(raw: object) -> SharingUpdate:
    """A `POST .../share` body, checked: its operation and, for Add and Remove, the subscriptions and tenants."""
    if not isinstance(raw, dict):
        raise InvalidRequestContent('The request body must be a JSON object: {"operationType": ..., "groups": [...]}.')
    op = raw.get("operationType")
    if op is None:
        raise MissingRequiredProperty(
            f"Required property 'operationType' is missing; it is one of {', '.join(OPERATION_TYPES)}.",
            "operationType",
        )
    canonical = {o.lower(): o for o in OPERATION_TYPES}.get(op.lower()) if isinstance(op, str) else None
    if canonical is None:
        raise InvalidParameter(
            f"operationType {op!r} is not one of {', '.join(OPERATION_TYPES)}.",
            "operationType",
        )
    groups = raw.get("groups")
    if groups is None:
        groups = []
    if not isinstance(groups, list):
        raise InvalidParameter('\'groups\' must be a list of {"type": ..., "ids": [...]} objects.', "groups")
    found: dict[str, list[str]] = {SUBSCRIPTIONS: [], TENANTS: []}
    for i, group in enumerate(groups):
        if not isinstance(group, dict):
            raise InvalidParameter(f"groups[{i}] must be an object with 'type' and 'ids'.", f"groups[{i}]")
        kind = group.get("type")
        fixed = _GROUP_TYPE_HINTS.get(kind.lower()) if isinstance(kind, str) else None
        if fixed is None or not isinstance(kind, str) or fixed.lower() != kind.lower():
            hint = f" Did you mean '{fixed}'?" if fixed else ""
            raise InvalidParameter(
                f"groups[{i}].type {kind!r} is not a share target type: use 'Subscriptions' (subscription ids) or "
                f"'AADTenants' (tenant ids).{hint}",
                f"groups[{i}].type",
            )
        ids = group.get("ids")
        if not isinstance(ids, list) or not ids:
            raise InvalidParameter(f"groups[{i}].ids must be a non-empty list of ids.", f"groups[{i}].ids")
        what = "subscription" if fixed == SUBSCRIPTIONS else "tenant"
        for j, value in enumerate(ids):
            gid = _guid(value, what, f"groups[{i}].ids[{j}]")
            if gid not in found[fixed]:
                found[fixed].append(gid)
    total = len(found[SUBSCRIPTIONS]) + len(found[TENANTS])
    if canonical in ("Add", "Remove") and total == 0:
        raise MissingRequiredProperty(
            f"{canonical} needs 'groups' with at least one subscription or tenant id.",
            "groups",
        )
    if canonical in ("Reset", "EnableCommunity") and total:
        raise InvalidParameter(f"{canonical} takes no 'groups'; send only the operationType.", "groups")
    if total > MAX_SHARE_IDS:
        raise InvalidParameter(f"A share names at most {MAX_SHARE_IDS} ids at once, not {total}.", "groups")
    return SharingUpdate(canonical, tuple(found[SUBSCRIPTIONS]), tuple(found[TENANTS]))


# -- the gallery's sharing profile ------------------------------------------------------------------------------
def profile(gallery: Body) -> Body:
    return ((gallery.get("properties") or {}).get("sharingProfile")) or {}


def permissions(gallery: Body) -> str:
    return str(profile(gallery).get("permissions") or "Private")


def group_ids(gallery: Body) -> tuple[frozenset[str], frozenset[str]]:
    """(subscription ids, tenant ids) the gallery is shared with, lower-cased."""
    subs: set[str] = set()
    tenants: set[str] = set()
    for group in profile(gallery).get("groups") or []:
        into = subs if group.get("type") == SUBSCRIPTIONS else tenants
        into.update(str(i).lower() for i in group.get("ids") or [])
    return frozenset(subs), frozenset(tenants)


def community_enabled(gallery: Body) -> bool:
    info = profile(gallery).get("communityGalleryInfo") or {}
    return permissions(gallery) == "Community" and info.get("communityGalleryEnabled") is True


def public_names(gallery: Body) -> list[str]:
    info = profile(gallery).get("communityGalleryInfo") or {}
    return [str(n) for n in info.get("publicNames") or []] if community_enabled(gallery) else []


def share_targets(gallery: Body) -> set[tuple[str, str]]:
    """Who may find the gallery through a consumer view, as (kind, lower-cased id) pairs: ("subscription", id) and
    ("tenant", id) while its permissions are Groups, ("community", public name) while it is an enabled community
    gallery. The store keeps these in an index so a consumer's lookup does not read every gallery."""
    targets: set[tuple[str, str]] = set()
    if permissions(gallery) == "Groups":
        subs, tenants = group_ids(gallery)
        targets |= {("subscription", s) for s in subs} | {("tenant", t) for t in tenants}
    targets |= {("community", n.lower()) for n in public_names(gallery)}
    return targets


def apply_sharing_update(gallery: Body, update: SharingUpdate, public_suffix: str) -> Body:
    """The gallery's new `sharingProfile` after `update` (the gallery is not changed); refused with a plain reason
    when the gallery is not set up for it. `public_suffix` makes a community gallery's public name unique."""
    name = gallery.get("name", "")
    perm = permissions(gallery)
    sharing = copy.deepcopy(profile(gallery))
    sharing["permissions"] = perm
    if update.operation in ("Add", "Remove"):
        if perm != "Groups":
            raise OperationNotAllowed(
                f"Gallery '{name}' has sharingProfile.permissions '{perm}'; sharing with subscriptions or tenants "
                "needs 'Groups'. Set it first (vmgallery sig update -g GROUP -r GALLERY --permissions Groups), "
                "then share.",
                "properties.sharingProfile.permissions",
            )
        order = {SUBSCRIPTIONS: _ordered(gallery, SUBSCRIPTIONS), TENANTS: _ordered(gallery, TENANTS)}
        for kind, ids in ((SUBSCRIPTIONS, update.subscriptions), (TENANTS, update.tenants)):
            if update.operation == "Add":
                order[kind] += [i for i in ids if i not in order[kind]]
            else:
                order[kind] = [i for i in order[kind] if i not in ids]
        sharing["groups"] = [{"type": k, "ids": v} for k, v in order.items() if v]
        return sharing
    if update.operation == "Reset":
        return {"permissions": "Private", "groups": []}
    # EnableCommunity
    info = sharing.get("communityGalleryInfo") or {}
    if perm != "Community":
        raise OperationNotAllowed(
            f"Gallery '{name}' has sharingProfile.permissions '{perm}'; EnableCommunity needs 'Community' and "
            "communityGalleryInfo (publisherUri, publisherContact, eula, publicNamePrefix). Set them first "
            "(vmgallery sig update --permissions Community --publisher-uri ... --publisher-email ... --eula ... "
            "--public-name-prefix ...).",
            "properties.sharingProfile.permissions",
        )
    missing = [k for k in COMMUNITY_INFO_REQUIRED if not info.get(k)]
    if missing:
        raise MissingRequiredProperty(
            f"EnableCommunity needs properties.sharingProfile.communityGalleryInfo.{missing[0]} on gallery '{name}' "
            f"(missing: {', '.join(missing)}).",
            f"properties.sharingProfile.communityGalleryInfo.{missing[0]}",
        )
    if info.get("communityGalleryEnabled") is True and info.get("publicNames"):
        return sharing  # already enabled: its public name stays what consumers know it by
    info = {**info, "communityGalleryEnabled": True, "publicNames": [f"{info['publicNamePrefix']}-{public_suffix}"]}
    sharing["communityGalleryInfo"] = info
    return sharing


def _ordered(gallery: Body, kind: str) -> list[str]:
    ids: list[str] = []
    for group in profile(gallery).get("groups") or []:
        if group.get("type") == kind:
            ids += [str(i).lower() for i in group.get("ids") or [] if str(i).lower() not in ids]
    return ids


def check_profile_change(stored: Body, new_spec: Body) -> None:
    """A PUT or PATCH may change permissions and communityGalleryInfo, but not out from under a live share: a
    gallery shared with groups stays 'Groups', and an enabled community gallery keeps its settings, until a Reset."""
    name = stored.get("name", "")
    new = (new_spec.get("properties") or {}).get("sharingProfile") or {}
    new_perm = new.get("permissions") or "Private"
    subs, tenants = group_ids(stored)
    if (subs or tenants) and new_perm != "Groups":
        raise OperationNotAllowed(
            f"Gallery '{name}' is shared with {len(subs)} subscription(s) and {len(tenants)} tenant(s); its "
            f"permissions cannot become '{new_perm}' until the sharing is reset (vmgallery sig share reset).",
            "properties.sharingProfile.permissions",
        )
    if community_enabled(stored):
        old_info = {
            k: v
            for k, v in (profile(stored).get("communityGalleryInfo") or {}).items()
            if k not in ("communityGalleryEnabled", "publicNames")
        }
        if new_perm != "Community" or (new.get("communityGalleryInfo") or {}) != old_info:
            raise OperationNotAllowed(
                f"Gallery '{name}' is an enabled community gallery; its permissions and communityGalleryInfo cannot "
                "change until the sharing is reset (vmgallery sig share reset).",
                "properties.sharingProfile",
            )


def sharing_status(location: str) -> Body:
    """Sharing applies in the accepting transaction, so its status is final at once."""
    return {"aggregatedState": "Succeeded", "summary": [{"region": location, "state": "Succeeded"}]}


# -- who sees a shared gallery ----------------------------------------------------------------------------------
def may_use_shared(
    caller: Principal,
    subscription: str,
    subscription_tenant: str | None,
    groups: tuple[frozenset[str], frozenset[str]],
    shared_to: str | None = None,
) -> bool:
    """Whether `caller`, acting in the consumer `subscription` (which belongs to `subscription_tenant`, None when
    unknown), may see a gallery shared with `groups` (subscription ids, tenant ids; lower-case).

    The caller must act inside the subscription's tenant: a principal of that tenant (or the same principal there
    through an auxiliary token), or the admin, who administers every tenant. A subscription of no known tenant is
    open only to the admin. The gallery must then be shared with the subscription itself, or with its tenant.
    `shared_to` narrows a listing as Azure's `sharedTo` does: "subscription" (the default of a list) counts only
    subscription shares, "tenant" only tenant shares; None (a read of one gallery) counts either.
    """
    tenant = subscription_tenant.lower() if subscription_tenant else None
    if not caller.is_admin:
        tenants_of_caller = {caller.tenant_id.lower(), *(a.tenant_id.lower() for a in caller.auxiliary)}
        if tenant is None or tenant not in tenants_of_caller:
            return False
    subs, tenants = groups
    by_subscription = subscription.lower() in subs
    by_tenant = tenant is not None and tenant in tenants
    if shared_to == "subscription":
        return by_subscription
    if shared_to == "tenant":
        return by_tenant
    return by_subscription or by_tenant


def may_use_community(caller: Principal | None, gallery: Body) -> bool:
    """Any authenticated principal of any tenant sees an enabled community gallery."""
    return caller is not None and community_enabled(gallery)


def check_shared_to(value: str | None) -> str | None:
    if value is None:
        return None
    canonical = {s.lower(): s for s in SHARED_TO}.get(value.lower())
    if canonical is None:
        raise InvalidParameter(f"sharedTo {value!r} is not one of {', '.join(SHARED_TO)}.", "sharedTo")
    return canonical


# -- what a consumer sees -----------------------------------------------------------------------------------------
IMAGE_PUBLIC = (
    "osType",
    "osState",
    "endOfLifeDate",
    "identifier",
    "recommended",
    "disallowed",
    "hyperVGeneration",
    "features",
    "purchasePlan",
    "architecture",
    "privacyStatementUri",
    "eula",
)


@dataclass(frozen=True)
class View:
    """Which consumer view a body is for: `SharedGalleries/{uniqueName}` or `CommunityGalleries/{publicName}`."""

    community: bool
    gallery_name: str  # the unique name or the public name
    location: str

    @property
    def root(self) -> str:
        return f"/{'CommunityGalleries' if self.community else 'SharedGalleries'}/{self.gallery_name}"

    def _body(self, name: str, unique_id: str, type_suffix: str, props: Body) -> Body:
        body: Body = {"name": name, "location": self.location}
        if self.community:
            body["type"] = f"Microsoft.Compute/locations/{type_suffix}"
        body["identifier"] = {"uniqueId": unique_id}
        body["properties"] = props
        return body

    def gallery(self, owner: Body) -> Body:
        props: Body = {"artifactTags": {}}
        if self.community:
            info = profile(owner).get("communityGalleryInfo") or {}
            props["communityMetadata"] = {
                "publisherUri": info.get("publisherUri"),
                "publisherContact": info.get("publisherContact"),
                "eula": info.get("eula"),
                "publicNames": list(info.get("publicNames") or []),
            }
        return self._body(self.gallery_name, self.root, "communityGallery", props)

    def image(self, owner: Body) -> Body:
        src = owner.get("properties") or {}
        props: Body = {k: copy.deepcopy(src[k]) for k in IMAGE_PUBLIC if k in src}
        props["artifactTags"] = {}
        name = owner["name"]
        return self._body(name, f"{self.root}/Images/{name}", "communityGalleryImage", props)

    def version(self, image_name: str, owner: Body) -> Body:
        src = owner.get("properties") or {}
        publishing = src.get("publishingProfile") or {}
        storage = src.get("storageProfile") or {}
        props: Body = {
            "publishedDate": publishing.get("publishedDate"),
            "excludeFromLatest": bool(publishing.get("excludeFromLatest", False)),
            "storageProfile": {},
            "artifactTags": {},
        }
        if publishing.get("endOfLifeDate"):
            props["endOfLifeDate"] = publishing["endOfLifeDate"]
        if storage.get("osDiskImage"):
            props["storageProfile"]["osDiskImage"] = _disk_image(storage["osDiskImage"])
        if storage.get("dataDiskImages"):
            props["storageProfile"]["dataDiskImages"] = [
                {"lun": d.get("lun"), **_disk_image(d)} for d in storage["dataDiskImages"]
            ]
        name = owner["name"]
        return self._body(
            name, f"{self.root}/Images/{image_name}/Versions/{name}", "communityGalleryImageVersion", props
        )


def _disk_image(image: Body) -> Body:
    out: Body = {"hostCaching": image.get("hostCaching", "None")}
    if image.get("sizeInGB") is not None:
        out["diskSizeGB"] = image["sizeInGB"]
    return out


def listed_in_community(version: Body, now: datetime) -> bool:
    """A community listing leaves out versions excluded from latest and versions past their end of life; a
    version named by its id still resolves."""
    publishing = (version.get("properties") or {}).get("publishingProfile") or {}
    if publishing.get("excludeFromLatest"):
        return False
    eol = publishing.get("endOfLifeDate")
    if isinstance(eol, str):
        try:
            when = datetime.fromisoformat(eol.replace("Z", "+00:00"))
        except ValueError:
            return True
        if when.tzinfo is None:
            return True
        return when > now
    return True


# -- consumer ids: /SharedGalleries/{u}/Images/{i}/Versions/{v}, and the community form ---------------------------
@dataclass(frozen=True)
class ConsumerImageId:
    community: bool
    gallery: str
    image: str
    version: str


_CONSUMER_ID = re.compile(
    r"^/(?P<root>SharedGalleries|CommunityGalleries)/(?P<g>[^/]+)/Images/(?P<i>[^/]+)/Versions/(?P<v>[^/]+)/?$",
    re.IGNORECASE,
)


def parse_consumer_image_id(value: str, community: bool, target: str) -> ConsumerImageId:
    """A `sharedGalleryImageId` or `communityGalleryImageId` naming a version (or `latest`)."""
    match = _CONSUMER_ID.match(value.strip())
    root = "CommunityGalleries" if community else "SharedGalleries"
    if match is None or (match.group("root").lower() == "communitygalleries") != community:
        raise InvalidParameter(
            f"'{value}' is not a {'community' if community else 'shared'} gallery image version id; it looks like "
            f"/{root}/{{{'publicName' if community else 'uniqueName'}}}/Images/{{image}}/Versions/{{version or "
            "latest}} (the identifier.uniqueId the consumer view shows).",
            target,
        )
    return ConsumerImageId(community, match.group("g"), match.group("i"), match.group("v"))
