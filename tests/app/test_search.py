"""Search over HTTP on both configurations: every filter, every sort, cursor pagination.

One corpus per hub, in namespaces of its own (a second namespace holds same-named models so
the name sort has ties); every search names that namespace or the corpus's keyword, so other
tests' models never show up.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from api_helpers import error
from sqlalchemy import select, update

from app.orm import Model, Namespace, utcnow
from support.hub import Hub, create_model, manifest, publish, unique_namespace, upload_blobs
from support.onnx_models import linear_model, quantized_linear_model


@dataclass(frozen=True)
class Corpus:
    """The published data every test here searches."""

    ns: str  # main namespace
    other: str  # second namespace: models named like some of ns's (name-sort ties)
    kw: str  # a word in every published description, in both namespaces
    ids: dict[tuple[str, str], int]  # (namespace, name) -> model id (the sorts' tiebreak)


def _card(kw: str, text: str = "") -> str:
    return f"{kw} {text}".strip()


@pytest.fixture(scope="module")
def corpus(hub: Hub) -> Corpus:
    ns, other, kw = unique_namespace(), unique_namespace(), f"kw{uuid.uuid4().hex[:10]}"
    http = hub.client(hub.admin_token)
    onnx = {s: {"model.onnx": linear_model(s)} for s in (0.0, 0.25, 0.5, 0.75)}
    specs: list[tuple[str, str, dict[str, Any], dict[str, bytes]]] = [
        (
            ns,
            "m01",
            {"stub": "zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/pruned75-none"},
            onnx[0.75],
        ),
        (
            ns,
            "m02",
            {"stub": "zoo:cv/detection/yolov5-s/pytorch/ultralytics/coco/pruned50-none"},
            onnx[0.5],
        ),
        (
            ns,
            "m03",
            {
                "stub": "zoo:nlp/question_answering/bert-base/pytorch/huggingface/squad/"
                "pruned50_quant-none"
            },
            {"model.onnx": quantized_linear_model(0.5)},
        ),
        (
            ns,
            "m04",
            {
                "stub": "zoo:cv/classification/mobilenet_v1-1.0/tensorflow/sparseml/imagenet/"
                "base-none"
            },
            onnx[0.0],
        ),
        (
            ns,
            "m05",
            {"display_name": "Fancy Name", "description": _card(kw, "discount 50%_off")},
            onnx[0.25],
        ),
        # No .onnx file: no measured sparsity (sorts below every measured model).
        (ns, "m06", {"description": _card(kw, "discount 50xyoff")}, {"model.md": b"# m06\n"}),
        (ns, "m07", {"visibility": "private"}, onnx[0.5]),
        (other, "m01", {}, onnx[0.5]),
        (other, "m02", {}, onnx[0.25]),
    ]
    for namespace, name, fields, files in specs:
        fields.setdefault("description", _card(kw))
        create_model(http, namespace, name=name, **fields)
        publish(http, namespace, name, files)
    # Never listed: a model without versions, one whose only version is still pending and one
    # whose only version failed its checks.
    create_model(http, ns, name="m08", description=_card(kw))
    create_model(http, ns, name="m09", description=_card(kw))
    r = http.post(f"/models/{ns}/m09/versions", json={"files": manifest(onnx[0.5])})
    assert r.status_code == 201, r.text
    create_model(http, ns, name="m10", description=_card(kw))
    broken = {"model.onnx": b"not onnx " + kw.encode()}
    r = http.post(f"/models/{ns}/m10/versions", json={"files": manifest(broken)})
    upload_blobs(http, r.json(), broken)
    r = http.post(f"/uploads/{r.json()['upload_id']}/commit")
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_ONNX"

    # Downloads (fetches of model.onnx count): m01 and m05 tie at 2, m03 has 1.
    for name, times in (("m01", 2), ("m05", 2), ("m03", 1)):
        for _ in range(times):
            got = http.get(f"/models/{ns}/{name}/versions/1/files/model.onnx")
            assert got.status_code in (200, 302), got.text
    with hub.sessionmaker() as s:
        rows = s.execute(
            select(Namespace.name, Model.name, Model.id)
            .join(Model.namespace)
            .where(Namespace.name.in_([ns, other]))
        ).all()
        ids = {(n, m): i for n, m, i in rows}
        # Ties on the created sort: three models created "at the same instant".
        same = [ids[(ns, "m02")], ids[(ns, "m03")], ids[(ns, "m04")]]
        s.execute(update(Model).where(Model.id.in_(same)).values(created_at=utcnow()))
        s.commit()
    return Corpus(ns, other, kw, ids)


def names(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return [m["name"] for m in page.json()["items"]]


def search(http: httpx.Client, **params: Any) -> httpx.Response:
    return http.get("/models", params=params)


# --- filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["m01", "m02", "m03", "m04", "m05", "m06"]),
        ({"domain": "cv"}, ["m01", "m02", "m04"]),
        ({"domain": "nlp"}, ["m03"]),
        ({"task": "classification"}, ["m01", "m04"]),
        ({"task": "question_answering"}, ["m03"]),
        ({"architecture": "resnet_v1"}, ["m01"]),
        ({"architecture": "resnet_v1-50"}, []),  # the sub-architecture is a field of its own
        ({"framework": "tensorflow"}, ["m04"]),
        ({"framework": "pytorch"}, ["m01", "m02", "m03"]),
        ({"repo": "sparseml"}, ["m01", "m04"]),
        ({"repo": "ultralytics"}, ["m02"]),
        ({"dataset": "imagenet"}, ["m01", "m04"]),
        ({"dataset": "squad"}, ["m03"]),
        ({"sparse_tag": "pruned50_quant-none"}, ["m03"]),
        ({"sparse_tag": "pruned50"}, []),
        ({"domain": "cv", "framework": "pytorch"}, ["m01", "m02"]),
        ({"domain": "cv", "task": "classification", "repo": "ultralytics"}, []),
        ({"quantized": "true"}, ["m03"]),
        ({"quantized": "false"}, ["m01", "m02", "m04", "m05", "m06"]),
        ({"domain": "audio"}, []),
    ],
)
def test_field_filters(
    hub: Hub, anon: httpx.Client, corpus: Corpus, params: dict[str, str], expected: list[str]
) -> None:
    assert names(search(anon, namespace=corpus.ns, **params)) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # Sparsity is measured from the weights at publish: 0.75, 0.5, 0.5 (quantized), 0, 0.25.
        ({"min_sparsity": 0.5}, ["m01", "m02", "m03"]),
        ({"min_sparsity": 0.76}, []),
        ({"max_sparsity": 0.25}, ["m04", "m05"]),
        ({"max_sparsity": 0}, ["m04"]),
        ({"min_sparsity": 0.3, "max_sparsity": 0.6}, ["m02", "m03"]),
        ({"min_sparsity": 0, "max_sparsity": 1}, ["m01", "m02", "m03", "m04", "m05"]),
        ({"min_sparsity": 0.4, "quantized": "true"}, ["m03"]),
    ],
)
def test_sparsity_filters_use_measured_values(
    hub: Hub, anon: httpx.Client, corpus: Corpus, params: dict[str, Any], expected: list[str]
) -> None:
    r = search(anon, namespace=corpus.ns, **params)
    assert names(r) == expected
    for item in r.json()["items"]:
        assert params.get("min_sparsity", 0) <= item["sparsity"] <= params.get("max_sparsity", 1)


def test_measured_sparsity_and_quantization_are_shown(
    hub: Hub, anon: httpx.Client, corpus: Corpus
) -> None:
    items = {m["name"]: m for m in search(anon, namespace=corpus.ns).json()["items"]}
    assert {n: m["sparsity"] for n, m in items.items()} == {
        "m01": 0.75,
        "m02": 0.5,
        "m03": 0.5,
        "m04": 0.0,
        "m05": 0.25,
        "m06": None,
    }
    assert [n for n, m in items.items() if m["quantized"]] == ["m03"]
    assert items["m01"]["path_stub"] == (
        "zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/pruned75-none"
    )
    assert (items["m01"]["architecture"], items["m01"]["sub_architecture"]) == ("resnet_v1", "50")


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("RESNET_V1", ["m01"]),  # in the path stub, case-insensitive
        ("yolov5-s/pytorch", ["m02"]),
        ("fancy", ["m05"]),  # display name
        ("m06", ["m06"]),  # name
        ("discount", ["m05", "m06"]),  # description
        ("50%_o", ["m05"]),  # '%' and '_' are literal, not LIKE wildcards
        ("%", ["m05"]),
        ("50_", ["m03"]),  # only the literal "50_" of pruned50_quant
        ("nothing-like-this", []),
    ],
)
def test_text_query(
    hub: Hub, anon: httpx.Client, corpus: Corpus, q: str, expected: list[str]
) -> None:
    assert names(search(anon, namespace=corpus.ns, q=q)) == expected


def test_namespace_filter_and_visibility(
    hub: Hub, admin: httpx.Client, anon: httpx.Client, corpus: Corpus
) -> None:
    assert names(search(anon, namespace=corpus.other)) == ["m01", "m02"]
    # The private model appears only to those who may see it; m08 (no version), m09 (pending
    # version only) and m10 (failed version only) never appear.
    assert "m07" not in names(search(anon, namespace=corpus.ns))
    assert names(search(admin, namespace=corpus.ns)) == [f"m0{i}" for i in range(1, 8)]
    assert names(search(anon, namespace=unique_namespace())) == []
    everywhere = search(anon, q=corpus.kw, limit=200).json()["items"]
    assert sorted((m["namespace"], m["name"]) for m in everywhere) == sorted(
        [(corpus.ns, f"m0{i}") for i in range(1, 7)]
        + [(corpus.other, "m01"), (corpus.other, "m02")]
    )


# --- sorts and pagination -----------------------------------------------------------------

SORTS = ["name", "-name", "created", "-created", "downloads", "-downloads", "sparsity", "-sparsity"]


def _sort_value(item: dict[str, Any], key: str) -> Any:
    if key == "created":
        return datetime.fromisoformat(item["created_at"])
    if key == "sparsity":
        return -1.0 if item["sparsity"] is None else item["sparsity"]
    return item[key]


def _walk(http: httpx.Client, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of a search, following the Link header; checks it matches next_cursor."""
    r = http.get("/models", params=params)
    items: list[dict[str, Any]] = []
    for _ in range(100):
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= params["limit"]
        items += page["items"]
        link = r.headers.get("link")
        if page["next_cursor"] is None:
            assert link is None
            return items
        assert len(page["items"]) == params["limit"]
        match = re.fullmatch(r'<(?P<url>[^>]+)>; rel="next"', link or "")
        assert match, link
        url = httpx.URL(match["url"])
        assert url.params["cursor"] == page["next_cursor"]
        assert {k: v for k, v in url.params.items() if k != "cursor"} == {
            k: str(v) for k, v in params.items()
        }
        r = http.get(url)
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("limit", [1, 4])
@pytest.mark.parametrize("sort", SORTS)
def test_pagination_walks_every_item_once_in_order(
    hub: Hub, admin: httpx.Client, corpus: Corpus, sort: str, limit: int
) -> None:
    # The keyword spans both namespaces (ties on name); the admin also sees the private m07.
    everything = search(admin, q=corpus.kw, sort=sort, limit=200).json()["items"]
    assert len(everything) == 9
    walked = _walk(admin, {"q": corpus.kw, "sort": sort, "limit": limit})
    keys = [(m["namespace"], m["name"]) for m in walked]
    assert len(set(keys)) == len(keys) == 9
    key, descending = sort.lstrip("-"), sort.startswith("-")
    expected = sorted(
        walked,
        key=lambda m: (_sort_value(m, key), corpus.ids[(m["namespace"], m["name"])]),
        reverse=descending,
    )
    assert keys == [(m["namespace"], m["name"]) for m in expected]
    assert keys == [(m["namespace"], m["name"]) for m in everything]


