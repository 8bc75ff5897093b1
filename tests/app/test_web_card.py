"""A model card is the publisher's markdown shown to every visitor: nothing in it may run.

The end-to-end test publishes a hostile ``model.md`` on both configurations and reads the
model page with a real HTML parser; the unit tests feed the renderer one attack at a time.
"""

from __future__ import annotations

import httpx
import pytest
from web_html import Page, parse

from app.web.card import render_card, render_markdown, sanitize
from support.hub import Hub, create_model, publish, unique_namespace
from support.onnx_models import linear_model

ATTACKS = [
    "<script>alert(1)</script>",
    '<img src="x" onerror="alert(2)">',
    '<a href="javascript:alert(3)">click</a>',
    "[md link](javascript:alert(4))",
    "[spaced](  JaVaScRiPt:alert(5))",
    "[entity](&#106;avascript:alert(6))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCg3KTwvc2NyaXB0Pg==)",
    "![image](javascript:alert(8))",
    "[vb](vbscript:msgbox(9))",
    '<svg onload="alert(10)"><script>alert(11)</script></svg>',
    '<iframe src="https://evil.example/"></iframe>',
    '<div style="background:url(javascript:alert(12))">styled</div>',
    '<p onclick="alert(13)">para</p>',
    '<object data="x.swf"></object><embed src="x.swf">',
    "<style>body { display: none }</style>",
    '<form action="https://evil.example/"><input name="x"></form>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(14)>",
    '<a href="https://ok.example/" onmouseover="alert(15)">hover</a>',
    "<!-- <script>alert(16)</script> -->",
    "`<script>alert(17)</script>` in code",
]
HOSTILE_CARD = (
    "---\ntitle: <script>alert(0)</script>\nevil: '<img src=x onerror=alert(0)>'\n---\n"
    "# Hostile <script>alert('h1')</script> card\n\n" + "\n\n".join(ATTACKS) + "\n"
)
URL_ATTRIBUTES = ("href", "src", "action", "formaction", "data", "xlink:href", "poster")
DANGEROUS_TAGS = ("iframe", "object", "embed", "style", "form", "input", "math", "base")


def assert_nothing_executable(page: Page) -> None:
    """No inline script, event handler, style, dangerous element or script URL on the page."""
    for e in page.elements:
        if e.tag == "script":
            assert e.attrs.get("src", "").startswith("/static/"), e
        assert not [a for a in e.attrs if a.startswith("on")], e
        assert "style" not in e.attrs, e
        assert e.tag not in DANGEROUS_TAGS, e
        for attr in URL_ATTRIBUTES:
            value = "".join(e.attrs.get(attr, "").split()).lower()
            assert not value.startswith(("javascript:", "vbscript:", "data:")), e
        if e.tag == "svg":
            assert e.attrs.get("class") in ("layers", "scatter"), e  # only our own charts


@pytest.mark.parametrize("attack", ATTACKS)
def test_each_attack_renders_inert(attack: str) -> None:
    page = parse(f"<main>{render_markdown(attack)}</main>")
    assert_nothing_executable(page)


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_sanitiser_alone_also_stops_each_attack(attack: str) -> None:
    # Raw HTML straight to the second layer, as if markdown-it had let it through.
    assert_nothing_executable(parse(f"<main>{sanitize(attack)}</main>"))


def test_safe_markdown_survives() -> None:
    html = render_markdown(
        "# Title\n\n**bold** [link](https://example.org/) `code`\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    page = parse(html)
    assert page.all("h3") and page.all("strong") and page.all("table") and page.all("code")
    link = page.all("a")[0]
    assert link.attrs["href"] == "https://example.org/" and "noopener" in link.attrs["rel"]
    card = render_card("---\nlicense: mit\ntags: [a, b]\n---\nbody\n")
    assert card.front_matter == {"license": "mit", "tags": "a, b"} and "body" in card.html
    assert render_card("---\n: not yaml [\n---\nx").front_matter == {}


def test_a_hostile_card_runs_nothing_on_the_model_page(hub: Hub) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="hostile", description="<script>alert('description')</script>")
    publish(
        http, ns, "hostile", {"model.onnx": linear_model(0.5), "model.md": HOSTILE_CARD.encode()}
    )
    with httpx.Client(base_url=hub.url, timeout=60) as web:
        r = web.get(f"/models/{ns}/hostile")
    assert r.status_code == 200, r.text
    page = parse(r.text)
    assert_nothing_executable(page)
    # The attacks are shown as text, so a reader sees what the publisher wrote.
    text = page.body_text
    assert "<script>alert(1)</script>" in text and "Hostile" in text
    assert "<script>alert('description')</script>" in text
    assert "<script>alert(0)</script>" in text  # the front matter, escaped
    assert "script-src 'self'" in r.headers["content-security-policy"]
