"""Reading the web pages in tests: a real HTML parser (the standard library's), not regexes, so
an attribute or tag that a browser would see is seen here too."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

_GLUE = "\x00"


@dataclass
class Element:
    """A start tag: its name, attributes and where it sits (enclosing tags' names and ids)."""

    tag: str
    attrs: dict[str, str]
    ancestors: list[str]
    within: list[str]  # ids of the enclosing elements


class Page(HTMLParser):
    """Every element of a page, the text of each <option>, and the page's text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.options: dict[str, list[tuple[str, str, bool]]] = {}
        self.text: list[str] = []
        self._stack: list[tuple[str, str]] = []
        self._select: str | None = None
        self._option: tuple[str, bool] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): (v or "") for k, v in attrs}
        self.elements.append(
            Element(tag, values, [t for t, _ in self._stack], [i for _, i in self._stack if i])
        )
        if tag == "wbr":  # a line-break opportunity inside a word: no space in the text
            self.text.append(_GLUE)
        if tag == "select":
            self._select = values.get("id", "")
            self.options[self._select] = []
        elif tag == "option" and self._select is not None:
            self._option = (values.get("value", ""), "selected" in values)
        if tag not in ("meta", "link", "input", "br", "wbr", "img", "hr", "rect", "line", "circle"):
            self._stack.append((tag, values.get("id", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        if any(t == tag for t, _ in self._stack):
            while self._stack and self._stack.pop()[0] != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._option is not None and self._select is not None:
            value, selected = self._option
            self.options[self._select].append((value, data.strip(), selected))
            self._option = None

    def all(self, tag: str, **attrs: str) -> list[Element]:
        """Elements with this tag whose attributes include ``attrs`` (class_ for class)."""
        want = {k.rstrip("_"): v for k, v in attrs.items()}
        return [
            e
            for e in self.elements
            if e.tag == tag and all(v in e.attrs.get(k, "").split() for k, v in want.items())
        ]

    @property
    def body_text(self) -> str:
        return " ".join(" ".join(self.text).replace(f" {_GLUE} ", "").split())


def parse(html: str) -> Page:
    """Parse a page."""
    page = Page()
    page.feed(html)
    page.close()
    return page


def row_stubs(html: str) -> list[str]:
    """The stubs of the listed models, in order (each row has one copy button)."""
    return [
        e.attrs["data-copy"]
        for e in parse(html).all("button", class_="copy")
        if "tbody" in e.ancestors
    ]


def facet_counts(html: str, select_id: str) -> dict[str, int]:
    """``{value: count}`` from a facet's <select> (options read "value (count)")."""
    out = {}
    for value, text, _ in parse(html).options[select_id]:
        if value:
            out[value] = int(text.rsplit("(", 1)[1].rstrip(")").replace(",", ""))
    return out
