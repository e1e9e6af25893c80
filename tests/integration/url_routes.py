"""Every page and API operation the URL configuration serves, named the way the security tests
declare what they cover: `page <namespace:name>` for a page (all its methods), `api <METHOD> <path>`
for an API operation (the path as in the OpenAPI schema, without /api/v1).

Walked from Django's URL resolver (every app's urls.py and the ninja API's patterns), so an
endpoint added anywhere appears here without anyone listing it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, resolve

API_PREFIX = "api/v1/"
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


@dataclass(frozen=True)
class Route:
    """One page or API operation: its key, its route as Django matches it, its view."""

    key: str
    route: str  # e.g. "subjects/<str:code>/" or "api/v1/subjects/<code>"
    method: str  # the API operation's method; "" for a page (a page answers every method)
    callback: Callable[..., Any]

    @property
    def is_api(self) -> bool:
        return bool(self.method)


def _walk(resolver: URLResolver, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str, URLPattern]]:
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from _walk(pattern, prefix + str(pattern.pattern), inner)
        else:
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else (pattern.name or "")
            yield prefix + str(pattern.pattern), name, pattern


@functools.cache
def _api_methods() -> dict[str, list[str]]:
    """The HTTP methods of each API operation, by its URL name (ninja names one pattern per operation)."""
    from cartrial.config.api import api

    methods: dict[str, list[str]] = {}
    for _prefix, router in api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                name = api.get_operation_url_name(operation, router=router)
                methods.setdefault(f"api:{name}", []).extend(operation.methods)
    return methods


def api_key(method: str, route: str) -> str:
    """`api GET /subjects/{code}` for the route `api/v1/subjects/<code>`."""
    path = _CONVERTER.sub(r"{\1}", route.removeprefix(API_PREFIX))
    return f"api {method.upper()} /{path}"


def page_key(view_name: str) -> str:
    return f"page {view_name}"


def all_routes() -> dict[str, Route]:
    """Every page and API operation of the URL configuration, by key."""
    methods = _api_methods()
    routes: dict[str, Route] = {}
    for route, name, pattern in _walk(get_resolver()):
        if name in methods:
            for method in methods[name]:
                key = api_key(method, route)
                routes[key] = Route(key, route, method.upper(), pattern.callback)
        else:
            key = page_key(name or route)
            routes[key] = Route(key, route, "", pattern.callback)
    return routes


def key_of(method: str, path: str) -> str:
    """The key of the route a request (method, path) reaches; "" when nothing matches."""
    from django.urls import Resolver404

    try:
        match = resolve(path)
    except Resolver404:
        return ""
    if match.view_name in _api_methods():
        return api_key(method, match.route)
    return page_key(match.view_name or match.route)


def sample_path(route: Route, values: dict[str, str]) -> str:
    """A concrete path for `route`: each parameter from `values` by name ("1" for an unnamed int)."""

    def fill(match: re.Match[str]) -> str:
        converter, _, name = match.group(0)[1:-1].rpartition(":")
        return values.get(name, "1" if converter == "int" else "X")

    return "/" + re.sub(r"<[^>]+>", fill, route.route)
