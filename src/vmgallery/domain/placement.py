"""Where each replica of a version lives in its region: which zone (failure domain), and which slot of it.

Replica i goes to (zone, slot): Standard_ZRS -> (i mod Z, i div Z), spreading replicas over distinct zones;
Standard_LRS -> (0, i), every replica in one zone; Premium_LRS/PremiumV2_LRS -> (premium zone, i) where the region
has a premium zone, else as LRS. Slot 0 of a zone is its root, so a region's standard replica 0 is its primary store
(where uploads and captures land) and replicas of different versions share chunks.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    region: str
    index: int
    zone: int
    slot: int

    @property
    def label(self) -> str:
        return f"{self.region}/zone{self.zone + 1}" + (f"/replica{self.slot}" if self.slot else "")

    @property
    def is_primary(self) -> bool:
        """The region's primary store: zone 1's root."""
        return (self.zone, self.slot) == (0, 0)


def place(region: str, index: int, storage_type: str, zones: int, premium: bool = False) -> Placement:
    """`zones`: the region's standard zones; with `premium`, zone number `zones` is its premium zone."""
    if storage_type == "Standard_ZRS":
        return Placement(region, index, index % zones, index // zones)
    if premium and storage_type.startswith("Premium"):
        return Placement(region, index, zones, index)
    return Placement(region, index, 0, index)
