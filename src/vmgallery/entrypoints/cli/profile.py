"""Where the CLI finds its server, credentials and subscription, and the profile `vmgallery login` saves.

Each setting is resolved on its own, first match wins: command-line flag > environment variable > saved profile >
the local server's defaults (its data dir's admin token and TLS certificate, https://127.0.0.1:8443). So on the
machine that runs `vmgallery serve`, the CLI works with no setup at all.

After `vmgallery login --service-principal` the profile also holds the service principal's tenant, app id and secret
(the file is the user's alone, mode 0600, as az keeps its own) and when its access token expires: commands renew the
token from the server's authority before it does (see `credentials.py`), unless a flag or VMGALLERY_TOKEN names
another token.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ...paths import default_data_dir

DEFAULT_ENDPOINT = "https://127.0.0.1:8443"
# Subscriptions are plain GUID namespaces on a vmgallery server; scripts that never name one share this one.
DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"

ENV_ENDPOINT = "VMGALLERY_ENDPOINT"
ENV_TOKEN = "VMGALLERY_TOKEN"
ENV_CA_BUNDLE = "VMGALLERY_CA_BUNDLE"
ENV_SUBSCRIPTION = "VMGALLERY_SUBSCRIPTION"


class ProfileError(Exception):
    """The CLI cannot tell where or how to connect."""


@dataclass(frozen=True)
class ServicePrincipal:
    """Who `Profile.token` stands for after `login --service-principal`, and what renews it."""

    tenant: str
    client_id: str
    client_secret: str = field(repr=False)
    expires_on: float  # when the access token expires, in seconds since the epoch


@dataclass(frozen=True)
class Profile:
    endpoint: str
    token: str | None
    ca_bundle: str | None
    subscription: str
    service_principal: ServicePrincipal | None = None


def profile_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "vmgallery" / "profile.json"


def load_saved() -> dict:
    path = profile_path()
    if not path.exists():
        return {}
    try:
        saved = json.loads(path.read_text())
    except ValueError as exc:
        raise ProfileError(
            f"The saved profile {path} is not valid JSON ({exc}); run `vmgallery login` again."
        ) from None
    return saved if isinstance(saved, dict) else {}


def _write(saved: dict) -> Path:
    path = profile_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Created 0600 from the start: the token must never be readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(saved, f, indent=2)
    os.chmod(path, 0o600)
    return path


def save(profile: Profile) -> Path:
    return _write(asdict(profile))


def save_renewed(profile: Profile) -> None:
    """Keep a renewed service principal token in the saved profile, leaving its other settings as they were (the
    resolved profile may carry a flag's or the environment's endpoint or subscription)."""
    assert profile.service_principal is not None
    saved = load_saved()
    saved["token"] = profile.token
    saved["service_principal"] = asdict(profile.service_principal)
    _write(saved)


def forget() -> Path | None:
    """Delete the saved profile (`vmgallery logout`); its path, or None if there was none."""
    path = profile_path()
    if not path.exists():
        return None
    path.unlink()
    return path


def _service_principal(saved: dict) -> ServicePrincipal | None:
    value = saved.get("service_principal")
    if not value:
        return None
    try:
        return ServicePrincipal(**value)
    except TypeError:
        raise ProfileError(
            f"The saved profile {profile_path()} has a malformed service_principal; run `vmgallery login` again."
        ) from None


def _local_file(path: Path) -> str | None:
    return str(path) if path.is_file() else None


def resolve(
    endpoint: str | None = None, token: str | None = None, ca_bundle: str | None = None, subscription: str | None = None
) -> Profile:
    saved = load_saved()
    data_dir = default_data_dir()

    def pick(flag, env, key, local):
        return flag or os.environ.get(env) or saved.get(key) or local()

    def local_token():
        path = data_dir / "admin-token"
        return path.read_text().strip() if path.is_file() else None

    given_token = token or os.environ.get(ENV_TOKEN)
    return Profile(
        endpoint=pick(endpoint, ENV_ENDPOINT, "endpoint", lambda: DEFAULT_ENDPOINT).rstrip("/"),
        token=pick(token, ENV_TOKEN, "token", local_token),
        ca_bundle=pick(ca_bundle, ENV_CA_BUNDLE, "ca_bundle", lambda: _local_file(data_dir / "tls" / "cert.pem")),
        subscription=pick(subscription, ENV_SUBSCRIPTION, "subscription", lambda: DEFAULT_SUBSCRIPTION),
        # The saved principal goes with the saved token only: another token given is used as it is.
        service_principal=None if given_token else _service_principal(saved),
    )
