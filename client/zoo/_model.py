"""``Model``: one version of a model, in SparseZoo's spirit, from a stub or a local folder."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo import stubs
from zoo._cache import hash_file
from zoo._client import ZooClient, parse
from zoo._errors import LocalModelError
from zoo._types import FileInfo, VersionInfo

if TYPE_CHECKING:
    import numpy as np

    from zoo.verify import VerifyReport

__all__ = ["Model"]


class Model:
    """A model version: its files on demand, sample data, card, sparsity and results.

    ``source`` is a stub (``zoo:...``, resolved through the hub, or with zero requests when it
    is pinned to a number and cached) or a local folder in the same layout (no network).
    Files download on first use into the verified cache.

    >>> model = Model("zoo:cv/classification/mlp-tiny/onnx/openzoo/synthetic/pruned90-none")
    ... # doctest: +SKIP
    >>> model.onnx_model                  # a local path, downloaded on first use  # doctest: +SKIP
    >>> model.sample_inputs[0]["input"].shape  # doctest: +SKIP
    (1, 64)
    """

    def __init__(self, source: str | Path, *, client: ZooClient | None = None) -> None:
        self._client: ZooClient | None = None
        self._local: Path | None = None
        self._version: VersionInfo | None = None
        self._recipe: str | None = None
        if isinstance(source, Path) or not str(source).startswith(stubs.PREFIX):
            folder = Path(source).expanduser()
            if not folder.is_dir():
                raise LocalModelError(
                    f"{source!r} is neither a stub (zoo:...) nor a model folder; "
                    "check the spelling, or search with 'zoo search'"
                )
            self._local = folder
            return
        stub = parse(str(source))
        self._client = client or ZooClient()
        self._version = self._client.resolve(stub)
        self._recipe = stub.recipe

    def __repr__(self) -> str:
        return f"Model({self.stub or str(self._local)!r})"

    # -- identity ----------------------------------------------------------------------------

    @property
    def stub(self) -> str | None:
        """The exact stub ``zoo:NS/NAME@N`` (None for a local folder)."""
        return self._version.stub if self._version else None

    @property
    def version(self) -> int | None:
        """The version number (None for a local folder)."""
        return self._version.number if self._version else None

    @cached_property
    def files(self) -> list[FileInfo]:
        """Every file of the version (path, size, sha256, file_type)."""
        if self._version is not None:
            return list(self._version.files)
        assert self._local is not None
        out = []
        for p in sorted(self._local.rglob("*")):
            rel = p.relative_to(self._local).as_posix()
            if p.is_file() and not any(part.startswith(".") for part in rel.split("/")):
                from zoo.layout import file_type

                digest, size = hash_file(p)
                out.append(FileInfo(rel, size, digest, file_type(rel)))
        return out

    def path(self, path: str) -> Path:
        """The local path of one file of the model, downloaded first if needed."""
        if self._local is not None:
            target = self._local / path
            if not target.is_file():
                raise LocalModelError(f"{self._local} has no file {path!r}")
            return target
        assert self._client is not None and self._version is not None
        return self._client.fetch(self._version, path)

    def _paths_under(self, folder: str) -> list[str]:
        return sorted(f.path for f in self.files if f.path.startswith(folder + "/"))

    def _has(self, path: str) -> bool:
        if self._local is not None:
            return (self._local / path).is_file()
        return any(f.path == path for f in self.files)

    # -- files -------------------------------------------------------------------------------

    @property
    def onnx_model(self) -> Path:
        """``model.onnx`` (else the first top-level .onnx, else deployment/model.onnx)."""
        if self._has("model.onnx"):
            return self.path("model.onnx")
        top = sorted(f.path for f in self.files if "/" not in f.path and f.path.endswith(".onnx"))
        if top:
            return self.path(top[0])
        if self._has("deployment/model.onnx"):
            return self.path("deployment/model.onnx")
        raise LocalModelError(f"{self!r} has no ONNX model (model.onnx)")

    @property
    def deployment(self) -> Path:
        """The ``deployment/`` folder, every file in it downloaded."""
        paths = self._paths_under("deployment")
        if not paths:
            raise LocalModelError(f"{self!r} has no deployment/ folder")
        for p in paths:
            self.path(p)
        if self._local is not None:
            return self._local / "deployment"
        assert self._client is not None and self._version is not None
        v = self._version
        return self._client.cache.snapshot_dir(v.namespace, v.name, v.number) / "deployment"

    @property
    def recipes(self) -> dict[str, Path]:
        """Recipes by name (what ``?recipe=NAME`` selects) -> local path."""
        named: dict[str, str] = {}
        if self._version is not None:
            named = {str(r["name"]): str(r["path"]) for r in self._version.data.get("recipes", [])}
        if not named:
            for p in self._paths_under("recipe"):
                stem = p.rsplit("/", 1)[-1].split(".")[0].removeprefix("recipe_")
                named[stem] = p
        return {name: self.path(p) for name, p in sorted(named.items())}

    @property
    def recipe(self) -> Path | None:
        """The recipe the stub's ``?recipe=`` chose, else ``original``, else the first one."""
        recipes = self.recipes
        for name in (self._recipe, "original"):
            if name and name in recipes:
                return recipes[name]
        return next(iter(recipes.values()), None)

    @property
    def sample_inputs(self) -> list[dict[str, np.ndarray]]:
        """The arrays of each ``sample-inputs/*.npz``, in file order."""
        return self._load_npz("sample-inputs")

    @property
    def sample_outputs(self) -> list[dict[str, np.ndarray]]:
        """The arrays of each ``sample-outputs/*.npz``, in file order."""
        return self._load_npz("sample-outputs")

    def _load_npz(self, folder: str) -> list[dict[str, np.ndarray]]:
        import numpy as np

        out = []
        for p in self._paths_under(folder):
            if p.endswith(".npz"):
                # allow_pickle=False: sample files are data, never code.
                with np.load(self.path(p), allow_pickle=False) as data:
                    out.append({k: data[k] for k in data.files})
        return out

    @property
    def model_card(self) -> str:
        """The text of ``model.md`` (YAML front matter included)."""
        return self.path("model.md").read_text(encoding="utf-8")

    # -- facts -------------------------------------------------------------------------------

    @property
    def sparsity(self) -> float | None:
        """Fraction of zero weights the hub measured (0..1); None for a local folder."""
        return self._version.sparsity if self._version else None

    @property
    def benchmarks(self) -> list[dict[str, Any]]:
        """Benchmark results attached on the hub (local folder: ``benchmarks.yaml``)."""
        if self._version is not None:
            return list(self._version.data.get("benchmarks") or [])
        return self._yaml_list("benchmarks.yaml")

    @property
    def eval_results(self) -> list[dict[str, Any]]:
        """Evaluation results attached on the hub (local folder: ``eval.yaml``)."""
        if self._version is not None:
            return list(self._version.data.get("evals") or [])
        return self._yaml_list("eval.yaml")

    def _yaml_list(self, name: str) -> list[dict[str, Any]]:
        if not self._has(name):
            return []
        import yaml

        data = yaml.safe_load(self.path(name).read_text(encoding="utf-8"))
        if isinstance(data, dict):
            data = next((v for v in data.values() if isinstance(v, list)), [data])
        return [d for d in data or [] if isinstance(d, dict)]

    def verify(self, *, strict: bool = False) -> VerifyReport:
        """Check the model is what it claims: hashes, ONNX, sample outputs, sparsity, recipe,
        speed (see :mod:`zoo.verify`). A stub downloads first; ``report.ok`` says if all held.

        >>> Model("zoo:acme/resnet50-pruned90@2").verify().ok  # doctest: +SKIP
        True
        """
        from zoo.verify import verify_model  # onnx and the runtime: only verify pays for them

        return verify_model(self, strict=strict)

    def download(self, directory: str | Path | None = None) -> Path:
        """Every file of the version: the cached snapshot folder, or a copy in ``directory``."""
        if self._local is not None:
            if directory is None:
                return self._local
            raise LocalModelError("a local folder model is already on disk; copy the folder")
        assert self._client is not None and self._version is not None
        return self._client.download(self._version.stub, directory=directory)
