"""Web sessions in the database (Django's own store), saved on every request.

Django's store turns any database error while saving a session into "the session was deleted
meanwhile" (`UpdateError`), which the session middleware answers 400 Bad Request. When the
error is the database being unreachable (restarted after the page was computed), that hides
the cause: the error goes on as it is, and the user gets the 503 page that says the database
is unavailable (`cartrial.config.errors`). Found by benchmarks/faults/postgres_restart.py.
"""

from __future__ import annotations

from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

from cartrial.config.errors import database_unavailable


class SessionStore(DatabaseSessionStore):
    """Django's database session store that lets an unreachable database say so."""

    def save(self, must_create: bool = False) -> None:
        try:
            super().save(must_create=must_create)
        except UpdateError as error:
            cause = error.__context__
            if database_unavailable(cause):
                raise cause from None  # type: ignore[misc]
            raise
