"""`vmgallery login`: check that a server answers with the given credentials, then save them as the profile."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from . import arm
from .client import ArmClient, CliError
from .options import Endpoint, Subscription
from .profile import ProfileError, resolve, save


def login(
    endpoint: Endpoint = None,
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
    if token_file:
        token = token_file.read_text().strip()
    try:
        profile = resolve(
            endpoint=endpoint,
            token=token,
            ca_bundle=os.path.abspath(ca_bundle) if ca_bundle else None,
            subscription=subscription,
        )
        with ArmClient(profile) as client:
            client.send("GET", "/healthz")
            client.list(arm.groups(profile.subscription), arm.GROUP_API)
        path = save(profile)
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
