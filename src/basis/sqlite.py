"""The one way this project writes to its SQLite files: an ``IMMEDIATE`` transaction, so
a writer takes the database's write lock before it reads what it will change, and two
writers never interleave.  Connections are opened with ``isolation_level=None`` (the
transaction is ours, not the sqlite3 module's)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def immediate(
    db: sqlite3.Connection, problem: Callable[[sqlite3.Error], BaseException] | None = None
) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; rolled back if the body raises.  With ``problem``,
    SQLite's own errors (a locked or damaged file) are raised as what it returns, so the
    caller can name its file and say what to do."""

    def fail(err: sqlite3.Error) -> BaseException:
        return err if problem is None else problem(err)

    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as err:
        raise fail(err) from None
    try:
        yield db
    except BaseException as exc:
        db.execute("ROLLBACK")
        if problem is not None and isinstance(exc, sqlite3.Error):
            raise fail(exc) from None
        raise
    try:
        db.execute("COMMIT")
    except sqlite3.Error as err:
        raise fail(err) from None
