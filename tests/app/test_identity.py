"""The identity use cases on in-memory fakes: token times at the edge of the clock-skew leeway, group changes and
deletions taking effect at once, multi-tenant applications, deletion cascades and what each principal sees."""

from __future__ import annotations

import pytest

from vmgallery.app.authority import LEEWAY_SECONDS, TOKEN_LIFETIME_SECONDS, Authority
from vmgallery.app.directory import Directory
from vmgallery.app.identity_ports import TenantRow
from vmgallery.domain import errors
from vmgallery.domain.identity import (
    ARM_AUDIENCES,
    DEFAULT_TENANT_ID,
    OAuthError,
    Rejection,
    SubscriptionNotFound,
    TokenRejected,
)
from vmgallery.domain.principals import ADMIN_OBJECT_ID, Principal, PrincipalType

from .fakes import FakeClock
from .identity_fakes import FakeDirectoryStore, FakeHasher, FakeKeyRing

ARM = "https://management.azure.com/"
PUBLIC = "https://vmg.test:8443"
ADMIN = Principal(ADMIN_OBJECT_ID, DEFAULT_TENANT_ID, PrincipalType.ADMIN)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(clock):
    store = FakeDirectoryStore()
    with store.write() as tx:
        tx.add_tenant(TenantRow(DEFAULT_TENANT_ID, "Default Directory", 0.0))
    return store


@pytest.fixture
def directory(store, clock):
    return Directory(store, FakeHasher(), clock)


@pytest.fixture
def authority(store, clock):
    return Authority(store, FakeKeyRing(), FakeHasher(), clock, PUBLIC + "/")


def sp_token(authority, sp, tenant=None, scope=ARM + ".default") -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": sp.app_id,
        "client_secret": sp.password,
        "scope": scope,
    }
    return authority.token(tenant or sp.tenant_id, form)["access_token"]


def test_token_times_at_the_edges_of_the_leeway(directory, authority, clock):
    t = directory.create_tenant("t").tenant_id
    sp = directory.create_service_principal(t, "app", False)
    issued = clock.now
    token = sp_token(authority, sp)
    assert authority.authenticate(token, ARM_AUDIENCES).object_id == sp.object_id
    clock.now = issued + TOKEN_LIFETIME_SECONDS + LEEWAY_SECONDS
    assert authority.authenticate(token, ARM_AUDIENCES).tenant_id == t
    clock.now += 1
    with pytest.raises(TokenRejected) as refused:
        authority.authenticate(token, ARM_AUDIENCES)
    assert refused.value.reason is Rejection.EXPIRED and refused.value.code == "ExpiredAuthenticationToken"

    clock.now = issued - LEEWAY_SECONDS  # a server whose clock is behind the issuer's, within the leeway
    authority.authenticate(token, ARM_AUDIENCES)
    clock.now -= 1
    with pytest.raises(TokenRejected) as refused:
        authority.authenticate(token, ARM_AUDIENCES)
    assert refused.value.reason is Rejection.NOT_YET_VALID


def test_group_changes_and_deletions_count_at_once(directory, authority):
    t = directory.create_tenant("t").tenant_id
    sp = directory.create_service_principal(t, "app", False)
    outer, inner = directory.create_group(t, "outer"), directory.create_group(t, "inner")
    directory.add_member(t, outer.object_id, inner.object_id)
    token = sp_token(authority, sp)  # issued before it joined any group
    directory.add_member(t, inner.object_id, sp.object_id)
    assert authority.authenticate(token, ARM_AUDIENCES).group_ids == {outer.object_id, inner.object_id}
    directory.remove_member(t, outer.object_id, inner.object_id)
    assert authority.authenticate(token, ARM_AUDIENCES).group_ids == {inner.object_id}
    with pytest.raises(errors.InvalidParameter):
        directory.add_member(t, inner.object_id, inner.object_id)
    directory.delete_object(t, inner.object_id, PrincipalType.GROUP)
    assert authority.authenticate(token, ARM_AUDIENCES).group_ids == frozenset()
    directory.delete_object(t, sp.object_id, PrincipalType.SERVICE_PRINCIPAL)
    with pytest.raises(TokenRejected) as refused:
        authority.authenticate(token, ARM_AUDIENCES)
    assert refused.value.reason is Rejection.UNKNOWN_PRINCIPAL


