"""ARM ids: canonical spelling of the fixed words, names kept as given, parsing and the lower-cased key."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vmgallery.domain.ids import KEYWORDS, ResourceId, canonical_path, normalize_location, parse_resource_id

SUB = "00000000-0000-0000-0000-000000000001"
# Names include the fixed words themselves: a gallery called "images" must stay a name.
names = st.text(alphabet="abcXYZ019-._", min_size=1, max_size=12) | st.sampled_from(sorted(KEYWORDS))


def shout(word: str) -> str:
    return word.upper() if len(word) % 2 else word.lower()


@given(names, names, names)
def test_canonical_path_keeps_names_and_fixes_keywords(group, gallery, image):
    path = (
        f"/{shout('subscriptions')}/{SUB}/{shout('resourceGroups')}/{group}/{shout('providers')}/"
        f"{shout('Microsoft.Compute')}/{shout('galleries')}/{gallery}/{shout('images')}/{image}"
    )
    assert canonical_path(path) == (
        f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.Compute/galleries/{gallery}/images/{image}"
    )


@given(names, names)
def test_canonical_path_is_idempotent(group, gallery):
    path = f"/SUBSCRIPTIONS/{SUB}/resourcegroups/{group}/PROVIDERS/microsoft.compute/GALLERIES/{gallery}"
    once = canonical_path(path)
    assert canonical_path(once) == once


def test_canonical_path_operation_paths():
    assert canonical_path(f"/subscriptions/{SUB}/providers/microsoft.compute/locations/eastus/capsoperations/x") == (
        f"/subscriptions/{SUB}/providers/Microsoft.Compute/locations/eastus/capsOperations/x"
    )
    assert canonical_path("/healthz") == "/healthz"


@given(names, names, names)
def test_parse_round_trips_and_keys_are_case_folded(group, gallery, image):
    text = f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.Compute/galleries/{gallery}/images/{image}"
    rid = parse_resource_id(text)
    assert rid is not None
    assert rid.text == text
    assert rid.key == text.lower()
    assert rid.name == image
    assert rid.type == "Microsoft.Compute/galleries/images"
    assert rid.parent.text == text.rsplit("/images/", 1)[0]
    assert rid.parent.parent.text == f"/subscriptions/{SUB}/resourceGroups/{group}"
    assert rid.parent.parent.parent is None
    assert rid.group_key == f"/subscriptions/{SUB}/resourcegroups/{group}".lower()


def test_parse_resource_group_and_rejects():
    rg = parse_resource_id(f"/subscriptions/{SUB}/resourcegroups/rg1/")
    assert rg == ResourceId(SUB, "rg1", None, ())
    assert rg.type == "Microsoft.Resources/resourceGroups" and rg.name == "rg1"
    for bad in (
        "",
        "subscriptions/x",
        f"/subscriptions/{SUB}",
        f"/subscriptions/{SUB}/foo/x",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/galleries",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/galleries//images/i",
    ):
        assert parse_resource_id(bad) is None, bad


def test_child_builds_on_parent():
    rg = ResourceId(SUB, "rg", None, ())
    gal = rg.child("galleries", "g", "Microsoft.Compute")
    assert gal.text == f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/galleries/g"
    assert gal.child("images", "i").type == "Microsoft.Compute/galleries/images"


def test_normalize_location():
    assert normalize_location("East US") == normalize_location("eastus") == "eastus"
    assert normalize_location(" West  Europe ") == "westeurope"
