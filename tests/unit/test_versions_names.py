"""Version names, their numeric order, and `latest` (globally and per region)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmgallery.domain.errors import InvalidParameter
from vmgallery.domain.versions import (
    MAX_PART,
    VersionFacts,
    latest_version,
    parse_version_name,
    version_facts,
    version_key,
)

parts = st.integers(min_value=0, max_value=MAX_PART)
triples = st.tuples(parts, parts, parts)
small_triples = st.tuples(*(st.integers(min_value=0, max_value=12),) * 3)


def name(t: tuple[int, int, int]) -> str:
    return ".".join(map(str, t))


def facts(n: str, **kw) -> VersionFacts:
    kw.setdefault("succeeded", True)
    return VersionFacts(n, **kw)


# -- names ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, parsed",
    [
        ("0.0.0", (0, 0, 0)),
        ("1.0.10", (1, 0, 10)),
        ("2147483647.2147483647.2147483647", (MAX_PART,) * 3),
        ("1.01.0", (1, 1, 0)),
    ],
)
def test_valid_names(text, parsed):
    assert parse_version_name(text) == parsed


@pytest.mark.parametrize(
    "text, words",
    [
        ("1.2147483648.0", ["minor part '2147483648'", "'1.2147483648.0'", "exceeds 2147483647"]),
        ("2147483648.0.0", ["major part '2147483648'", "exceeds 2147483647"]),
        ("0.0.99999999999999999999", ["patch part '99999999999999999999'", "exceeds"]),
        ("1.2", ["'1.2' has 2 parts", "expected MAJOR.MINOR.PATCH"]),
        ("1", ["has 1 part;", "MAJOR.MINOR.PATCH"]),
        ("1.2.3.4", ["has 4 parts"]),
        ("latest", ["has 1 part"]),
        ("a1.0.0", ["major part 'a1'", "is not digits"]),
        ("1.0.-1", ["patch part '-1'", "not digits"]),
        ("1.+2.3", ["minor part '+2'", "not digits"]),
        ("1.0.0 ", ["patch part '0 '", "not digits"]),
        ("1.\u0662.0", ["minor part", "not digits"]),  # Arabic-Indic digit: not ASCII
        ("1..0", ["minor part of version name '1..0' is empty"]),
        ("", ["empty"]),
    ],
)
def test_invalid_names_say_which_part_and_why(text, words):
    with pytest.raises(InvalidParameter) as exc:
        parse_version_name(text)
    assert exc.value.target == "galleryImageVersionName" and exc.value.code == "InvalidParameter"
    for w in words:
        assert w in exc.value.message


@given(triples)
def test_parse_round_trips(t):
    assert parse_version_name(name(t)) == t


@given(st.text(max_size=12))
def test_parse_accepts_only_three_ascii_digit_runs(text):
    try:
        parsed = parse_version_name(text)
    except InvalidParameter:
        return
    assert len(text.split(".")) == 3 and all(p.isascii() and p.isdigit() for p in text.split("."))
    assert all(0 <= p <= MAX_PART for p in parsed)


# -- order ------------------------------------------------------------------------------------------------------
def test_numeric_not_text_order():
    assert version_key("1.0.10") > version_key("1.0.9")
    assert version_key("1.10.0") > version_key("1.9.99")
    assert version_key("10.0.0") > version_key("9.99.99")
    assert sorted(["1.0.10", "1.0.9", "1.0.1", "0.9.100"], key=version_key) == ["0.9.100", "1.0.1", "1.0.9", "1.0.10"]


@given(triples, triples)
def test_order_is_numeric_by_major_then_minor_then_patch(a, b):
    assert (version_key(name(a)) < version_key(name(b))) == (a < b)
    assert (version_key(name(a)) == version_key(name(b))) == (a == b)


@given(
    st.lists(st.tuples(small_triples, st.lists(st.sampled_from(["", "0", "00"]), min_size=3, max_size=3)), max_size=8)
)
def test_order_is_total_even_with_leading_zeros(items):
    names = {".".join(z + str(p) for z, p in zip(zeros, t)) for t, zeros in items}
    ordered = sorted(names, key=version_key)
    assert len({version_key(n) for n in names}) == len(names)  # no two distinct names tie
    for lo, hi in zip(ordered, ordered[1:]):
        assert parse_version_name(lo) <= parse_version_name(hi)


# -- latest -----------------------------------------------------------------------------------------------------
def test_latest_1_0_10_beats_1_0_9():
    assert latest_version([facts("1.0.9"), facts("1.0.10")]) == "1.0.10"
    assert latest_version([facts("1.0.10"), facts("1.0.9")]) == "1.0.10"


def test_latest_none_when_no_versions():
    assert latest_version([]) is None


def test_latest_skips_excluded_and_unfinished():
    cands = [facts("1.0.0"), facts("2.0.0", excluded_from_latest=True), facts("3.0.0", succeeded=False)]
    assert latest_version(cands) == "1.0.0"
    assert latest_version(cands[1:]) is None


def test_latest_for_a_region():
    both = {"westus", "eastus"}
    cands = [
        facts("1.0.0", usable_regions=both),
        facts("1.1.0", usable_regions=both, excluded_in_regions={"East US"}),
        facts("1.2.0", usable_regions={"westus"}),
    ]
    assert latest_version(cands) == "1.2.0"
    assert latest_version(cands, "westus") == "1.2.0"
    assert latest_version(cands, "East US") == "1.0.0"
    assert latest_version(cands, "northeurope") is None


def test_region_exclusion_does_not_exclude_globally():
    assert latest_version([facts("1.0.0", excluded_in_regions={"eastus"}, usable_regions={"eastus"})]) == "1.0.0"


def test_global_exclusion_wins_in_every_region():
    f = facts("1.0.0", excluded_from_latest=True, usable_regions={"eastus"})
    assert latest_version([f], "eastus") is None


def test_facts_from_a_stored_body():
    body = {
        "properties": {
            "provisioningState": "Succeeded",
            "publishingProfile": {
                "excludeFromLatest": False,
                "targetRegions": [
                    {"name": "westus", "excludeFromLatest": False},
                    {"name": "eastus", "excludeFromLatest": True},
                ],
            },
        }
    }
    f = version_facts("1.0.0", body)
    assert f == VersionFacts("1.0.0", True, False, frozenset({"eastus"}), frozenset({"westus", "eastus"}))
    assert version_facts("1.0.0", body, usable_regions=["West US"]).usable_regions == {"westus"}
    body["properties"]["provisioningState"] = "Creating"
    assert not version_facts("1.0.0", body).eligible()
    body["properties"]["publishingProfile"]["excludeFromLatest"] = True
    assert version_facts("1.0.0", body).excluded_from_latest


version_facts_strategy = st.builds(
    VersionFacts,
    name=small_triples.map(name),
    succeeded=st.booleans(),
    excluded_from_latest=st.booleans(),
    excluded_in_regions=st.frozensets(st.sampled_from(["westus", "eastus"])),
    usable_regions=st.frozensets(st.sampled_from(["westus", "eastus"])),
)
regions = st.none() | st.sampled_from(["westus", "eastus", "West US"])


@given(st.lists(version_facts_strategy, max_size=10), regions)
def test_latest_is_the_max_of_the_eligible(cands, region):
    got = latest_version(cands, region)
    eligible = [c for c in cands if c.eligible(region)]
    if not eligible:
        assert got is None
        return
    assert got in {c.name for c in eligible}
    assert all(parse_version_name(c.name) <= parse_version_name(got) for c in eligible)


@given(st.lists(version_facts_strategy, max_size=10), regions)
def test_latest_never_picks_an_excluded_or_unfinished_version(cands, region):
    got = latest_version(cands, region)
    chosen = [c for c in cands if c.name == got and c.eligible(region)]
    assert got is None or chosen
    for c in chosen:
        assert c.succeeded and not c.excluded_from_latest
        if region is not None:
            assert "".join(region.split()).lower() not in c.excluded_in_regions


@given(st.lists(version_facts_strategy, max_size=10), regions)
def test_latest_ignores_candidate_order(cands, region):
    assert latest_version(cands, region) == latest_version(list(reversed(cands)), region)


@given(st.lists(version_facts_strategy, max_size=10), regions)
def test_none_when_nothing_is_eligible(cands, region):
    blocked = [VersionFacts(c.name, c.succeeded, True, c.excluded_in_regions, c.usable_regions) for c in cands]
    assert latest_version(blocked, region) is None


@given(st.lists(small_triples, min_size=1, max_size=10))
def test_latest_of_all_eligible_is_the_numeric_max(ts):
    assert parse_version_name(latest_version([facts(name(t)) for t in ts])) == max(ts)
