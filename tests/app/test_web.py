"""The web catalog over real HTTP on both configurations: what it shows, what it never shows
(private models, anything executable from a card), facets, sorting and pagination.

One family per hub, in namespaces and an architecture of its own: a dense base, a pruned and a
pruned-quantized child (public), an unrelated detector (public) and a private child of the base
in another namespace.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from web_html import facet_counts, parse, row_stubs

from support.hub import Hub, create_model, publish, unique_namespace
from support.onnx_models import linear_model, quantized_linear_model

BENCH = {"engine": "zoo", "hardware": "test-cpu", "cores": 2, "batch_size": 1}


@dataclass(frozen=True)
class Family:
    """What the tests published."""

    ns: str
    private_ns: str
    arch: str
    kw: str
    stubs: dict[str, str]  # short key -> path stub
    reader: str  # a token that may see private_ns


def _stub(arch: str, ns: str, tag: str, dataset: str = "imagenet", task: str = "classification"):
    return f"zoo:cv/{task}/{arch}-50/pytorch/{ns}/{dataset}/{tag}"


@pytest.fixture(scope="module")
def family(hub: Hub) -> Family:
    ns, private_ns = unique_namespace(), unique_namespace()
    arch, kw = f"arch{uuid.uuid4().hex[:8]}", f"kw{uuid.uuid4().hex[:8]}"
    http = hub.client(hub.admin_token)
    stubs = {
        "base": _stub(arch, ns, "base-none"),
        "p50": _stub(arch, ns, "pruned50-none"),
        "p75q": _stub(arch, ns, "pruned75_quant-none"),
        "det": _stub(f"{arch}det", ns, "pruned25-none", dataset="coco", task="detection"),
        "secret": _stub(arch, private_ns, "pruned50-none"),
    }
    weights = {
        "base": linear_model(0.0),
        "p50": linear_model(0.5, seed=1),
        "p75q": quantized_linear_model(0.75),
        "det": linear_model(0.25, seed=2),
        "secret": linear_model(0.5, seed=3),
    }
    results = {"base": (100.0, 0.761), "p50": (180.0, 0.755), "p75q": (400.0, 0.75)}
    base_stub = None
    for key, stub in stubs.items():
        secret = key == "secret"
        body = create_model(
            http,
            private_ns if secret else ns,
            stub=stub,
            display_name=f"{key} {kw}" + (" secretmodel" if secret else ""),
            description=f"{kw} model",
            visibility="private" if secret else "public",
            base_model=None if key in ("base", "det") else base_stub,
        )
        base_stub = base_stub or body["stub"]
        files = {
            "model.onnx": weights[key],
            "model.md": f"---\ntask: classification\n---\n# {key} card\n\nSee **{kw}**.\n".encode(),
            "recipe/recipe_original.yaml": f"modifiers: [{key}]\n".encode(),
        }
        publish(http, body["namespace"], body["name"], files)
        if key == "p75q":
            hub.mark_outputs_reproduced(body["namespace"], body["name"], 1)
        if key in results:
            throughput, top1 = results[key]
            path = f"/models/{body['namespace']}/{body['name']}/versions/1"
            r = http.post(f"{path}/benchmarks", json={**BENCH, "throughput": throughput})
            assert r.status_code == 201, r.text
            r = http.post(f"{path}/evals", json={"dataset": "imagenet", "metric": "top1_accuracy",
                                                 "value": top1})  # fmt: skip
            assert r.status_code == 201, r.text
    reader = hub.token(["read"], namespaces=[private_ns])
    return Family(ns, private_ns, arch, kw, stubs, reader)


@pytest.fixture(scope="module")
def web(hub: Hub) -> Iterator[httpx.Client]:
    """A browser without a token."""
    with httpx.Client(base_url=hub.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def reader(hub: Hub, family: Family) -> Iterator[httpx.Client]:
    """A browser sending a token that may read the private namespace."""
    headers = {"Authorization": f"Bearer {family.reader}"}
    with httpx.Client(base_url=hub.url, headers=headers, timeout=60) as c:
        yield c


def _page(web: httpx.Client, url: str, status: int = 200, **params: str) -> str:
    # No params= when there are none: httpx would drop the query already in ``url``.
    r = web.get(url, params=params) if params else web.get(url)
    assert r.status_code == status, r.text[:2000]
    assert r.headers["content-type"].startswith("text/html")
    return r.text


def test_catalog_rows_show_what_was_published(web: httpx.Client, family: Family) -> None:
    html = _page(web, "/", namespace=family.ns, sort="-sparsity")
    s = family.stubs
    assert row_stubs(html) == [s["p75q"], s["p50"], s["det"], s["base"]]
    page = parse(html)
    assert "4 models" in page.body_text
    rows = [e for e in page.elements if e.tag == "tr" and "tbody" in e.ancestors]
    assert len(rows) == 4
    text = page.body_text
    for expected in ("75.0%", "50.0%", "25.0%", "0.0%", "400.0 items/s", "180.0 items/s",
                     "75.00%", "76.10%"):  # fmt: skip
        assert expected in text, expected
    # Badges: one model had its outputs reproduced, one is quantized.
    assert len(page.all("span", class_="verified")) == 1
    assert len(page.all("span", class_="quant")) == 1
    headers = web.get("/").headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["vary"] == "Authorization"  # pages differ by token: caches must key on it


def test_facet_counts_match_the_rows_they_lead_to(web: httpx.Client, family: Family) -> None:
    html = _page(web, "/", namespace=family.ns)
    checked = 0
    for select_id, key in (("f-domain", "domain"), ("f-task", "task"),
                           ("f-architecture", "architecture"), ("f-dataset", "dataset"),
                           ("f-quantized", "quantized"), ("f-smin", "sparsity_min"),
                           ("f-smax", "sparsity_max")):  # fmt: skip
        for value, count in facet_counts(html, select_id).items():
            rows = row_stubs(_page(web, "/", namespace=family.ns, **{key: value}))
            assert len(rows) == count, (key, value, rows)
            checked += 1
    assert checked >= 15
    assert facet_counts(html, "f-task") == {"classification": 3, "detection": 1}
    assert facet_counts(html, "f-smin")["50"] == 2 and facet_counts(html, "f-smax")["50"] == 3

    # A selected facet keeps the counts of its alternatives; the others narrow.
    html = _page(web, "/", namespace=family.ns, task="classification")
    assert facet_counts(html, "f-task") == {"classification": 3, "detection": 1}
    assert facet_counts(html, "f-dataset") == {"imagenet": 3}
    assert facet_counts(html, "f-quantized") == {"yes": 1, "no": 2}


def test_sorting_and_cursor_pages(web: httpx.Client, family: Family) -> None:
    s = family.stubs
    names = row_stubs(_page(web, "/", namespace=family.ns, sort="name"))
    by_name = sorted(["base", "p50", "p75q", "det"], key=lambda k: s[k].split("/")[2] + k)
    assert len(names) == 4 and set(names) == {s[k] for k in by_name}
    assert row_stubs(_page(web, "/", namespace=family.ns, sort="sparsity"))[0] == s["base"]

    seen: list[str] = []
    url: str | None = f"/?namespace={family.ns}&sort=-sparsity&limit=3"
    pages = 0
    while url:
        html = _page(web, url)
        seen += row_stubs(html)
        pages += 1
        nxt = parse(html).all("a", rel="next")
        url = nxt[0].attrs["href"] if nxt else None
    assert pages == 2 and seen == [s["p75q"], s["p50"], s["det"], s["base"]]
    assert "cursor" in _page(web, f"/?namespace={family.ns}&limit=3")


def test_private_models_never_appear_to_anonymous_visitors(
    web: httpx.Client, reader: httpx.Client, hub: Hub, family: Family
) -> None:
    for client, sees in ((web, False), (reader, True)):
        text = parse(_page(client, "/", q=family.kw)).body_text
        assert ("secretmodel" in text) is sees
        html = _page(client, "/", architecture=family.arch)
        assert facet_counts(html, "f-architecture")[family.arch] == (4 if sees else 3)
        assert facet_counts(html, "f-dataset") == {"imagenet": 4 if sees else 3}
        assert (family.stubs["secret"] in row_stubs(html)) is sees
        html = _page(client, "/", namespace=family.private_ns)
        assert len(row_stubs(html)) == (1 if sees else 0)
        compare = _page(client, "/compare", architecture=family.arch)
        assert ("secretmodel" in compare) is sees
        base = _page(client, f"/models/{family.ns}/{family.arch}-50-imagenet-base")
        assert ("secretmodel" in base) is sees  # the lineage lists visible children only
        choices = parse(_page(client, "/compare")).options["arch"]
        assert any(f"{family.arch} ({4 if sees else 3})" == t for _, t, _ in choices)

    secret = f"/models/{family.private_ns}/{family.arch}-50-imagenet-pruned50"
    page = _page(web, secret, status=404)
    assert "secretmodel" not in page and "Not found" in page
    assert "secretmodel" in _page(reader, secret)
    # A missing model reads exactly like a private one.
    missing = _page(web, f"/models/{family.private_ns}/nothing-here", status=404)
    assert parse(missing).body_text.replace("nothing-here", "X") == parse(page).body_text.replace(
        f"{family.arch}-50-imagenet-pruned50", "X"
    )
    bad = web.get("/", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401 and bad.headers["content-type"].startswith("text/html")


def test_model_page_renders_everything_published(web: httpx.Client, family: Family) -> None:
    name = f"{family.arch}-50-imagenet-pruned50"
    html = _page(web, f"/models/{family.ns}/{name}")
    page = parse(html)
    text = page.body_text
    assert family.stubs["p50"] in text
    assert f"zoo download zoo:{family.ns}/{name}@1" in text
    assert f'zoo.Model("zoo:{family.ns}/{name}@1")' in text
    assert "p50 card" in text and family.kw in text  # the card's markdown
    assert "modifiers: [p50]" in text  # the recipe, as code
    assert "latest" in text and "180.0" in text and "76.10%" not in text and "75.50%" in text
    # Files: sizes, sha256 and download links that serve those very bytes.
    links = {e.attrs["href"] for e in page.all("a") if "/files/" in e.attrs.get("href", "")}
    assert len(links) == 3
    onnx = next(link for link in links if link.endswith("/model.onnx"))
    r = web.get(onnx, follow_redirects=True)
    assert r.status_code == 200 and r.content == linear_model(0.5, seed=1)
    # The per-layer chart: one bar for the single Gemm, at 50%.
    bars = page.all("rect", class_="bar")
    assert len(bars) == 1 and float(bars[0].attrs["width"]) == pytest.approx(180.0)
    assert "fc" in text and "50.0%" in text
    # Lineage: the base and the other public child are links; this model is not.
    lineage = {e.attrs["href"] for e in page.all("a") if "lineage" in e.within}
    assert lineage == {
        f"/models/{family.ns}/{family.arch}-50-imagenet-base",
        f"/models/{family.ns}/{family.arch}-50-imagenet-pruned75_quant",
    }
    # Another version by number, and a version that does not exist.
    assert _page(web, f"/models/{family.ns}/{name}", version="1")
    assert "has no version" in _page(web, f"/models/{family.ns}/{name}", status=404, version="9")


def test_compare_view_charts_the_variants(web: httpx.Client, family: Family) -> None:
    html = _page(web, "/compare", architecture=family.arch)
    page = parse(html)
    assert len(page.all("svg", class_="scatter")) == 2
    points = page.all("circle", class_="point")
    assert len(points) == 6  # 3 variants with throughput, 3 with accuracy
    hrefs = {e.attrs["href"] for e in page.all("a") if "svg" in e.ancestors}
    assert len(hrefs) == 3 and all(h.startswith(f"/models/{family.ns}/") for h in hrefs)
    assert not page.all("script", src="")  # nothing inline
    assert "No published model" in _page(web, "/compare", architecture="no-such-arch")


@pytest.mark.parametrize(
    "params",
    [{"sparsity_min": "abc"}, {"sparsity_max": "150"}, {"sort": "bogus"}, {"cursor": "xyz"}],
)
def test_bad_queries_answer_400_pages(web: httpx.Client, params: dict[str, str]) -> None:
    html = _page(web, "/", status=400, **params)
    assert "Something is wrong" in html


def test_empty_form_fields_mean_no_filter(web: httpx.Client, family: Family) -> None:
    html = _page(web, "/", namespace=family.ns, domain="", sparsity_min="", quantized="", q="")
    assert len(row_stubs(html)) == 4


def test_counts_follow_a_new_publish(hub: Hub, web: httpx.Client) -> None:
    # Facet counts are cached until the catalog changes: a publish must show at once.
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="first")
    publish(http, ns, "first", {"model.onnx": linear_model(0.5)})
    assert facet_counts(_page(web, "/", namespace=ns), "f-quantized") == {"yes": 0, "no": 1}
    create_model(http, ns, name="second")
    publish(http, ns, "second", {"model.onnx": quantized_linear_model(0.5)})
    html = _page(web, "/", namespace=ns)
    assert facet_counts(html, "f-quantized") == {"yes": 1, "no": 1}
    assert len(row_stubs(html)) == 2 and "2 models" in parse(html).body_text
