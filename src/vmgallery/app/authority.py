"""vmgallery as its own OAuth2/OpenID authority: issues access tokens (client credentials for service principals,
the resource-owner password grant for users, with an id token) and turns a presented token back into a `Principal`.

A token is an RS256 JWT (the `KeyRing` signs and checks signatures); this module decides its claims and checks what
a signature does not prove: the times (with `LEEWAY_SECONDS` of clock skew), the issuer (this authority's, for the
token's own tenant), the audience the route accepts, and that the principal still exists. The principal, its groups
and the subscription are read in one query (`DirectoryStore.caller`) and reused only while the directory has not
changed (its epoch, which every committed directory write moves, in any process), so a deleted principal, a removed
membership or a deleted subscription counts at the next request, not an hour later. `remembered` answers from memory
alone (a signature checked before, a principal read since the last change), so the HTTP layer can authenticate a
repeat caller without a trip to a worker thread. Role assignments are never remembered: every check reads them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Collection, Hashable
from dataclasses import dataclass
from typing import Any

from ..domain import errors
from ..domain import identity as rules
from ..domain.identity import OAuthError, Rejection, TokenRejected
from ..domain.principals import Principal, PrincipalType
from .directory import transitive_groups
from .identity_ports import DirectoryStore, KeyRing, ObjectRow, SecretHasher
from .ports import Clock

TOKEN_LIFETIME_SECONDS = 3600
LEEWAY_SECONDS = 60
REQUIRED_CLAIMS = ("iss", "aud", "exp", "nbf", "tid", "oid")
REMEMBERED_PRINCIPALS = 4096
# A principal read from the directory is reused while the directory's epoch stands, and at most this long (a bound
# for the case a process died between committing a write and announcing it).
REMEMBER_SECONDS = 30.0


def _b64url_json(value: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@dataclass(frozen=True)
class Audiences:
    """The audiences this authority issues for: ARM's two spellings and its own Graph resource."""

    graph: str

    @property
    def arm(self) -> tuple[str, ...]:
        return rules.ARM_AUDIENCES

    @property
    def all(self) -> tuple[str, ...]:
        return (*rules.ARM_AUDIENCES, self.graph)


