"""The stub parser under fuzzing, and the hub's stub-reading routes under the same inputs.

tests/client/test_stubs.py fuzzes the parser with strategies built from the grammar's pieces.
This module adds an independent oracle: inputs drawn from loose regular expressions of the
documented grammar (near-valid stubs, which reach deep into the parser) and from arbitrary
text, many more of them, plus the routes that parse stubs on the server:

- for any text: ``parse_stub`` raises ``InvalidStubError`` (nothing else) or returns a stub
  whose canonical text is the input (less surrounding whitespace and the optional prefix),
  which parses back to an equal stub; the error pickles and its message stays short;
- for generated valid stubs: ``parse_stub(format_stub(s)) == s``;
- ``GET /api/v1/resolve``, ``POST /api/v1/models`` and GraphQL ``models(stub:)`` never answer
  5xx, and refuse exactly what the client's parser refuses.
"""

from __future__ import annotations

import pickle
import re

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.hub import Hub, create_model, publish, unique_namespace
from support.onnx_models import linear_model
from support.stub_strategies import STUBS
from zoo.stubs import (
    MAX_STUB_LENGTH,
    InvalidStubError,
    Stub,
    format_stub,
    is_stub,
    parse_stub,
)

# Fixed seed (derandomize), bounded examples: the same cases on every run and in CI.
PARSER = settings(
    max_examples=1000, derandomize=True, deadline=None, database=None, print_blob=True
)
SERVER = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)

# Regular expressions of the grammar: one that mostly writes valid stubs (1 to 7 segments,
# so the segment count is often wrong too), and a loose one with wrong characters, case,
# separators, prefixes, versions and queries that almost parse.
ALMOST = re.compile(
    r"zoo:([a-z0-9_]{1,4}([.\-][a-z0-9_]{1,3})?/){0,6}[a-z0-9_]{1,5}"
    r"(@([0-9]{1,4}|[a-z][a-z0-9]{0,4}|[A-Z][a-z]{0,3}))?(\?recipe=[a-z_.\-]{1,5})?"
)
_CHUNK = r"[a-zA-Z0-9_.\-]{0,6}"
_SEPARATOR = r"(/|-|//|\.|_)"
NEAR_STUB = re.compile(
    rf"(zoo:|ZOO:|Zoo:|zoo|zoo::| zoo:)?"
    rf"({_CHUNK}{_SEPARATOR}){{0,8}}{_CHUNK}"
    r"(@([0-9]{0,12}|[a-zA-Z][a-zA-Z0-9._\-]{0,8}|@|-1|0x1f|٣|²))?"
    r"(\?(recipe|recipe_type|RECIPE|r)(=[a-z_.\-]{0,6})?(&recipe=[a-z]{0,3})?)?"
    r"(\?|@)?[ \t\n]?"
)

TEXTS = st.one_of(
    st.from_regex(ALMOST, fullmatch=True),
    st.from_regex(NEAR_STUB, fullmatch=True),
    st.text(max_size=120),
    st.text(alphabet="zo:/@?=&recipe_-.aZ0719 \t\x00\\é%", max_size=80),
    # Around the length limit: segments of 95-105 characters, stubs of 500-520.
    st.integers(95, 105).map(lambda n: "zoo:ns/" + "a" * n),
    st.integers(500 - 7, 520 - 7).map(lambda n: "zoo:ns/" + "a" * n),
)


def check_total(text: str, require_prefix: bool) -> Stub | None:
    """The parser's contract on one input; the stub if it was accepted."""
    try:
        stub = parse_stub(text, require_prefix=require_prefix)
    except InvalidStubError as error:
        assert error.stub == text and error.part and error.reason
        assert len(str(error)) < 2 * MAX_STUB_LENGTH + 400, "the message echoes too much"
        copy = pickle.loads(pickle.dumps(error))
        assert (str(copy), copy.part, copy.value) == (str(error), error.part, error.value)
        assert not is_stub(text, require_prefix=require_prefix)
        return None
    text_out = format_stub(stub)
    stripped = text.strip()
    canonical = stripped if stripped.startswith("zoo:") else "zoo:" + stripped
    # Accepted means canonical: nothing but whitespace and the prefix was fixed, so the text
    # the parser accepted is exactly what format() writes, and that parses to the same stub.
    assert text_out == canonical, (text, text_out)
    assert parse_stub(text_out) == stub and str(stub) == text_out
    assert len(text_out) <= MAX_STUB_LENGTH
    assert is_stub(text, require_prefix=require_prefix)
    return stub


@pytest.mark.slow
@PARSER
@given(TEXTS, st.booleans())
def test_parser_is_total_and_accepts_only_canonical_text(text: str, require_prefix: bool) -> None:
    check_total(text, require_prefix)


