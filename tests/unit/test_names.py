"""Name rules for galleries and image definitions, checked against the rules written as regexes and by example."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmgallery.domain.errors import InvalidResourceName
from vmgallery.domain.names import check_gallery_name, check_image_definition_name, check_resource_group_name

# Azure's documented rule for gallery names: letters, digits, dots and underscores, starting and ending with a letter
# or digit, no dashes, at most 80 (the spec's pattern also allows dashes and a trailing underscore; Azure refuses them).
GALLERY_RULE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._]{0,78}[A-Za-z0-9])?$")
# Image definitions: letters and digits, with - _ . in the middle, at most 80.
DEFINITION_SPEC = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,78}[A-Za-z0-9])?$")

ALNUM = string.ascii_letters + string.digits
NAME_CHARS = ALNUM + "-._"
# Characters people try: the name alphabet, a few punctuation marks, spaces and non-ASCII letters.
ANY_CHARS = NAME_CHARS + " /\\#%&?*+=:;,'\"!@$()[]{}<>~`^|éßЖ漢"


def rejected(check, name: str) -> InvalidResourceName:
    with pytest.raises(InvalidResourceName) as exc:
        check(name)
    return exc.value


@given(
    st.text(alphabet=ALNUM, min_size=1, max_size=1), st.text(alphabet=ALNUM + "._", max_size=78), st.sampled_from(ALNUM)
)
def test_generated_valid_gallery_names_accepted(first, middle, last):
    name = (first + middle)[:79] + last
    assert GALLERY_RULE.match(name)
    check_gallery_name(name)


@given(
    st.text(alphabet=ALNUM, min_size=1, max_size=1), st.text(alphabet=NAME_CHARS, max_size=78), st.sampled_from(ALNUM)
)
def test_generated_valid_definition_names_accepted(first, middle, last):
    name = (first + middle)[:79] + last
    assert DEFINITION_SPEC.match(name)
    check_image_definition_name(name)


@given(st.text(alphabet=ANY_CHARS, max_size=90))
def test_gallery_names_follow_the_rule(name):
    if GALLERY_RULE.match(name):
        check_gallery_name(name)
    else:
        err = rejected(check_gallery_name, name)
        assert err.target == "galleryName"
        assert err.status == 400 and err.code == "InvalidResourceName"
        assert name in err.message


@given(st.text(alphabet=ANY_CHARS, max_size=90))
def test_definition_names_follow_the_rule(name):
    if DEFINITION_SPEC.match(name):
        check_image_definition_name(name)
    else:
        err = rejected(check_image_definition_name, name)
        assert err.target == "galleryImageName"
        assert name in err.message


@pytest.mark.parametrize("name", ["a", "9", "myGallery", "my_gallery", "my.gallery", "a" * 80, "A1_b2.c3_d4", "v1.0_x"])
def test_gallery_name_allowed(name):
    check_gallery_name(name)


@pytest.mark.parametrize(
    "name, why",
    [
        ("_gallery", "must start with a letter or a digit"),
        (".gallery", "must start with a letter or a digit"),
        ("gallery_", "must not end with '_'"),
        ("gallery.", "must not end with '.'"),
        ("my-gallery", "contains '-'; a gallery name is letters, digits, '.' and '_'"),
        ("-gallery", "(no dashes)"),
        ("gallery-", "(no dashes)"),
        ("a" * 81, "81 characters long; the limit is 80"),
        ("my gallery", "' '"),
        ("my$gallery", "'$'"),
        ("galérie", "'é'"),
    ],
)
def test_gallery_name_rejected_says_why(name, why):
    err = rejected(check_gallery_name, name)
    assert why in err.message
    assert err.target == "galleryName"


@pytest.mark.parametrize("name", ["a", "ubuntu", "ubuntu-22.04_lts", "x" * 80, "0start"])
def test_definition_name_allowed(name):
    check_image_definition_name(name)


@pytest.mark.parametrize(
    "name, why",
    [
        ("-img", "must start with a letter or a digit"),
        ("_img", "must start with a letter or a digit"),
        ("img_", "must not end with '_'"),
        ("img-", "must not end with '-'"),
        ("img.", "must not end with '.'"),
        ("i" * 81, "81 characters long"),
        ("img/x", "'/'"),
        ("im g", "' '"),
    ],
)
def test_definition_name_rejected_says_why(name, why):
    err = rejected(check_image_definition_name, name)
    assert why in err.message
    assert err.target == "galleryImageName"


def test_empty_names_rejected():
    assert "empty" in rejected(check_gallery_name, "").message
    assert "empty" in rejected(check_image_definition_name, "").message


@pytest.mark.parametrize("name", ["rg", "rg-1", "my_rg", "rg(1)", "r.g", "x" * 90])
def test_resource_group_name_allowed(name):
    check_resource_group_name(name)


@pytest.mark.parametrize("name", ["", "rg.", "x" * 91, "rg/1", "rg 1"])
def test_resource_group_name_rejected(name):
    err = rejected(check_resource_group_name, name)
    assert err.target == "resourceGroupName"
