"""No English on a French page: every page each role can reach, crawled in French.

For each role a user logs in (through the login form) with French as their language; the crawl
starts at the home page and follows every link of this site (`href`, htmx `hx-get`), plus a URL
of every page pattern of the URLconf whose arguments the demo data can fill (every subject code,
every step, action, calculator, deviation). Each response is checked: no 5xx; on each HTML page
no asset from another host, and no English text. English is found two ways (`EnglishDetector`):
a visible text that contains an English msgid of the French catalog (one of at least two words
whose French differs), and English function words ("the", "must", "please", ...). Not French by
intent, and not read: text inside an element that declares another language (`lang="en"`, e.g.
the name of a language, a stored English record shown as it was written), and computer text that
stays the same in every language (data-format tokens, codes, hashes): `<code>`, `<pre>` and any
element marked `translate="no"`. A page marks such text with these elements, never with a list
of exceptions in this test. Every finding of the crawl is reported in one failure.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser
from itertools import cycle
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from babel.messages.pofile import read_po

PO_FILE = Path(__file__).parents[2] / "src" / "cartrial" / "locale" / "fr" / "LC_MESSAGES" / "django.po"

# --- the detector ----------------------------------------------------------------------------------

# Placeholders of both formats in the catalog: %(name)s / %s (Django) and {name} (domain messages).
PLACEHOLDER = re.compile(r"%\([^)]*\)[sdfr]|%[sdfr]|\{[^{}]*\}")
TAG = re.compile(r"<[^>]+>")
# Computer text inside a msgid (`<code>car_t</code>`), as on a page: not English, not read.
COMPUTER_TEXT = re.compile(r"<(code|pre)\b[^>]*>.*?</\1>|<(\w+)\b[^>]*\btranslate=\"no\"[^>]*>.*?</\2>", re.DOTALL)
WORD = re.compile(r"[^\W\d_]{2,}")
# Words English sentences cannot do without and French never writes (accents make "thé" another word).
FUNCTION_WORDS = re.compile(
    r"\b(?:the|of the|and the|is not|are not|does not|do not|must|cannot|please|should|which|"
    r"has been|have been|will be|there is|there are|this is|you|your)\b",
    re.IGNORECASE,
)
# What a page shows besides text nodes: read aloud or shown on hover, so translated too.
TEXT_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})
ASSETS = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src", "embed": "src"}


def _normalised(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class _Msgid:
    text: str  # one tag-free stretch of an English msgid
    pattern: re.Pattern[str]
    key: str  # its longest word: a text can only hold the msgid if it holds this word


def _msgid_parts(msgid: str) -> Iterator[_Msgid]:
    """The stretches of a msgid between markup and outside computer text, each a pattern with its
    placeholders open."""
    for stretch in TAG.split(COMPUTER_TEXT.sub(" ", msgid)):
        stretch = _normalised(stretch)
        literal = PLACEHOLDER.sub(" ", stretch)
        words = WORD.findall(literal)
        if len(words) < 2:
            continue
        body = r"\s+".join(
            ".+?" if PLACEHOLDER.fullmatch(token) else re.escape(token)
            for token in re.split(r"(\s+|%\([^)]*\)[sdfr]|%[sdfr]|\{[^{}]*\})", stretch)
            if token and not token.isspace()
        )
        pattern = re.compile(rf"(?<!\w){body}(?!\w)")
        yield _Msgid(stretch, pattern, max(words, key=len).casefold())


@cache
def catalog_msgids(po_file: Path = PO_FILE) -> tuple[_Msgid, ...]:
    """English msgids of the French catalog whose French differs, in stretches of two words or more."""
    with po_file.open("rb") as handle:
        catalog = read_po(handle)
    parts: dict[str, _Msgid] = {}
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for msgid in ids:
            if any(_normalised(msgid) in _normalised(s) for s in strings):
                continue  # kept in the French (a unit, an index's name): not English on a French page
            for part in _msgid_parts(msgid):
                parts[part.text] = part
    return tuple(parts.values())


class _VisibleText(HTMLParser):
    """Text nodes and text attributes a reader meets, outside script/style, foreign-language elements and
    computer text (`<code>`, `<pre>`, `translate="no"`);
    plus the assets the page loads."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.assets: list[str] = []
        self._open: list[tuple[str, bool]] = []  # (tag, hidden or foreign)

    def _skipping(self) -> bool:
        return bool(self._open) and self._open[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in ASSETS and values.get(ASSETS[tag]):
            self.assets.append(values[ASSETS[tag]])
        lang = values.get("lang")
        skipping = (
            self._skipping()
            or tag in ("script", "style", "template", "code", "pre")
            or values.get("translate", "").lower() == "no"
            or (lang is not None and not lang.lower().startswith("fr"))
        )
        if not skipping:
            self.texts.extend(values[name] for name in TEXT_ATTRIBUTES if values.get(name))
            if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
                self.texts.append(values["value"])
        if tag not in VOID:
            self._open.append((tag, skipping))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        # Close up to the matching element (HTML lets some end tags be omitted).
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index][0] == tag:
                del self._open[index:]
                return

    def handle_data(self, data: str) -> None:
        if not self._skipping() and data.strip():
            self.texts.append(data)


