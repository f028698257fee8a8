"""api-version: required, and one of the releases we answer to; the error lists them."""

from __future__ import annotations

import pytest

from vmgallery.domain.apiversions import GALLERY_API_VERSIONS, RESOURCE_API_VERSIONS, check_api_version
from vmgallery.domain.errors import InvalidApiVersion, MissingApiVersion


def test_fourteen_gallery_versions_sorted_and_distinct():
    assert len(GALLERY_API_VERSIONS) == 14
    assert list(GALLERY_API_VERSIONS) == sorted(set(GALLERY_API_VERSIONS))
    assert {"2023-07-03", "2025-03-03", "2026-03-03"} <= set(GALLERY_API_VERSIONS)
    assert list(RESOURCE_API_VERSIONS) == sorted(set(RESOURCE_API_VERSIONS))


@pytest.mark.parametrize("version", GALLERY_API_VERSIONS)
def test_each_gallery_version_accepted(version):
    assert check_api_version(version, GALLERY_API_VERSIONS, "Microsoft.Compute/galleries") == version


@pytest.mark.parametrize("value", [None, ""])
def test_missing(value):
    with pytest.raises(MissingApiVersion) as exc:
        check_api_version(value, GALLERY_API_VERSIONS, "Microsoft.Compute/galleries")
    assert exc.value.status == 400 and exc.value.code == "MissingApiVersionParameter"
    assert exc.value.target == "api-version"


@pytest.mark.parametrize("value", ["2017-01-01", "2025-03-03-preview", "latest", "2025-3-3"])
def test_unknown_lists_the_supported(value):
    with pytest.raises(InvalidApiVersion) as exc:
        check_api_version(value, GALLERY_API_VERSIONS, "Microsoft.Compute/galleries")
    err = exc.value
    assert err.status == 400 and err.code == "InvalidApiVersionParameter" and err.target == "api-version"
    assert f"'{value}'" in err.message and "Microsoft.Compute/galleries" in err.message
    assert all(v in err.message for v in GALLERY_API_VERSIONS)
