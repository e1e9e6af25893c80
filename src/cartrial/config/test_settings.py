"""Settings of the test suite: production's, with an explicit key that no deployment uses.

Production refuses to start without CARTRIAL_SECRET_KEY; `./run test` and a plain `pytest` on a
fresh clone set nothing, so pytest names this module (pyproject.toml) and the key is set in the
environment before the production settings are read: the processes the tests start (a
`django.setup()` in a subprocess, the CLI) get it too. A key given in the environment wins.
"""

from __future__ import annotations

import os

from cartrial.config.known_secrets import TEST_SECRET_KEY

os.environ.setdefault("CARTRIAL_SECRET_KEY", TEST_SECRET_KEY)

from cartrial.config.settings import *  # noqa: F403

# Static files from their source folders, looked up per request: the tests do not run `collectstatic`.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Alert e-mails stay in memory (`django.core.mail.outbox`).
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# Two-factor sign-in is off for the suite's clients (`force_login`); the tests of two-factor turn it
# on with `settings.CARTRIAL_TWO_FACTOR_REQUIRED = True`. Production never reads this module.
CARTRIAL_TWO_FACTOR_REQUIRED = False
