"""The demo catalog: which models exist, and :func:`build_catalog` that builds them, cached.

Every model is a :class:`ModelSpec`; pruned models name their dense base, quantized ones
their pruned base, and a base is built (or found in the cache) before what depends on it.
A folder is built under a temporary name and renamed when complete, with a ``.complete``
marker (hidden, so publishing skips it) holding the hash of the builder's inputs: the spec,
the base's hash, the demo code and the versions of torch/onnx/onnxruntime. A folder whose
marker is missing or stale is rebuilt.

>>> from pathlib import Path
>>> built = build_catalog(Path("catalog"), only=["mlp-small-digits-pruned90"])  # doctest: +SKIP
>>> [b.stub for b in built]  # doctest: +SKIP
['zoo:cv/classification/mlp-small/pytorch/openzoo/digits/base-none', '...pruned90-none']
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from zoo.demo import synthetic, trained
from zoo.demo.folder import LICENSE, Artifacts, write_folder

__all__ = [
    "BuildContext",
    "BuiltModel",
    "ModelSpec",
    "build_catalog",
    "default_catalog",
    "synthetic_specs",
    "trained_specs",
]

MARKER = ".complete"
LEVELS = (0.8, 0.9, 0.95)


@dataclass(frozen=True)
class ModelSpec:
    """One model of the catalog: how to build it (everything here is hashed)."""

    id: str  # folder name and ``only=`` key, e.g. "cnn-small-digits-pruned90"
    kind: str  # a key of BUILDERS
    arch: str
    base: str | None = None  # id of the spec it starts from
    sparsity: float | None = None  # the recipe's target; None for dense
    seed: int = 0
    options: tuple[tuple[str, float], ...] = ()  # epochs, calibration size, ...

    def option(self, name: str, default: float) -> float:
        return dict(self.options).get(name, default)


@dataclass(frozen=True)
class BuiltModel:
    """A finished model folder and what publishing it needs."""

    id: str
    path: Path
    stub: str
    name: str  # the short stub, the hub's model name
    display_name: str
    description: str
    license: str
    base_model: str | None  # stub of the model it was made from (lineage)
    eval_results: list[dict[str, Any]]  # dataset, split, metric, value, measured_by
    tags: list[str]
    sparsity: float  # measured on model.onnx
    quantized: bool
    seconds: float  # build time (of the original build when cached)
    cached: bool = False
    input_hash: str = field(default="", repr=False)

    def to_json(self) -> str:
        return json.dumps(asdict(self) | {"path": None, "cached": False}, indent=2)

    @classmethod
    def from_json(cls, text: str, path: Path) -> BuiltModel:
        data = json.loads(text)
        return cls(**(data | {"path": path, "cached": True}))


@dataclass(frozen=True)
class BuildContext:
    """What a builder gets besides its spec: its built base (if any) and the thread budget."""

    base: BuiltModel | None
    threads: int


Builder = Callable[[ModelSpec, BuildContext], Artifacts]
BUILDERS: dict[str, Builder] = {
    "trained-dense": trained.build_dense,
    "trained-pruned": trained.build_pruned,
    "trained-quant": trained.build_quant,
    "synthetic-dense": synthetic.build_dense,
    "synthetic-pruned": synthetic.build_pruned,
    "synthetic-quant": synthetic.build_quant,
}


def _pct(s: float) -> str:
    return f"pruned{round(s * 100)}"


def trained_specs(
    arch: str,
    *,
    levels: Sequence[float] = LEVELS,
    quant_level: float | None = 0.9,
    epochs: int = 20,
    prune_epochs: int = 16,
    pruning_epochs: int = 10,
    seed: int = 0,
) -> list[ModelSpec]:
    """Dense, pruned at each of ``levels`` and a quantized ``quant_level`` model of ``arch``.

    Tests shrink the epochs for a quick build; the catalog uses the defaults.
    """
    stem = f"{arch}-small-digits"
    dense = ModelSpec(
        f"{stem}-base", "trained-dense", arch, seed=seed, options=(("epochs", epochs),)
    )
    prune_opts = (("epochs", prune_epochs), ("pruning_epochs", pruning_epochs))
    specs = [dense]
    for s in levels:
        specs.append(
            ModelSpec(f"{stem}-{_pct(s)}", "trained-pruned", arch, dense.id, s, seed, prune_opts)
        )
    if quant_level is not None:
        base = f"{stem}-{_pct(quant_level)}"
        specs.append(ModelSpec(f"{base}_quant", "trained-quant", arch, base, quant_level, seed))
    return specs


_SYNTHETIC_STEMS = {
    "resnet50": "resnet_v1-50-synthetic",
    "mobilenet_v2": "mobilenet_v2-1.0-synthetic",
    "bert_base": "bert-base-synthetic",
}


def synthetic_specs(
    arch: str, *, levels: Sequence[float] = LEVELS, quant_level: float | None = None
) -> list[ModelSpec]:
    """Dense and one-shot pruned (and optionally quantized) full-size synthetic ``arch``."""
    stem = _SYNTHETIC_STEMS[arch]
    dense = ModelSpec(f"{stem}-base", "synthetic-dense", arch)
    specs = [dense]
    specs += [ModelSpec(f"{stem}-{_pct(s)}", "synthetic-pruned", arch, dense.id, s) for s in levels]
    if quant_level is not None:
        base = f"{stem}-{_pct(quant_level)}"
        specs.append(ModelSpec(f"{base}_quant", "synthetic-quant", arch, base, quant_level))
    return specs


def default_catalog() -> list[ModelSpec]:
    """The whole demo catalog: 10 trained models and 13 synthetic ones."""
    return [
        *trained_specs("cnn"),
        *trained_specs("mlp"),
        *synthetic_specs("resnet50", quant_level=0.9),
        *synthetic_specs("mobilenet_v2"),
        *synthetic_specs("bert_base"),
    ]


def _with_bases(only: Iterable[str] | None, specs: Sequence[ModelSpec]) -> list[ModelSpec]:
    """The requested specs and, before them, every base they need (catalog order)."""
    by_id = {s.id: s for s in specs}
    if only is None:
        wanted = set(by_id)
    else:
        wanted = set()
        for key in only:
            if key not in by_id:
                raise KeyError(f"unknown demo model {key!r}; known: {', '.join(by_id)}")
            spec: ModelSpec | None = by_id[key]
            while spec is not None:
                wanted.add(spec.id)
                spec = by_id[spec.base] if spec.base else None
    ordered: list[ModelSpec] = []
    done: set[str] = set()

    def visit(s: ModelSpec) -> None:
        if s.id in done:
            return
        if s.base:
            visit(by_id[s.base])
        done.add(s.id)
        ordered.append(s)

    for s in specs:
        if s.id in wanted:
            visit(s)
    return ordered


def _code_version() -> str:
    """Hash of this package's sources, the builders and the analysis it relies on (which
    measures the tags), plus the versions of the tools that shape the files."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    sources = [*sorted(here.glob("*.py")), *sorted((here.parent / "analysis").glob("*.py"))]
    for p in [*sources, here.parent / "testing" / "models.py"]:
        h.update(p.name.encode() + p.read_bytes())
    for dist in ("torch", "onnx", "onnxruntime", "scikit-learn", "numpy"):
        try:
            h.update(f"{dist}={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist}=none".encode())
    return h.hexdigest()