@dataclass
class EnglishDetector:
    """Finds English in the visible texts of an HTML page: catalog msgids and English function words."""

    msgids: tuple[_Msgid, ...]
    _by_key: dict[str, list[_Msgid]] = field(init=False, repr=False)
    _seen: dict[str, str | None] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_key = defaultdict(list)
        for msgid in self.msgids:
            self._by_key[msgid.key].append(msgid)

    def why_english(self, text: str) -> str | None:
        """The reason `text` is English (the msgid it holds, or the function word), else None."""
        text = _normalised(text)
        if text not in self._seen:
            self._seen[text] = self._judge(text)
        return self._seen[text]

    def _judge(self, text: str) -> str | None:
        words = {word.casefold() for word in WORD.findall(text)}
        for key in words:
            for msgid in self._by_key.get(key, ()):
                if msgid.pattern.search(text):
                    return f"msgid {msgid.text!r}"
        found = FUNCTION_WORDS.search(text)
        if found and len(words) >= 2:
            return f"English word {found.group(0)!r}"
        return None

    def english_texts(self, html: str | _VisibleText) -> list[tuple[str, str]]:
        """(text, reason) for each English visible text of the page (or of a page already read)."""
        parser = html if isinstance(html, _VisibleText) else _read(html)
        found = []
        for text in parser.texts:
            reason = self.why_english(text)
            if reason:
                found.append((_normalised(text), reason))
        return found


def _read(html: str) -> _VisibleText:
    """A page read once, for both its texts and its assets."""
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    return parser


def external_assets(html: str | _VisibleText) -> list[str]:
    """Scripts, styles, images and frames a page would load from another host."""
    parser = html if isinstance(html, _VisibleText) else _read(html)
    return [url for url in parser.assets if urlsplit(url).netloc not in ("", "testserver")]


