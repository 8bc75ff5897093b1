"""Runtime test helpers: the node-test summary line."""

from __future__ import annotations

from collections import Counter

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print "onnx node tests: N passed, M skipped (reasons)" when the node tests ran."""
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for outcome in ("passed", "failed", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            if "test_node_backend.py" not in getattr(report, "nodeid", ""):
                continue
            if report.when == "call" or (outcome == "skipped" and report.when == "setup"):
                counts[outcome] += 1
                if outcome == "skipped" and isinstance(report.longrepr, tuple):
                    reasons[str(report.longrepr[2]).removeprefix("Skipped: ")] += 1
    if not counts:
        return
    terminalreporter.write_line(
        f"onnx node tests: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} skipped"
    )
    for reason, n in reasons.most_common():
        terminalreporter.write_line(f"  skipped {n:4d}: {reason}")