def test_sort_keys_have_ties(hub: Hub, admin: httpx.Client, corpus: Corpus) -> None:
    """The corpus really exercises the tiebreak on every sort key."""
    items = search(admin, q=corpus.kw, limit=200).json()["items"]
    for key in ("name", "created", "downloads", "sparsity"):
        values = [_sort_value(m, key) for m in items]
        assert len(set(values)) < len(values), key
    downloads = {(m["namespace"], m["name"]): m["downloads"] for m in items}
    assert downloads[(corpus.ns, "m01")] == downloads[(corpus.ns, "m05")] == 2
    assert downloads[(corpus.ns, "m03")] == 1


def test_last_page_has_no_link(hub: Hub, anon: httpx.Client, corpus: Corpus) -> None:
    r = search(anon, namespace=corpus.ns, limit=6)
    assert len(r.json()["items"]) == 6
    assert r.json()["next_cursor"] is None and "link" not in r.headers


# --- limits and cursors -------------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, -1, 201])
def test_limit_out_of_range(hub: Hub, anon: httpx.Client, limit: int) -> None:
    err = error(search(anon, limit=limit), 422, "VALIDATION_FAILED")
    assert "limit" in err["message"]


def test_limit_bounds_are_accepted(hub: Hub, anon: httpx.Client, corpus: Corpus) -> None:
    assert len(names(search(anon, namespace=corpus.ns, limit=200))) == 6
    assert len(names(search(anon, namespace=corpus.ns, limit=1))) == 1
    assert len(names(search(anon, namespace=corpus.ns))) == 6  # default 50