def test_the_detector_flags_english_and_leaves_french_alone() -> None:
    detector = EnglishDetector(catalog_msgids())
    english_msgid = next(m.text for m in catalog_msgids() if m.text == "Read the audit trail")
    page = f"""<!doctype html><html lang="fr"><body>
      <h1>Journal de sélection</h1>
      <p>{english_msgid}</p>
      <div><span>The product must be kept at 2–8 °C until thawed.</span></div>
      <select aria-label="Langue"><option lang="en">English</option><option>Français</option></select>
      <script>var the = "must not be read";</script>
      <pre>the unit column must be cells/µL</pre><code>SELECT the value</code>
      <p translate="no">subject,marker,value,unit: the header is read by the machine</p>
    </body></html>"""
    found = dict(detector.english_texts(page))
    assert set(found) == {english_msgid, "The product must be kept at 2–8 °C until thawed."}
    assert found[english_msgid] == f"msgid {english_msgid!r}"
    assert found["The product must be kept at 2–8 °C until thawed."].startswith("English word")

    # A msgid with placeholders is found with its values filled in, inside a longer text.
    filled = "Réception : 3 already recorded, skipped."
    assert detector.english_texts(f"<p>{filled}</p>") == [(filled, "msgid '%(n)d already recorded, skipped.'")]

    french = """<!doctype html><html lang="fr"><head><title>Sujets · cartrial</title></head><body>
      <nav><a href="/subjects/">Sujets</a> <a href="/logistics/">Logistique</a></nav>
      <h1>Sujet BDX-001</h1><p>Le produit doit être conservé entre 2 et 8 °C jusqu'à la décongélation ;
      le thé n'est pas servi. Statut : inclus, le 12/03/2026 par Claire Dubois (investigatrice).</p>
      <input type="submit" value="Enregistrer"><img src="/static/cartrial/logo.png" alt="Logo du centre">
      <select aria-label="Langue"><option lang="en">English</option><option>Français</option></select>
    </body></html>"""
    assert detector.english_texts(french) == []
    assert external_assets(french) == []
    # An address of another host, written in parts so that no page or tool reads it as an asset of ours.
    remote = "https:" + "//cdn.example.org/x.js"
    assert external_assets(f'<script src="{remote}"></script><img src="//x.org/a.png">') == [remote, "//x.org/a.png"]


# --- the crawl -------------------------------------------------------------------------------------

# One user per role, at the demo's center where that role has the most to see.
ROLE_USERS: dict[str, str] = {
    "investigator": "str.investigator",
    "coordinator": "mtl.coordinator",
    "apheresis": "lil.apheresis",
    "pharmacist": "str.pharmacist",
    "manufacturing": "lab.manufacturing",
    "monitor": "cra.monitor",
    "data_manager": "dm.datamanager",
    "sponsor_admin": "sponsor.admin",
}
# Measured on the demo (see the printed counts): a crawl that reaches fewer pages has lost its way.
# (Pages a role reaches depend on what earlier roles already requested: every page once overall.)
MIN_PAGES: dict[str, int] = {
    "investigator": 80,
    "coordinator": 150,
    "apheresis": 24,
    "pharmacist": 38,
    "manufacturing": 90,
    "monitor": 75,
    "data_manager": 165,
    "sponsor_admin": 110,
}
NOT_PAGES = ("/api/", "/static/", "/i18n/", "/accounts/logout/")
DOWNLOADS = (".pdf", ".csv")
LINK = re.compile(r"""\s(?:href|hx-get)="([^"]*)\"""")


@dataclass
class Finding:
    role: str
    url: str
    problem: str

    def __str__(self) -> str:
        return f"{self.role:14} {self.url}\n    {self.problem}"


@dataclass
class Crawl:
    role: str
    detector: EnglishDetector
    visited: dict[str, int] = field(default_factory=dict)  # url -> status
    seconds: dict[str, float] = field(default_factory=dict)  # url -> time to answer
    kinds: set[str] = field(default_factory=set)  # the kinds of page this role has seen
    findings: list[Finding] = field(default_factory=list)

    def run(self, client: Any, start: Iterable[str], everywhere: set[str], kind_of: Callable[[str], str]) -> None:
        """Breadth first from `start`. A URL is requested when no role has had it (`everywhere`), or when
        this role has not yet seen its kind of page (`kind_of`: the same page of another subject at the same
        stage, another record of the same kind): every page once, every kind of page by every role."""
        queue = [url for url in dict.fromkeys(start) if url not in self.visited]
        queued = set(queue) | set(self.visited)
        while queue:
            url = queue.pop(0)
            kind = kind_of(url)
            if url in everywhere and kind in self.kinds:
                continue
            everywhere.add(url)
            self.kinds.add(kind)
            for link in self.visit(client, url):
                if link not in queued:
                    queued.add(link)
                    queue.append(link)

    def visit(self, client: Any, url: str) -> list[str]:
        started = time.monotonic()
        response = client.get(url)
        self.seconds[url] = time.monotonic() - started
        self.visited[url] = response.status_code
        if response.status_code >= 500:
            self.findings.append(Finding(self.role, url, f"server error {response.status_code}"))
            return []
        if response.status_code in (301, 302):
            return [_site_url(response["Location"])] if _site_url(response["Location"]) else []
        if not response.get("Content-Type", "").startswith("text/html") or url.endswith(DOWNLOADS):
            return []
        html = response.content.decode()
        page = _read(html)
        for asset in external_assets(page):
            self.findings.append(Finding(self.role, url, f"external asset {asset}"))
        for text, reason in self.detector.english_texts(page):
            self.findings.append(Finding(self.role, url, f"English ({reason}): {text!r}"))
        return [link for link in map(_site_url, LINK.findall(html)) if link]


