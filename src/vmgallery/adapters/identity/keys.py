"""The authority's signing keys (app.identity_ports.KeyRing): RSA keys in `DATA_DIR/signing-keys`, tokens as RS256
JWTs through PyJWT.

    signing-keys/
      keys.json        {"keys": [{"kid", "created", "retired"}, ...]}  oldest first; the last unretired one signs
      <kid>.pem        the private key (0600); kid = the RFC 7638 thumbprint of its public key
      .lock            serializes making and rotating keys between processes

Rotating makes a new key and retires the signing one; a retired key keeps verifying (and stays in the JWKS) for
`retain_seconds` after it stopped signing, so tokens it signed live out their hour, and is then deleted. Every
process sharing the data dir re-reads keys.json when it changes (checked on each signing, and when a token names a
key it does not know), so a rotation by one reaches all.

A signature, once checked, is remembered (`VERIFIED_TOKENS` of them, least recently used dropped first, keyed by the
token's SHA-256), so a client's next request with the same token costs no RSA work. Only the signature is
remembered: a hit still needs its key to be usable (rotation and retention apply as before), and the caller still
checks times, issuer, audience and the principal on every request.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from ...domain.identity import Rejection, TokenRejected
from ..security import write_atomic

ALGORITHM = "RS256"
KEY_BITS = 2048
VERIFIED_TOKENS = 4096


@dataclass(frozen=True)
class _Key:
    kid: str
    private: rsa.RSAPrivateKey
    public: rsa.RSAPublicKey
    created: float
    retired: float | None


def _thumbprint(public: rsa.RSAPublicKey) -> str:
    jwk = json.loads(RSAAlgorithm.to_jwk(public))
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode().rstrip("=")


class SigningKeys:
    def __init__(self, directory: Path, clock: Callable[[], float], retain_seconds: float):
        self.directory = directory
        self.clock = clock
        self.retain_seconds = retain_seconds
        self._index = directory / "keys.json"
        self._keys: dict[str, _Key] = {}
        self._active: _Key | None = None
        self._stamp: int | None = None
        self._verified: OrderedDict[bytes, tuple[str, dict[str, Any]]] = OrderedDict()
        self._verified_lock = threading.Lock()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._locked():
            index = self._read_index()
            if not any(entry["retired"] is None for entry in index):
                self._add_key(index)
        self._reload()

    # -- the ring on disk ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _read_index(self) -> list[dict[str, Any]]:
        if not self._index.exists():
            return []
        return list(json.loads(self._index.read_text())["keys"])

    def _add_key(self, index: list[dict[str, Any]]) -> str:
        """A new signing key; the one signing until now is retired. Caller holds the lock."""
        now = self.clock()
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        kid = _thumbprint(key.public_key())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_atomic(self.directory / f"{kid}.pem", pem, 0o600)  # before the index names it
        kept = []
        for entry in index:
            if entry["retired"] is None:
                entry = {**entry, "retired": now}
            if entry["retired"] + self.retain_seconds > now:
                kept.append(entry)
        kept.append({"kid": kid, "created": now, "retired": None})
        write_atomic(self._index, json.dumps({"keys": kept}, indent=1).encode(), 0o600)
        kept_kids = {entry["kid"] for entry in kept}
        for entry in index:
            if entry["kid"] not in kept_kids:
                (self.directory / f"{entry['kid']}.pem").unlink(missing_ok=True)
        return kid

    def _reload(self) -> None:
        stamp = self._index.stat().st_mtime_ns
        if stamp == self._stamp:
            return
        keys: dict[str, _Key] = {}
        for entry in self._read_index():
            kid = entry["kid"]
            cached = self._keys.get(kid)
            if cached is not None:
                keys[kid] = _Key(kid, cached.private, cached.public, entry["created"], entry["retired"])
                continue
            private = serialization.load_pem_private_key((self.directory / f"{kid}.pem").read_bytes(), None)
            assert isinstance(private, rsa.RSAPrivateKey)
            keys[kid] = _Key(kid, private, private.public_key(), entry["created"], entry["retired"])
        self._keys = keys
        self._active = next(k for k in reversed(keys.values()) if k.retired is None)
        self._stamp = stamp

    def rotate(self) -> str:
        """A new signing key (the kid); the previous one verifies for `retain_seconds` more."""
        with self._locked():
            kid = self._add_key(self._read_index())
        self._reload()
        return kid

    def _usable(self, key: _Key) -> bool:
        return key.retired is None or key.retired + self.retain_seconds > self.clock()

    # -- KeyRing -------------------------------------------------------------------------------------------------
    def sign(self, claims: dict[str, Any]) -> str:
        self._reload()
        assert self._active is not None
        return jwt.encode(claims, self._active.private, algorithm=ALGORITHM, headers={"kid": self._active.kid})

    def remembered(self, token: str) -> dict[str, Any] | None:
        digest = hashlib.sha256(token.encode()).digest()
        with self._verified_lock:
            hit = self._verified.get(digest)
            if hit is not None:
                self._verified.move_to_end(digest)
        if hit is not None:
            key = self._keys.get(hit[0])
            if key is not None and self._usable(key):
                return dict(hit[1])
        return None

    def verify(self, token: str) -> dict[str, Any]:
        remembered = self.remembered(token)
        if remembered is not None:
            return remembered
        digest = hashlib.sha256(token.encode()).digest()
        claims, kid = self._check_signature(token)
        with self._verified_lock:
            self._verified[digest] = (kid, claims)
            if len(self._verified) > VERIFIED_TOKENS:
                self._verified.popitem(last=False)
        return dict(claims)

    def _check_signature(self, token: str) -> tuple[dict[str, Any], str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise TokenRejected(Rejection.MALFORMED, f"it is not a JWT ({exc}).") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise TokenRejected(Rejection.UNSIGNED, "the token is not signed (alg: none); only RS256 is accepted.")
        if alg != ALGORITHM:
            raise TokenRejected(
                Rejection.UNSUPPORTED_ALGORITHM, f"the algorithm '{alg[:32]}' is not accepted; only RS256 is."
            )
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None and isinstance(kid, str):
            self._reload()
            key = self._keys.get(kid)
        if key is None or not self._usable(key):
            shown = str(kid)[:64]
            raise TokenRejected(
                Rejection.UNKNOWN_KEY, f"the signing key '{shown}' is not one of this authority's current keys."
            )
        try:
            claims = jwt.decode(
                token,
                key.public,
                algorithms=[ALGORITHM],
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise TokenRejected(
                Rejection.BAD_SIGNATURE, "the signature does not match: the token was forged or altered."
            ) from None
        except jwt.InvalidTokenError as exc:
            raise TokenRejected(Rejection.MALFORMED, f"it cannot be read ({exc}).") from None
        if not isinstance(claims, dict):
            raise TokenRejected(Rejection.MALFORMED, "its payload is not a JSON object.")
        return claims, key.kid

    def jwks(self) -> dict[str, Any]:
        self._reload()
        keys = []
        for key in self._keys.values():
            if not self._usable(key):
                continue
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public))
            keys.append({"kty": "RSA", "use": "sig", "alg": ALGORITHM, "kid": key.kid, "n": jwk["n"], "e": jwk["e"]})
        return {"keys": keys}
