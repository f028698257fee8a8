"""Azure's own request/response examples, replayed against a real server: vmgallery answers with every key path the
example's response has (and a status code the example lists), apart from the few Azure-internal fields below.

Each example under spec/specification/compute/**/examples/ is found through the swagger operation that cites it
(`x-ms-examples`), which gives its method, path and body parameter. The request is adapted to vmgallery: the test's
subscription and resource group replace the example's, `{placeholders}` left in ids become names, and what the
request names (the gallery and definition above it, the managed images, snapshots, disks and versions it reads)
is created first. Examples that need what vmgallery does not have are listed as not applicable, with the reason,
and counted. The test prints how many examples were compared and which key paths differ.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import SUMMARY_LINES

COMPUTE = Path(__file__).parents[2] / "spec" / "specification" / "compute" / "resource-manager" / "Microsoft.Compute"
SWAGGERS = (
    "GalleryRP/stable/2023-07-03/gallery.json",
    "GalleryRP/stable/2025-03-03/GalleryRP.json",
    "ComputeRP/stable/2024-03-01/image.json",
    "DiskRP/stable/2023-10-02/disk.json",
    "DiskRP/stable/2023-10-02/snapshot.json",
)
KINDS = ("Galleries_", "GalleryImages_", "GalleryImageVersions_", "Images_", "Disks_", "Snapshots_")

# Key paths Azure answers that describe Azure's own machinery, not the resource a client asked for.
AZURE_INTERNAL = (
    # Azure's content-policy reports; nothing reports a violation to vmgallery.
    "properties.safetyProfile.reportedForPolicyViolation",
    "properties.safetyProfile.policyViolations[]",
    # A list answers nextLink only when there is a next page; the examples' lists show one, the replay's are short.
    "nextLink",
)


def internal(path: str) -> bool:
    return any(path == p or path.startswith(p + ".") or path.startswith(p + "[]") for p in AZURE_INTERNAL)


VHD = "needs a storage account mapped to a blob endpoint (VHD sources: tests/api/test_imports.py, on Azurite)"
# Examples vmgallery cannot replay, by a pattern (re.search) of the example's file name, with the reason.
NOT_APPLICABLE = {
    "VmAsSource": "needs a virtual machine (vmgallery has no VMs)",
    "FromAVM": "needs a virtual machine (vmgallery has no VMs)",
    "CommunityImageVersionAsSource": "a version made from a community image version is not implemented",
    r"^CommunityGallery_Get\.json$": "its publicNames come from POST .../share EnableCommunity, which a replay of one "
    "request does not make (tests/api/test_sharing.py reads them back)",
    "WithSelectPermissions": "its sharing groups come from POST .../share, which a replay of one request does not make "
    "(tests/api/test_sharing.py reads them back)",
    r"^Image_Get\.json$": "its image has three sources per disk (blob, snapshot, managed disk); no create accepts that",
    "WithVHD": VHD,
    "VhdAsSource": VHD,
    "FromABlob": VHD,
    "DiskEncryptionSet": "disk encryption sets (customer-managed keys) are not implemented",
}

COMPUTE_ID = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/"
    r"(?P<path>(?:images|snapshots|disks)/[^/\"]+|galleries/[^/]+/images/[^/]+/versions/[^/\"]+)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Example:
    file: Path
    method: str
    template: str
    body_param: str | None
    operation: str
    api_version: str  # the swagger's, for examples that leave theirs out

    @property
    def name(self) -> str:
        return f"{self.file.parent.parent.parent.name}/{self.file.name}"


def examples() -> tuple[list[Example], dict[Path, str]]:
    """The examples of the resource kinds vmgallery serves, and every other example file with why it is not."""
    found: dict[Path, Example] = {}
    for swagger in SWAGGERS:
        spec = json.loads((COMPUTE / swagger).read_text())
        for template, ops in spec["paths"].items():
            for method, op in ops.items():
                if not isinstance(op, dict) or not op.get("operationId", "").startswith(KINDS):
                    continue
                body = next((p["name"] for p in op.get("parameters", []) if p.get("in") == "body"), None)
                for ref in (op.get("x-ms-examples") or {}).values():
                    file = ((COMPUTE / swagger).parent / ref["$ref"]).resolve()
                    if file.exists():
                        found[file] = Example(
                            file, method.upper(), template, body, op["operationId"], spec["info"]["version"]
                        )
    other = {
        f.resolve(): "not an operation on disks, snapshots, images, galleries, definitions or versions"
        for f in COMPUTE.glob("**/examples/**/*.json")
        if f.resolve() not in found
    }
    return sorted(found.values(), key=lambda e: str(e.file)), other


def key_paths(value, prefix: str = "") -> set[str]:
    """Every key path of a JSON value; list items share one path (`[]`), an empty object is a path of its own."""
    if isinstance(value, dict):
        if not value and prefix:
            return {prefix}
        return set().union(*(key_paths(v, f"{prefix}.{k}" if prefix else k) for k, v in value.items()))
    if isinstance(value, list):
        return set().union({f"{prefix}[]"}, *(key_paths(v, f"{prefix}[]") for v in value))
    return {prefix} if prefix else set()


class Replay:
    """Replays one example in a fresh resource group."""

    def __init__(self, http: httpx.Client, subscription: str):
        self.http = http
        self.subscription = subscription
        self.group = f"rg-{uuid.uuid4().hex[:8]}"
        self.made: set[str] = set()
        self.publisher = 0
        self.os_type = "Windows"
        self.wait(self.http.put(self.url(f"/resourceGroups/{self.group}"), json={"location": "westus"}))

    def url(self, path: str, api: str = "2024-03-01", kind: str = "") -> str:
        return f"/subscriptions/{self.subscription}{path}?api-version={api}"

    def rg(self, path: str) -> str:
        return f"/resourceGroups/{self.group}/providers/Microsoft.Compute/{path}"

    def adapt(self, value):
        """The example's value with this test's subscription and group, and names for the placeholders left."""
        if isinstance(value, dict):
            return {k: self.adapt(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.adapt(v) for v in value]
        if not isinstance(value, str):
            return value
        if value.lower().startswith("subscriptions/"):  # a few examples drop the id's leading slash
            value = "/" + value
        value = re.sub(r"(?<=/subscriptions/)[^/]+", self.subscription, value, flags=re.IGNORECASE)
        value = re.sub(r"(?<=/resourceGroups/)[^/]+", self.group, value, flags=re.IGNORECASE)
        value = re.sub(r"(?<=/versions/)\{[^}]*\}", "1.0.0", value)
        return re.sub(r"\{([^}]*)\}", lambda m: re.sub(r"\W", "", m.group(1)) or "x", value)

    def wait(self, resp: httpx.Response) -> httpx.Response:
        assert resp.status_code in (200, 201, 202, 204), resp.text
        status_url = resp.headers.get("Azure-AsyncOperation")
        deadline = time.monotonic() + 60
        while status_url:
            status = self.http.get(status_url).json()
            if status["status"] != "InProgress":
                assert status["status"] == "Succeeded", status
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
        return resp

    def put(self, path: str, body: dict, api: str) -> None:
        if path.lower() not in self.made:
            self.made.add(path.lower())
            self.wait(self.http.put(self.url(self.rg(path), api), json=body))

    # -- prerequisites -----------------------------------------------------------------------------------------
    def gallery(self, name: str) -> None:
        self.put(f"galleries/{name}", {"location": "westus"}, "2023-07-03")

    def definition(self, gallery: str, name: str) -> None:
        self.gallery(gallery)
        self.publisher += 1
        body = {
            "location": "westus",
            "properties": {
                "osType": self.os_type,
                "osState": "Generalized",
                "hyperVGeneration": "V1",
                "identifier": {"publisher": f"pub{self.publisher}", "offer": "offer", "sku": "sku"},
            },
        }
        self.put(f"galleries/{gallery}/images/{name}", body, "2023-07-03")

    def disk(self, kind: str, name: str) -> None:
        body = {
            "location": "westus",
            "properties": {"osType": self.os_type, "diskSizeGB": 1, "creationData": {"createOption": "Empty"}},
        }
        self.put(f"{kind}/{name}", body, "2023-10-02")

    def image(self, name: str) -> None:
        self.disk("snapshots", f"{name}-os")
        self.disk("snapshots", f"{name}-data")
        snap = f"/subscriptions/{self.subscription}" + self.rg("snapshots/")
        profile = {
            "osDisk": {"osType": self.os_type, "osState": "Generalized", "snapshot": {"id": f"{snap}{name}-os"}},
            "dataDisks": [{"lun": 1, "snapshot": {"id": f"{snap}{name}-data"}}],
        }
        self.put(f"images/{name}", {"location": "westus", "properties": {"storageProfile": profile}}, "2024-03-01")

    def version(self, gallery: str, definition: str, name: str) -> None:
        self.definition(gallery, definition)
        self.image(f"src-{gallery}-{definition}")
        source = f"/subscriptions/{self.subscription}" + self.rg(f"images/src-{gallery}-{definition}")
        body = {"location": "westus", "properties": {"storageProfile": {"source": {"id": source}}}}
        self.put(f"galleries/{gallery}/images/{definition}/versions/{name}", body, "2023-07-03")

    def sources(self, body) -> None:
        """Create every disk, snapshot, managed image or version the request body names."""
        if isinstance(body, dict):
            for v in body.values():
                self.sources(v)
        elif isinstance(body, list):
            for v in body:
                self.sources(v)
        elif isinstance(body, str) and (m := COMPUTE_ID.search(body)):
            parts = m.group("path").split("/")
            if parts[0] == "galleries":
                self.version(parts[1], parts[3], parts[5])
            elif parts[0] == "images":
                self.image(parts[1])
            else:
                self.disk(parts[0], parts[1])

    def parents(self, params: dict, template: str) -> None:
        """The gallery or definition the operation's resource lives in."""
        if "/versions" in template:
            self.definition(params["galleryName"], params["galleryImageName"])
        elif "/images" in template and "{galleryName}" in template:
            self.gallery(params["galleryName"])

    def existing(self, example: Example, params: dict, data: dict) -> None:
        """What a read, update or delete finds: the resource (or for a list, its items) as the example's response
        shows it, PUT back as az does after a GET; a delete, which shows nothing, finds a plain one."""
        api = params.get("api-version", example.api_version)
        rel = re.sub(r"\{(\w+)\}", lambda m: str(params[m.group(1)]), example.template.split("/Microsoft.Compute/")[1])
        shown = self.adapt((data["responses"].get("200") or {}).get("body"))
        if example.template.endswith("}"):
            states = [(rel, shown)]
        else:
            states = [(f"{rel}/{item['name']}", item) for item in shown["value"]]
        for path, state in states:
            if state:
                self.sources(state)
                self.put(path, state, api)
                continue
            parts = path.split("/")
            if parts[0] == "images":
                self.image(parts[1])
            elif len(parts) == 6:
                self.version(parts[1], parts[3], parts[5])
            elif len(parts) == 4:
                self.definition(parts[1], parts[3])
            else:
                self.gallery(parts[1])

    # -- the example itself ------------------------------------------------------------------------------------
    def run(self, example: Example) -> tuple[int, dict | None, dict]:
        text = example.file.read_text()
        data = json.loads(text)
        self.os_type = "Linux" if re.search(r'"osType":\s*"Linux"', text) else "Windows"
        params = {k: v for k, v in data["parameters"].items()}
        params.update(subscriptionId=self.subscription, resourceGroupName=self.group)
        body = self.adapt(params.get(example.body_param)) if example.body_param else None
        self.parents(params, example.template)
        if example.method != "PUT":
            self.existing(example, params, data)
        if body is not None:
            self.sources(body)
        path = re.sub(r"\{(\w+)\}", lambda m: str(params[m.group(1)]), example.template)
        query = {"api-version": params.get("api-version", example.api_version)}
        query.update({k: v for k, v in params.items() if k.startswith("$")})
        resp = self.http.request(example.method, path, params=query, json=body)
        if resp.status_code >= 400:
            return resp.status_code, resp.json(), data["responses"]
        answer = resp.json() if resp.content else None
        if resp.status_code == 202 and example.method != "DELETE":
            self.wait(resp)
            answer = self.http.get(path, params=query).json()
        return resp.status_code, answer, data["responses"]


