"""Administration in the app: centers, users and their roles, suspension, API tokens, the study's audit trail."""
