"""The SparseZoo-compatible GraphQL API (``POST /v2/graphql``) on both configurations: every
argument and field, the file listing and its archives, results, errors and visibility.

One catalog per hub, in a namespace of its own that is also the path stubs' REPO segment, so
every query can be narrowed to it (``repo:`` or ``repoNamespace:``) and other tests' models
never show up.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.orm import Blob, CompatArchive
from app.seed import build_seed_model
from support.hub import Hub, create_model, publish, unique_namespace
from support.onnx_models import linear_model

BENCHMARKS = [
    {"engine": "zoo", "hardware": "Intel Xeon", "cores": 24, "batch_size": 64, "throughput": 812.5},
    {"engine": "zoo", "hardware": "Intel Xeon", "cores": 24, "batch_size": 1, "throughput": 90.0},
]
EVAL = {"dataset": "synthetic", "metric": "top1_accuracy", "value": 0.7612}
NLP_FILES = {
    "training/config.json": b'{"model_type": "bert"}',
    "training/tokenizer.json": b'{"version": "1.0"}',
    "training/tokenizer_config.json": b'{"do_lower_case": true}',
    "training/pytorch_model.bin": b"weights",
    "deployment/config.json": b'{"model_type": "bert", "deployed": true}',
}


@dataclass(frozen=True)
class Catalog:
    ns: str
    mlp: dict[str, bytes]  # files of the main model
    mlp_stub: str
    bert: dict[str, bytes]
    bert_stub: str
    plain_stub: str  # same fields as mlp's stub, without a sub-architecture
    secret_stub: str


def _mlp_files() -> dict[str, bytes]:
    files = {f.path: f.data for f in build_seed_model(seed=3)}
    files.update(
        {
            "sample-labels/lab-0000.npz": files["sample-outputs/out-0000.npz"],
            "sample-outputs_onnxruntime/out-0000.npz": files["sample-outputs/out-0000.npz"],
            "training/model.pt": b"checkpoint",
            "recipe/sparse_transfer.md": b"# transfer recipe",
            "benchmarks.yaml": b"throughput: 812.5\n",
            "eval.yaml": b"top1: 0.7612\n",
            "logs/train.log": b"epoch 1\n",
        }
    )
    return files


@pytest.fixture(scope="module")
def catalog(hub: Hub) -> Catalog:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    mlp_stub = f"zoo:cv/classification/mlp-tiny/onnx/{ns}/synthetic/pruned90-none"
    mlp = _mlp_files()
    name = create_model(http, ns, stub=mlp_stub, display_name="MLP tiny", tags=["demo"])["name"]
    publish(http, ns, name, mlp)
    for bench in BENCHMARKS:
        assert http.post(f"/models/{ns}/{name}/versions/1/benchmarks", json=bench).is_success
    assert http.post(f"/models/{ns}/{name}/versions/1/evals", json=EVAL).is_success

    bert_stub = f"zoo:nlp/question_answering/bert-base/pytorch/{ns}/squad/base-none"
    bert = {"model.onnx": linear_model(0.0, seed=5), **NLP_FILES}
    publish(http, ns, create_model(http, ns, stub=bert_stub)["name"], bert)

    plain_stub = f"zoo:cv/classification/mlp/onnx/{ns}/synthetic/pruned90-none"
    seed = {f.path: f.data for f in build_seed_model(seed=4)}
    publish(http, ns, create_model(http, ns, stub=plain_stub)["name"], seed)

    secret_stub = f"zoo:cv/detection/yolo-s/onnx/{ns}/coco/base-none"
    secret = create_model(http, ns, stub=secret_stub, visibility="private")["name"]
    publish(http, ns, secret, {"model.onnx": linear_model(0.0, seed=6)})
    return Catalog(ns, mlp, mlp_stub, bert, bert_stub, plain_stub, secret_stub)


def gql(hub: Hub, query: str, token: str | None = None) -> dict[str, Any]:
    """POST a query the way the sparsezoo client does; the answer must be 200 JSON."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.post(f"{hub.url}/v2/graphql", json={"query": query}, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return dict(r.json())


def models(hub: Hub, args: str, fields: str = "stub", token: str | None = None) -> list[Any]:
    body = gql(hub, f"{{ models ({args}) {{ {fields} }} }}", token)
    assert "errors" not in body, body
    return list(body["data"]["models"])