def test_multi_tenant_application_and_its_deletion(directory, authority):
    home, guest_tenant = directory.create_tenant("home").tenant_id, directory.create_tenant("guest").tenant_id
    app = directory.create_service_principal(home, "saas", True)
    guest = directory.add_service_principal(guest_tenant, app.app_id)
    assert guest.password is None
    principal = authority.authenticate(sp_token(authority, app, guest_tenant), ARM_AUDIENCES)
    assert (principal.tenant_id, principal.object_id, principal.app_id) == (guest_tenant, guest.object_id, app.app_id)
    with pytest.raises(errors.Conflict):
        directory.add_service_principal(guest_tenant, app.app_id)
    # deleting the guest SP leaves the application; deleting the home SP takes the application and its guests
    directory.delete_object(guest_tenant, guest.object_id, PrincipalType.SERVICE_PRINCIPAL)
    assert directory.application(app.app_id) is not None
    directory.add_service_principal(guest_tenant, app.app_id)
    directory.delete_object(home, app.object_id, PrincipalType.SERVICE_PRINCIPAL)
    assert directory.application(app.app_id) is None
    assert directory.objects(guest_tenant, PrincipalType.SERVICE_PRINCIPAL) == []
    with pytest.raises(OAuthError) as refused:
        sp_token(authority, app)
    assert refused.value.aadsts == 700016


def test_password_grant_finds_the_users_tenant(directory, authority):
    t = directory.create_tenant("t").tenant_id
    user = directory.create_user(t, "Ann@Contoso.com", "long enough")
    with pytest.raises(errors.Conflict):
        directory.create_user(directory.create_tenant("u").tenant_id, "ann@contoso.COM", "long enough")
    form = {
        "grant_type": "password",
        "client_id": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "username": "ann@contoso.com",
        "password": "long enough",
        "scope": ARM + ".default openid",
    }
    for segment in (t, "organizations", "common"):
        reply = authority.token(segment, form)
        assert authority.authenticate(reply["access_token"], ARM_AUDIENCES).object_id == user.object_id
    with pytest.raises(OAuthError) as refused:
        authority.token(DEFAULT_TENANT_ID, form)
    assert refused.value.aadsts == 50034


def test_what_each_principal_sees(directory, authority, store):
    t = directory.create_tenant("t").tenant_id
    mine = directory.create_subscription(t, "mine")
    theirs = directory.create_subscription(DEFAULT_TENANT_ID, "theirs")
    token = sp_token(authority, directory.create_service_principal(t, "a", False))
    sp = authority.authenticate(token, ARM_AUDIENCES)
    assert [s.subscription_id for s in directory.visible_subscriptions(sp)] == [mine.subscription_id]
    assert {mine.subscription_id, theirs.subscription_id} <= {
        s.subscription_id for s in directory.visible_subscriptions(ADMIN)
    }
    assert [x.tenant_id for x in directory.visible_tenants(sp)] == [t]
    assert authority.authenticate(token, ARM_AUDIENCES, mine.subscription_id) == sp
    with pytest.raises(SubscriptionNotFound):
        authority.authenticate(token, ARM_AUDIENCES, "6f0e9f9c-8c87-4a53-9c41-2b1f2e1c9d10")

    store.state.resources_in.add(mine.subscription_id)
    with pytest.raises(errors.Conflict):
        directory.delete_subscription(mine.subscription_id)
    with pytest.raises(errors.Conflict):
        directory.delete_tenant(t)  # it still has a subscription
    with pytest.raises(errors.OperationNotAllowed):
        directory.delete_tenant(DEFAULT_TENANT_ID)


def test_wrong_issuer_and_audience(directory, authority):
    t = directory.create_tenant("t").tenant_id
    sp = directory.create_service_principal(t, "a", False)
    graph_token = sp_token(authority, sp, scope=PUBLIC + "//.default")
    with pytest.raises(TokenRejected) as refused:
        authority.authenticate(graph_token, ARM_AUDIENCES)
    assert refused.value.reason is Rejection.WRONG_AUDIENCE
    assert authority.authenticate(graph_token, (authority.audiences.graph,)).object_id == sp.object_id
    elsewhere = Authority(authority.store, authority.keys, authority.hasher, authority.clock, "https://other:1")
    with pytest.raises(TokenRejected) as refused:
        elsewhere.authenticate(graph_token, (authority.audiences.graph,))
    assert refused.value.reason is Rejection.WRONG_ISSUER