def _site_url(href: str) -> str | None:
    """The URL of this site a link leads to (without fragment or `back`), None for other hosts and non-pages."""
    href = href.replace("&amp;", "&")
    parts = urlsplit(href)
    if parts.scheme not in ("", "http", "https") or parts.netloc not in ("", "testserver"):
        return None
    if not parts.path.startswith("/") or parts.path.startswith(NOT_PAGES):
        return None
    # `back` (where a correction returns) and `field` (which field's form is open) show the same page.
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in ("back", "field")])
    return parts.path + (f"?{query}" if query else "")


def _url_patterns() -> list[tuple[str, list[str]]]:
    """Every page pattern of the URLconf (the API aside), as a route with its argument names."""
    from django.urls import URLPattern, URLResolver, get_resolver

    found: list[tuple[str, list[str]]] = []

    def walk(patterns: Iterable[Any], prefix: str) -> None:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern):
                found.append((route, re.findall(r"<(?:\w+:)?(\w+)>", route)))

    walk(get_resolver().url_patterns, "/")
    return [(route, names) for route, names in found if not route.startswith(NOT_PAGES)]


def _pattern_urls(codes: list[str]) -> list[str]:
    """A URL for every value each argument can take in the demo, for the subjects `codes` (one subject
    per step or action, the subject whose state has that step when there is one)."""
    from cartrial.apps.logistics.forms import ACTIONS
    from cartrial.apps.logistics.models import Deviation
    from cartrial.apps.pathway.steps import STEPS
    from cartrial.apps.subjects.models import Subject
    from cartrial.domain.deviations import DEVIATION_MOVES
    from cartrial.domain.pathway import State, Step, steps_from
    from cartrial.domain.scores.registry import CALCULATORS

    subjects = list(Subject.objects.filter(code__in=codes).order_by("code").values_list("code", "state"))
    codes = [code for code, _ in subjects]

    def subject_for(value: str) -> str:
        for code, state in subjects:
            if any(step.value == value for step in steps_from(State(state))):
                return code
        return codes[0]

    deviations = list(
        Deviation.objects.filter(subject__code__in=codes).order_by("pk").values_list("subject__code", "pk")
    )
    values: dict[str, list[dict[str, str]]] = {
        "code": [{"code": code} for code in codes],
        "step": [{"code": subject_for(s.value), "step": s.value} for s in STEPS if isinstance(s, Step)]
        + [{"code": codes[0], "step": s.value} for s in STEPS if not isinstance(s, Step)],
        "action": [{"code": code, "action": a.value} for a, code in zip(ACTIONS, cycle(codes), strict=False)],
        "name": [{"name": name} for name in CALCULATORS],
        "deviation_id": [
            {"code": code, "deviation_id": str(pk), "move": move}
            for (code, pk), move in zip(deviations, cycle(DEVIATION_MOVES), strict=False)
        ],
    }
    urls = []
    for route, names in _url_patterns():
        if not names:
            urls.append(route)
            continue
        # The argument that varies most names the fillings; the others come with it.
        leading = next((n for n in ("step", "action", "deviation_id", "name", "code") if n in names), None)
        if leading is None or not values[leading] or any(n not in values[leading][0] for n in names):
            continue  # not fillable from the demo (corrections): reached through the pages' links
        for filling in values[leading]:
            url = route
            for name in names:
                url = re.sub(rf"<(?:\w+:)?{name}>", filling[name], url)
            urls.append(url)
    return urls