def _input_hash(spec: ModelSpec, base: BuiltModel | None, code: str) -> str:
    payload = {"spec": asdict(spec), "base": base.input_hash if base else None, "code": code}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _cached(folder: Path, key: str) -> BuiltModel | None:
    try:
        built = BuiltModel.from_json((folder / MARKER).read_text(), folder)
    except (OSError, ValueError, TypeError):
        return None
    return built if built.input_hash == key else None


def _build_one(spec: ModelSpec, folder: Path, ctx: BuildContext, key: str) -> BuiltModel:
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    start = time.perf_counter()
    try:
        art = BUILDERS[spec.kind](spec, ctx)
        facts = write_folder(tmp, art, threads=ctx.threads)
        built = BuiltModel(
            id=spec.id,
            path=folder,
            stub=facts.stub,
            name=facts.name,
            display_name=art.display_name,
            description=art.description,
            license=LICENSE,
            base_model=art.base_stub,
            eval_results=art.evals,
            tags=art.tags,
            sparsity=facts.sparsity,
            quantized=facts.quantized,
            seconds=round(time.perf_counter() - start, 2),
            input_hash=key,
        )
        (tmp / MARKER).write_text(built.to_json())
        shutil.rmtree(folder, ignore_errors=True)  # a stale or half-built one
        os.replace(tmp, folder)  # atomic: a folder with a marker is always complete
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return built


def build_catalog(
    out_dir: Path,
    *,
    only: list[str] | None = None,
    progress: Callable[[str], None] | None = print,
    threads: int = 2,
    specs: Sequence[ModelSpec] | None = None,
) -> list[BuiltModel]:
    """Build the demo catalog (or the ``only`` ids and their bases) into ``out_dir``.

    Returns one :class:`BuiltModel` per folder, bases before the models made from them (so
    publishing in order satisfies lineage). Finished folders whose inputs did not change are
    reused. ``progress`` receives one line per model with its build time; ``threads`` caps
    torch and onnxruntime. ``specs`` replaces :func:`default_catalog` (tests build tiny ones).
    """
    say = progress or (lambda _msg: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    code = _code_version()
    results: dict[str, BuiltModel] = {}
    start = time.perf_counter()
    for spec in _with_bases(only, specs if specs is not None else default_catalog()):
        base = results[spec.base] if spec.base else None
        key = _input_hash(spec, base, code)
        folder = out_dir / spec.id
        built = _cached(folder, key)
        if built is not None:
            say(f"{spec.id}: cached ({built.stub})")
        else:
            built = _build_one(spec, folder, BuildContext(base, threads), key)
            evals = "".join(f", {e['metric']} {e['value']:.4f}" for e in built.eval_results)
            say(
                f"{spec.id}: built in {built.seconds:.1f}s, sparsity {built.sparsity:.2%}"
                f"{evals} -> {built.stub}"
            )
        results[spec.id] = built
    say(f"demo catalog: {len(results)} models in {time.perf_counter() - start:.1f}s")
    return list(results.values())
