"""The shared checks: merge-patch, the change guard, read-only stripping and the value checks."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmgallery.domain.errors import (
    InvalidParameter,
    InvalidRequestContent,
    MissingRequiredProperty,
    PropertyChangeNotAllowed,
)
from vmgallery.domain.validate import (
    check_datetime,
    check_enum,
    check_int,
    check_string,
    check_tags,
    check_uri,
    flatten,
    fold_location,
    forbid_changes,
    merge_patch,
    require_object,
    strip_read_only,
)

keys = st.text(alphabet="abcdef", min_size=1, max_size=3)
scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3), max_leaves=10
)
json_objects = st.dictionaries(keys, json_values, max_size=4)


def no_nulls(value):
    if isinstance(value, dict):
        return {k: no_nulls(v) for k, v in value.items() if v is not None}
    return value


# -- merge_patch (RFC 7386) ------------------------------------------------------------------------------------
def test_merge_patch_rfc7386_examples():
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": "b", "b": "c"}, {"a": None}) == {"b": "c"}
    assert merge_patch({"a": ["b"]}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "c"}, {"a": ["b"]}) == {"a": ["b"]}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch(["a", "b"], ["c", "d"]) == ["c", "d"]
    assert merge_patch({"a": "b"}, ["c"]) == ["c"]
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch([1, 2], {"a": "b", "c": None}) == {"a": "b"}
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


@given(json_objects, json_objects)
def test_merge_patch_leaves_its_inputs_alone(target, patch):
    before_t, before_p = copy.deepcopy(target), copy.deepcopy(patch)
    merge_patch(target, patch)
    assert target == before_t and patch == before_p


@given(json_objects, json_objects)
def test_merge_patch_is_idempotent(target, patch):
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once


@given(json_objects)
def test_empty_patch_changes_nothing(target):
    assert merge_patch(target, {}) == target


@given(json_objects, json_objects)
def test_merge_patch_sets_every_given_leaf_and_keeps_the_rest(target, patch):
    merged = merge_patch(target, patch)
    for key, value in patch.items():
        if value is None:
            assert key not in merged
        elif isinstance(value, dict):
            assert isinstance(merged[key], dict)
        else:
            assert merged[key] == value
    for key in set(target) - set(patch):
        assert merged[key] == target[key]


@given(json_objects)
def test_patching_with_a_null_free_document_yields_it_on_an_empty_target(doc):
    assert merge_patch({}, doc) == no_nulls(doc)


# -- flatten and forbid_changes --------------------------------------------------------------------------------
def test_flatten_leaves():
    assert flatten({"a": {"b": 1, "c": [1, 2], "d": {}}, "e": None, "f": "x"}) == {"a.b": 1, "a.c": [1, 2], "f": "x"}


@given(json_objects)
def test_forbid_changes_allows_no_change(body):
    forbid_changes(body, copy.deepcopy(body), set(), "thing")


def test_forbid_changes_names_the_first_changed_path():
    old = {"properties": {"osType": "Linux", "description": "a"}, "tags": {"x": "1"}}
    new = {"properties": {"osType": "Windows", "description": "b"}, "tags": {"y": "2"}}
    with pytest.raises(PropertyChangeNotAllowed) as exc:
        forbid_changes(old, new, {"tags", "properties.description"}, "gallery image definition")
    assert exc.value.target == "properties.osType"
    assert exc.value.status == 400
    assert "'Linux'" in exc.value.message and "'Windows'" in exc.value.message


def test_forbid_changes_sees_added_and_removed_properties():
    with pytest.raises(PropertyChangeNotAllowed) as exc:
        forbid_changes({"properties": {}}, {"properties": {"eula": "x"}}, {"tags"}, "thing")
    assert exc.value.target == "properties.eula"
    with pytest.raises(PropertyChangeNotAllowed) as exc:
        forbid_changes({"properties": {"eula": "x"}}, {"properties": {}}, {"tags"}, "thing")
    assert exc.value.target == "properties.eula"


def test_forbid_changes_prefix_is_a_whole_path_segment():
    forbid_changes({"tags": {"a": "1"}}, {"tags": {"a": "2"}}, {"tags"}, "thing")
    with pytest.raises(PropertyChangeNotAllowed) as exc:
        forbid_changes({"tagsExtra": 1}, {"tagsExtra": 2}, {"tags"}, "thing")
    assert exc.value.target == "tagsExtra"


@given(json_objects, json_objects)
def test_forbid_changes_allows_anything_under_an_updatable_root(a, b):
    forbid_changes({"free": a}, {"free": b}, {"free"}, "thing")


# -- strip_read_only -------------------------------------------------------------------------------------------
def test_strip_read_only_copies_and_removes_nested_paths():
    body = {"id": "x", "name": "n", "properties": {"provisioningState": "Succeeded", "description": "d"}}
    out = strip_read_only(body, ("id", "name", "properties.provisioningState", "missing.deep.path"))
    assert out == {"properties": {"description": "d"}}
    assert body["id"] == "x" and body["properties"]["provisioningState"] == "Succeeded"


def test_strip_read_only_needs_an_object():
    with pytest.raises(InvalidRequestContent):
        strip_read_only([1, 2], ("id",))


# -- value checks ----------------------------------------------------------------------------------------------
def test_require_object():
    assert require_object({"p": {"a": 1}}, "p", required=True) == {"a": 1}
    parent = {"p": None}
    assert require_object(parent, "p", required=False) == {} and "p" not in parent
    with pytest.raises(MissingRequiredProperty) as exc:
        require_object({}, "p", required=True, target="properties.p")
    assert exc.value.target == "properties.p"
    with pytest.raises(InvalidRequestContent) as exc:
        require_object({"p": "text"}, "p", required=False, target="properties.p")
    assert exc.value.target == "properties.p"


def test_check_string():
    assert check_string({"k": "v"}, "k", "t") == "v"
    assert check_string({}, "k", "t") is None
    with pytest.raises(MissingRequiredProperty):
        check_string({}, "k", "t", required=True)
    with pytest.raises(InvalidParameter) as exc:
        check_string({"k": 5}, "k", "t")
    assert exc.value.target == "t" and "5" in exc.value.message
    with pytest.raises(InvalidParameter):
        check_string({"k": "  "}, "k", "t", required=True)
    with pytest.raises(InvalidParameter) as exc:
        check_string({"k": "abcd"}, "k", "t", max_len=3)
    assert "4 characters" in exc.value.message


def test_check_enum_canonicalizes_and_defaults():
    parent = {"os": "linux"}
    assert check_enum(parent, "os", ("Windows", "Linux"), "properties.os") == "Linux"
    assert parent["os"] == "Linux"
    parent = {}
    assert check_enum(parent, "gen", ("V1", "V2"), "g", default="V1") == "V1" and parent["gen"] == "V1"
    assert check_enum({}, "gen", ("V1", "V2"), "g") is None


def test_check_enum_rejects_naming_value_and_choices():
    with pytest.raises(InvalidParameter) as exc:
        check_enum({"os": "BeOS"}, "os", ("Windows", "Linux"), "properties.osType")
    assert exc.value.target == "properties.osType"
    assert "'BeOS'" in exc.value.message and "Windows, Linux" in exc.value.message
    with pytest.raises(MissingRequiredProperty) as exc:
        check_enum({}, "os", ("Windows", "Linux"), "properties.osType", required=True)
    assert exc.value.target == "properties.osType"


@pytest.mark.parametrize("uri", ["https://example.com", "http://example.com/a?b=c"])
def test_check_uri_allowed(uri):
    assert check_uri({"u": uri}, "u", "properties.u") == uri


@pytest.mark.parametrize("uri", ["example.com", "ftp://example.com/x", "https://", "not a uri", "/relative"])
def test_check_uri_rejected(uri):
    with pytest.raises(InvalidParameter) as exc:
        check_uri({"u": uri}, "u", "properties.u")
    assert exc.value.target == "properties.u" and uri in exc.value.message


def test_check_int():
    assert check_int({"n": 3}, "n", "t", minimum=1) == 3
    for bad in (0, True, "3", 2**31, 1.5):
        with pytest.raises(InvalidParameter) as exc:
            check_int({"n": bad}, "n", "t", minimum=1)
        assert exc.value.target == "t"


@pytest.mark.parametrize("value", ["2030-01-01T00:00:00Z", "2030-01-01T00:00:00+02:00", "2030-01-01"])
def test_check_datetime_allowed(value):
    assert check_datetime({"d": value}, "d", "t") == value


@pytest.mark.parametrize("value", ["tomorrow", "2030-13-01", 5, "01/02/2030"])
def test_check_datetime_rejected(value):
    with pytest.raises(InvalidParameter) as exc:
        check_datetime({"d": value}, "d", "properties.endOfLifeDate")
    assert exc.value.target == "properties.endOfLifeDate" and str(value) in exc.value.message


def test_check_tags():
    body = {"tags": {"a": "1", "b": None}}
    check_tags(body)
    assert body["tags"] == {"a": "1", "b": ""}
    for tags, target in (
        ([1], "tags"),
        ({"a": 1}, "tags.a"),
        ({"": "x"}, "tags."),
        ({f"t{i}": "" for i in range(51)}, "tags"),
        ({"a": "v" * 257}, "tags.a"),
    ):
        with pytest.raises(InvalidParameter) as exc:
            check_tags({"tags": tags})
        assert exc.value.target == target


def test_fold_location():
    body = {"location": "West Europe"}
    fold_location(body)
    assert body == {"location": "westeurope"}
    body = {}
    fold_location(body)
    assert body == {}
