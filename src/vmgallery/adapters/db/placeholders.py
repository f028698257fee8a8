"""SQL sent at the driver is written with `?` placeholders, as sqlite3 takes them; psycopg wants `%s`."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy.engine import Engine


def mark(engine: Engine) -> str:
    """The placeholder the engine's driver takes."""
    return "?" if engine.dialect.paramstyle == "qmark" else "%s"


@lru_cache(maxsize=256)  # the statements are the module's constants and a few built from counts: a handful
def _for_psycopg(sql: str) -> str:
    return sql.replace("?", "%s")


def for_driver(sql: str, qmark: bool) -> str:
    """`sql` with the placeholders of a driver that takes `?` (qmark) or `%s`."""
    return sql if qmark else _for_psycopg(sql)
