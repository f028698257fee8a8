"""`vmgallery login`: check that a server answers with the given credentials, then save them as the profile; with
`--service-principal -u APP_ID -p SECRET --tenant T` (as az spells it), sign in as that principal at the server's own
authority, so later commands act as it, under its role assignments, instead of with the admin token."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Annotated

import typer

from . import arm
from .account import account
from .client import ArmClient, CliError, Fixes
from .credentials import signed_in
from .options import Endpoint, Subscription
from .profile import ENV_SUBSCRIPTION, Profile, ProfileError, resolve, save

ENV_CLIENT_SECRET = "AZURE_CLIENT_SECRET"  # what az and azure-identity read
SUBSCRIPTIONS_API = "2022-12-01"

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


def _service_principal(profile: Profile, tenant: str, client_id: str, secret: str, subscription: str | None) -> Profile:
    """Sign in as the principal, and pick its subscription as az does: the one given, else the first it can see."""
    profile = signed_in(profile, tenant, client_id, secret)
    with ArmClient(profile, fixes=FIXES) as client:
        visible = client.list("/subscriptions", SUBSCRIPTIONS_API)
    chosen = subscription or os.environ.get(ENV_SUBSCRIPTION)
    if not chosen:
        enabled = [s["subscriptionId"] for s in visible if s.get("state", "Enabled") == "Enabled"]
        if not enabled:
            raise CliError(
                f"No subscriptions found for '{client_id}' in tenant '{tenant}': give --subscription, or assign the "
                "service principal a role on one.",
                "SubscriptionNotFound",
            )
        chosen = enabled[0]
    return dataclasses.replace(profile, subscription=chosen)


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
    service_principal: Annotated[
        bool, typer.Option("--service-principal", help="Sign in as a service principal (-u, -p, --tenant).")
    ] = False,
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="The service principal's application (client) id.")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            "-p",
            help=f"The service principal's secret (default: {ENV_CLIENT_SECRET}, else a prompt).",
        ),
    ] = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="The tenant the service principal signs in to.")
    ] = None,
) -> None:
    """Check a server and save where it is and how to reach it, for later commands."""
    if token and token_file:
        raise typer.BadParameter("give --token or --token-file, not both")
    if service_principal:
        if token or token_file:
            raise typer.BadParameter("--service-principal signs in with -u and -p, not --token or --token-file")
        if not username or not tenant:
            raise typer.BadParameter("--service-principal needs --username (-u) APP_ID and --tenant")
        password = password or os.environ.get(ENV_CLIENT_SECRET) or typer.prompt("Password", hide_input=True)
    elif username or password or tenant:
        raise typer.BadParameter("-u, -p and --tenant sign in a service principal: add --service-principal")
    try:
        if token_file:
            token = token_file.read_text().strip()
        ca = os.path.abspath(ca_bundle) if ca_bundle else None
        if service_principal:
            assert username and tenant and password
            if data_dir and not ca and (data_dir / "tls" / "cert.pem").is_file():
                ca = str((data_dir / "tls" / "cert.pem").absolute())
            # The server and CA as for any login; the token comes from the authority.
            base = resolve(endpoint=endpoint, ca_bundle=ca, subscription=subscription)
            profile = _service_principal(base, tenant, username, password, subscription)
        else:
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
    if profile.service_principal:
        typer.echo(json.dumps(account(profile), indent=2, sort_keys=True))
        return
    typer.echo(
        json.dumps(
            {"endpoint": profile.endpoint, "subscription": profile.subscription, "caBundle": profile.ca_bundle},
            indent=2,
            sort_keys=True,
        )
    )
