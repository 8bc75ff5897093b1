"""The catalog's query string, parsed leniently (browsers send empty form fields) into the
``SearchFilters`` the JSON API uses, and turned back into links."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, get_args
from urllib.parse import urlencode

from app.errors import BadRequest
from app.models.schemas import SortKey
from app.models.service import SearchFilters

# The facets shown with counts; each is a column of Model with the same name.
FACETS = ("domain", "task", "architecture", "framework", "dataset")
SORTS: dict[str, str] = {
    "name": "Name (A to Z)",
    "-name": "Name (Z to A)",
    "-created": "Newest first",
    "created": "Oldest first",
    "-downloads": "Most downloaded",
    "-sparsity": "Most sparse",
    "sparsity": "Least sparse",
}
assert set(SORTS) <= set(get_args(SortKey)), "every web sort must be one the API accepts"
PAGE_SIZES = (20, 50, 100)
DEFAULT_LIMIT = 50
_MAX_TEXT = 200


@dataclass(frozen=True)
class CatalogQuery:
    """What the catalog page was asked for. Sparsity bounds are percentages (0-100), the way
    the page shows them; ``filters()`` converts them to the API's fractions."""

    q: str | None = None
    domain: str | None = None
    task: str | None = None
    architecture: str | None = None
    framework: str | None = None
    dataset: str | None = None
    namespace: str | None = None
    sparsity_min: float | None = None
    sparsity_max: float | None = None
    quantized: bool | None = None
    sort: str = "name"
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> CatalogQuery:
        """Read the query string; empty fields mean "no filter", bad values are a 400."""

        def text(key: str) -> str | None:
            value = (params.get(key) or "").strip()
            if len(value) > _MAX_TEXT:
                raise BadRequest(f"'{key}' is longer than {_MAX_TEXT} characters")
            return value or None

        def percent(key: str) -> float | None:
            value = text(key)
            if value is None:
                return None
            try:
                number = float(value.rstrip("%"))
            except ValueError:
                number = math.nan
            if not 0 <= number <= 100:  # NaN fails this too
                raise BadRequest(f"'{key}' is {value[:20]!r}: give a percentage from 0 to 100")
            return number

        # "true"/"false" too: the JSON API's spelling, for links copied from there.
        quantized = {"yes": True, "true": True, "no": False, "false": False}.get(
            (text("quantized") or "").lower()
        )
        sort = text("sort") or "name"
        if sort not in SORTS:
            raise BadRequest(f"unknown sort {sort[:30]!r}: use one of {', '.join(SORTS)}")
        raw_limit = text("limit")
        limit = int(raw_limit) if raw_limit and raw_limit.isdigit() else DEFAULT_LIMIT
        return cls(
            q=text("q"),
            **{f: text(f) for f in (*FACETS, "namespace")},
            sparsity_min=percent("sparsity_min"),
            sparsity_max=percent("sparsity_max"),
            quantized=quantized,
            sort=sort,
            limit=min(max(limit, 1), max(PAGE_SIZES)),
            cursor=text("cursor"),
        )

    def filters(self) -> SearchFilters:
        """The API's search filters for this query."""
        return SearchFilters(
            q=self.q,
            namespace=self.namespace,
            min_sparsity=None if self.sparsity_min is None else self.sparsity_min / 100,
            max_sparsity=None if self.sparsity_max is None else self.sparsity_max / 100,
            quantized=self.quantized,
            **{f: getattr(self, f) for f in FACETS},
        )

    def selected(self, facet: str) -> str | None:
        """The value chosen for a facet (``quantized`` as yes/no), or None."""
        if facet == "quantized":
            return None if self.quantized is None else ("yes" if self.quantized else "no")
        value: str | None = getattr(self, facet)
        return value

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """The query string of this query with ``changes`` applied, defaults left out."""
        query = replace(self, **changes)
        out: list[tuple[str, str]] = []
        for key in ("q", *FACETS, "namespace"):
            value = getattr(query, key)
            if value is not None:
                out.append((key, value))
        for key in ("sparsity_min", "sparsity_max"):
            value = getattr(query, key)
            if value is not None:
                out.append((key, f"{value:g}"))
        if query.quantized is not None:
            out.append(("quantized", "yes" if query.quantized else "no"))
        if query.sort != "name":
            out.append(("sort", query.sort))
        if query.limit != DEFAULT_LIMIT:
            out.append(("limit", str(query.limit)))
        if query.cursor is not None:
            out.append(("cursor", query.cursor))
        return out

    def url(self, **changes: Any) -> str:
        """A link to the catalog with ``changes`` applied (a new filter restarts at page one)."""
        changes.setdefault("cursor", None)
        params = self.params(**changes)
        return "/?" + urlencode(params) if params else "/"

    @property
    def active(self) -> list[tuple[str, str, str]]:
        """The filters in force as (label, shown value, link without it)."""
        out: list[tuple[str, str, str]] = []
        if self.q:
            out.append(("text", self.q, self.url(q=None)))
        for facet in (*FACETS, "namespace"):
            value = getattr(self, facet)
            if value is not None:
                out.append((facet, value, self.url(**{facet: None})))
        if self.sparsity_min is not None:
            out.append(
                ("sparsity", f"at least {self.sparsity_min:g}%", self.url(sparsity_min=None))
            )
        if self.sparsity_max is not None:
            out.append(("sparsity", f"at most {self.sparsity_max:g}%", self.url(sparsity_max=None)))
        if self.quantized is not None:
            out.append(("quantized", "yes" if self.quantized else "no", self.url(quantized=None)))
        return out
