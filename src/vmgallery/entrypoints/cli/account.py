"""`vmgallery account show` and `vmgallery logout`, as az spells them: who later commands act as (read from the
profile, no request), and forgetting the saved profile with its token and any service principal's secret."""

from __future__ import annotations

import time

import typer

from .client import COMMAND_FIXES
from .options import AzCommand, Endpoint, Output, Query, Subscription, sub_app
from .output import OutputFormat, emit
from .profile import Profile, ProfileError, forget, resolve

app = sub_app("Show the account the CLI uses.")
COLUMNS = (("EnvironmentName", "environmentName"), ("SubscriptionId", "id"), ("TenantId", "tenantId"))


def account(profile: Profile) -> dict:
    """az's account JSON for a profile; never its token nor a secret."""
    principal = profile.service_principal
    return {
        "environmentName": "vmgallery",
        "endpoint": profile.endpoint,
        "caBundle": profile.ca_bundle,
        "id": profile.subscription,
        "isDefault": True,
        "tenantId": principal.tenant if principal else None,
        "user": {"name": principal.client_id, "type": "servicePrincipal"}
        if principal
        else {"name": "bearer token", "type": "token"},
        "tokenExpiresOn": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(principal.expires_on)) if principal else None,
    }


@app.command(cls=AzCommand)
def show(
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Show the server, subscription and principal that later commands use."""
    try:
        profile = resolve(endpoint=endpoint, subscription=subscription)
    except ProfileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if not profile.token:
        typer.echo(f"No access token: {COMMAND_FIXES.token}.", err=True)
        raise typer.Exit(1)
    emit(account(profile), output, query, COLUMNS)


def logout() -> None:
    """Forget the saved profile: its server, token and any service principal's secret."""
    path = forget()
    if path is None:
        typer.echo("There are no active accounts: no saved profile to remove.", err=True)
        raise typer.Exit(1)
    typer.echo(f"Logged out; removed {path}", err=True)
