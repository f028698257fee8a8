"""An upload's chunk rows on the real metadata database (both backends): the compare-and-set a page write commits."""

from __future__ import annotations

A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_swaps_commit_what_matches_and_name_what_another_writer_changed(db):
    with db.write() as tx:
        assert tx.swap_upload_chunks("/d", [(0, None, A), (1, None, B), (7, None, C)]) == []
    with db.write() as tx:
        lost = tx.swap_upload_chunks(
            "/d",
            [
                (1, None, C),  # a fresh insert where another writer put B first
                (2, None, A),  # fresh
                (0, A, B),  # update on the right digest
                (7, B, A),  # update based on a digest that is not there
                (5, C, None),  # delete of a row that does not exist
                (3, None, None),  # stays a hole, and is one
            ],
        )
        assert sorted(lost) == [1, 5, 7]
    with db.write() as tx:
        assert tx.swap_upload_chunks("/d", [(7, C, None), (1, None, None)]) == [1]
    with db.read() as tx:
        assert tx.upload_span("/d", 0, 7) == {0: B, 1: B, 2: A}
        assert tx.upload_span("/d", 1, 1) == {1: B}
        assert tx.upload_span("/other", 0, 7) == {}
