from __future__ import annotations

import pytest

from vmgallery.adapters.db.store import Database

from ..conftest import PgDatabase


@pytest.fixture
def db(backend, tmp_path):
    pg = PgDatabase() if backend == "postgresql" else None
    database = Database(pg.url if pg else f"sqlite:///{tmp_path / 'm.db'}")
    database.migrate()
    yield database
    database.dispose()
    if pg:
        pg.drop()
