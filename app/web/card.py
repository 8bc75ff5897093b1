"""Model cards (``model.md``: YAML front matter, then markdown) rendered to HTML that is safe to
put in a page: markdown-it with raw HTML disabled, then nh3 (an allow-list sanitiser) over its
output. Either layer alone should suffice; both together mean a bug in one is not an XSS.

Cards and recipes are read from storage at most ``MAX_TEXT_BYTES`` at a time and cached by
sha256: a blob never changes, so neither does what it renders to.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import nh3
import yaml
from markdown_it import MarkdownIt

from app.storage import ObjectNotFound, Storage, blob_key

MAX_TEXT_BYTES = 256 * 1024
_CACHE_ENTRIES = 512

# What a card may contain after rendering: markdown's own output, nothing that runs or loads.
_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre",
    "s", "span", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "td": {"align"},
    "th": {"align"},
    "code": {"class"},
    "ol": {"start"},
}
_SCHEMES = {"http", "https", "mailto"}

# "js-default" would also let through typographic replacements we do not want; "commonmark"
# with tables and strikethrough is GitHub-like. html=False: a raw tag is shown as text.
_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])


@dataclass(frozen=True)
class Card:
    """A rendered card: the front matter's fields and the sanitised body."""

    front_matter: dict[str, str]
    html: str


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """``---\\nyaml\\n---\\nbody`` -> (fields as text, body); no or bad YAML -> ({}, text)."""
    if not text.startswith("---"):
        return {}, text
    head, sep, body = text[3:].partition("\n---")
    if not sep:
        return {}, text
    try:
        data: Any = yaml.safe_load(head)
    except yaml.YAMLError:
        return {}, text
    if not isinstance(data, dict):
        return {}, text
    body = body.partition("\n")[2]  # the rest of the closing '---' line
    fields = {str(k)[:100]: _scalar(v)[:500] for k, v in data.items()}
    return fields, body


def _scalar(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def render_markdown(text: str) -> str:
    """Markdown to sanitised HTML: no script, event handler, style or javascript: URL survives."""
    env: dict[str, Any] = {}
    tokens = _md.parse(text, env)
    # The card sits under the page's own h1 and "Model card" h2: its headings start at h3.
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + 2, 6)}"
    return sanitize(_md.renderer.render(tokens, _md.options, env))


def sanitize(html: str) -> str:
    """Keep only the allow-listed tags, attributes and URL schemes of ``html``."""
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def render_card(text: str) -> Card:
    """A card's front matter and its body as safe HTML."""
    fields, body = split_front_matter(text)
    return Card(fields, render_markdown(body))


T = TypeVar("T")


class BlobCache(Generic[T]):
    """A small thread-safe LRU of what was made from blobs, keyed by sha256 (blobs are
    immutable, so an entry never goes stale)."""

    def __init__(self, entries: int = _CACHE_ENTRIES) -> None:
        self._entries = entries
        self._data: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> T | None:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
            return None

    def put(self, key: str, value: T) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._entries:
                self._data.popitem(last=False)


_texts: BlobCache[tuple[str, bool]] = BlobCache()
_cards: BlobCache[Card] = BlobCache()


def read_text(storage: Storage, sha256: str, size: int) -> tuple[str, bool]:
    """The blob's first MAX_TEXT_BYTES as text (undecodable bytes replaced), and whether it was
    cut. A blob missing from the store reads as empty rather than breaking the page."""
    cached = _texts.get(sha256)
    if cached is not None:
        return cached
    end = min(size, MAX_TEXT_BYTES) - 1
    try:
        data = b"".join(storage.read_range(blob_key(sha256), 0, end)) if end >= 0 else b""
    except ObjectNotFound:
        return "", False
    result = (data.decode("utf-8", errors="replace"), size > MAX_TEXT_BYTES)
    _texts.put(sha256, result)
    return result


def card_for(storage: Storage, sha256: str, size: int) -> Card:
    """The rendered card of a ``model.md`` blob (cached by sha256)."""
    cached = _cards.get(sha256)
    if cached is None:
        cached = render_card(read_text(storage, sha256, size)[0])
        _cards.put(sha256, cached)
    return cached
