"""The web catalog in a real browser: Debian's headless Chromium driven by Playwright.

Loads the catalog, filters by a facet, copies a stub to the clipboard, opens a model and its
layer chart, compares the variants of its architecture, and reads a page without JavaScript.
Each page is saved as a screenshot under ``test-artifacts/web/`` (gitignored) to look at.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``) and the ``playwright`` package; the
browser Playwright would download itself is never used (there is no network to fetch it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.hub import Hub, create_model, publish, unique_namespace
from support.onnx_models import linear_model, quantized_linear_model

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"

if not CHROMIUM.exists():
    pytest.skip(
        "no /usr/bin/chromium: install Debian's browser with 'apt-get install -y chromium'",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def family(hub: Hub) -> dict[str, str]:
    """A dense base and two children (one quantized, with reproduced outputs), with results."""
    ns, arch, kw = unique_namespace(), f"web{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:10]
    http = hub.client(hub.admin_token)
    specs = [
        ("base-none", linear_model(0.0, n_in=64, n_out=32), 120.0, 0.771, {}),
        ("pruned80-none", linear_model(0.8, seed=1, n_in=64, n_out=32), 310.0, 0.765, {}),
        ("pruned90_quant-none", quantized_linear_model(0.9, n_in=64, n_out=32), 780.0, 0.758,
         {"outputs_reproduced": True}),
    ]  # fmt: skip
    base = None
    names = []
    for tag, onnx, throughput, top1, meta in specs:
        stub = f"zoo:cv/classification/{arch}-18/pytorch/{ns}/imagenet/{tag}"
        body = create_model(
            http, ns, stub=stub, display_name=f"{arch} {tag}", description=kw, base_model=base
        )
        base = base or body["stub"]
        card = f"---\nlicense: mit\n---\n# {arch} {tag}\n\nA **test** model. <b>raw</b>\n"
        publish(http, ns, body["name"], {"model.onnx": onnx, "model.md": card.encode()})
        if meta.get("outputs_reproduced"):
            hub.mark_outputs_reproduced(ns, body["name"], 1)
        path = f"/models/{ns}/{body['name']}/versions/1"
        bench = {"engine": "zoo", "hardware": "ci", "cores": 2, "batch_size": 1}
        assert http.post(f"{path}/benchmarks", json={**bench, "throughput": throughput}).is_success
        evaluation = {"dataset": "imagenet", "metric": "top1_accuracy", "value": top1}
        assert http.post(f"{path}/evals", json=evaluation).is_success
        names.append(body["name"])
    return {"ns": ns, "arch": arch, "kw": kw, "quant": names[2], "base": names[0]}


@pytest.fixture
def page(browser: Any, hub: Hub) -> Iterator[Any]:
    """A page that may use the clipboard, failing the test on any console error (a CSP
    violation is one) or uncaught script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=hub.url)
    p = context.new_page()
    errors: list[str] = []
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    context.close()
    assert not errors, errors


def shot(page: Any, hub: Hub, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{hub.name}-{name}.png"), full_page=True)


def test_browse_filter_copy_open_and_compare(page: Any, hub: Hub, family: dict[str, str]) -> None:
    page.goto(f"{hub.url}/?q={family['kw']}")
    rows = page.locator("table.models tbody tr")
    assert rows.count() == 3
    assert "3 models" in page.locator("#results-title").inner_text()
    shot(page, hub, "catalog")

    # Filter by a facet with the form, as a user would; empty fields stay out of the URL.
    page.select_option("#f-quantized", "yes")
    with page.expect_navigation():
        page.get_by_role("button", name="Apply filters").click()
    assert "quantized=yes" in page.url and "domain=" not in page.url
    assert rows.count() == 1
    assert page.locator("span.badge.verified").count() == 1
    shot(page, hub, "catalog-filtered")

    # Copy the stub: the clipboard holds exactly the row's stub, and the page says so.
    stub = page.locator("table.models tbody code").first.inner_text()
    assert stub.startswith("zoo:cv/classification/") and stub.endswith("pruned90_quant-none")
    page.locator("table.models tbody button.copy").first.click()
    page.wait_for_function("document.getElementById('live').textContent.startsWith('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == stub

    # Open the model: the per-layer chart is drawn, with a bar at 90%.
    with page.expect_navigation():
        page.locator("table.models tbody a.model-name").first.click()
    assert page.url.endswith(f"/models/{family['ns']}/{family['quant']}")
    chart = page.locator("svg.layers")
    assert chart.count() == 1 and chart.is_visible()
    assert page.locator("svg.layers text.value").first.text_content() == "90.0%"
    assert page.locator("#card .markdown strong").inner_text() == "test"
    assert page.locator("#card .markdown b").count() == 0  # raw HTML is text, not markup
    assert "780.0" in page.locator("#benchmarks").inner_text()
    assert page.locator("#lineage a").count() == 2  # the base and the other child
    shot(page, hub, "model")

    # Compare the architecture's variants: two scatter panels with three points each.
    with page.expect_navigation():
        page.get_by_role("link", name=f"Compare the variants of {family['arch']}").click()
    assert page.locator("svg.scatter").count() == 2
    assert page.locator("svg.scatter circle.point").count() == 6
    shot(page, hub, "compare")


def test_keyboard_reaches_the_skip_link_first(page: Any, hub: Hub) -> None:
    page.goto(f"{hub.url}/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_pages_read_without_javascript(browser: Any, hub: Hub, family: dict[str, str]) -> None:
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    p = context.new_page()
    try:
        p.goto(f"{hub.url}/models/{family['ns']}/{family['base']}")
        assert p.locator("h1").inner_text().startswith(f"{family['arch']} base-none")
        assert p.locator("svg.layers").is_visible()
        assert not p.locator("button.copy").first.is_visible()  # copying needs the script
        assert p.locator("#files a").count() == 2
        shot(p, hub, "model-no-js")
        p.goto(f"{hub.url}/?q={family['kw']}&sort=-sparsity")
        assert p.locator("table.models tbody tr").count() == 3
    finally:
        context.close()


def test_api_docs_render_with_nothing_but_the_hub(page: Any, hub: Hub) -> None:
    # Every request to another site fails, as on a hub without internet access: Swagger UI
    # still renders the whole API (before, it came from a CDN: a blank page).
    outside: list[str] = []

    def only_the_hub(route: Any) -> None:
        if route.request.url.startswith(f"{hub.url}/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_the_hub)
    page.goto(f"{hub.url}/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".info .title").inner_text().startswith("OpenZoo")
    assert page.locator(".opblock").count() >= 20  # the operations, grouped by tag
    assert page.get_by_text("/api/v1/models/{namespace}/{name}", exact=True).count() >= 1
    page.locator(".opblock-summary").first.click()  # open an operation: its parameters
    page.wait_for_selector(".opblock.is-open .parameters-container", timeout=10_000)
    shot(page, hub, "api-docs")
    assert not outside, outside
