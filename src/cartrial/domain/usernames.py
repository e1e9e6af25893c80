"""Usernames name people: `LIL.Coordinator` and `lil.coordinator` are the same person.

A username is kept as typed and compared without case, so that one person cannot hold two
accounts (two signatures, two lock-out counters) by changing the case of their name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable


def username_key(username: str) -> str:
    """The form usernames are compared in (lower case, surrounding spaces dropped)."""
    return username.strip().lower()


def case_duplicates(usernames: Iterable[str]) -> list[list[str]]:
    """Groups of usernames that are one name in different cases (sorted), to be merged by a person."""
    groups: dict[str, list[str]] = defaultdict(list)
    for username in usernames:
        groups[username_key(username)].append(username)
    return sorted(sorted(group) for group in groups.values() if len(group) > 1)
