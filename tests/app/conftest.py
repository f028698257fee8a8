"""Use cases on in-memory fakes of the ports: no server, no database, no files; each test runs in milliseconds."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from vmgallery.app.kinds import DISK, GALLERY, IMAGE_DEFINITION, IMAGE_VERSION, RESOURCE_GROUP, Kind
from vmgallery.app.operations import JobKinds, OperationWaiter, run_job
from vmgallery.app.replication import RegionThrottle
from vmgallery.app.resources import Outcome, Resources
from vmgallery.config import Settings
from vmgallery.domain.ids import ResourceId
from vmgallery.domain.vhd import vhd_footer
from vmgallery.wiring import job_kinds

from .fakes import FakeClock, FakeMetadata, FakeStorageAccounts, FakeSubscriptionTenants, fake_region_stores

REGIONS = ("eastus", "westus")
MIB = 1 << 20
GC_INTERVAL = 900.0
ACCOUNT = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/data"
    "/providers/Microsoft.Storage/storageAccounts/vhds"
)
BLOB = "https://vhds.blob.core.windows.net/images/linux.vhd"


def fixed_vhd(raw: bytes) -> bytes:
    return raw + vhd_footer(len(raw), unique_id=bytes(16), timestamp=0)


@dataclass
class World:
    """A gallery server's use cases over fakes, and what a test needs to drive them."""

    resources: Resources
    db: FakeMetadata
    clock: FakeClock
    kinds: JobKinds
    subscription: str

    def run_jobs(self) -> int:
        """Run every ready job to its end, as a worker would; how many ran."""
        ran = 0
        while True:
            with self.db.write() as tx:
                job = tx.claim_job("test-worker", self.clock(), 60.0)
            if job is None:
                return ran
            run_job(self.db, job, "test-worker", self.clock, self.kinds)
            ran += 1

    def put(self, rid: ResourceId, body: dict, kind: Kind) -> Outcome:
        return self.resources.put(rid, body, kind)

    # ids
    @property
    def group(self) -> ResourceId:
        return ResourceId(self.subscription, "rg", None, ())

    @property
    def gallery(self) -> ResourceId:
        return self.group.child("galleries", "g1", "Microsoft.Compute")

    @property
    def definition(self) -> ResourceId:
        return self.gallery.child("images", "linux")

    def version(self, name: str) -> ResourceId:
        return self.definition.child("versions", name)

    def disk(self, name: str) -> ResourceId:
        return self.group.child("disks", name, "Microsoft.Compute")

    # setup
    def gallery_with_definition(self) -> None:
        self.put(self.group, {"location": "eastus"}, RESOURCE_GROUP)
        self.put(self.gallery, {"location": "eastus"}, GALLERY)
        self.put(
            self.definition,
            {
                "location": "eastus",
                "properties": {
                    "osType": "Linux",
                    "osState": "Generalized",
                    "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
                },
            },
            IMAGE_DEFINITION,
        )
        self.run_jobs()

    def empty_disk(self, name: str, location: str = "eastus") -> ResourceId:
        rid = self.disk(name)
        body = {
            "location": location,
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1, "osType": "Linux"},
        }
        self.put(rid, body, DISK)
        self.run_jobs()
        return rid

    def version_from(self, name: str, source: ResourceId, *regions: str) -> Outcome:
        body = {
            "location": "eastus",
            "properties": {
                "storageProfile": {"osDiskImage": {"source": {"id": source.text}}},
                "publishingProfile": {"targetRegions": [{"name": r} for r in regions or ("eastus",)]},
            },
        }
        return self.put(self.version(name), body, IMAGE_VERSION)


@pytest.fixture
def world() -> World:
    clock = FakeClock()
    db = FakeMetadata()
    settings = Settings(data_dir=Path("/nonexistent"), regions=REGIONS, sync_wait_seconds=0)
    stores = fake_region_stores(REGIONS, settings.chunk_size, clock)
    accounts = FakeStorageAccounts({ACCOUNT: {BLOB: fixed_vhd(b"\x01" * MIB)}})
    resources = Resources(db, settings, clock, OperationWaiter(db), stores, accounts, FakeSubscriptionTenants())
    kinds = job_kinds(stores, accounts, RegionThrottle({}), 1 << 20, clock, settings.gc_grace_seconds, GC_INTERVAL)
    return World(resources, db, clock, kinds, str(uuid.uuid4()))
