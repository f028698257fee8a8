"""Raw ARM calls for the rule tests: build paths, send requests, wait for operations, and check ARM errors.

The SDK hides status codes and error targets; these helpers let a test assert the exact wire answer.
"""

from __future__ import annotations

import time
import uuid

import httpx

GALLERY_API = "2025-03-03"
GROUP_API = "2021-04-01"


def assert_error(resp: httpx.Response, status: int, code: str, target: str | None, *mentions: str) -> dict:
    """The response is the ARM error `code` at `status`, aimed at `target`, whose message names each of `mentions`."""
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code, error
    assert error.get("target") == target, error
    for text in mentions:
        assert str(text) in error["message"], (text, error["message"])
    return error


class Arm:
    """One subscription's view of the server, over plain HTTPS."""

    def __init__(self, http: httpx.Client, subscription: str):
        self.http = http
        self.subscription = subscription

    def group_path(self, group: str) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{group}"

    def gallery_path(self, group: str, gallery: str) -> str:
        return f"{self.group_path(group)}/providers/Microsoft.Compute/galleries/{gallery}"

    def image_path(self, group: str, gallery: str, image: str) -> str:
        return f"{self.gallery_path(group, gallery)}/images/{image}"

    # -- plain requests ----------------------------------------------------------------------------------------
    def _api(self, path: str) -> str:
        return GROUP_API if "/providers/" not in path else GALLERY_API

    def request(self, method: str, path: str, body: dict | None = None, api: str | None = None) -> httpx.Response:
        params = {"api-version": api or self._api(path)}
        return self.http.request(method, path, params=params, json=body)

    def put(self, path: str, body: dict, api: str | None = None) -> httpx.Response:
        return self.request("PUT", path, body, api)

    def patch(self, path: str, body: dict, api: str | None = None) -> httpx.Response:
        return self.request("PATCH", path, body, api)

    def get(self, path: str, api: str | None = None) -> httpx.Response:
        return self.request("GET", path, None, api)

    def delete(self, path: str, api: str | None = None) -> httpx.Response:
        return self.request("DELETE", path, None, api)

    def state(self, path: str) -> dict | None:
        """The resource as GET shows it, or None if it does not exist."""
        resp = self.get(path)
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, resp.text
        return resp.json()

    def names(self, list_path: str) -> list[str]:
        resp = self.get(list_path)
        assert resp.status_code == 200, resp.text
        return [r["name"] for r in resp.json()["value"]]

    # -- writes that must succeed ------------------------------------------------------------------------------
    def done(self, resp: httpx.Response) -> httpx.Response:
        """Wait for the operation behind a write, if it is still running; fail on any error."""
        assert resp.status_code in (200, 201, 202, 204), resp.text
        status_url = resp.headers.get("Azure-AsyncOperation")
        if status_url:
            deadline = time.monotonic() + 30
            while True:
                status = self.http.get(status_url).json()
                if status["status"] != "InProgress":
                    break
                assert time.monotonic() < deadline, status
                time.sleep(0.05)
            assert status["status"] == "Succeeded", status
        return resp

    def make_group(self, location: str = "eastus") -> str:
        name = f"rg-{uuid.uuid4().hex[:8]}"
        resp = self.put(self.group_path(name), {"location": location})
        assert resp.status_code in (200, 201), resp.text
        return name

    def make_gallery(self, group: str, name: str | None = None, body: dict | None = None) -> str:
        name = name or f"gal{uuid.uuid4().hex[:8]}"
        self.done(self.put(self.gallery_path(group, name), body or {"location": "eastus"}))
        return name

    def make_image(self, group: str, gallery: str, name: str, body: dict) -> dict:
        self.done(self.put(self.image_path(group, gallery, name), body))
        return self.state(self.image_path(group, gallery, name))

    def remove(self, path: str) -> None:
        self.done(self.delete(path))
        assert self.state(path) is None