def test_examples_conformance(server, http, subscription, backend):
    applicable, other = examples()
    skipped: dict[str, str] = {str(f.relative_to(COMPUTE)): why for f, why in other.items()}
    compared, differences = 0, []
    for example in applicable:
        reason = next((why for word, why in NOT_APPLICABLE.items() if re.search(word, example.file.name)), None)
        if reason:
            skipped[str(example.file.relative_to(COMPUTE))] = reason
            continue
        status, answer, responses = Replay(http, subscription).run(example)
        compared += 1
        if status >= 400:
            differences.append(f"{example.name}: refused with {status}: {answer}")
            continue
        if str(status) not in responses:
            differences.append(f"{example.name}: status {status}, the example lists {', '.join(responses)}")
            continue
        expected = responses[str(status)].get("body")
        if expected is None:
            continue
        missing = {p for p in key_paths(expected) - key_paths(answer) if not internal(p.removeprefix("value[]."))}
        differences += [f"{example.name}: missing {p}" for p in sorted(missing)]

    lines = [
        f"examples conformance[{backend}]: {compared} examples compared, "
        f"{len(differences)} key paths or status codes differ, {len(skipped)} not applicable",
        *(f"  differs: {d}" for d in differences),
        *(f"  not applicable: {name}: {why}" for name, why in sorted(skipped.items())),
    ]
    SUMMARY_LINES.extend(line for line in lines if not line.startswith("  not applicable"))
    assert compared >= 30
    assert not differences, "\n".join(lines)
