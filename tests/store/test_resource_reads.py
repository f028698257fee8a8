"""The resource reads that run at the driver (a plain GET's one statement, a transaction's hot reads), on both
databases: they give what was written, JSON and all, and nothing for what is not there."""

from __future__ import annotations

from vmgallery.app.ports import ResourceRow

BODY = {
    "id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/gal/images/def",
    "name": "def",
    "properties": {"identifier": {"publisher": "p", "offer": "o", "sku": "ü"}, "recommended": {"vCPUs": {"max": 8}}},
    "tags": {"empty": "", "list": [1, 2.5, None, True]},
}


def _insert(tx, key: str, natural: str | None, location: str = "eastus") -> None:
    tx.insert(
        key=key,
        type="microsoft.compute/galleries/images",
        parent_key="/gal",
        subscription="s",
        group_key="/g",
        location=location,
        natural_key=natural,
        state="Succeeded",
        body=BODY,
        now=1.0,
    )


def test_reads_at_the_driver_give_what_was_written(db):
    with db.write() as tx:
        _insert(tx, "/gal/def", "p/o/ü")
        _insert(tx, "/gal/other", "p/o/x")
        _insert(tx, "/gal/far", "p/o/y", location="westus")
    expected = ResourceRow(
        seq=1,
        key="/gal/def",
        type="microsoft.compute/galleries/images",
        parent_key="/gal",
        location="eastus",
        natural_key="p/o/ü",
        state="Succeeded",
        body=BODY,
    )
    assert db.resource("/gal/def") == expected
    assert db.resource("/gal/missing") is None
    with db.write() as tx:
        assert tx.get("/gal/def") == expected
        assert tx.get("/gal/def", for_update=True) == expected
        assert tx.get("/gal/missing", for_update=True) is None
        assert tx.find_natural("/gal", "microsoft.compute/galleries/images", "p/o/ü") == expected
        assert tx.find_natural("/gal", "microsoft.compute/galleries/images", "p/o/z") is None
        assert tx.count_in_region("s", "eastus", "microsoft.compute/galleries/images") == 2
        assert tx.count_in_region("s", "westus", "microsoft.compute/galleries/images") == 1
        assert tx.count_in_region("other", "eastus", "microsoft.compute/galleries/images") == 0
        tx.update("/gal/def", state="Updating", body={**BODY, "tags": {}}, now=2.0)
        assert tx.get("/gal/def") == ResourceRow(
            **{**expected.__dict__, "state": "Updating", "body": {**BODY, "tags": {}}}
        )
    with db.read() as tx:
        assert tx.get("/gal/other").key == "/gal/other"
