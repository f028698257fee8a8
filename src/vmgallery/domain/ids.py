"""ARM resource ids: parsing, canonical spelling, and the lower-cased key the store looks them up by.

ARM matches paths case-insensitively but answers with the casing a resource was created with, so an id has two
forms: the one we show (`ResourceId.text`) and the one we compare (`ResourceId.key`).
"""

from __future__ import annotations

from dataclasses import dataclass

# Fixed path words in their canonical spelling, looked up by their lower-cased form.
KEYWORDS = {
    w.lower(): w
    for w in (
        "subscriptions",
        "resourceGroups",
        "providers",
        "Microsoft.Compute",
        "Microsoft.Resources",
        "galleries",
        "images",
        "versions",
        "locations",
        "capsOperations",
        "operationResults",
        "disks",
        "snapshots",
        "sharedGalleries",
        "communityGalleries",
        "share",
        "Microsoft.Authorization",
        "roleAssignments",
        "roleDefinitions",
        "Microsoft.VirtualMachineImages",
        "imageTemplates",
        "runOutputs",
        "Microsoft.ManagedIdentity",
        "userAssignedIdentities",
    )
}


def canonical_path(path: str) -> str:
    """Spell the fixed words of an ARM path canonically, leaving names as given.

    Names sit at odd positions after `subscriptions`, except that the provider namespace after `providers` is a single
    word, after which type/name pairs alternate again. Only words in the key positions are rewritten, so a gallery
    called "images" stays a name.
    """
    parts = path.split("/")
    key_position = True
    after_providers = False
    for i in range(1, len(parts)):
        word = parts[i]
        if after_providers:
            parts[i] = KEYWORDS.get(word.lower(), word)
            after_providers = False
            key_position = True
            continue
        if key_position:
            parts[i] = KEYWORDS.get(word.lower(), word)
            if parts[i] == "providers":
                after_providers = True
                continue
        key_position = not key_position
    return "/".join(parts)


@dataclass(frozen=True)
class ResourceId:
    """An ARM id split into its scope (subscription, resource group) and its chain of (type, name) pairs."""

    subscription: str
    resource_group: str | None
    namespace: str | None
    chain: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        return self.chain[-1][1] if self.chain else (self.resource_group or self.subscription)

    @property
    def type(self) -> str:
        if not self.chain:
            return "Microsoft.Resources/resourceGroups"
        return "/".join([self.namespace or ""] + [t for t, _ in self.chain])

    @property
    def text(self) -> str:
        out = f"/subscriptions/{self.subscription}"
        if self.resource_group is not None:
            out += f"/resourceGroups/{self.resource_group}"
        if self.chain:
            out += f"/providers/{self.namespace}"
            for t, n in self.chain:
                out += f"/{t}/{n}"
        return out

    @property
    def key(self) -> str:
        return self.text.lower()

    @property
    def parent(self) -> ResourceId | None:
        if len(self.chain) > 1:
            return ResourceId(self.subscription, self.resource_group, self.namespace, self.chain[:-1])
        if self.chain:
            return ResourceId(self.subscription, self.resource_group, None, ())
        return None

    def child(self, type_: str, name: str, namespace: str | None = None) -> ResourceId:
        return ResourceId(
            self.subscription, self.resource_group, self.namespace or namespace, self.chain + ((type_, name),)
        )

    @property
    def group_key(self) -> str:
        return f"/subscriptions/{self.subscription}/resourcegroups/{self.resource_group}".lower()


def parse_resource_id(text: str) -> ResourceId | None:
    """Parse `/subscriptions/s[/resourceGroups/g[/providers/ns/type/name...]]`; None if it is not such an id."""
    parts = canonical_path(text.rstrip("/")).split("/")
    if len(parts) < 3 or parts[0] != "" or parts[1] != "subscriptions" or not parts[2]:
        return None
    sub = parts[2]
    if len(parts) == 3:
        return None
    if len(parts) < 5 or parts[3] != "resourceGroups" or not parts[4]:
        return None
    rg = parts[4]
    if len(parts) == 5:
        return ResourceId(sub, rg, None, ())
    if len(parts) < 9 or parts[5] != "providers" or (len(parts) - 7) % 2:
        return None
    chain = tuple((parts[i], parts[i + 1]) for i in range(7, len(parts), 2))
    if any(not t or not n for t, n in chain):
        return None
    return ResourceId(sub, rg, parts[6], chain)


def normalize_location(value: str) -> str:
    """Azure's folding of region names: "East US" and "eastus" are the same region."""
    return "".join(value.split()).lower()