@pytest.fixture
def demo(db: None) -> dict[str, str]:
    """The demo trial with one subject at each kind of stage (the full demo repeats stages across
    centers); returns each subject's state by code."""
    from cartrial.apps.subjects.models import Subject
    from cartrial.demo import STAGED, build_demo, demo_epoch
    from cartrial.domain.pathway import State
    from cartrial.protocols import active_protocol

    kept = {
        State.APHERESIS_COLLECTED,  # the mistyped DIN deviations (one closed, one open)
        State.SCREEN_FAILED,
        State.MANUFACTURING_FAILED,
        State.PRODUCT_RELEASED,  # the temperature excursion
        State.PRODUCT_RECEIVED,
        State.ACUTE_MONITORING,  # kinetics with a flag
        State.LONG_TERM_FOLLOW_UP,
        State.WITHDRAWN,
    }
    build_demo(active_protocol(), today=demo_epoch(), staged=tuple(s for s in STAGED if s[1] in kept))
    return dict(Subject.objects.values_list("code", "state"))


def _kind_of(states: dict[str, str]) -> Callable[[str], str]:
    """A URL's kind of page: subject codes replaced by their stage, record numbers and query values dropped."""
    code = re.compile("|".join(map(re.escape, sorted(states, key=len, reverse=True))))

    def kind(url: str) -> str:
        parts = urlsplit(url)
        path = re.sub(r"/\d+/", "/N/", code.sub(lambda m: states[m.group(0)], parts.path))
        return path + "?" + ",".join(sorted(k for k, _ in parse_qsl(parts.query)))

    return kind


@pytest.mark.django_db
@pytest.mark.slow
def test_every_page_each_role_reaches_is_french(demo: dict[str, str]) -> None:
    from django.test import Client

    from cartrial.apps.accounts.models import User
    from cartrial.demo import DEMO_PASSWORD

    detector = EnglishDetector(catalog_msgids())
    crawls: dict[str, Crawl] = {}
    everywhere: set[str] = set()
    started = time.monotonic()
    for role, username in ROLE_USERS.items():
        User.objects.filter(username=username).update(language="fr")
        client = Client(HTTP_ACCEPT_LANGUAGE="en")  # the browser asks English; the user's French wins
        login = client.post("/accounts/login/", {"username": username, "password": DEMO_PASSWORD})
        assert login.status_code == 302, (role, login.status_code)
        assert client.cookies["django_language"].value == "fr"
        crawl = Crawl(role, detector)
        kind_of = _kind_of(demo)
        crawl.run(client, ["/"], everywhere, kind_of)
        # Then every pattern, filled with the subjects the role reached and one it cannot reach (its 404).
        reached = {code for code in demo if any(f"/{code}/" in url for url in crawl.visited)}
        foreign = sorted(set(demo) - reached)[:1]
        crawl.run(client, _pattern_urls(sorted(reached) + foreign), everywhere, kind_of)
        crawls[role] = crawl
    elapsed = time.monotonic() - started

    counts = {role: sum(1 for s in c.visited.values() if s == 200) for role, c in crawls.items()}
    print(f"\npages crawled in {elapsed:.1f} s (status 200 / requested):")
    for role, crawl in crawls.items():
        print(f"  {role:14} {counts[role]:4} / {len(crawl.visited)}")
    findings = [finding for crawl in crawls.values() for finding in crawl.findings]
    assert not findings, f"{len(findings)} problems on French pages:\n" + "\n".join(map(str, findings))
    too_few = {role: (counts[role], least) for role, least in MIN_PAGES.items() if counts[role] < least}
    assert not too_few, f"the crawl reached fewer pages than measured (reached, least): {too_few}"
    # Every page of the URLconf that takes no argument was requested by every role.
    top_level = [route for route, names in _url_patterns() if not names]
    assert all(route in crawl.visited for crawl in crawls.values() for route in top_level)
