"""Serve plotly.js from the installed plotly package (no CDN: hospital networks are closed).

The file is found as `cartrial/vendor/plotly.min.js`, so it is versioned with the locked
plotly dependency instead of being copied into the repository.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, overload

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_STATIC_PATH = "cartrial/vendor/plotly.min.js"
_PLOTLY_DIR = Path(plotly.__file__).parent / "package_data"


class PlotlyFinder(BaseFinder):
    def check(self, **kwargs: Any) -> list[Any]:
        return []

    # Django's own signature; the deprecated keyword `all` (before `find_all`) is still honoured.
    @overload
    def find(self, path: str, find_all: Literal[False] = False, **kwargs: Any) -> str | None: ...
    @overload
    def find(self, path: str, find_all: Literal[True], **kwargs: Any) -> list[str]: ...
    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str] | None:
        if path == PLOTLY_STATIC_PATH:
            found = str(_PLOTLY_DIR / "plotly.min.js")
            return [found] if (find_all or kwargs.get("all")) else found
        return [] if (find_all or kwargs.get("all")) else ""

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, FileSystemStorage]]:
        storage = FileSystemStorage(location=str(_PLOTLY_DIR))
        # collectstatic reads `prefix` from a finder's storage when present (getattr): not part of the stubbed class.
        storage.prefix = "cartrial/vendor"  # type: ignore[attr-defined]
        yield "plotly.min.js", storage
