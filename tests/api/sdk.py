"""Real Azure SDK clients pointed at a test server over HTTPS (trusting its generated certificate)."""

from __future__ import annotations

import time

from azure.core.credentials import AccessToken
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.imagebuilder import ImageBuilderClient
from azure.mgmt.resource.resources import ResourceManagementClient


class StaticToken:
    """A TokenCredential holding the server's admin bearer token."""

    def __init__(self, token: str):
        self.token = token

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes, options=None):
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(self.token, int(time.time()) + 3600)


def compute_client(server, subscription: str, **kwargs) -> ComputeManagementClient:
    return ComputeManagementClient(
        StaticToken(server.token),
        subscription,
        base_url=server.url,
        credential_scopes=["https://management.azure.com/.default"],
        connection_verify=server.ca,
        polling_interval=kwargs.pop("polling_interval", 0),
        **kwargs,
    )


def resource_client(server, subscription: str) -> ResourceManagementClient:
    return ResourceManagementClient(
        StaticToken(server.token),
        subscription,
        base_url=server.url,
        credential_scopes=["https://management.azure.com/.default"],
        connection_verify=server.ca,
        polling_interval=0,
    )


def imagebuilder_client(server, subscription: str) -> ImageBuilderClient:
    return ImageBuilderClient(
        StaticToken(server.token),
        subscription,
        base_url=server.url,
        credential_scopes=["https://management.azure.com/.default"],
        connection_verify=server.ca,
        polling_interval=0,
    )
