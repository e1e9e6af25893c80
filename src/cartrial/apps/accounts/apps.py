from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "cartrial.apps.accounts"
    label = "accounts"
    verbose_name = "Accounts and access"

    def ready(self) -> None:
        from cartrial.apps.accounts import signals  # noqa: F401  (records failed logins in the audit trail)