class Authority:
    def __init__(
        self,
        store: DirectoryStore,
        keys: KeyRing,
        hasher: SecretHasher,
        clock: Clock,
        public_url: str,
        lifetime: int = TOKEN_LIFETIME_SECONDS,
    ):
        self.store = store
        self.keys = keys
        self.hasher = hasher
        self.clock = clock
        self.public_url = public_url.rstrip("/")
        self.lifetime = lifetime
        self.audiences = Audiences(graph=self.public_url + "/")
        # (object id, tenant, subscription) -> (directory epoch, monotonic time read, principal): `remembered`
        self._principals: OrderedDict[tuple[str, str, str | None], tuple[Hashable, float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    def issuer(self, tenant_id: str) -> str:
        return f"{self.public_url}/{tenant_id}/v2.0"

    # -- issuing ---------------------------------------------------------------------------------------------
    def token(self, tenant_segment: str, form: dict[str, str]) -> dict[str, Any]:
        """The token endpoint: the reply body for a form, or OAuthError."""
        grant = form.get("grant_type")
        if grant == "client_credentials":
            return self._client_credentials(tenant_segment, form)
        if grant == "password":
            return self._password(tenant_segment, form)
        raise OAuthError(
            400,
            "unsupported_grant_type",
            70003,
            f"The grant type '{(grant or '')[:64]}' is not supported; use client_credentials or password.",
        )

    def _client_credentials(self, tenant_segment: str, form: dict[str, str]) -> dict[str, Any]:
        tenant = rules.token_tenant(tenant_segment, allow_multi=False)
        assert tenant is not None
        client_id = self._client_id(form)
        secret = form.get("client_secret")
        if not secret:
            raise OAuthError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        audience, _ = rules.requested_audience(form.get("scope"), self.audiences.all)
        with self.store.read() as tx:
            self._known_tenant(tx.tenant(tenant) is not None, tenant)
            app = tx.application(client_id)
            sp = tx.service_principal(tenant, client_id)
            groups = transitive_groups(tx, sp.object_id) if sp else frozenset()
        if app is None or sp is None:
            raise OAuthError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.",
            )
        if not self.hasher.verify(app.secret_hash, secret):
            raise OAuthError(401, "invalid_client", 7000215, "Invalid client secret provided.")
        claims = self._claims(sp, audience, client_id, groups)
        claims["idtyp"] = "app"
        return self._reply(self.keys.sign(claims))

    def _password(self, tenant_segment: str, form: dict[str, str]) -> dict[str, Any]:
        tenant = rules.token_tenant(tenant_segment, allow_multi=True)
        client_id = self._client_id(form)
        username, password = form.get("username"), form.get("password")
        for name, value in (("username", username), ("password", password)):
            if not value:
                raise OAuthError(
                    400, "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'."
                )
        assert username is not None and password is not None
        audience, oidc = rules.requested_audience(form.get("scope"), self.audiences.all)
        with self.store.read() as tx:
            if tenant is not None:
                self._known_tenant(tx.tenant(tenant) is not None, tenant)
            user = tx.user_by_upn(rules.upn_key(username))
            if user is not None and tenant is not None and user.tenant_id != tenant:
                user = None
            groups = transitive_groups(tx, user.object_id) if user else frozenset()
        if user is None:
            raise OAuthError(
                400,
                "invalid_grant",
                50034,
                f"The user account {username[:120]} does not exist in the {tenant or 'organizations'} directory.",
            )
        if not user.secret_hash or not self.hasher.verify(user.secret_hash, password):
            raise OAuthError(
                400, "invalid_grant", 50126, "Error validating credentials due to invalid username or password."
            )
        claims = self._claims(user, audience, client_id, groups)
        claims |= {
            "idtyp": "user",
            "upn": user.name,
            "unique_name": user.name,
            "preferred_username": user.name,
            "scp": "user_impersonation",
        }
        reply = self._reply(self.keys.sign(claims))
        now = int(self.clock())
        reply["id_token"] = self.keys.sign(
            {
                "iss": self.issuer(user.tenant_id),
                "aud": client_id,
                "sub": user.object_id,
                "oid": user.object_id,
                "tid": user.tenant_id,
                "preferred_username": user.name,
                "name": user.name,
                "iat": now,
                "nbf": now,
                "exp": now + self.lifetime,
                "ver": "2.0",
            }
        )
        reply["client_info"] = _b64url_json({"uid": user.object_id, "utid": user.tenant_id})
        reply["scope"] = " ".join([f"{audience}.default", *oidc])
        return reply

    def _claims(self, who: ObjectRow, audience: str, client_id: str, groups: frozenset[str]) -> dict[str, Any]:
        now = int(self.clock())
        return {
            "aud": audience,
            "iss": self.issuer(who.tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "tid": who.tenant_id,
            "oid": who.object_id,
            "sub": who.object_id,
            "appid": client_id,
            "azp": client_id,
            "name": who.name,
            "groups": sorted(groups),
            "uti": str(uuid.uuid4()),
            "ver": "2.0",
        }

    def _reply(self, access_token: str) -> dict[str, Any]:
        return {
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "ext_expires_in": self.lifetime,
            "access_token": access_token,
        }

    @staticmethod
    def _client_id(form: dict[str, str]) -> str:
        value = form.get("client_id") or ""
        try:
            return rules.guid(value, "client_id")
        except errors.ArmError:
            raise OAuthError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{value[:64]}' was not found: a client id is a GUID.",
            ) from None

    @staticmethod
    def _known_tenant(known: bool, tenant: str) -> None:
        if not known:
            raise OAuthError(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")

    # -- discovery -------------------------------------------------------------------------------------------
    def user_realm(self, username: str) -> dict[str, Any]:
        """MSAL's user-realm lookup: every user here is managed (password grant, no federation)."""
        domain = username.rpartition("@")[2] or username
        return {
            "ver": "1.0",
            "account_type": "Managed",
            "domain_name": domain,
            "cloud_instance_name": "vmgallery",
            "cloud_audience_urn": "urn:federation:vmgallery",
        }

    # -- checking --------------------------------------------------------------------------------------------
    def authenticate(self, token: str, audiences: Collection[str], subscription: str | None = None) -> Principal:
        """The principal a bearer token stands for, if it is valid for one of `audiences`; TokenRejected saying why
        otherwise. With `subscription` (a call under /subscriptions/{id}), SubscriptionNotFound unless a tenant has
        it, read in the same query. (The admin token never comes here: it may still use any GUID as a
        subscription, as the directory's tests and scripts from before the directory do.)"""
        claims = self._valid_claims(self.keys.verify(token), audiences)
        return self._principal(claims, subscription)

    def remembered(self, token: str, audiences: Collection[str], subscription: str | None = None) -> Principal | None:
        """`authenticate` from memory alone, without blocking (for the event loop): the token's signature checked
        before, and its principal read since the directory last changed (`DirectoryStore.epoch`) and less than
        `REMEMBER_SECONDS` ago. TokenRejected as `authenticate`; None when the full check must run."""
        raw = self.keys.remembered(token)
        if raw is None:
            return None
        claims = self._valid_claims(raw, audiences)
        key = (str(claims["oid"]), str(claims["tid"]), subscription.lower() if subscription is not None else None)
        with self._lock:
            hit = self._principals.get(key)
        if hit is None:
            return None
        epoch, at, principal = hit
        if epoch != self.store.epoch() or time.monotonic() - at > REMEMBER_SECONDS:
            return None
        return principal

    def _valid_claims(self, claims: dict[str, Any], audiences: Collection[str]) -> dict[str, Any]:
        for name in REQUIRED_CLAIMS:
            if name not in claims:
                raise TokenRejected(Rejection.MALFORMED, f"the token has no '{name}' claim.")
        now = self.clock()
        exp, nbf = claims["exp"], claims["nbf"]
        if not isinstance(exp, int | float) or not isinstance(nbf, int | float):
            raise TokenRejected(Rejection.MALFORMED, "'exp' and 'nbf' must be numbers of seconds.")
        if now > exp + LEEWAY_SECONDS:
            raise TokenRejected(Rejection.EXPIRED, f"the token expired at {_iso(exp)}; the time is {_iso(now)}.")
        if now + LEEWAY_SECONDS < nbf:
            raise TokenRejected(
                Rejection.NOT_YET_VALID, f"the token is not valid before {_iso(nbf)}; the time is {_iso(now)}."
            )
        tenant = str(claims["tid"])
        if claims["iss"] != self.issuer(tenant):
            raise TokenRejected(
                Rejection.WRONG_ISSUER,
                f"the issuer '{str(claims['iss'])[:200]}' is not this authority's '{self.issuer(tenant)}'.",
            )
        if claims["aud"] not in audiences:
            raise TokenRejected(
                Rejection.WRONG_AUDIENCE,
                f"the audience '{str(claims['aud'])[:200]}' is not accepted here; use {' or '.join(audiences)}.",
            )
        return claims

    def _principal(self, claims: dict[str, Any], subscription: str | None) -> Principal:
        """The token's principal as the directory holds it now (one read), remembered for `remembered`."""
        oid, tenant = str(claims["oid"]), str(claims["tid"])
        sub = None
        if subscription is not None:
            with contextlib.suppress(errors.ArmError):  # an invalid id is refused below, after the principal
                sub = rules.guid(subscription, "subscriptionId")
        epoch = self.store.epoch()  # before the read: a write committed during it changes the epoch
        found = self.store.caller(oid, sub)
        row = found.object
        if row is None or row.tenant_id != tenant or row.type is PrincipalType.GROUP:
            raise TokenRejected(
                Rejection.UNKNOWN_PRINCIPAL, f"the principal '{oid[:64]}' no longer exists in tenant '{tenant}'."
            )
        if subscription is not None:
            sub = rules.guid(subscription, "subscriptionId")  # InvalidParameter for an invalid one
            if not found.subscription_exists:
                raise rules.SubscriptionNotFound(f"The subscription '{sub}' could not be found.", "subscriptionId")
        principal = Principal(
            object_id=oid,
            tenant_id=tenant,
            type=row.type,
            group_ids=found.groups,
            app_id=row.app_id,
            name=row.name,
        )
        key = (oid, tenant, subscription.lower() if subscription is not None else None)
        with self._lock:
            self._principals[key] = (epoch, time.monotonic(), principal)
            self._principals.move_to_end(key)
            if len(self._principals) > REMEMBERED_PRINCIPALS:
                self._principals.popitem(last=False)
        return principal
