"""Response headers: a strict Content-Security-Policy everywhere, no inline script or handler in any
page, and no caching of what an authenticated user sees."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.services import Actor
from cartrial.config.security_headers import content_security_policy

pytestmark = pytest.mark.django_db

SCRIPT = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[a-z][^>]*\sstyle\s*=", re.IGNORECASE)


def _directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def test_the_policy_is_strict_and_names_no_other_origin() -> None:
    policy = _directives(content_security_policy("abc123"))
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'", "'nonce-abc123'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    every_source = [value for values in policy.values() for value in values]
    assert not [v for v in every_source if v.startswith(("http:", "https:", "*")) or "unsafe" in v]
    # Styles: this origin, the nonce, and only two hashed (fixed) plotly.js style elements.
    assert [v for v in policy["style-src"] if v.startswith("'sha256-")] == policy["style-src"][2:]
    assert len(policy["style-src"]) == 4


@pytest.mark.parametrize(
    "path", ["/accounts/login/", "/subjects/", "/api/v1/centers", "/api/v1/docs", "/subjects/NOPE-1/"]
)
def test_every_response_carries_the_policy_with_a_fresh_nonce(world: Any, path: str) -> None:
    token = api_token_create(actor=Actor.system("test"), user=world.users["bdx.coordinator"], label="t")
    client = Client() if path == "/accounts/login/" else world.client_for("bdx.coordinator")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if path.startswith("/api/v1/centers") else {}
    first, second = client.get(path, **headers), client.get(path, **headers)
    nonces = []
    for response in (first, second):
        policy = _directives(response["Content-Security-Policy"])
        assert policy["default-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]
        nonces.append(policy["script-src"][1])
    assert nonces[0] != nonces[1] and nonces[0].startswith("'nonce-")


def test_static_files_carry_a_policy_that_runs_nothing(world: Any) -> None:
    response = Client().get("/static/cartrial/cartrial.js")
    assert response.status_code == 200
    policy = _directives(response["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert "no-store" not in response.get("Cache-Control", "")  # static files stay cacheable


def _pages(world: Any) -> list[tuple[str, str]]:
    """Every kind of page, with plots where there are some: the demo's infused and logistics subjects."""
    return [
        ("str.coordinator", "/subjects/"),
        ("str.coordinator", "/subjects/STR-003/"),
        ("str.coordinator", "/biology/subjects/STR-003/panel/"),
        ("str.coordinator", "/biology/subjects/STR-003/"),
        ("str.coordinator", "/biology/cohort/"),
        ("str.coordinator", "/logistics/"),
        ("str.coordinator", "/logistics/subjects/STR-003/"),
        ("str.coordinator", "/calculators/"),
        ("str.coordinator", "/calculators/sledai2k/"),
        ("str.coordinator", "/subjects/STR-003/eligibility/"),
        ("str.investigator", "/subjects/STR-003/audit/"),  # the audit trail is the investigators' (and monitors')
        ("str.coordinator", "/screening-log/"),
        ("str.coordinator", "/dashboard/consort/"),
        ("lab.manufacturing", "/logistics/subjects/PAR-002/"),
        ("anonymous", "/accounts/login/"),
    ]


@pytest.fixture
def demo(db: None) -> None:
    from cartrial.demo import build_demo, demo_epoch
    from cartrial.protocols import active_protocol

    build_demo(active_protocol(), today=demo_epoch())


def test_no_page_has_an_inline_script_handler_or_style_the_policy_would_refuse(demo: None) -> None:
    from cartrial.apps.accounts.models import User

    checked = 0
    for username, path in _pages(None):
        client = Client()
        if username != "anonymous":
            client.force_login(User.objects.get(username=username))
        response = client.get(path)
        assert response.status_code == 200, path
        body = response.content.decode()
        nonce = _directives(response["Content-Security-Policy"])["script-src"][1][len("'nonce-") : -1]
        for attributes in SCRIPT.findall(body):
            runs_inline = "src=" not in attributes and 'type="application/json"' not in attributes
            assert not runs_inline or f'nonce="{nonce}"' in attributes, (path, attributes)
        assert not EVENT_HANDLER.findall(body), (path, EVENT_HANDLER.findall(body))
        assert not STYLE_ATTRIBUTE.findall(body), (path, STYLE_ATTRIBUTE.findall(body))
        checked += 1
    assert checked == len(_pages(None))


