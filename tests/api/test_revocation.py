"""Revocation counts at the next request, though the server remembers token checks (issue 12): a removed group
membership, a deleted role assignment, a deleted principal or a deleted subscription takes effect on the very next
call, in the process that made the change and in another server process sharing the database and data dir. Each
token is used several times first, so the change must defeat what the server remembered of it (the principal, its
groups and its role assignments, kept while the data dir's auth-epoch stands)."""

from __future__ import annotations

import uuid

from ..conftest import Server, running_server
from .test_identity import admin, call, make_sp, setup, sp_token  # noqa: F401 (setup: a fixture)

GV = "2023-07-03"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


def _gallery(http, subscription: str) -> str:
    group = f"/subscriptions/{subscription}/resourceGroups/rg-{uuid.uuid4().hex[:6]}"
    assert http.put(group, params={"api-version": "2024-11-01"}, json={"location": "eastus"}).status_code < 300
    gallery = f"{group}/providers/Microsoft.Compute/galleries/g{uuid.uuid4().hex[:6]}"
    made = http.put(gallery, params={"api-version": GV}, json={"location": "eastus"})
    assert made.status_code < 300, made.text
    return gallery


def _assign(http, subscription: str, object_id: str) -> str:
    path = f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
    body = {"properties": {"roleDefinitionId": READER, "principalId": object_id}}
    made = http.put(path, params={"api-version": "2022-04-01"}, json=body)
    assert made.status_code == 201, made.text
    return path


def _reads(server, token: str, path: str, times: int = 3) -> None:
    for _ in range(times):
        response = call(server, token, path, GV)
        assert response.status_code == 200, response.text


def _refused(server, token: str, path: str, status: int, code: str) -> None:
    response = call(server, token, path, GV)
    assert response.status_code == status and response.json()["error"]["code"] == code, response.text


def test_revocation_counts_at_the_next_request(server, http, setup):
    t, sub = setup.tenant, setup.subscription
    gallery = _gallery(http, sub)
    sp = make_sp(http, t)
    group = admin(http, "POST", f"/tenants/{t}/groups", {"displayName": "readers"}, 201)["objectId"]
    admin(http, "POST", f"/tenants/{t}/groups/{group}/members", {"memberId": sp.object_id}, 204)
    assignment = _assign(http, sub, group)
    token = sp_token(server, sp)
    _reads(server, token, gallery)
    admin(http, "DELETE", f"/tenants/{t}/groups/{group}/members/{sp.object_id}", status=204)
    _refused(server, token, gallery, 403, "AuthorizationFailed")  # the same token: its groups claim is not trusted
    admin(http, "POST", f"/tenants/{t}/groups/{group}/members", {"memberId": sp.object_id}, 204)
    _reads(server, token, gallery)
    deleted = http.delete(assignment, params={"api-version": "2022-04-01"})
    assert deleted.status_code == 200, deleted.text
    _refused(server, token, gallery, 403, "AuthorizationFailed")
    _assign(http, sub, sp.object_id)
    _reads(server, token, gallery)
    admin(http, "DELETE", f"/tenants/{t}/servicePrincipals/{sp.object_id}", status=204)
    _refused(server, token, gallery, 401, "InvalidAuthenticationToken")


def test_a_deleted_subscription_counts_at_the_next_request(server, http, setup):
    sub = admin(http, "POST", "/subscriptions", {"tenantId": setup.tenant, "name": "brief"}, 201)["subscriptionId"]
    sp = make_sp(http, setup.tenant)
    token = sp_token(server, sp)
    groups = f"/subscriptions/{sub}/resourcegroups"
    for _ in range(3):
        assert call(server, token, groups, "2021-04-01").status_code in (200, 403)
    admin(http, "DELETE", f"/subscriptions/{sub}", status=204)
    response = call(server, token, groups, "2021-04-01")
    assert response.status_code == 404 and response.json()["error"]["code"] == "SubscriptionNotFound", response.text


def test_a_change_through_another_process_counts_at_once(backend, tmp_path):
    """Two server processes on one database and data dir behind one public URL (as behind a load balancer): what
    one removes, the other stops granting at once."""
    with running_server(backend, tmp_path, config='public_url = "https://gallery.example.test/"\n') as server:
        other = Server(server.data_dir, server.database_url).start()
        try:
            with server.http() as http:
                _through_another_process(server, other, http)
        finally:
            other.stop()


def _through_another_process(server, other, http) -> None:
    t = admin(http, "POST", "/tenants", {"name": "two"}, 201)["tenantId"]
    sub = admin(http, "POST", "/subscriptions", {"tenantId": t, "name": "two"}, 201)["subscriptionId"]
    gallery = _gallery(http, sub)
    sp = make_sp(http, t)
    group = admin(http, "POST", f"/tenants/{t}/groups", {"displayName": "readers"}, 201)["objectId"]
    admin(http, "POST", f"/tenants/{t}/groups/{group}/members", {"memberId": sp.object_id}, 204)
    assignment = _assign(http, sub, group)
    token = sp_token(server, sp)
    _reads(other, token, gallery)
    admin(http, "DELETE", f"/tenants/{t}/groups/{group}/members/{sp.object_id}", status=204)  # through `server`
    _refused(other, token, gallery, 403, "AuthorizationFailed")
    admin(http, "POST", f"/tenants/{t}/groups/{group}/members", {"memberId": sp.object_id}, 204)
    _reads(other, token, gallery)
    assert http.delete(assignment, params={"api-version": "2022-04-01"}).status_code == 200
    _refused(other, token, gallery, 403, "AuthorizationFailed")
    _assign(http, sub, group)
    _reads(other, token, gallery)
    admin(http, "DELETE", f"/tenants/{t}/servicePrincipals/{sp.object_id}", status=204)
    _refused(other, token, gallery, 401, "InvalidAuthenticationToken")
