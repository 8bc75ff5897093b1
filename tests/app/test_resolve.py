"""Stub resolution and aliases over HTTP on both configurations.

Every model here lives in a fresh namespace, and its path stub and short name carry that
namespace too, so short stubs stay unambiguous however many tests share the hub.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from api_helpers import error
from sqlalchemy import func, select

from app.orm import AliasEvent, Model, Namespace
from support.hub import Hub, create_model, publish, unique_namespace
from support.onnx_models import linear_model


@dataclass(frozen=True)
class Published:
    """A model with two versions (v1 has recipes), made once per hub."""

    ns: str
    name: str  # the short (v2) stub's repo name, derived from the path stub
    path: str  # the path stub, without 'zoo:'


def files(card: str, recipes: tuple[str, ...] = ()) -> dict[str, bytes]:
    # 95 % sparse: the stubs below say pruned95, and the hub refuses weights that contradict them.
    out = {"model.onnx": linear_model(0.95), "model.md": f"# {card}\n".encode()}
    for r in recipes:
        out[f"recipe/recipe_{r}.yaml"] = f"# {r}\nmodifiers: []\n".encode()
    return out


@pytest.fixture(scope="module")
def published(hub: Hub) -> Published:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    path = f"cv/classification/resnet_v1-50/pytorch/{ns}/imagenet/pruned95_quant-none"
    model = create_model(http, ns, stub=f"zoo:{path}")
    assert model["name"] == "resnet_v1-50-imagenet-pruned95_quant"  # v2 name drops '-none'
    # A short name of its own: another model in ns with a unique name.
    publish(http, ns, model["name"], files(f"{ns} v1", ("original", "transfer_learn")))
    publish(http, ns, model["name"], files(f"{ns} v2", ("original",)))
    return Published(ns, model["name"], path)


def resolve(http: httpx.Client, stub: str) -> httpx.Response:
    return http.get("/resolve", params={"stub": stub})


def resolved(r: httpx.Response) -> tuple[str, int]:
    assert r.status_code == 200, r.text
    body = r.json()
    return body["stub"], body["version"]["number"]


# --- forms --------------------------------------------------------------------------------


def test_path_form(hub: Hub, anon: httpx.Client, published: Published) -> None:
    exact = f"zoo:{published.ns}/{published.name}"
    assert resolved(resolve(anon, f"zoo:{published.path}")) == (f"{exact}@2", 2)
    assert resolved(resolve(anon, f"zoo:{published.path}@1")) == (f"{exact}@1", 1)
    body = resolve(anon, f"zoo:{published.path}").json()
    assert body["version"]["model"]["path_stub"] == f"zoo:{published.path}"
    assert body["recipe"] is None
    assert {f["path"] for f in body["version"]["files"]} == {
        "model.onnx",
        "model.md",
        "recipe/recipe_original.yaml",
    }


def test_short_and_namespaced_forms(hub: Hub, admin: httpx.Client, anon: httpx.Client) -> None:
    ns = unique_namespace()
    name = f"{ns}-imagenet-pruned90"  # unique across the hub, so the short form is unambiguous
    create_model(admin, ns, name=name)
    publish(admin, ns, name, files(ns))
    for stub in (
        f"zoo:{name}",
        f"zoo:{ns}/{name}",
        f"zoo:{name}@1",
        f"zoo:{ns}/{name}@latest",
        f"{ns}/{name}",
        name,
        f"  zoo:{name}  ",
    ):
        assert resolved(resolve(anon, stub)) == (f"zoo:{ns}/{name}@1", 1), stub


def test_version_number_and_aliases(hub: Hub, anon: httpx.Client, published: Published) -> None:
    base = f"zoo:{published.ns}/{published.name}"
    assert resolved(resolve(anon, base))[1] == 2
    assert resolved(resolve(anon, f"{base}@latest"))[1] == 2
    assert resolved(resolve(anon, f"{base}@1"))[1] == 1
    assert resolved(resolve(anon, f"zoo:{published.name}@1"))[1] == 1


def test_recipe(hub: Hub, anon: httpx.Client, published: Published) -> None:
    base = f"zoo:{published.ns}/{published.name}"
    body = resolve(anon, f"{base}@1?recipe=transfer_learn").json()
    assert body["stub"] == f"{base}@1"
    assert body["recipe"]["name"] == "transfer_learn"
    assert body["recipe"]["path"] == "recipe/recipe_transfer_learn.yaml"
    assert [r["name"] for r in body["version"]["recipes"]] == ["original", "transfer_learn"]
    latest = resolve(anon, f"zoo:{published.path}?recipe=original").json()
    assert (latest["version"]["number"], latest["recipe"]["path"]) == (
        2,
        "recipe/recipe_original.yaml",
    )

    err = error(resolve(anon, f"{base}?recipe=transfer_learn"), 404, "NOT_FOUND")  # not in v2
    assert "transfer_learn" in err["message"] and "original" in err["message"]
    assert err["details"] == {"recipe": "transfer_learn", "available": ["original"]}


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stub", "part", "named"),
    [
        ("zoo:a/b/c", "segments", "3"),
        ("zoo:cv/classification/resnet_v1-50/pytorch//imagenet/pruned90", "repo", "repo"),
        ("zoo:ns/m@0", "version", "'0'"),
        ("zoo:ns/m@Stable", "version", "'Stable'"),
        ("zoo:ns/m@1@2", "version", "'@'"),
        ("zoo:ns/m?recipe=", "recipe", "recipe"),
        ("zoo:ns/m?recipe_type=original", "query", "'recipe_type'"),
        ("ZOO:ns/m", "prefix", "'ZOO:'"),
        ("zoo:NS/m", "namespace", "'NS'"),
        ("zoo:ns/m o", "repo_name", "' '"),
        ("   ", "stub", "empty"),
    ],
)
def test_malformed_stub(hub: Hub, anon: httpx.Client, stub: str, part: str, named: str) -> None:
    err = error(resolve(anon, stub), 400, "INVALID_STUB")
    assert err["details"]["part"] == part
    assert named in err["message"]
    assert err["details"]["stub"] == stub


def test_missing_stub_parameter(hub: Hub, anon: httpx.Client) -> None:
    err = error(anon.get("/resolve"), 422, "VALIDATION_FAILED")
    assert "stub" in err["message"]


def test_unknown_model_suggests_close_stubs(
    hub: Hub, anon: httpx.Client, published: Published
) -> None:
    err = error(resolve(anon, f"zoo:{published.ns}/{published.name[:-1]}x"), 404, "MODEL_NOT_FOUND")
    assert f"zoo:{published.ns}/{published.name}" in err["details"]["suggestions"]
    assert "did you mean" in err["message"] and f"{published.name[:-1]}x" in err["message"]

    typo = published.path.replace("imagenet", "imagenett")
    err = error(resolve(anon, f"zoo:{typo}@1"), 404, "MODEL_NOT_FOUND")
    assert err["details"]["suggestions"][0] == f"zoo:{published.path}"
    assert typo in err["message"]

    err = error(resolve(anon, f"zoo:{unique_namespace()}-nothing-close"), 404, "MODEL_NOT_FOUND")
    assert "nothing-close" in err["message"]


def test_short_stub_in_two_namespaces_is_ambiguous(
    hub: Hub, admin: httpx.Client, anon: httpx.Client
) -> None:
    ns1, ns2 = unique_namespace(), unique_namespace()
    name = f"{ns1}-shared"
    for ns in (ns1, ns2):
        create_model(admin, ns, name=name)
        publish(admin, ns, name, {"model.md": f"# {ns}\n".encode()})
    err = error(resolve(anon, f"zoo:{name}"), 404, "MODEL_NOT_FOUND")
    assert sorted(err["details"]["candidates"]) == sorted(
        [f"zoo:{ns1}/{name}", f"zoo:{ns2}/{name}"]
    )
    assert "namespaced" in err["message"]
    assert resolved(resolve(anon, f"zoo:{ns2}/{name}")) == (f"zoo:{ns2}/{name}@1", 1)


def test_unknown_version_lists_the_available_ones(
    hub: Hub, anon: httpx.Client, published: Published
) -> None:
    base = f"zoo:{published.ns}/{published.name}"
    for ref in ("7", "nightly"):
        err = error(resolve(anon, f"{base}@{ref}"), 404, "VERSION_NOT_FOUND")
        assert f"'{ref}'" in err["message"] and "[2, 1]" in err["message"]
        assert err["details"] == {"version": ref, "available": [2, 1]}


def test_model_without_versions(hub: Hub, admin: httpx.Client, anon: httpx.Client) -> None:
    ns = unique_namespace()
    create_model(admin, ns, name="empty")
    err = error(resolve(anon, f"zoo:{ns}/empty"), 404, "VERSION_NOT_FOUND")
    assert "no published version" in err["message"] and err["details"]["available"] == []


# --- aliases ------------------------------------------------------------------------------


def test_alias_set_move_delete_and_history(
    hub: Hub, admin: httpx.Client, anon: httpx.Client
) -> None:
    ns = unique_namespace()
    create_model(admin, ns, name="m")
    publish(admin, ns, "m", files(f"{ns} 1"))
    publish(admin, ns, "m", files(f"{ns} 2"))
    stub = f"zoo:{ns}/m@stable"

    r = admin.put(f"/models/{ns}/m/aliases/stable", json={"version": 1})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "stable" and r.json()["version"] == 1
    assert resolved(resolve(anon, stub)) == (f"zoo:{ns}/m@1", 1)
    assert admin.get(f"/models/{ns}/m/versions/stable").json()["number"] == 1
    assert admin.get(f"/models/{ns}/m/versions/1").json()["aliases"] == ["stable"]

    assert admin.put(f"/models/{ns}/m/aliases/stable", json={"version": 2}).status_code == 200
    assert resolved(resolve(anon, stub))[1] == 2
    aliases = admin.get(f"/models/{ns}/m/aliases").json()
    assert [(a["name"], a["version"]) for a in aliases] == [("latest", 2), ("stable", 2)]

    assert admin.delete(f"/models/{ns}/m/aliases/stable").status_code == 204
    err = error(resolve(anon, stub), 404, "VERSION_NOT_FOUND")
    assert "'stable'" in err["message"]
    err = error(admin.delete(f"/models/{ns}/m/aliases/stable"), 404, "NOT_FOUND")
    assert "'stable'" in err["message"]

    history = admin.get(f"/models/{ns}/m/aliases/history").json()
    assert [(e["name"], e["version"]) for e in history] == [
        ("latest", 1),
        ("latest", 2),
        ("stable", 1),
        ("stable", 2),
        ("stable", None),
    ]
    times = [e["created_at"] for e in history]
    assert times == sorted(times)


def test_alias_history_is_append_only(hub: Hub, admin: httpx.Client) -> None:
    ns = unique_namespace()
    create_model(admin, ns, name="m")
    publish(admin, ns, "m", files(f"{ns} 1"))

    model_id = _model_id(hub, ns)

    def events() -> int:
        with hub.sessionmaker() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(AliasEvent)
                    .where(AliasEvent.model_id == model_id)
                )
                or 0
            )

    before = events()
    admin.put(f"/models/{ns}/m/aliases/rc", json={"version": 1})
    admin.delete(f"/models/{ns}/m/aliases/rc")
    admin.put(f"/models/{ns}/m/aliases/rc", json={"version": 1})
    assert events() == before + 3
    history = admin.get(f"/models/{ns}/m/aliases/history").json()
    assert [(e["name"], e["version"]) for e in history] == [
        ("latest", 1),
        ("rc", 1),
        ("rc", None),
        ("rc", 1),
    ]
    # No route rewrites or deletes history.
    assert admin.delete(f"/models/{ns}/m/aliases/history").status_code == 404
    assert len(admin.get(f"/models/{ns}/m/aliases/history").json()) == 4


def _model_id(hub: Hub, ns: str) -> int:
    with hub.sessionmaker() as s:
        mid = s.scalar(select(Model.id).join(Model.namespace).where(Namespace.name == ns))
    assert mid is not None
    return int(mid)


def test_latest_cannot_be_set_or_deleted(hub: Hub, admin: httpx.Client) -> None:
    ns = unique_namespace()
    create_model(admin, ns, name="m")
    publish(admin, ns, "m", files(f"{ns} 1"))
    publish(admin, ns, "m", files(f"{ns} 2"))
    err = error(
        admin.put(f"/models/{ns}/m/aliases/latest", json={"version": 1}), 400, "BAD_REQUEST"
    )
    assert "'latest'" in err["message"]
    err = error(admin.delete(f"/models/{ns}/m/aliases/latest"), 400, "BAD_REQUEST")
    assert "'latest'" in err["message"]
    assert resolved(resolve(admin, f"zoo:{ns}/m@latest"))[1] == 2
    assert [
        (e["name"], e["version"]) for e in admin.get(f"/models/{ns}/m/aliases/history").json()
    ] == [("latest", 1), ("latest", 2)]


def test_alias_errors(hub: Hub, admin: httpx.Client) -> None:
    ns = unique_namespace()
    create_model(admin, ns, name="m")
    publish(admin, ns, "m", files(f"{ns} 1"))
    err = error(
        admin.put(f"/models/{ns}/m/aliases/stable", json={"version": 9}), 404, "VERSION_NOT_FOUND"
    )
    assert "'9'" in err["message"] and err["details"]["available"] == [1]
    err = error(
        admin.put(f"/models/{ns}/m/aliases/Stable", json={"version": 1}), 422, "VALIDATION_FAILED"
    )
    assert "alias" in err["message"]
    err = error(
        admin.put(f"/models/{ns}/m/aliases/stable", json={"version": 0}), 422, "VALIDATION_FAILED"
    )
    assert "version" in err["message"]
    err = error(
        admin.put(f"/models/{ns}/nope/aliases/stable", json={"version": 1}), 404, "MODEL_NOT_FOUND"
    )
    assert f"'{ns}/nope'" in err["message"]
    history = admin.get(f"/models/{ns}/m/aliases/history").json()
    assert [(e["name"], e["version"]) for e in history] == [("latest", 1)]  # nothing recorded


def test_alias_named_history_is_reserved(hub: Hub) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")
    publish(http, ns, "m", {"model.md": f"# {ns}".encode()})
    r = http.put(f"/models/{ns}/m/aliases/history", json={"version": 1})
    assert r.status_code == 400 and "reserved" in r.json()["error"]["message"]
