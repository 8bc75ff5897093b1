"""What ``zoo verify`` found: one :class:`Check` per claim, gathered in a :class:`VerifyReport`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Check", "Status", "VerifyReport"]

Status = Literal["pass", "fail", "skip", "info"]


@dataclass(frozen=True)
class Check:
    """One check: its name (``sha256``, ``onnx``, ``outputs``, ``sparsity``, ``recipe``,
    ``benchmark``), a status, a one-line human detail and the numbers behind it.

    >>> Check("sparsity", "pass", "measured 90.1%, claimed 90% (tag)", {"measured": 0.901})
    ... # doctest: +ELLIPSIS
    Check(name='sparsity', status='pass', ...)
    """

    name: str
    status: Status
    detail: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "numbers": dict(self.numbers),
        }


@dataclass
class VerifyReport:
    """Every check run on one model; ``ok`` is False as soon as one failed.

    ``skip`` (nothing to check, e.g. no recipe) and ``info`` (informative, e.g. the benchmark
    ratio without ``--strict``) never make a report fail.

    >>> report = zoo.Model("zoo:acme/resnet50-pruned90@2").verify()  # doctest: +SKIP
    >>> report.ok, [c.name for c in report.failed]  # doctest: +SKIP
    (False, ['outputs'])
    """

    target: str
    checks: list[Check] = field(default_factory=list)
    strict: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``zoo verify --json``)."""
        return {
            "target": self.target,
            "ok": self.ok,
            "strict": self.strict,
            "checks": [c.to_dict() for c in self.checks],
        }
