"""OpenZoo client: resolve ``zoo:`` stubs, search, download and publish models, run them on CPU.

>>> import zoo
>>> model = zoo.Model("zoo:openzoo/mlp-tiny-synthetic-pruned90@1")  # doctest: +SKIP
>>> model.onnx_model  # a verified file in ~/.cache/zoo  # doctest: +SKIP

The CPU runtime is ``zoo.runtime`` (imported on its own: it is heavy).
"""

from zoo._client import ZooClient, search_models
from zoo._config import ZooConfig
from zoo._download import DownloadPlan
from zoo._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CacheLockTimeout,
    ConflictError,
    DigestMismatchError,
    IntegrityError,
    InvalidStubError,
    LocalModelError,
    ModelExistsError,
    ModelNotFoundError,
    NetworkError,
    NotFoundError,
    OfflineError,
    PermissionDeniedError,
    RateLimitedError,
    RemoteFileNotFoundError,
    ServerError,
    VersionNotFoundError,
    ZooError,
)
from zoo._model import Model
from zoo._types import FileInfo, ModelInfo, VersionInfo

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "CacheLockTimeout",
    "ConflictError",
    "DigestMismatchError",
    "DownloadPlan",
    "FileInfo",
    "IntegrityError",
    "InvalidStubError",
    "LocalModelError",
    "Model",
    "ModelExistsError",
    "ModelInfo",
    "ModelNotFoundError",
    "NetworkError",
    "NotFoundError",
    "OfflineError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RemoteFileNotFoundError",
    "ServerError",
    "VersionInfo",
    "VersionNotFoundError",
    "ZooClient",
    "ZooConfig",
    "ZooError",
    "search_models",
]
