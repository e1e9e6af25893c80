"""Settings of the test suite: production's, with an explicit key that no deployment uses.

Production refuses to start without CARTRIAL_SECRET_KEY; `./run test` and a plain `pytest` on a
fresh clone set nothing, so pytest names this module (pyproject.toml) and the key is set in the
environment before the production settings are read: the processes the tests start (a
`django.setup()` in a subprocess, the CLI) get it too. A key given in the environment wins.
"""

from __future__ import annotations

import os

TEST_SECRET_KEY = "cartrial-test-suite-only-7c1e9d2b4a6f8e0d3c5b7a9f1e3d5c7b9a1f3e5d7c9b"

os.environ.setdefault("CARTRIAL_SECRET_KEY", TEST_SECRET_KEY)

from cartrial.config.settings import *  # noqa: E402, F403

# Alert e-mails stay in memory (`django.core.mail.outbox`).
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
