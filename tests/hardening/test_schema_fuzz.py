"""schemathesis against the hub's own OpenAPI document, on both configurations, as two callers
(anonymous, and a write token limited to one namespace).

Every operation gets generated requests in both of schemathesis' modes: positive (valid per the
document) and negative (violating it). The generation is seeded (``derandomize``) and bounded
(``EXAMPLES`` per operation and mode), so CI runs the same cases every time. Beside fully
random path parameters, a share of the cases target real objects (a published model, its
version, files and archive, a pending upload), so the routes get past their 404s.

Checks, and why these:

- ``not_a_server_error``: no 5xx, whatever the input;
- ``status_code_conformance``: every status answered is declared (an error the document does
  not list is a contract clients cannot plan for);
- ``content_type_conformance`` and ``response_schema_conformance``: what is answered is what
  is declared, for successes and errors alike.

Not enabled: ``positive_data_acceptance`` (schema-valid requests legitimately answer 403/404
here: random namespaces, a token limited to one namespace) and ``negative_data_rejection``
(path parameters are free strings, so "negative" values often stay valid on the wire), and
the stateful checks (this is a per-operation run).

Excluded operations: ``GET`` and ``POST /v2/graphql``. strawberry declares neither the GraphQL
request body nor the GraphiQL page's media type, so they cannot be driven or checked from the
OpenAPI document; the GraphQL endpoint is fuzzed from its own schema (introspection) with
schemathesis' GraphQL loader instead, in ``test_graphql_fuzz``.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from support.hub import Hub, create_model, manifest, publish, unique_namespace
from support.onnx_models import linear_model

pytestmark = pytest.mark.slow

# Per operation and generation mode (operations whose only parameters are free strings have
# no negative case, some have a single positive one): at 24, about 870 cases per caller and
# configuration, some 2,600 REST cases in a CI run. ZOO_FUZZ_EXAMPLES raises it for a deeper
# search (the exploratory runs used 25+) or lowers it for a quick local loop.
EXAMPLES = int(os.environ.get("ZOO_FUZZ_EXAMPLES", "24"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXCLUDED = {"GET /v2/graphql", "POST /v2/graphql"}


@dataclass
class World:
    """What the targeted cases point at, and the callers."""

    namespace: str
    real: dict[str, Any]
    tokens: dict[str, str | None]


@dataclass
class Outcome:
    """Cases run, statuses seen, failures found (one example per check and operation)."""

    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(hub: Hub) -> World:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")
    files = {
        "model.onnx": linear_model(0.5),
        "model.md": f"# fuzz target {ns}\n".encode(),
        "recipe/recipe_original.yaml": b"modifiers: []\n",
        "sample-inputs/inp-0000.npz": b"not really an npz " + ns.encode(),
    }
    publish(http, ns, "m", files)
    pending = http.post(f"/models/{ns}/m/versions", json={"files": manifest({"a.md": b"#"})})
    assert pending.status_code == 201, pending.text
    real = {
        "namespace": ns,
        "name": "m",
        "ref": "1",
        "number": 1,
        "path": "model.onnx",
        "archive": "sample-inputs.tar.gz",
        "alias": "stable",
        "upload_id": pending.json()["upload_id"],
        "sha256": pending.json()["blobs"][0]["sha256"],
    }
    tokens = {
        "anonymous": None,
        "writer": hub.token(["read", "write"], [ns], name="schema-fuzz"),
    }
    return World(ns, real, tokens)


def strategy(operation: Any, mode: schemathesis.GenerationMode, world: World) -> Any:
    """Random cases, cases on the real objects, and cases on the real model only."""
    random_cases = operation.as_strategy(generation_mode=mode)
    names = {p.name for p in operation.path_parameters}
    fixed = {k: v for k, v in world.real.items() if k in names}
    if not fixed:
        return random_cases
    model_only = {k: v for k, v in fixed.items() if k in ("namespace", "name")}
    options = [random_cases, operation.as_strategy(generation_mode=mode, path_parameters=fixed)]
    if model_only and model_only != fixed:
        options.append(operation.as_strategy(generation_mode=mode, path_parameters=model_only))
    return st.one_of(options)


def fuzz(hub: Hub, world: World, caller: str) -> Outcome:
    """Every operation (but EXCLUDED), in both modes, as ``caller``."""
    schema = schemathesis.openapi.from_url(f"{hub.url}/openapi.json")
    token = world.tokens[caller]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    outcome = Outcome()
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=lambda op: op.label)
    assert {op.label for op in operations} >= EXCLUDED, "an excluded operation is gone"
    with requests.Session() as session:
        for operation, mode in itertools.product(operations, schemathesis.GenerationMode):
            if operation.label not in EXCLUDED:
                fuzz_operation(hub, world, operation, mode, session, headers, outcome)
    return outcome


def fuzz_operation(
    hub: Hub,
    world: World,
    operation: Any,
    mode: schemathesis.GenerationMode,
    session: requests.Session,
    headers: dict[str, str],
    outcome: Outcome,
) -> None:
    """EXAMPLES cases of one operation in one mode; failures are collected, not raised, so one
    run reports everything it finds."""

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy(operation, mode, world))
    def run(case: Any) -> None:
        outcome.cases += 1
        response = case.call(base_url=hub.url, session=session, headers=headers)
        outcome.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                outcome.failures.setdefault(
                    (operation.label, failure.title),
                    f"{mode.value}: {response.status_code} {response.text[:300]!r}\n"
                    f"    {case.as_curl_command(headers=headers)[:600]}",
                )

    try:
        run()
    except Unsatisfiable:
        # Only path parameters that are free strings: no request can violate the schema.
        assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label


def report(outcome: Outcome) -> str:
    lines = [
        f"{label}: {title}\n  {example}" for (label, title), example in outcome.failures.items()
    ]
    return "\n".join(lines)


@pytest.mark.parametrize("caller", ["anonymous", "writer"])
def test_schemathesis_finds_nothing(hub: Hub, world: World, caller: str) -> None:
    if caller == "anonymous" and hub.name != "sqlite-fs":
        # Time: the writer makes the same reads (plus writes) against this database and store;
        # what the anonymous caller adds (401s) does not depend on the configuration.
        pytest.skip("the anonymous caller runs on sqlite-fs; the writer covers postgres-s3")
    outcome = fuzz(hub, world, caller)
    print(f"{hub.name} {caller}: {outcome.cases} cases, statuses {dict(outcome.statuses)}")
    assert not outcome.failures, report(outcome)
    assert outcome.cases >= 20 * EXAMPLES, outcome.cases
    # The targeted cases reach past the 404s: successes and refusals both happen.
    assert outcome.statuses[200] and outcome.statuses[404] and outcome.statuses[422]
    if caller == "writer":
        assert outcome.statuses[201] and outcome.statuses[403]
    else:
        assert outcome.statuses[401]


def graphql_cases(hub: Hub) -> Iterator[Any]:
    schema = schemathesis.graphql.from_url(f"{hub.url}/v2/graphql")
    for result in schema.get_all_operations():
        yield result.ok()


def test_graphql_fuzz(hub: Hub) -> None:
    """The SparseZoo GraphQL endpoint, fuzzed from its introspected schema: queries always
    answer 200, and no resolver fails inside (that would show as a masked internal error)."""
    session = requests.Session()
    cases = 0
    for operation in graphql_cases(hub):

        @settings(
            max_examples=150,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[hypothesis.Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            nonlocal cases
            cases += 1
            response = case.call(base_url=hub.url, session=session)
            assert response.status_code == 200, (case.body, response.text[:500])
            # (schemathesis' not_a_server_error would count any GraphQL error as a server
            # error; an invalid argument is a user's error, answered with a message.)
            assert "internal server error" not in response.text, (case.body, response.text)

        run()
    session.close()
    print(f"{hub.name} graphql: {cases} cases")
    assert cases >= 100
