"""What a build fetches: the bytes of a script or file a template names, from a configured storage account or an
https URL under an allowed prefix (the template's rules checked which, at creation; they are checked again here, as
configuration may have changed since). Only an operator's prefix lets a build reach an https host, whatever address
its name resolves to; redirects are not followed, so an allowed host cannot hand the fetch on to another."""

from __future__ import annotations

from collections.abc import Callable

from ..app.ports import StorageAccounts
from ..domain import image_builder as rules

MAX_BYTES = 256 << 20


class SourceFetcher:
    MAX_BYTES = MAX_BYTES

    def __init__(
        self, accounts: StorageAccounts, allowed_prefixes: list[str], own: Callable[[str], bytes] | None = None
    ):
        self.accounts = accounts
        self.allowed = allowed_prefixes
        self.own = own  # reads this server's own signed blob URLs in-process, whatever address they name

    def __call__(self, uri: str) -> bytes:
        account = self.accounts.account_for(uri)
        kind = rules.uri_kind(uri, account is not None, self.allowed, "uri")
        if kind == "account" and account is not None:
            blob = self.accounts.open_blob(account, uri)
            if blob.size > MAX_BYTES:
                raise ValueError(f"the blob is {blob.size} bytes; the limit is {MAX_BYTES}")
            return blob.read(0, blob.size)
        if kind == "own":
            if self.own is None:
                raise ValueError("this process cannot read the server's signed URLs")
            return self.own(uri)
        import httpx  # here: with the CLI extras it brings click, rich and pygments, which a server never needs

        with httpx.Client(timeout=60, follow_redirects=False) as client, client.stream("GET", uri) as response:
            response.raise_for_status()
            data = bytearray()
            for piece in response.iter_bytes():
                data += piece
                if len(data) > MAX_BYTES:
                    raise ValueError(f"the download exceeds {MAX_BYTES} bytes")
            return bytes(data)
