"""Passwords and client secrets, stored as Argon2id hashes (app.identity_ports.SecretHasher).

OWASP's minimum Argon2id parameters (19 MiB, 2 passes, 1 lane): about 50 ms a check on a loaded 2-core machine
(argon2-cffi's 64 MiB default took 270 ms), paid once per token request (clients keep a token for its hour), never
per ARM call. A hash carries its parameters, so raising them later keeps old hashes valid.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Argon2Hasher:
    def __init__(self) -> None:
        self._hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

    def hash(self, secret: str) -> str:
        return self._hasher.hash(secret)

    def verify(self, hashed: str, secret: str) -> bool:
        try:
            return self._hasher.verify(hashed, secret)
        except (VerificationError, InvalidHashError):
            return False
