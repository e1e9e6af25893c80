"""The top bar stays one short line per user whatever their memberships: the data manager's five
memberships summed up ('Data manager · 5 centres', the full list in the title), one entry for the
dashboards."""

from __future__ import annotations

import html
import re
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import translation

from cartrial.apps.subjects.templatetags.cartrial_labels import memberships_summary, role_label

pytestmark = pytest.mark.django_db


def _who(page: str) -> tuple[str, str]:
    """The user block's title (every membership) and its summary."""
    who = r'<div class="who" title="([^"]*)" data-testid="who">.*?<span data-testid="memberships">([^<]*)</span>'
    block = re.search(who, page, re.S)
    assert block is not None
    return html.unescape(block.group(1)), html.unescape(block.group(2))


def test_five_memberships_read_as_one_role_and_a_count_of_centers(world: Any) -> None:
    memberships = list(world.users["dm.datamanager"].memberships.select_related("center"))
    assert len(memberships) == 5
    client = world.client_for("dm.datamanager")
    client.cookies["django_language"] = "fr"
    page = client.get("/subjects/").content.decode()
    title, summary = _who(page)
    with translation.override("fr"):
        role = role_label(memberships[0].role)
    assert summary == f"{role} · 5 centres"
    assert title.count(f" · {role}") == 5 and all(m.center.code in title for m in memberships)
    assert page.count('data-testid="dashboards-nav"') == 1 and "Tableaux de bord" in page


def test_one_membership_reads_in_full_in_english(world: Any) -> None:
    client = world.client_for("bdx.coordinator")
    client.cookies["django_language"] = "en"
    title, summary = _who(client.get("/subjects/").content.decode())
    membership = world.users["bdx.coordinator"].memberships.get()
    with translation.override("en"):
        expected = f"BDX · {role_label(membership.role)}"
    assert summary == title == expected


def test_several_roles_read_as_counts() -> None:
    rows = [
        SimpleNamespace(role=role, center=SimpleNamespace(code=code))
        for role, code in (("coordinator", "BDX"), ("investigator", "BDX"), ("coordinator", "LIL"))
    ]
    with translation.override("en"):
        assert memberships_summary(rows) == "2 roles · 2 centers"
    with translation.override("fr"):
        assert memberships_summary(rows) == "2 rôles · 2 centres"
