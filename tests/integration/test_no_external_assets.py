"""Hospital networks are closed: no page may load a script, style or image from the internet."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db

EXTERNAL = re.compile(r"""(?:src|href)=["']https?://""", re.IGNORECASE)


@pytest.mark.parametrize(
    "path",
    ["/api/v1/docs", "/accounts/login/", "/subjects/", "/logistics/", "/biology/cohort/", "/calculators/"],
)
def test_pages_load_nothing_from_the_internet(world, path: str) -> None:
    from django.test import Client

    world.new_subject("BDX")
    client = Client() if path == "/accounts/login/" else world.client_for("bdx.investigator")
    response = client.get(path)
    assert response.status_code == 200, path
    body = response.content.decode()
    assert not EXTERNAL.findall(body), EXTERNAL.findall(body)


def test_swagger_ui_is_served_by_the_app(world) -> None:
    body = world.client_for("bdx.investigator").get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in body
