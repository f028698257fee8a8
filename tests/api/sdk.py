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


def _client(cls, server, subscription: str, **kwargs):
    kwargs.setdefault("polling_interval", 0)
    return cls(
        StaticToken(server.token),
        subscription,
        base_url=server.url,
        credential_scopes=["https://management.azure.com/.default"],
        connection_verify=server.ca,
        **kwargs,
    )


def compute_client(server, subscription: str, **kwargs) -> ComputeManagementClient:
    return _client(ComputeManagementClient, server, subscription, **kwargs)


def resource_client(server, subscription: str) -> ResourceManagementClient:
    return _client(ResourceManagementClient, server, subscription)


def imagebuilder_client(server, subscription: str) -> ImageBuilderClient:
    return _client(ImageBuilderClient, server, subscription)