def test_the_near_stub_inputs_reach_both_outcomes() -> None:
    # The oracle is only as good as its inputs: they must hit both branches, often.
    outcomes = {"accepted": 0, "refused": 0}

    @settings(max_examples=500, derandomize=True, database=None, deadline=None)
    @given(TEXTS)
    def count(text: str) -> None:
        outcomes["accepted" if is_stub(text) else "refused"] += 1

    count()
    assert outcomes["accepted"] >= 50 and outcomes["refused"] >= 200, outcomes


# --- generated valid stubs ----------------------------------------------------------------


@pytest.mark.slow
@PARSER
@given(STUBS, st.sampled_from(["", " ", "\n", "\t "]))
def test_generated_valid_stubs_round_trip(stub: Stub, pad: str) -> None:
    text = format_stub(stub)
    assert parse_stub(text) == stub
    assert parse_stub(pad + text + pad) == stub
    assert parse_stub(text.removeprefix("zoo:"), require_prefix=False) == stub
    assert parse_stub(format_stub(stub.without_version())) == stub.without_version()
    assert check_total(text, True) == stub


# --- the hub's routes that parse stubs ------------------------------------------------------


@pytest.fixture(scope="module")
def published(hub: Hub) -> str:
    """A namespace with model ``m`` (version 1, recipe ``original``) for stubs that resolve."""
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")
    publish(
        http,
        ns,
        "m",
        {"model.onnx": linear_model(0.5), "recipe/recipe_original.yaml": b"modifiers: []\n"},
    )
    return ns


def server_texts(ns: str) -> st.SearchStrategy[str]:
    """Fuzzed stubs, and edits of stubs that name the published model."""
    real = [f"zoo:{ns}/m", f"zoo:{ns}/m@1", f"zoo:{ns}/m@latest?recipe=original", f"{ns}/m@2"]
    edited = st.tuples(st.sampled_from(real), st.integers(0, 40), TEXTS).map(
        lambda t: t[0][: t[1]] + t[2][:3] + t[0][t[1] :]
    )
    return st.one_of(TEXTS, st.sampled_from(real), edited)


def client_verdict(text: str) -> InvalidStubError | Stub:
    try:
        return parse_stub(text, require_prefix=False)
    except InvalidStubError as e:
        return e


def test_resolve_agrees_with_the_client_parser(hub: Hub, published: str) -> None:
    seen: dict[int, int] = {}
    with httpx.Client(base_url=f"{hub.url}/api/v1", timeout=30) as http:

        @SERVER
        @given(server_texts(published))
        def check(text: str) -> None:
            r = http.get("/resolve", params={"stub": text})
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
            assert r.status_code < 500, (text, r.text)
            if "\x00" in text or not 1 <= len(text) <= 600:
                assert r.status_code == 422, (text, r.text)
                return
            verdict = client_verdict(text)
            if isinstance(verdict, InvalidStubError):
                assert r.status_code == 400, (text, r.text)
                assert r.json()["error"]["code"] == "INVALID_STUB"
                assert r.json()["error"]["message"] == str(verdict)
            elif r.status_code == 200:
                assert verdict.namespace == published and verdict.repo_name == "m", text
                assert r.json()["stub"] == f"zoo:{published}/m@1"
            else:
                assert r.status_code == 404, (text, r.text)

        check()
    assert seen.get(200) and seen.get(400) and seen.get(404), seen


def test_create_model_refuses_what_the_parser_refuses(hub: Hub) -> None:
    ns = unique_namespace()
    token = hub.token(["read", "write"], [ns], name="stub-fuzz")
    with httpx.Client(
        base_url=f"{hub.url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:

        @SERVER
        @given(TEXTS)
        def check(text: str) -> None:
            r = http.post("/models", json={"namespace": ns, "stub": text})
            assert r.status_code < 500, (text, r.text)
            if "\x00" in text or len(text) > 512:
                assert r.status_code == 422, (text, r.text)
            elif isinstance(client_verdict(text), InvalidStubError):
                assert r.status_code == 400, (text, r.text)
                assert r.json()["error"]["code"] == "INVALID_STUB", r.text

        check()


def test_graphql_stub_argument_never_fails_inside(hub: Hub, published: str) -> None:
    query = "query($s: String) { models(stub: $s) { modelId } }"
    with httpx.Client(base_url=hub.url, timeout=30) as http:

        @SERVER
        @given(server_texts(published))
        def check(text: str) -> None:
            r = http.post("/v2/graphql", json={"query": query, "variables": {"s": text}})
            if "\x00" in text:
                assert r.status_code == 400 and "NUL" in r.text, r.text
                return
            assert r.status_code == 200, (text, r.text)
            # A resolver that raised something unexpected shows as a masked internal error.
            assert "internal server error" not in r.text, (text, r.text)

        check()
