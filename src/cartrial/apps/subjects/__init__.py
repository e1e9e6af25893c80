"""Subjects: pseudonymous codes, encrypted identity, consent, eligibility, the pathway persisted."""