def stubs(hub: Hub, args: str, token: str | None = None) -> list[str]:
    return [m["stub"] for m in models(hub, args, token=token)]


# What sparsezoo 1.8.1 sends for Model(stub): QueryParser's text, trailing comma included.
CLIENT_FIELDS = (
    "modelId modelOnnxSizeCompressedBytes files(version: 2) "
    "{ displayName downloadUrl fileSize fileType modelId } "
    "benchmarkResults { batchSize deviceInfo numCores recordedUnits recordedValue } "
    "trainingResults { datasetName datasetType recordedUnits recordedValue } "
    "repoName repoNamespace "
)


def client_query(args: dict[str, str]) -> str:
    parsed = "".join(f'{k}: "{v}",' for k, v in args.items())
    return f"\n    {{\n        models ({parsed})\n            {{\n               {CLIENT_FIELDS}\n"


def path_args(stub: str) -> dict[str, str]:
    """The arguments sparsezoo's get_model_metadata_from_stub makes of a path stub."""
    domain, task, arch, framework, repo, dataset, tag = stub.removeprefix("zoo:").split("/")
    architecture, _, sub = arch.partition("-")
    out = {"domain": domain, "task": task, "architecture": architecture}
    if sub:
        out["subArchitecture"] = sub
    return {**out, "framework": framework, "repo": repo, "sourceDataset": dataset, "sparseTag": tag}


def test_path_stub_query_exactly_as_the_client_sends_it(hub: Hub, catalog: Catalog) -> None:
    body = gql(hub, client_query(path_args(catalog.mlp_stub)) + "}\n    }\n")
    assert "errors" not in body, body
    [model] = body["data"]["models"]
    assert model["repoNamespace"] == catalog.ns
    assert model["repoName"] == "mlp-tiny-synthetic-pruned90"
    assert isinstance(model["modelId"], str) and model["modelOnnxSizeCompressedBytes"] is None
    assert {f["modelId"] for f in model["files"]} == {model["modelId"]}
    assert "model.onnx" in {f["displayName"] for f in model["files"]}


def test_short_stub_query(hub: Hub, catalog: Catalog) -> None:
    found = models(hub, 'repoName: "mlp-tiny-synthetic-pruned90",', "stub repoName repoNamespace")
    mine = [m for m in found if m["repoNamespace"] == catalog.ns]
    assert mine == [
        {
            "stub": catalog.mlp_stub,
            "repoName": "mlp-tiny-synthetic-pruned90",
            "repoNamespace": catalog.ns,
        }
    ]


def test_search_query_lists_stubs(hub: Hub, catalog: Catalog) -> None:
    # search_models(domain="cv", sub_domain="classification", repo=...): modelId and stub.
    found = models(
        hub, f'domain: "cv",task: "classification",repo: "{catalog.ns}",', "modelId stub"
    )
    assert sorted(m["stub"] for m in found) == sorted([catalog.mlp_stub, catalog.plain_stub])


def test_exact_stub_comes_first(hub: Hub, catalog: Catalog) -> None:
    """A v1 stub cannot say "no sub-architecture": the model without one is answered first."""
    args = "".join(f'{k}: "{v}",' for k, v in path_args(catalog.plain_stub).items())
    assert stubs(hub, args) == [catalog.plain_stub, catalog.mlp_stub]