def test_plots_are_data_for_the_static_script(demo: None) -> None:
    from cartrial.apps.accounts.models import User

    client = Client()
    client.force_login(User.objects.get(username="str.coordinator"))
    body = client.get("/logistics/subjects/STR-003/").content.decode()
    figures = re.findall(r'<div id="([^"]+)" class="plotly-figure" data-figure="([^"]+)"></div>', body)
    assert figures and all(data == f"{div}-figure" for div, data in figures)
    for _, data in figures:
        assert f'<script id="{data}" type="application/json">' in body
    assert "Plotly.newPlot" not in body


# --- no-store on what an authenticated user sees ------------------------------------------------


def _no_store(response: Any) -> bool:
    return "no-store" in [d.strip() for d in response.get("Cache-Control", "").split(",")]


def test_pages_of_a_logged_in_user_are_not_stored(world: Any) -> None:
    subject = world.new_subject("BDX")
    client = world.client_for("bdx.coordinator")
    for path in ("/subjects/", f"/subjects/{subject.code}/", "/logistics/", "/calculators/"):
        response = client.get(path)
        assert response.status_code == 200 and _no_store(response), (path, response.get("Cache-Control"))


def test_api_answers_to_a_token_are_not_stored(world: Any) -> None:
    token = api_token_create(actor=Actor.system("test"), user=world.users["bdx.coordinator"], label="t")
    response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/subjects")
    assert response.status_code == 200 and _no_store(response)


def test_anonymous_answers_are_not_marked(world: Any) -> None:
    refused = Client().get("/api/v1/subjects")
    assert refused.status_code == 401 and not _no_store(refused)
    schema = Client().get("/api/v1/openapi.json")
    assert schema.status_code == 200 and not _no_store(schema)


# --- plotly.js under the policy -----------------------------------------------------------------


def test_the_allowed_plotly_stylesheet_hash_is_the_installed_plotly_js_one() -> None:
    """plotly.js inserts the map library's stylesheet as a <style> element; the policy allows that
    exact text by hash. An upgrade that changes it must update PLOTLY_MAP_STYLE_HASH."""
    import base64
    import hashlib
    from pathlib import Path

    import plotly

    from cartrial.config.security_headers import PLOTLY_MAP_STYLE_HASH

    source = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
    inserted = re.findall(r"""\.textContent='((?:[^'\\]|\\.)*)',document\.head\.appendChild""", source)
    assert len(inserted) == 1 and "\\" not in inserted[0]
    digest = base64.b64encode(hashlib.sha256(inserted[0].encode("utf-8")).digest()).decode()
    assert f"'sha256-{digest}'" == PLOTLY_MAP_STYLE_HASH


def test_figure_data_cannot_close_its_script_element() -> None:
    import plotly.graph_objects as go

    from cartrial.apps.figures import figure_html

    hostile = "</script><script>alert(1)</script>"
    html = figure_html(go.Figure(layout={"title": {"text": hostile}}), "plot-1", {"responsive": True})
    assert html.count("</script>") == 1 and hostile not in html
    assert html.startswith('<div id="plot-1" class="plotly-figure" data-figure="plot-1-figure"></div>')
    payload = re.search(r'<script id="plot-1-figure" type="application/json">(.*)</script>', html)
    assert payload is not None
    import json

    spec = json.loads(payload.group(1))
    assert spec["figure"]["layout"]["title"]["text"] == hostile and spec["config"] == {"responsive": True}


@pytest.mark.parametrize(
    ("exponent", "label"), [(-2, "10⁻²"), (-1, "10⁻¹"), (0, "1"), (1, "10"), (2, "10²"), (10, "10¹⁰")]
)
def test_log_axis_decades_are_labelled_without_markup(exponent: int, label: str) -> None:
    from cartrial.apps.biology.plots import power_of_ten

    assert power_of_ten(exponent) == label
