"""SQLAlchemy 2 typed tables. Named ``orm`` because "model" means an ML model here."""

from app.orm.base import Base, utcnow
from app.orm.compat import CompatArchive
from app.orm.models import Model, Namespace
from app.orm.results import BenchmarkResult, EvalResult
from app.orm.tokens import Token
from app.orm.versions import Alias, AliasEvent, Blob, File, Recipe, Version, VersionStatus

__all__ = [
    "Alias",
    "AliasEvent",
    "Base",
    "BenchmarkResult",
    "Blob",
    "CompatArchive",
    "EvalResult",
    "File",
    "Model",
    "Namespace",
    "Recipe",
    "Token",
    "Version",
    "VersionStatus",
    "utcnow",
]