def file_map(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    files = model["files"]
    names = [f["displayName"] for f in files]
    assert len(names) == len(set(names)), names  # the client finds files by name
    return {f["displayName"]: f for f in files}


FILE_FIELDS = "files { displayName downloadUrl fileSize fileType modelId path sha256 }"


def test_file_listing_follows_the_sparsezoo_layout(hub: Hub, catalog: Catalog) -> None:
    [model] = models(hub, f'stub: "{catalog.mlp_stub}"', FILE_FIELDS)
    files = file_map(model)
    assert {n: f["fileType"] for n, f in files.items()} == {
        "model.onnx": "onnx",
        "model.md": "card",
        "model.pt": "training",
        "recipe_original.yaml": "recipe",
        "recipe_sparse_transfer.md": "recipe",
        "benchmarks.yaml": "benchmark",
        "eval.yaml": "benchmarking",
        "deployment.tar.gz": "deployment",
        "sample-inputs.tar.gz": "inputs",
        "sample-outputs.tar.gz": "outputs",
        "sample-outputs_onnxruntime.tar.gz": "outputs",
        "sample-labels.tar.gz": "labels",
    }
    for name, f in files.items():
        if not name.endswith(".tar.gz"):
            data = catalog.mlp[f["path"]]
            assert (f["fileSize"], f["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert files["model.pt"]["path"] == "training/model.pt"


def fetch(url: str, **kw: Any) -> httpx.Response:
    return httpx.get(url, follow_redirects=True, timeout=60, **kw)


def archive_members(url: str) -> dict[str, bytes]:
    r = fetch(url)
    assert r.status_code == 200, r.text
    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tar:
        members = tar.getmembers()
        for m in members:
            assert m.isfile() and not m.name.startswith("/") and ".." not in m.name.split("/")
            assert (m.uid, m.gid, m.mode) == (0, 0, 0o644)
        return {m.name: tar.extractfile(m).read() for m in members}  # type: ignore[union-attr]


def test_archives_hold_the_folders(hub: Hub, catalog: Catalog) -> None:
    [model] = models(hub, f'stub: "{catalog.mlp_stub}"', FILE_FIELDS)
    files = file_map(model)
    inputs = archive_members(files["sample-inputs.tar.gz"]["downloadUrl"])
    assert inputs == {"sample-inputs/inp-0000.npz": catalog.mlp["sample-inputs/inp-0000.npz"]}
    deployment = archive_members(files["deployment.tar.gz"]["downloadUrl"])
    assert deployment == {"deployment/model.onnx": catalog.mlp["deployment/model.onnx"]}
    labels = archive_members(files["sample-labels.tar.gz"]["downloadUrl"])
    assert list(labels) == ["sample-labels/lab-0000.npz"]


def test_nlp_deployment_gets_tokenizer_and_config(hub: Hub, catalog: Catalog) -> None:
    [model] = models(hub, f'stub: "{catalog.bert_stub}"', FILE_FIELDS)
    files = file_map(model)
    # The client copies these three from training/ into deployment/ itself: listed once each.
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        assert files[name]["fileType"] == "training"
    deployment = archive_members(files["deployment.tar.gz"]["downloadUrl"])
    assert deployment == {
        "deployment/model.onnx": catalog.bert["model.onnx"],
        "deployment/config.json": catalog.bert["deployment/config.json"],  # its own wins
        "deployment/tokenizer.json": catalog.bert["training/tokenizer.json"],
        "deployment/tokenizer_config.json": catalog.bert["training/tokenizer_config.json"],
    }


def test_download_urls_answer_head_and_ranges(hub: Hub, catalog: Catalog) -> None:
    [model] = models(hub, f'stub: "{catalog.mlp_stub}"', FILE_FIELDS)
    for name in ("model.onnx", "sample-inputs.tar.gz"):
        f = file_map(model)[name]
        assert f["downloadUrl"].startswith(hub.url)
        head = httpx.head(f["downloadUrl"], timeout=60)
        assert head.status_code == 200 and "location" not in head.headers
        assert head.headers["content-length"] == str(f["fileSize"])
        assert head.headers["accept-ranges"] == "bytes"
        assert head.headers["etag"] == f'"{f["sha256"]}"'
        whole = fetch(f["downloadUrl"]).content
        assert hashlib.sha256(whole).hexdigest() == f["sha256"]
        part = fetch(f["downloadUrl"], headers={"Range": f"bytes=10-{f['fileSize']}"})
        assert part.status_code == 206 and part.content == whole[10:]


def test_archives_are_built_once(hub: Hub, catalog: Catalog) -> None:
    first = models(hub, f'stub: "{catalog.mlp_stub}"', FILE_FIELDS)
    second = models(hub, f'stub: "{catalog.mlp_stub}"', FILE_FIELDS)
    assert first == second
    archives = {f["sha256"] for f in first[0]["files"] if f["displayName"].endswith(".tar.gz")}
    with hub.sessionmaker() as s:
        rows = s.scalars(select(CompatArchive).where(CompatArchive.sha256.in_(archives))).all()
        assert {r.name for r in rows} >= {"sample-inputs.tar.gz", "deployment.tar.gz"}
        assert s.scalar(select(func.count()).where(Blob.sha256.in_(archives))) == len(archives)
    missing = first[0]["files"][0]["downloadUrl"].rsplit("/files/", 1)[0]
    url = missing.replace("/api/v1/", "/v2/") + "/archives/nope.tar.gz"
    assert httpx.get(url, timeout=60).json()["error"]["code"] == "FILE_NOT_FOUND"


def test_benchmark_and_training_results(hub: Hub, catalog: Catalog) -> None:
    fields = (
        "benchmarkResults { batchSize deviceInfo numCores recordedUnits recordedValue engine } "
        "trainingResults { datasetName datasetType recordedUnits recordedValue split }"
    )
    [model] = models(hub, f'stub: "{catalog.mlp_stub}"', fields)
    assert model["benchmarkResults"] == [
        {
            "batchSize": b["batch_size"],
            "deviceInfo": "Intel Xeon",
            "numCores": 24,
            "recordedUnits": "items/seconds",
            "recordedValue": b["throughput"],
            "engine": "zoo",
        }
        for b in BENCHMARKS
    ]
    # SparseZoo recorded accuracies in percent; ours are fractions.
    [result] = model["trainingResults"]
    assert result["recordedValue"] == pytest.approx(76.12)
    assert {k: v for k, v in result.items() if k != "recordedValue"} == {
        "datasetName": "synthetic",
        "datasetType": "upstream",
        "recordedUnits": "top1 accuracy",
        "split": "validation",
    }
    [bert] = models(hub, f'stub: "{catalog.bert_stub}"', fields)
    assert bert["benchmarkResults"] == [] and bert["trainingResults"] == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ('domain: "nlp"', ["bert"]),
        ('task: "question_answering"', ["bert"]),
        ('subDomain: "classification"', ["mlp", "plain"]),
        ('architecture: "bert"', ["bert"]),
        ('subArchitecture: "tiny"', ["mlp"]),
        ('framework: "pytorch"', ["bert"]),
        ('sourceDataset: "squad"', ["bert"]),
        ('dataset: "synthetic"', ["mlp", "plain"]),
        ('sparseTag: "base-none"', ["bert"]),
        ('repoName: "mlp-synthetic-pruned90"', ["plain"]),
        ('displayName: "MLP tiny"', ["mlp"]),
        ('trainingScheme: "augmented"', []),
        ('trainingDataset: "augmented"', []),
        ('releaseVersion: "1.5.0"', ["bert", "mlp", "plain"]),
        ('domain: "cv", sparseTag: "pruned90-none", limit: 1', ["plain"]),
        ('domain: "cv", sparseTag: "pruned90-none", limit: 1, offset: 1', ["mlp"]),
        ('domain: "audio"', []),
    ],
)
def test_every_argument(hub: Hub, catalog: Catalog, args: str, expected: list[str]) -> None:
    names = {catalog.mlp_stub: "mlp", catalog.bert_stub: "bert", catalog.plain_stub: "plain"}
    found = [names[s] for s in stubs(hub, f'{args}, repoNamespace: "{catalog.ns}",')]
    # Ordered only where the order is the point (pages); otherwise compared as sets.
    assert (found if "limit" in args else sorted(found)) == expected


def test_stub_and_model_id_arguments(hub: Hub, catalog: Catalog) -> None:
    [mlp] = models(hub, f'stub: "{catalog.mlp_stub}"', "modelId stub shortStub namespacedStub")
    assert stubs(hub, f'modelId: "{mlp["modelId"]}"') == [catalog.mlp_stub]
    assert stubs(hub, f'stub: "{mlp["namespacedStub"]}"') == [catalog.mlp_stub]
    assert stubs(hub, 'modelId: "not-a-number"') == []
    short = [m for m in models(hub, f'stub: "{mlp["shortStub"]}"', "stub repoNamespace")]
    assert {"stub": catalog.mlp_stub, "repoNamespace": catalog.ns} in short


def field_names(hub: Hub, type_name: str) -> list[str]:
    body = gql(hub, f'{{ __type(name: "{type_name}") {{ fields {{ name }} }} }}')
    return [f["name"] for f in body["data"]["__type"]["fields"]]


def test_every_field(hub: Hub, catalog: Catalog) -> None:
    nested = {
        "files": "File",
        "benchmarkResults": "BenchmarkResult",
        "trainingResults": "TrainingResult",
    }
    fields = " ".join(
        f"{n} {{ {' '.join(field_names(hub, nested[n]))} }}" if n in nested else n
        for n in field_names(hub, "Model")
    )
    [m] = models(hub, f'stub: "{catalog.mlp_stub}"', fields)
    assert set(m) == set(field_names(hub, "Model"))
    expected = {
        "stub": catalog.mlp_stub,
        "pathStub": catalog.mlp_stub,
        "shortStub": "zoo:mlp-tiny-synthetic-pruned90",
        "namespacedStub": f"zoo:{catalog.ns}/mlp-tiny-synthetic-pruned90",
        "displayName": "MLP tiny",
        "description": "",
        "license": None,
        "tags": ["demo"],
        "domain": "cv",
        "task": "classification",
        "subDomain": "classification",
        "architecture": "mlp",
        "subArchitecture": "tiny",
        "framework": "onnx",
        "repo": catalog.ns,
        "sourceDataset": "synthetic",
        "dataset": "synthetic",
        "trainingScheme": None,
        "trainingDataset": None,
        "sparseTag": "pruned90-none",
        "repoName": "mlp-tiny-synthetic-pruned90",
        "repoNamespace": catalog.ns,
        "baseModel": None,
        "version": 1,
        "quantized": False,
        "modelOnnxSizeBytes": len(catalog.mlp["model.onnx"]),
        "modelOnnxSizeCompressedBytes": None,
    }
    assert {k: m[k] for k in expected} == expected
    assert m["sparsity"] == pytest.approx(0.9, abs=0.01)
    assert m["createdAt"] and m["updatedAt"] and isinstance(m["downloads"], int)
    assert len(m["files"]) == 12 and len(m["benchmarkResults"]) == 2


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("{ models { nope } }", "Cannot query field 'nope' on type 'Model'"),
        ('{ models(colour: "red") { stub } }', "Unknown argument 'colour'"),
        ("{ models { files { url } } }", "Cannot query field 'url' on type 'File'"),
        ("{ sparsezoo { stub } }", "Cannot query field 'sparsezoo' on type 'Query'"),
        ("{ models(", "Syntax Error"),
        ("{ models(limit: 1) { files(version: 3) { displayName } } }", "listing version 2"),
        ('{ models(stub: "zoo:a/b/c") { stub } }', "7 segments"),
    ],
)
def test_errors_are_graphql_errors(hub: Hub, catalog: Catalog, query: str, message: str) -> None:
    body = gql(hub, query)
    assert body.get("data") is None or body["data"].get("models") is None
    assert any(message in e["message"] for e in body["errors"]), body["errors"]


