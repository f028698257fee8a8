"""The api-versions each resource provider answers to.

Gallery versions: every stable GalleryRP release from 2018-06-01 to 2025-03-03 (the specs), 2026-03-03
(azure-mgmt-compute 39), which together cover the eight az 2.91 sends. The wire format only grows between them, so
one implementation serves all. Resource groups: Microsoft.Resources releases az and azure-mgmt-resource use.
"""

from __future__ import annotations

from .errors import InvalidApiVersion, MissingApiVersion

GALLERY_API_VERSIONS = (
    "2018-06-01",
    "2019-03-01",
    "2019-07-01",
    "2019-12-01",
    "2020-09-30",
    "2021-07-01",
    "2021-10-01",
    "2022-01-03",
    "2022-03-03",
    "2022-08-03",
    "2023-07-03",
    "2024-03-03",
    "2025-03-03",
    "2026-03-03",
)

RESOURCE_API_VERSIONS = (
    "2016-09-01",
    "2018-05-01",
    "2019-05-01",
    "2019-07-01",
    "2019-10-01",
    "2020-06-01",
    "2020-10-01",
    "2021-01-01",
    "2021-04-01",
    "2022-09-01",
    "2023-07-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
    "2025-03-01",
    "2025-04-01",
)


def check_api_version(value: str | None, supported: tuple[str, ...], resource_type: str) -> str:
    if value is None or value == "":
        raise MissingApiVersion(
            "The api-version query parameter (?api-version=) is required for all requests.", "api-version"
        )
    if value not in supported:
        raise InvalidApiVersion(
            f"The api-version '{value}' is invalid for resource type '{resource_type}'. "
            f"The supported api-versions are '{', '.join(supported)}'.",
            "api-version",
        )
    return value
