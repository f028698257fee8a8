"""Crashes lose nothing: kill -9 of the server mid-create, restart on the same data dir, workers in other processes."""

from __future__ import annotations

import random
import threading
import time
import uuid

import httpx

from ..api.sdk import compute_client

API = "api-version=2026-03-03"
QUICK_ANSWER = "sync_wait_seconds = 0\n"


def _group(client: httpx.Client, sub: str, rg: str) -> None:
    r = client.put(f"/subscriptions/{sub}/resourceGroups/{rg}?api-version=2024-11-01", json={"location": "eastus"})
    assert r.status_code in (200, 201), r.text


def _gallery_path(sub: str, rg: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/galleries/{name}?{API}"


def _wait_operation(client: httpx.Client, url: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(url).json()
        if body["status"] != "InProgress" or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_create_left_in_progress_by_a_kill_finishes_after_restart(make_server):
    sub, rg = str(uuid.uuid4()), "rg"
    srv = make_server(QUICK_ANSWER, ("--workers", "0"))
    with srv.http() as client:
        _group(client, sub, rg)
        r = client.put(_gallery_path(sub, rg, "g1"), json={"location": "eastus"})
        assert r.status_code == 201
        assert r.json()["properties"]["provisioningState"] == "Creating"
        status_url = r.headers["Azure-AsyncOperation"]
        assert client.get(status_url).json()["status"] == "InProgress"
        assert client.get(r.headers["Location"]).status_code == 202
    srv.kill()

    srv = make_server()
    with srv.http() as client:
        status_url = srv.url + "/subscriptions" + status_url.split("/subscriptions", 1)[1]
        assert _wait_operation(client, status_url)["status"] == "Succeeded"
        got = client.get(_gallery_path(sub, rg, "g1"))
        assert got.status_code == 200
        assert got.json()["properties"]["provisioningState"] == "Succeeded"


def test_sdk_polls_until_a_separate_worker_process_finishes(make_server):
    sub = str(uuid.uuid4())
    srv = make_server(QUICK_ANSWER, ("--workers", "0"))
    with srv.http() as client:
        _group(client, sub, "rg")
    with compute_client(srv, sub) as compute:
        poller = compute.galleries.begin_create_or_update("rg", "g1", {"location": "eastus"})
        assert poller.status() != "Succeeded"
        assert compute.galleries.get("rg", "g1").provisioning_state == "Creating"
        make_server.worker()
        assert poller.result(timeout=60).provisioning_state == "Succeeded"
        poller = compute.galleries.begin_delete("rg", "g1")
        poller.result(timeout=60)
        assert [g.name for g in compute.galleries.list_by_resource_group("rg")] == []


def test_random_kills_during_creates_leave_finished_or_absent_galleries(make_server):
    rounds = 3
    sub, rg = str(uuid.uuid4()), "rg"
    acknowledged: set[str] = set()
    attempted: set[str] = set()
    srv = make_server("[limits]\ngalleries_per_region = 100000\n")
    with srv.http() as client:
        _group(client, sub, rg)
    rng = random.Random(7)
    for round_ in range(rounds):
        stop = threading.Event()

        def writer(n: int) -> None:
            with srv.http() as client:
                i = 0
                while not stop.is_set():
                    name = f"g{round_}x{n}x{i}"
                    i += 1
                    attempted.add(name)
                    try:
                        r = client.put(_gallery_path(sub, rg, name), json={"location": "eastus"})
                    except httpx.HTTPError:
                        return
                    if r.status_code in (200, 201):
                        acknowledged.add(name)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.3, 1.2))  # the kill must land at an arbitrary point of the work
        srv.kill()
        stop.set()
        for t in threads:
            t.join()
        srv = make_server()

    with srv.http() as client:
        listed: dict[str, str] = {}
        url = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/galleries?{API}"
        deadline = time.monotonic() + 30
        while True:
            listed.clear()
            next_url: str | None = url
            while next_url:
                page = client.get(next_url).json()
                listed.update({g["name"]: g["properties"]["provisioningState"] for g in page["value"]})
                next_url = page.get("nextLink")
            if all(s == "Succeeded" for s in listed.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert acknowledged, "the writers never got an answer"
    assert acknowledged <= set(listed), f"acknowledged creates lost: {sorted(acknowledged - set(listed))[:5]}"
    assert set(listed) <= attempted
    assert set(listed.values()) == {"Succeeded"}
