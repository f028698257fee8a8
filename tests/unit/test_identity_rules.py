"""The directory's pure rules: names, scopes to audiences, token tenants."""

from __future__ import annotations

import pytest

from vmgallery.domain import errors
from vmgallery.domain import identity as rules
from vmgallery.domain.identity import OAuthError

AUDIENCES = (*rules.ARM_AUDIENCES, "https://127.0.0.1:8443/")


@pytest.mark.parametrize(
    ("scope", "audience", "oidc"),
    [
        ("https://management.azure.com/.default", "https://management.azure.com/", []),
        ("https://management.core.windows.net//.default", "https://management.core.windows.net/", []),
        ("https://management.core.windows.net/.default", "https://management.core.windows.net/", []),
        (
            "https://management.azure.com/.default offline_access openid profile",
            "https://management.azure.com/",
            ["offline_access", "openid", "profile"],
        ),
        ("https://127.0.0.1:8443//.default", "https://127.0.0.1:8443/", []),
        ("HTTPS://MANAGEMENT.AZURE.COM/.default", "https://management.azure.com/", []),
    ],
)
def test_scopes_name_audiences(scope, audience, oidc):
    assert rules.requested_audience(scope, AUDIENCES) == (audience, oidc)


@pytest.mark.parametrize(
    ("scope", "error"),
    [
        (None, "invalid_scope"),
        ("openid profile", "invalid_scope"),
        ("https://management.azure.com/.default https://graph.microsoft.com/.default", "invalid_scope"),
        ("https://management.azure.com/user_impersonation", "invalid_scope"),
        ("https://vault.azure.net/.default", "invalid_resource"),
        ("https://management.azure.com.evil/.default", "invalid_resource"),
    ],
)
def test_bad_scopes(scope, error):
    with pytest.raises(OAuthError) as refused:
        rules.requested_audience(scope, AUDIENCES)
    assert refused.value.error == error and refused.value.body()["error_description"].startswith("AADSTS")


def test_token_tenants():
    tid = "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
    assert rules.token_tenant(tid, allow_multi=False) == tid.lower()
    assert rules.token_tenant("organizations", allow_multi=True) is None
    for segment, multi in (("common", False), ("contoso.com", True), ("", True)):
        with pytest.raises(OAuthError):
            rules.token_tenant(segment, allow_multi=multi)


@pytest.mark.parametrize("upn", ["a@b.c", "first.last@contoso.com", "o'neil@x-y.example", "x_y+z@sub.domain.org"])
def test_good_upns(upn):
    assert rules.user_principal_name(upn) == upn


@pytest.mark.parametrize("upn", ["", "a", "@b.c", "a@", "a@-b.c", "a b@c.d", "a@b..c", ".a@b.c", "a" * 120 + "@b.c", 7])
def test_bad_upns(upn):
    with pytest.raises(errors.InvalidParameter):
        rules.user_principal_name(upn)


def test_names_and_passwords():
    assert rules.display_name("  ops  ", "name") == "ops"
    for bad in ("", "   ", "a\nb", "x" * 257, None):
        with pytest.raises(errors.InvalidParameter):
            rules.display_name(bad, "name")
    with pytest.raises(errors.InvalidParameter):
        rules.password("short")
    assert rules.guid("3F2504E0-4F89-11D3-9A0C-0305E82C3301", "id") == "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    with pytest.raises(errors.InvalidParameter):
        rules.guid("3f2504e04f8911d39a0c0305e82c3301", "id")  # 32 digits without dashes: not ARM's spelling