@pytest.mark.parametrize(
    ("param", "value"),
    [("min_sparsity", 1.5), ("max_sparsity", -0.1), ("quantized", "maybe"), ("sort", "popularity")],
)
def test_bad_parameters_are_named(hub: Hub, anon: httpx.Client, param: str, value: Any) -> None:
    err = error(search(anon, **{param: value}), 422, "VALIDATION_FAILED")
    assert param in err["message"]


def _forge(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort", "cursor"),
    [
        ("name", "not-a-cursor!!"),
        ("name", "é"),
        ("name", base64.urlsafe_b64encode(b"\xff\xfe\x00junk").decode()),
        ("name", _forge([1, 2])),
        ("name", _forge({"s": "name", "v": 5, "i": 1})),
        ("name", _forge({"s": "name", "v": "m01", "i": "1"})),
        ("name", _forge({"s": "name", "v": "m01", "i": 2**70})),
        ("name", _forge({"s": "name", "v": "m01", "i": -(2**70)})),
        ("downloads", _forge({"s": "downloads", "v": 2**70, "i": 1})),
        ("downloads", _forge({"s": "downloads", "v": "many", "i": 1})),
        ("name", _forge({"s": "name", "i": 1})),
        ("sparsity", _forge({"s": "sparsity", "v": None, "i": 1})),
        ("sparsity", _forge({"s": "sparsity", "v": float("nan"), "i": 1})),
        ("sparsity", _forge({"s": "sparsity", "v": True, "i": 1})),
        ("created", _forge({"s": "created", "v": "yesterday", "i": 1})),
        ("created", _forge({"s": "created", "v": "2026-01-01T00:00:00", "i": 1})),  # no zone
        ("-name", _forge({"s": "name", "v": "m01", "i": 1})),  # made for another sort
    ],
)
def test_invalid_cursors(
    hub: Hub, anon: httpx.Client, corpus: Corpus, sort: str, cursor: str
) -> None:
    r = search(anon, namespace=corpus.ns, sort=sort, cursor=cursor)
    err = error(r, 400, "INVALID_CURSOR")
    assert cursor[:20] in err["message"] and sort in err["message"]


def test_cursor_of_one_sort_is_refused_by_another(
    hub: Hub, anon: httpx.Client, corpus: Corpus
) -> None:
    cursor = search(anon, namespace=corpus.ns, sort="downloads", limit=2).json()["next_cursor"]
    assert cursor
    assert search(anon, namespace=corpus.ns, sort="downloads", cursor=cursor).status_code == 200
    error(search(anon, namespace=corpus.ns, sort="name", cursor=cursor), 400, "INVALID_CURSOR")


def test_overlong_cursor(hub: Hub, anon: httpx.Client) -> None:
    err = error(search(anon, cursor="a" * 1001), 422, "VALIDATION_FAILED")
    assert "cursor" in err["message"]
