"""`vmgallery login`: check that a server answers with the given credentials, then save them as the profile."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from . import arm
from .client import ArmClient, CliError, Fixes
from .options import Endpoint, Subscription
from .profile import ProfileError, resolve, save

FIXES = Fixes(
    token="give --data-dir (the server's data dir, which holds admin-token), --token or --token-file, "
    "or set VMGALLERY_TOKEN",
    trust="give --data-dir (the server's data dir, which holds tls/cert.pem) or --ca-bundle",
)


def _from_data_dir(data_dir: Path, token: str | None, ca_bundle: str | None) -> tuple[str, str | None]:
    """The token and CA bundle a server wrote into its data dir, where not given by flags."""
    token_path, cert_path = data_dir / "admin-token", data_dir / "tls" / "cert.pem"
    if not token:
        if not token_path.is_file():
            raise CliError(
                f"--data-dir: {token_path} does not exist; give the --data-dir the server runs with (it writes "
                "admin-token there when it first starts).",
                "InvalidArgumentValue",
            )
        token = token_path.read_text().strip()
    if not ca_bundle and cert_path.is_file():
        ca_bundle = str(cert_path.absolute())
    return token, ca_bundle


def login(
    endpoint: Endpoint = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="The server's data dir: take its admin-token and tls/cert.pem (--token and --ca-bundle win).",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", help="Bearer token (default: VMGALLERY_TOKEN, then the local server's admin token)."),
    ] = None,
    token_file: Annotated[Path | None, typer.Option("--token-file", help="Read the token from this file.")] = None,
    ca_bundle: Annotated[
        Path | None,
        typer.Option("--ca-bundle", help="PEM file of the CA (or self-signed certificate) to trust for this server."),
    ] = None,
    subscription: Subscription = None,
) -> None:
    """Check a server and save where it is and how to reach it, for later commands."""
    if token and token_file:
        raise typer.BadParameter("give --token or --token-file, not both")
    try:
        if token_file:
            token = token_file.read_text().strip()
        ca = os.path.abspath(ca_bundle) if ca_bundle else None
        if data_dir:
            token, ca = _from_data_dir(data_dir, token, ca)
        profile = resolve(endpoint=endpoint, token=token, ca_bundle=ca, subscription=subscription)
        with ArmClient(profile, fixes=FIXES) as client:
            client.send("GET", "/healthz")
            client.list(arm.groups(profile.subscription), arm.GROUP_API)
        path = save(profile)
    except OSError as exc:
        typer.echo(f"Cannot read {exc.filename}: {exc.strerror}.", err=True)
        raise typer.Exit(1) from None
    except (CliError, ProfileError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Logged in to {profile.endpoint}; profile saved in {path}", err=True)
    typer.echo(
        json.dumps(
            {"endpoint": profile.endpoint, "subscription": profile.subscription, "caBundle": profile.ca_bundle},
            indent=2,
            sort_keys=True,
        )
    )
