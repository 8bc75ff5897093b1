"""``ZooClient``: the hub's API and the cache behind one object."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from zoo import stubs
from zoo._cache import Cache
from zoo._config import ZooConfig
from zoo._download import DownloadPlan, ProgressFn, fetch_blob, fetch_version, plan_download
from zoo._errors import InvalidStubError, OfflineError, RemoteFileNotFoundError
from zoo._types import FileInfo, ModelInfo, VersionInfo

if TYPE_CHECKING:
    import httpx

    from zoo._http import Http

__all__ = ["ZooClient", "parse", "search_models"]


def parse(stub: str | stubs.Stub) -> stubs.Stub:
    """Parse a stub, raising the client's :class:`~zoo.InvalidStubError` (a ZooError)."""
    if isinstance(stub, stubs.Stub):
        return stub
    try:
        return stubs.parse_stub(stub)
    except stubs.InvalidStubError as e:
        raise InvalidStubError(e.stub, e.part, e.reason, value=e.value, label=e._label) from None


class ZooClient:
    """A connection to an OpenZoo hub and the local cache.

    Settings come from the arguments, else the environment (``ZOO_ENDPOINT``, ``ZOO_TOKEN`` or
    the ``zoo login`` token file, ``ZOO_CACHE``, ``ZOO_OFFLINE``), read once here.

    >>> client = ZooClient("http://127.0.0.1:8000")  # doctest: +SKIP
    >>> v = client.resolve("zoo:openzoo/mlp-tiny-synthetic-pruned90@1")  # doctest: +SKIP
    >>> client.download(v.stub)  # a folder in the cache  # doctest: +SKIP

    ``transport`` (an httpx transport) lets tests count or forbid requests.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        token: str | None = None,
        *,
        cache_dir: str | Path | None = None,
        offline: bool | None = None,
        config: ZooConfig | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base = config or ZooConfig.from_env()
        changes: dict[str, object] = {"endpoint": endpoint, "token": token, "offline": offline}
        changes["cache_dir"] = Path(cache_dir) if cache_dir is not None else None
        self.config = base.replace(**{k: v for k, v in changes.items() if v is not None})
        self.cache = Cache(self.config.cache_dir, self.config.lock_timeout)
        self._http: Http | None = None
        self._transport = transport

    @property
    def http(self) -> Http:
        # Built on first use: a fully cached pinned stub never even creates the HTTP clients.
        if self._http is None:
            from zoo._http import Http  # imports httpx: only when the network is needed

            self._http = Http(self.config, self._transport)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> ZooClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------

    def search(
        self,
        *,
        q: str | None = None,
        domain: str | None = None,
        task: str | None = None,
        architecture: str | None = None,
        framework: str | None = None,
        dataset: str | None = None,
        sparse_tag: str | None = None,
        namespace: str | None = None,
        min_sparsity: float | None = None,
        max_sparsity: float | None = None,
        quantized: bool | None = None,
        sort: str = "name",
        limit: int | None = None,
        page_size: int = 50,
    ) -> Iterator[ModelInfo]:
        """Models matching every given filter, following the hub's cursor pages lazily.

        >>> for m in ZooClient().search(task="classification", min_sparsity=0.8, limit=5):
        ...     print(m.stub, m.sparsity)  # doctest: +SKIP
        """
        filters = {
            "q": q,
            "domain": domain,
            "task": task,
            "architecture": architecture,
            "framework": framework,
            "dataset": dataset,
            "sparse_tag": sparse_tag,
            "namespace": namespace,
            "min_sparsity": min_sparsity,
            "max_sparsity": max_sparsity,
            "quantized": None if quantized is None else str(quantized).lower(),
            "sort": sort,
        }
        params: dict[str, Any] = {k: v for k, v in filters.items() if v is not None}
        seen = 0
        cursor: str | None = None
        while True:
            size = page_size if limit is None else max(1, min(page_size, limit - seen))
            page = self.http.request(
                "GET",
                "models",
                params={**params, "limit": size, **({"cursor": cursor} if cursor else {})},
            ).json()
            for item in page["items"]:
                yield ModelInfo.from_json(item)
                seen += 1
                if limit is not None and seen >= limit:
                    return
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def get_model(self, namespace: str, name: str) -> ModelInfo:
        """One model by namespace and name."""
        return ModelInfo.from_json(self.http.request("GET", f"models/{namespace}/{name}").json())

    def list_versions(self, stub_or_model: str) -> list[dict[str, Any]]:
        """The ready versions of a model (newest first): number, size, sparsity, aliases..."""
        ns, name = self._model_of(stub_or_model)
        return list(self.http.request("GET", f"models/{ns}/{name}/versions").json())

    def resolve(self, stub: str | stubs.Stub) -> VersionInfo:
        """The exact version a stub names, with its files.

        A stub pinned to a number (``@3``) whose manifest is cached resolves with zero requests;
        offline, aliases resolve through the cached refs. Resolving online records the answer
        in the cache so the same stub works offline afterwards.
        """
        s = parse(stub)
        cached = self._resolve_cached(s)
        if cached is not None and (isinstance(s.version, int) or self.config.offline):
            return cached
        if self.config.offline:
            raise OfflineError(
                f"offline mode (ZOO_OFFLINE=1) and {s} is not in the cache at {self.cache.root}: "
                "download it once online ('zoo download STUB'), or unset ZOO_OFFLINE"
            )
        text = str(s.without_version()) + (f"@{s.version}" if s.version is not None else "")
        body = self.http.request("GET", "resolve", params={"stub": text}).json()
        version = VersionInfo.from_json(body["version"])
        self._remember(s, version)
        return version

    def _resolve_cached(self, s: stubs.Stub) -> VersionInfo | None:
        if s.form == "namespaced":
            assert s.namespace is not None and s.repo_name is not None
            model: tuple[str, str] | None = (s.namespace, s.repo_name)
        else:
            model = self.cache.read_stub(str(s.without_version()))
        if model is None:
            return None
        ns, name = model
        number = s.version if isinstance(s.version, int) else None
        if number is None:
            number = self.cache.read_ref(ns, name, str(s.version or "latest"))
        cached = None if number is None else self.cache.read_manifest(ns, name, number)
        if cached is None:
            return None
        # The cached file URLs are those of the endpoint that answered back then (which may be
        # gone: a moved hub, a proxy, another ZOO_ENDPOINT); the bytes are the same wherever
        # they come from (every blob is checked against its sha256), so ask the current one.
        files = tuple(_with_url(self.config.endpoint, cached, f) for f in cached.files)
        return dataclasses.replace(cached, files=files)

    def _remember(self, s: stubs.Stub, version: VersionInfo) -> None:
        self.cache.write_manifest(version)
        if s.form != "namespaced":
            self.cache.write_stub(str(s.without_version()), version.namespace, version.name)
        if not isinstance(s.version, int):
            alias = str(s.version or "latest")
            self.cache.write_ref(version.namespace, version.name, alias, version.number)

    def _model_of(self, stub_or_model: str) -> tuple[str, str]:
        # "ns/name" or any stub; non-namespaced stubs go through resolve (they need the hub).
        if not stub_or_model.startswith(stubs.PREFIX) and stub_or_model.count("/") == 1:
            ns, name = stub_or_model.split("/")
            return ns, name
        s = parse(stub_or_model)
        if s.form == "namespaced":
            assert s.namespace is not None and s.repo_name is not None
            return s.namespace, s.repo_name
        v = self.resolve(s)
        return v.namespace, v.name

    # -- downloading -------------------------------------------------------------------------

    def plan(
        self, stub: str | stubs.Stub, include: Sequence[str] = (), exclude: Sequence[str] = ()
    ) -> DownloadPlan:
        """What :meth:`download` would fetch, without fetching (a dry run)."""
        return plan_download(self.cache, self.resolve(stub), include, exclude)

    def download(
        self,
        stub: str | stubs.Stub,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        directory: str | Path | None = None,
        progress: ProgressFn | None = None,
    ) -> Path:
        """Download a version (or the files matching ``include``/``exclude`` globs) into the
        cache and return its snapshot folder, or a copy of it in ``directory``.

        >>> path = ZooClient().download("zoo:openzoo/mlp-tiny-synthetic-pruned90@1",
        ...                             exclude=["training/*"])  # doctest: +SKIP
        """
        plan = self.plan(stub, include, exclude)
        # Nothing missing, no HTTP clients: a cached version links its snapshot without httpx.
        http = self.http if plan.missing else None
        if http is not None:
            http.guard(str(stub))
        snapshot = fetch_version(http, self.cache, plan, progress, self.config.workers)
        if directory is None:
            return snapshot
        return _export(snapshot, [f.path for f in plan.files], Path(directory))

    def download_file(
        self, stub: str | stubs.Stub, path: str, *, progress: ProgressFn | None = None
    ) -> Path:
        """One file of a version, as a path inside the cached snapshot."""
        version = self.resolve(stub)
        return self.fetch(version, path, progress)

    def fetch(self, version: VersionInfo, path: str, progress: ProgressFn | None = None) -> Path:
        """The cached path of ``path`` in ``version``, downloading it first if needed."""
        if self.cache.has_file(version, path):
            return self.cache.snapshot_file(version, path)
        match = [f for f in version.files if f.path == path]
        if not match:
            raise RemoteFileNotFoundError(
                f"{version.stub} has no file {path!r}; it has: "
                + ", ".join(f.path for f in version.files[:20])
            )
        file = match[0]
        if not file.url:
            file = _with_url(self.config.endpoint, version, file)
        fetch_blob(self.http, self.cache, file, progress)
        self.cache.write_manifest(version)
        return self.cache.link(version, path, file.sha256)

    # -- writing -----------------------------------------------------------------------------

    def publish(
        self,
        folder: str | Path,
        stub: str,
        *,
        namespace: str | None = None,
        message: str = "",
        display_name: str = "",
        progress: Callable[[int], None] | None = None,
        model_fields: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> VersionInfo:
        """Publish ``folder`` as a new version of ``stub``'s model, creating the model first if
        it does not exist (a path stub fills in its SparseZoo fields). Blobs the hub already has
        are not sent again. ``model_fields`` (description, license, tags, visibility,
        base_model) apply when the model is created; ``meta`` is stored on the version.

        >>> ZooClient(token="...").publish("./resnet", "zoo:cv/classification/resnet_v1-50/"
        ...     "pytorch/acme/imagenet/pruned90-none", namespace="acme")  # doctest: +SKIP
        """
        from zoo._publish import publish_folder  # only publishers pay for it

        return publish_folder(
            self,
            Path(folder),
            parse(stub),
            namespace=namespace,
            message=message,
            display_name=display_name,
            progress=progress,
            model_fields=model_fields,
            meta=meta,
        )

    def set_alias(self, stub_or_model: str, alias: str, version: int) -> None:
        """Point ``alias`` (e.g. ``stable``) of a model at version number ``version``."""
        ns, name = self._model_of(stub_or_model)
        self.http.request("PUT", f"models/{ns}/{name}/aliases/{alias}", json={"version": version})

    def add_benchmark(self, stub: str, **result: Any) -> dict[str, Any]:
        """Attach a benchmark result (engine, hardware, cores, batch_size, throughput, ...)
        to the version ``stub`` names."""
        return self._add_result(stub, "benchmarks", result)

    def add_eval(self, stub: str, **result: Any) -> dict[str, Any]:
        """Attach an eval result (dataset, metric, value, split) to the version ``stub`` names."""
        return self._add_result(stub, "evals", result)

    def _add_result(self, stub: str, kind: str, result: dict[str, Any]) -> dict[str, Any]:
        v = self.resolve(stub)
        url = f"models/{v.namespace}/{v.name}/versions/{v.number}/{kind}"
        return dict(self.http.request("POST", url, json=result, retry=False).json())


def _with_url(endpoint: str, version: VersionInfo, file: FileInfo) -> FileInfo:
    url = (
        f"{endpoint}/api/v1/models/{version.namespace}/{version.name}/versions/"
        f"{version.number}/files/{quote(file.path)}"
    )
    return FileInfo(file.path, file.size, file.sha256, file.file_type, url)


def _export(snapshot: Path, paths: Sequence[str], directory: Path) -> Path:
    """Copy the selected files of a snapshot into ``directory`` (real files, not links: edits
    there must never reach the shared blobs)."""
    import shutil

    for path in paths:
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.zoo-tmp")
        shutil.copyfile(snapshot / path, tmp)
        tmp.replace(target)
    return directory


def search_models(
    *,
    domain: str | None = None,
    task: str | None = None,
    architecture: str | None = None,
    dataset: str | None = None,
    sparse_tag: str | None = None,
    min_sparsity: float | None = None,
    sort: str = "name",
    limit: int | None = None,
    client: ZooClient | None = None,
    **filters: Any,
) -> Iterator[ModelInfo]:
    """Search the hub (``ZOO_ENDPOINT``), following cursor pages as you iterate.

    >>> for m in search_models(task="classification", sort="-sparsity", limit=3):
    ...     print(m.stub)  # doctest: +SKIP
    """
    owned = client is None
    c = client or ZooClient()
    try:
        yield from c.search(
            domain=domain,
            task=task,
            architecture=architecture,
            dataset=dataset,
            sparse_tag=sparse_tag,
            min_sparsity=min_sparsity,
            sort=sort,
            limit=limit,
            **filters,
        )
    finally:
        if owned:
            c.close()
