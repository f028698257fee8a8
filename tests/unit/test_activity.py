"""The activity log's rules: which requests are writes and their Azure operation names; the `$filter` grammar."""

from __future__ import annotations

import pytest

from vmgallery.domain import errors
from vmgallery.domain.activity import describe, parse_filter, parse_time

SUB = "/subscriptions/11111111-2222-3333-4444-555555555555"
RG = f"{SUB}/resourceGroups/rg1"
GAL = f"{RG}/providers/Microsoft.Compute/galleries/g1"


@pytest.mark.parametrize(
    ("method", "path", "operation", "resource"),
    [
        ("PUT", RG, "Microsoft.Resources/subscriptions/resourceGroups/write", RG),
        ("DELETE", RG, "Microsoft.Resources/subscriptions/resourceGroups/delete", RG),
        ("PUT", GAL, "Microsoft.Compute/galleries/write", GAL),
        ("PATCH", f"{GAL}/images/d1", "Microsoft.Compute/galleries/images/write", f"{GAL}/images/d1"),
        (
            "DELETE",
            f"{GAL}/images/d1/versions/1.0.0",
            "Microsoft.Compute/galleries/images/versions/delete",
            f"{GAL}/images/d1/versions/1.0.0",
        ),
        ("POST", f"{GAL}/share", "Microsoft.Compute/galleries/share/action", GAL),
        (
            "POST",
            f"{RG}/providers/Microsoft.Compute/disks/d/beginGetAccess",
            "Microsoft.Compute/disks/beginGetAccess/action",
            f"{RG}/providers/Microsoft.Compute/disks/d",
        ),
        (
            "PUT",
            f"{GAL}/providers/Microsoft.Authorization/roleAssignments/a1",
            "Microsoft.Authorization/roleAssignments/write",
            f"{GAL}/providers/Microsoft.Authorization/roleAssignments/a1",
        ),
        (
            "DELETE",
            f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/x",
            "Microsoft.Authorization/roleDefinitions/delete",
            f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/x",
        ),
    ],
)
def test_writes_are_named_as_azure_names_them(method, path, operation, resource):
    write = describe(method, path)
    assert write is not None
    assert (write.operation, write.resource_id) == (operation, resource)
    assert write.subscription == SUB.rsplit("/", 1)[1]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", GAL),
        ("HEAD", RG),
        ("POST", f"{GAL}/images/d1/versions/1.0.0/replicationPlan"),  # answers a question, changes nothing
        ("POST", "/vmgallery/identity/tenants"),
        ("POST", "/tenant/oauth2/v2.0/token"),
        ("PUT", f"{SUB}/providers/Microsoft.Compute"),
        ("PUT", f"{GAL}/share"),  # an action is a POST
    ],
)
def test_reads_and_non_arm_requests_are_not_writes(method, path):
    assert describe(method, path) is None


def test_filter_as_az_sends_it():
    f = parse_filter(
        "eventTimestamp ge '2026-11-30T10:00:00Z' and eventTimestamp le '2026-11-30T16:00:00.1234567Z' and "
        "eventChannels eq 'Admin, Operation' and resourceGroupName eq 'rg1'"
    )
    assert f.start == parse_time("2026-11-30T10:00:00+00:00")
    assert f.end - f.start == pytest.approx(6 * 3600 + 0.123456)
    assert f.resource_group == "rg1"
    f = parse_filter("eventTimestamp ge '2026-11-30T10:00:00Z' and correlationId eq 'abc' and caller eq 'x@y'")
    assert (f.correlation_id, f.caller, f.end) == ("abc", "x@y", float("inf"))
    assert parse_filter("eventTimestamp ge '2026-11-30T10:00:00Z' and resourceUri eq '/a/b'").resource_id == "/a/b"


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "resourceGroupName eq 'rg1'",  # no time range
        "eventTimestamp ge 'yesterday'",
        "eventTimestamp ge '2026-11-30T10:00:00'",  # no time zone
        "eventTimestamp ge '2026-11-30T10:00:00Z' and eventTimestamp le '2026-11-29T10:00:00Z'",
        "eventTimestamp ge '2026-11-30T10:00:00Z' or resourceGroupName eq 'rg1'",
        "eventTimestamp ge '2026-11-30T10:00:00Z' and resourceGroupName ge 'rg1'",
        "eventTimestamp ge '2026-11-30T10:00:00Z' and secret eq 'x'",
    ],
)
def test_filters_the_log_cannot_answer_are_refused(text):
    with pytest.raises(errors.InvalidParameter) as refused:
        parse_filter(text)
    assert refused.value.status == 400
