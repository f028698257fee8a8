"""The signing keys in the data dir: made once, shared by every process on the data dir, rotated with the old key
verifying (and in the JWKS) for its tokens' lifetime and then gone."""

from __future__ import annotations

import pytest

from vmgallery.adapters.identity.hashing import Argon2Hasher
from vmgallery.adapters.identity.keys import SigningKeys
from vmgallery.domain.identity import Rejection, TokenRejected


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def kids(ring: SigningKeys) -> set[str]:
    return {k["kid"] for k in ring.jwks()["keys"]}


def test_rotation_keeps_old_tokens_valid_until_retention_ends(tmp_path):
    clock = Clock()
    ring = SigningKeys(tmp_path / "keys", clock, retain_seconds=3660)
    old = ring.sign({"x": 1})
    assert ring.verify(old) == {"x": 1}
    first = kids(ring)
    assert len(first) == 1 and (tmp_path / "keys" / f"{next(iter(first))}.pem").stat().st_mode & 0o777 == 0o600

    other_process = SigningKeys(tmp_path / "keys", clock, retain_seconds=3660)
    assert kids(other_process) == first  # made once, not once per process

    new_kid = ring.rotate()
    assert kids(ring) == first | {new_kid}
    new = ring.sign({"x": 2})
    assert ring.verify(old) == {"x": 1} and ring.verify(new) == {"x": 2}
    # the other process learns of the rotation from the data dir: it verifies the new key and signs with it
    assert other_process.verify(new) == {"x": 2}
    assert other_process.verify(other_process.sign({"x": 3})) == {"x": 3}
    assert kids(other_process) == first | {new_kid}

    clock.now += 3661
    assert kids(ring) == {new_kid}
    with pytest.raises(TokenRejected) as refused:
        ring.verify(old)
    assert refused.value.reason is Rejection.UNKNOWN_KEY
    ring.rotate()  # prunes what is past retention from the disk
    assert not (tmp_path / "keys" / f"{next(iter(first))}.pem").exists()


def test_malformed_tokens(tmp_path):
    ring = SigningKeys(tmp_path / "keys", Clock(), retain_seconds=60)
    for token in ("", "a.b", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.AAAA"):
        with pytest.raises(TokenRejected) as refused:
            ring.verify(token)
        assert refused.value.reason in (Rejection.MALFORMED, Rejection.UNKNOWN_KEY), token
    good = ring.sign({"x": 1})
    head, body, sig = good.split(".")
    with pytest.raises(TokenRejected) as refused:
        ring.verify(f"{head}.{body}x.{sig}")
    assert refused.value.reason in (Rejection.BAD_SIGNATURE, Rejection.MALFORMED)


def test_hashes_check_and_do_not_contain_the_secret():
    hasher = Argon2Hasher()
    hashed = hasher.hash("s3cret-value")
    assert "s3cret-value" not in hashed and hashed.startswith("$argon2id$")
    assert hasher.verify(hashed, "s3cret-value") and not hasher.verify(hashed, "s3cret-valuE")
    assert not hasher.verify("not a hash", "s3cret-value")


def test_a_checked_signature_is_remembered_and_nothing_else(tmp_path):
    clock = Clock()
    ring = SigningKeys(tmp_path / "keys", clock, retain_seconds=60)
    token = ring.sign({"x": 1})
    assert ring.remembered(token) is None  # never checked
    assert ring.verify(token) == {"x": 1}
    assert ring.remembered(token) == {"x": 1}
    altered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert ring.remembered(altered) is None
    with pytest.raises(TokenRejected) as refused:
        ring.verify(altered)
    assert refused.value.reason is Rejection.BAD_SIGNATURE
    ring.rotate()
    clock.now += 61  # the key that signed it is past retention: remembering it does not keep it valid
    assert ring.remembered(token) is None
    with pytest.raises(TokenRejected):
        ring.verify(token)
