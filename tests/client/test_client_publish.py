"""Publishing, aliases, results and error mapping against the real hub on both backends."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import zoo
from support.client_helpers import MakeClient, Published, Recorder, model_folder, publish_model
from support.hub import Hub, unique_namespace


def test_publish_creates_the_model_from_a_path_stub(hub: Hub, published: Published) -> None:
    v = published.version
    assert (v.namespace, v.name, v.number) == (
        published.namespace,
        "mlp-tiny-synthetic-pruned90",
        1,
    )
    model = v.model
    assert model.path_stub == published.path_stub
    assert model.data["sparse_tag"] == "pruned90-none"
    assert {f.path for f in v.files} == {
        str(p.relative_to(published.folder)) for p in published.folder.rglob("*") if p.is_file()
    }
    assert v.sparsity is not None and v.sparsity > 0.85


def test_republishing_skips_blobs_the_hub_has(
    hub: Hub, published: Published, make_client: MakeClient, tmp_path: Path
) -> None:
    rec = Recorder()
    client = make_client(hub.url, token=hub.admin_token, transport=rec)
    progress: list[int] = []
    v2 = client.publish(
        published.folder,
        published.path_stub,
        namespace=published.namespace,
        progress=progress.append,
    )
    assert v2.number == 2
    assert [r for r in rec.seen if r.method == "PUT"] == []
    assert sum(progress) == sum(f.size for f in v2.files)  # the folder's size, once per path
    assert client.resolve(published.path_stub).number == 2  # latest moved


def test_publish_a_namespaced_stub_then_alias_and_results(
    hub: Hub, make_client: MakeClient, tmp_path: Path
) -> None:
    ns = unique_namespace()
    client = make_client(hub.url, token=hub.admin_token)
    folder = model_folder(tmp_path)
    v1 = client.publish(folder, f"zoo:{ns}/my-model", message="first")
    (folder / "recipe" / "recipe_original.yaml").write_text("version: 2\n")
    v2 = client.publish(folder, f"zoo:{ns}/my-model")
    assert (v1.number, v2.number) == (1, 2)
    client.set_alias(f"zoo:{ns}/my-model", "stable", 1)
    assert client.resolve(f"zoo:{ns}/my-model@stable").number == 1
    assert [v["number"] for v in client.list_versions(f"{ns}/my-model")] == [2, 1]
    client.add_benchmark(
        f"zoo:{ns}/my-model@1",
        engine="zoo",
        hardware="test cpu",
        cores=2,
        batch_size=1,
        throughput=123.0,
    )
    client.add_eval(f"zoo:{ns}/my-model@1", dataset="synthetic", metric="top1", value=0.5)
    fresh = make_client(hub.url, cache=tmp_path / "fresh")
    model = zoo.Model(f"zoo:{ns}/my-model@stable", client=fresh)
    assert model.benchmarks[0]["throughput"] == 123.0
    assert model.eval_results[0]["metric"] == "top1"


def test_a_failed_publish_aborts_its_upload(
    hub: Hub, make_client: MakeClient, tmp_path: Path
) -> None:
    client = make_client(hub.url, token=hub.admin_token)
    folder = model_folder(tmp_path)
    (folder / "model.onnx").write_bytes(b"not an onnx model")
    ns = unique_namespace()
    with pytest.raises(zoo.BadRequestError) as info:
        client.publish(folder, f"zoo:{ns}/broken")
    assert info.value.code == "INVALID_ONNX"
    with pytest.raises(zoo.VersionNotFoundError):
        client.resolve(f"zoo:{ns}/broken")


def test_publishing_needs_a_token(hub: Hub, make_client: MakeClient, tmp_path: Path) -> None:
    client = make_client(hub.url)
    with pytest.raises(zoo.AuthenticationError, match="zoo login"):
        client.publish(model_folder(tmp_path), f"zoo:{unique_namespace()}/m")


def test_a_read_token_may_not_publish(hub: Hub, make_client: MakeClient, tmp_path: Path) -> None:
    client = make_client(hub.url, token=hub.token(["read"]))
    with pytest.raises(zoo.PermissionDeniedError):
        client.publish(model_folder(tmp_path), f"zoo:{unique_namespace()}/m")


def test_unknown_stub_suggests_the_closest(
    hub: Hub, published: Published, make_client: MakeClient
) -> None:
    client = make_client(hub.url)
    typo = published.path_stub.replace("pruned90", "pruned95")
    with pytest.raises(zoo.ModelNotFoundError) as info:
        client.resolve(typo)
    assert published.path_stub in info.value.suggestions
    assert published.path_stub in str(info.value)


def test_search_follows_cursor_pages(hub: Hub, make_client: MakeClient, tmp_path: Path) -> None:
    writer = make_client(hub.url, token=hub.admin_token)
    ns = unique_namespace()
    for i in range(3):
        writer.publish(model_folder(tmp_path, seed=i), f"zoo:{ns}/m{i}")
    reader = make_client(hub.url)
    found = list(reader.search(namespace=ns, page_size=1))
    assert [m.name for m in found] == ["m0", "m1", "m2"]
    assert [m.name for m in reader.search(namespace=ns, sort="-name", limit=2)] == ["m2", "m1"]
    assert [m.name for m in zoo.search_models(namespace=ns, limit=1, client=reader)] == ["m0"]


def test_publish_refuses_a_bad_folder(hub: Hub, make_client: MakeClient, tmp_path: Path) -> None:
    client = make_client(hub.url, token=hub.admin_token)
    with pytest.raises(zoo.LocalModelError, match="not a folder"):
        client.publish(tmp_path / "missing", "zoo:ns/m")
    folder = model_folder(tmp_path)
    with pytest.raises(zoo.LocalModelError, match="--namespace"):
        client.publish(folder, "zoo:cv/classification/a-b/onnx/r/d/pruned-none")
    with pytest.raises(zoo.LocalModelError, match="@version"):
        client.publish(folder, "zoo:ns/m@3")


def test_second_model_publish_of_existing_path_stub(
    hub: Hub, make_client: MakeClient, tmp_path: Path
) -> None:
    client = make_client(hub.url, token=hub.admin_token)
    p = publish_model(hub, client, tmp_path)
    again = client.publish(p.folder, p.path_stub, namespace=p.namespace)
    assert again.number == 2


@pytest.mark.slow
def test_multipart_publish_and_download_on_s3(
    hub: Hub, make_client: MakeClient, tmp_path: Path
) -> None:
    if hub.settings.storage != "s3":
        pytest.skip("multipart uploads exist on the S3 backend only")
    size = hub.settings.multipart_threshold_bytes + 1_000_000  # two parts, the last one short
    extra = {"training/big.bin": os.urandom(1 << 20) * (size >> 20) + b"x" * (size % (1 << 20))}
    writer = make_client(hub.url, token=hub.admin_token, cache=tmp_path / "w")
    p = publish_model(hub, writer, tmp_path, extra)
    big = next(f for f in p.version.files if f.path == "training/big.bin")
    assert big.size == size
    path = make_client(hub.url, cache=tmp_path / "r").download_file(p.stub, "training/big.bin")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == big.sha256