def test_private_models_are_invisible_without_a_token(hub: Hub, catalog: Catalog) -> None:
    args = f'repoNamespace: "{catalog.ns}", domain: "cv", task: "detection"'
    assert stubs(hub, args) == []
    assert stubs(hub, f'stub: "{catalog.secret_stub}"') == []
    reader = hub.token(["read"], [catalog.ns])
    assert stubs(hub, args, token=reader) == [catalog.secret_stub]
    outsider = hub.token(["read"], [unique_namespace()])
    assert stubs(hub, args, token=outsider) == []
    r = httpx.post(
        f"{hub.url}/v2/graphql",
        json={"query": "{ models { stub } }"},
        headers={"Authorization": "Bearer zoo_not-a-token"},
        timeout=60,
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
    # The archives of a private model are private too.
    [secret] = models(hub, f'stub: "{catalog.secret_stub}"', FILE_FIELDS, token=reader)
    url = file_map(secret)["deployment.tar.gz"]["downloadUrl"]
    assert httpx.get(url, timeout=60).status_code == 404
    auth = {"Authorization": f"Bearer {reader}"}
    assert fetch(url, headers=auth).status_code == 200


def test_aliased_root_fields_share_the_session_safely(hub: Hub, catalog: Catalog) -> None:
    """Root fields resolve concurrently; they must take turns with the request's session."""
    parts = [
        f'm{i}: models(stub: "{stub}") {{ stub files {{ displayName }} }}'
        for i, stub in enumerate([catalog.mlp_stub, catalog.bert_stub, catalog.plain_stub] * 2)
    ]
    body = gql(hub, "{ " + " ".join(parts) + " }")
    assert "errors" not in body, body
    assert [body["data"][f"m{i}"][0]["stub"] for i in range(6)] == [
        catalog.mlp_stub,
        catalog.bert_stub,
        catalog.plain_stub,
    ] * 2
