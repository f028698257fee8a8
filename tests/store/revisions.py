"""The head of the package's Alembic migrations, read from the scripts: what a migrated database must be at, without
a revision number to update with every new migration."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory

from vmgallery.adapters.db.store import MIGRATIONS


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None, "the migrations have more than one head"
    return head
