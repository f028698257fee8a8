"""Bootstrap credentials: the admin bearer token and the self-signed TLS certificate, made once per data dir; and
the SAS signer of disk grants (`app.ports.Signer`), an HMAC-SHA256 over the grant with the server's SAS key.

Both are written atomically (temporary file, fsync, rename), so a crash never leaves half a key behind.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import os
import secrets
import time
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..app.ports import SasDenied

SAS_VERSION = "2021-08-06"


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def ensure_admin_token(path: Path) -> str:
    if not path.exists():
        write_atomic(path, (secrets.token_urlsafe(32) + "\n").encode(), 0o600)
    return path.read_text().strip()


def ensure_secret(path: Path) -> bytes:
    """A random 32-byte key kept in the data dir (signs SAS URLs, so they survive restarts)."""
    if not path.exists():
        write_atomic(path, secrets.token_bytes(32), 0o600)
    return path.read_bytes()


def ensure_certificate(
    cert_path: Path, key_path: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
) -> bool:
    """Write a self-signed certificate for the loopback names unless one exists; True if one was made.

    It is its own CA (CA:TRUE, keyCertSign), so clients can name cert.pem as their CA bundle.
    """
    if cert_path.exists() and key_path.exists():
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "vmgallery local"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vmgallery"),
        ]
    )
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_atomic(
        key_path,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        0o600,
    )
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return True


class SasSigner:
    def __init__(self, key: bytes):
        self.key = key

    def signature(self, grant_id: str, permissions: str, expiry: int) -> str:
        mac = hmac.new(self.key, f"{grant_id}\n{permissions}\n{expiry}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def query(self, grant_id: str, permissions: str, expiry: int) -> str:
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiry))
        return (
            f"sv={SAS_VERSION}&sr=b&sp={permissions}&se={quote(expires)}&st={expiry}"
            f"&sig={self.signature(grant_id, permissions, expiry)}"
        )

    def check(self, grant_id: str, params: dict[str, str], now: float) -> str:
        """The permissions a URL's query carries; SasDenied unless it is authentic and unexpired."""
        try:
            permissions, expiry, sig = params["sp"], int(params["st"]), params["sig"]
        except (KeyError, ValueError):
            raise SasDenied("The URL is not a vmgallery SAS (sp, st and sig are required).") from None
        if not hmac.compare_digest(sig, self.signature(grant_id, permissions, expiry)):
            raise SasDenied("Signature did not match: the URL was altered or was not issued by this server.")
        if now > expiry:
            raise SasDenied(f"The SAS expired at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(expiry))}.")
        return permissions
