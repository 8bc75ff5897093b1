"""The ``zoo:`` stub grammar: examples of every form, round-trip properties, one test per error."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.stub_strategies import (
    LONG_SEGMENT,
    NAME,
    NAMESPACE,
    RECIPE,
    SEGMENT,
    STUBS,
    VERSION,
)
from zoo.stubs import (
    MAX_STUB_LENGTH,
    MAX_VERSION,
    InvalidStubError,
    Stub,
    format_stub,
    is_stub,
    parse_stub,
    path_stub,
)

# Bounded so the whole file runs in a few seconds; no deadline on a shared, busy machine.
FAST = settings(max_examples=200, deadline=None)

# -- examples of every form -----------------------------------------------------------------

VALID: list[tuple[str, dict[str, Any]]] = [
    # Path form (SparseZoo v1), real stubs.
    (
        "zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/pruned95_quant-none",
        dict(
            form="path",
            domain="cv",
            task="classification",
            architecture="resnet_v1",
            sub_architecture="50",
            framework="pytorch",
            repo="sparseml",
            dataset="imagenet",
            training_scheme=None,
            sparse_tag="pruned95_quant-none",
        ),
    ),
    (
        "zoo:nlp/question_answering/bert-base/pytorch/huggingface/squad/pruned90-none",
        dict(
            form="path",
            domain="nlp",
            task="question_answering",
            architecture="bert",
            sub_architecture="base",
            framework="pytorch",
            repo="huggingface",
            dataset="squad",
            sparse_tag="pruned90-none",
        ),
    ),
    (
        "zoo:cv/classification/mobilenet_v1-1.0/pytorch/sparseml/imagenet/pruned-moderate",
        dict(
            form="path",
            architecture="mobilenet_v1",
            sub_architecture="1.0",
            sparse_tag="pruned-moderate",
        ),
    ),
    (
        "zoo:cv/classification/resnet_v1-50/pytorch/torchvision/imagenet/base-none",
        dict(form="path", repo="torchvision", sparse_tag="base-none"),
    ),
    (
        "zoo:nlp/sentiment_analysis/bert-base/pytorch/huggingface/sst2/12layer_pruned80_quant-none-vnni",
        dict(form="path", task="sentiment_analysis", sparse_tag="12layer_pruned80_quant-none-vnni"),
    ),
    (
        "zoo:cv/detection/yolov5-s/pytorch/ultralytics/coco/pruned_quant-aggressive_94",
        dict(
            form="path",
            architecture="yolov5",
            sub_architecture="s",
            sparse_tag="pruned_quant-aggressive_94",
        ),
    ),
    (  # a sub-architecture may itself hold hyphens: only the first one splits
        "zoo:cv/detection/ssd-resnet18_300-voc/pytorch/sparseml/voc/pruned-moderate",
        dict(form="path", architecture="ssd", sub_architecture="resnet18_300-voc"),
    ),
    (  # dataset and training scheme split at the first hyphen too
        "zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet-augmented-x/base-none",
        dict(form="path", dataset="imagenet", training_scheme="augmented-x"),
    ),
    (  # no sub-architecture, no scheme
        "zoo:nlp/masked_language_modeling/distilbert/pytorch/huggingface/wikipedia_bookcorpus/base",
        dict(form="path", architecture="distilbert", sub_architecture=None, training_scheme=None),
    ),
    (
        "zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/pruned95_quant-none"
        "@2?recipe=transfer_learn",
        dict(form="path", sparse_tag="pruned95_quant-none", version=2, recipe="transfer_learn"),
    ),
    # Short form (SparseZoo v2), kept whole.
    (
        "zoo:resnet_v1-50-imagenet-pruned95_quant",
        dict(form="short", repo_name="resnet_v1-50-imagenet-pruned95_quant"),
    ),
    (
        "zoo:bert-base-wikipedia_bookcorpus-pruned90",
        dict(form="short", repo_name="bert-base-wikipedia_bookcorpus-pruned90"),
    ),
    (
        "zoo:mobilebert-squad_wikipedia_bookcorpus-14layer_pruned50.4block_quantized",
        dict(
            form="short",
            repo_name="mobilebert-squad_wikipedia_bookcorpus-14layer_pruned50.4block_quantized",
        ),
    ),
    (
        "zoo:yolov8-s-coco-pruned70_quantized",
        dict(
            form="short", repo_name="yolov8-s-coco-pruned70_quantized", domain=None, namespace=None
        ),
    ),
    (
        "zoo:yolov8-s-coco-pruned70_quantized@latest",
        dict(form="short", version="latest", recipe=None),
    ),
    (
        "zoo:bert-base-wikipedia_bookcorpus-pruned90?recipe=original",
        dict(form="short", version=None, recipe="original"),
    ),
    # Namespaced form.
    (
        "zoo:openzoo/resnet_v1-50-imagenet-pruned90",
        dict(form="namespaced", namespace="openzoo", repo_name="resnet_v1-50-imagenet-pruned90"),
    ),
    (
        "zoo:my-lab_2/model.v2@17",
        dict(form="namespaced", namespace="my-lab_2", repo_name="model.v2", version=17),
    ),
    (
        "zoo:openzoo/x@v2-rc?recipe=transfer-classification",
        dict(version="v2-rc", recipe="transfer-classification"),
    ),
    ("zoo:openzoo/x@stable", dict(version="stable")),
]

REAL_STUBS = [text for text, _ in VALID]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_parse_fields(text: str, expected: dict[str, Any]) -> None:
    stub = parse_stub(text)
    assert {name: getattr(stub, name) for name in expected} == expected


@pytest.mark.parametrize("text", REAL_STUBS)
def test_canonical_text_round_trips(text: str) -> None:
    stub = parse_stub(text)
    assert format_stub(stub) == text == str(stub)
    assert parse_stub(format_stub(stub)) == stub
    assert is_stub(text)


def test_fields_a_form_lacks_are_none() -> None:
    short = parse_stub("zoo:resnet_v1-50-imagenet-pruned95_quant")
    sparsezoo = ("domain", "task", "architecture", "framework", "repo", "dataset", "sparse_tag")
    assert all(getattr(short, name) is None for name in (*sparsezoo, "namespace"))
    path = parse_stub(REAL_STUBS[0])
    assert path.namespace is None and path.repo_name is None


def test_surrounding_whitespace_is_stripped_and_the_input_kept_in_errors() -> None:
    assert parse_stub("  zoo:openzoo/x@3 \n") == parse_stub("zoo:openzoo/x@3")
    with pytest.raises(InvalidStubError) as info:
        parse_stub("  zoo:openzoo/X \n")
    assert info.value.stub == "  zoo:openzoo/X \n"


@pytest.mark.parametrize("text", REAL_STUBS)
def test_prefix_is_optional_on_request(text: str) -> None:
    bare = text.removeprefix("zoo:")
    assert parse_stub(bare, require_prefix=False) == parse_stub(text)
    assert parse_stub(text, require_prefix=False) == parse_stub(text)
    assert format_stub(parse_stub(bare, require_prefix=False)) == text
    assert not is_stub(bare)
    assert is_stub(bare, require_prefix=False)


def test_helpers() -> None:
    text = "zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/base-none"
    stub = parse_stub(text + "@latest?recipe=original")
    assert stub.version_is_alias
    assert stub.path == "cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/base-none"
    bare = stub.without_version()
    assert (bare.version, bare.recipe) == (None, None)
    assert str(bare) == text
    assert dataclasses.replace(bare, version=stub.version, recipe=stub.recipe) == stub
    numbered = parse_stub("zoo:openzoo/x@3")
    assert not numbered.version_is_alias and numbered.version == 3
    assert not numbered.without_version().version_is_alias
    assert numbered.path is None and parse_stub("zoo:x").path is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        numbered.version = 4  # type: ignore[misc]
    assert len({parse_stub("zoo:openzoo/x@3"), numbered}) == 1  # hashable, equal by value


def test_path_stub_builds_what_the_parser_parses() -> None:
    built = path_stub(
        domain="nlp",
        task="question_answering",
        architecture="bert",
        sub_architecture="base",
        framework="pytorch",
        repo="huggingface",
        dataset="squad",
        sparse_tag="pruned90-none",
        version=2,
        recipe="original",
    )
    text = "zoo:nlp/question_answering/bert-base/pytorch/huggingface/squad/pruned90-none"
    assert built == parse_stub(text + "@2?recipe=original")
    assert built.without_version() == parse_stub(text)


def test_is_stub() -> None:
    assert is_stub("zoo:openzoo/x")
    assert not is_stub("zoo:openzoo/X")
    assert not is_stub(None)
    assert not is_stub(b"zoo:x")


def test_parse_rejects_non_text() -> None:
    with pytest.raises(TypeError, match="str, not bytes"):
        parse_stub(b"zoo:x")  # type: ignore[arg-type]


def test_limits_are_inclusive() -> None:
    assert parse_stub("zoo:" + "a" * 100).repo_name == "a" * 100
    assert parse_stub("zoo:" + "a" * 63 + "/x").namespace == "a" * 63
    assert parse_stub(f"zoo:x@{MAX_VERSION}").version == MAX_VERSION
    longest = "zoo:" + "/".join(["a" * 72] * 6 + ["a" * 70])
    assert len(longest) == MAX_STUB_LENGTH
    assert format_stub(parse_stub(longest)) == longest
    bare = longest.removeprefix("zoo:") + "a"  # the limit counts the prefix even when omitted
    with pytest.raises(InvalidStubError, match="at most 512 characters") as info:
        parse_stub(bare, require_prefix=False)
    assert (info.value.stub, info.value.part) == (bare, "stub")


# -- one test per error kind ----------------------------------------------------------------

PATH = "zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/pruned95_quant-none"

ERRORS: list[tuple[str, str, list[str]]] = [
    # (input, part, fragments the message must contain)
    (
        "zoo:cv/classification/resnet_v1-50",
        "segments",
        [
            "'zoo:cv/classification/resnet_v1-50'",
            "a path stub has 7 segments",
            "domain/task/architecture/framework/repo/dataset/sparse_tag",
            "this one has 3",
        ],
    ),
    ("zoo:a/b/c/d/e/f/g/h", "segments", ["7 segments", "this one has 8"]),
    ("zoo:openzoo/x/", "segments", ["this one has 3", "namespaced stub has 2", "stray '/'"]),
    ("zoo:", "segments", ["names no model"]),
    ("zoo:@3", "segments", ["names no model"]),
    ("", "stub", ["empty"]),
    ("   ", "stub", ["empty"]),
    ("zoo:" + "a/" * 300, "stub", ["at most 512 characters", "this one has 604", "..."]),
    (
        "resnet_v1-50-imagenet-pruned95_quant",
        "prefix",
        ["starts with 'zoo:'", "write 'zoo:resnet_v1-50-imagenet-pruned95_quant'"],
    ),
    ("hf:org/model", "prefix", ["'hf:org/model'", "starts with 'zoo:'"]),
    ("ZOO:openzoo/x", "prefix", ["'ZOO:'", "write 'zoo:openzoo/x'"]),
    (PATH.replace("/classification/", "/"), "segments", ["this one has 6"]),
    (PATH.replace("/classification/", "//"), "task", ["invalid task ''", "empty"]),
    ("zoo:" + "a" * 101, "repo_name", ["101 characters", "at most 100"]),
    (
        PATH.replace("pruned95_quant-none", "Pruned95_Quant-none"),
        "sparse_tag",
        ["'Pruned95_Quant-none'", "lowercase", "'pruned95_quant-none'"],
    ),
    (PATH.replace("pytorch", "PyTorch"), "framework", ["'PyTorch'", "write 'pytorch'"]),
    ("zoo:resnet 50", "repo_name", ["'resnet 50'", "character ' '"]),
    ("zoo:openzoo/a\tb", "repo_name", ["character '\\t'"]),
    ("zoo:openzoo/a\x00b", "repo_name", ["character '\\x00'"]),
    ("zoo:openzoo/a\x7fb", "repo_name", ["character '\\x7f'"]),
    ("zoo:openzoo/a\\b", "repo_name", ["character '\\\\'"]),
    ("zoo:openzoo/résnet", "repo_name", ["character 'é'"]),
    ("zoo:openzoo/a:b", "repo_name", ["character ':'"]),
    ("zoo:.hidden", "repo_name", ["'.hidden'", "start or end with '.' or '-'"]),
    ("zoo:openzoo/x-", "repo_name", ["'x-'", "start or end"]),
    (PATH.replace("cv", "..", 1), "domain", ["'..'", "start or end"]),
    (PATH.replace("resnet_v1-50", "resnet_v1-"), "architecture", ["'resnet_v1-'", "start or end"]),
    (PATH.replace("resnet_v1-50", "resnet_v1--50"), "sub_architecture", ["'-50'", "start or end"]),
    (
        PATH.replace("resnet_v1-50", "resnet_v1.-50"),
        "architecture",
        ["'resnet_v1.'", "start or end"],
    ),
    (PATH.replace("imagenet", "imagenet-"), "dataset", ["'imagenet-'", "start or end"]),
    (PATH.replace("imagenet", "imagenet-.x"), "training_scheme", ["'.x'", "start or end"]),
    ("zoo:Openzoo/x", "namespace", ["'Openzoo'", "write 'openzoo'"]),
    ("zoo:open.zoo/x", "namespace", ["'open.zoo'", "character '.'"]),
    ("zoo:-openzoo/x", "namespace", ["'-openzoo'", "start with a lowercase letter or a digit"]),
    ("zoo:" + "n" * 64 + "/x", "namespace", ["64 characters", "at most 63"]),
    ("zoo:/x", "namespace", ["invalid namespace ''", "empty"]),
    ("zoo:openzoo/", "repo_name", ["invalid repo_name ''", "empty"]),
    (
        "zoo:openzoo/x@x y",
        "version",
        ["invalid version 'x y'", "use an integer such as @3 or an alias such as @latest"],
    ),
    ("zoo:openzoo/x@", "version", ["invalid version ''", "@3", "@latest"]),
    ("zoo:openzoo/x@0", "version", ["'0'", "start at 1"]),
    ("zoo:openzoo/x@007", "version", ["'007'", "write @7"]),
    ("zoo:openzoo/x@-1", "version", ["'-1'", "@3"]),
    ("zoo:openzoo/x@Latest", "version", ["'Latest'", "write @latest"]),
    ("zoo:openzoo/x@2rc", "version", ["'2rc'", "alias"]),
    (f"zoo:openzoo/x@{MAX_VERSION + 1}", "version", [str(MAX_VERSION + 1), f"1 to {MAX_VERSION}"]),
    ("zoo:openzoo/x@1@2", "version", ["at most one '@'"]),
    (
        "zoo:openzoo/x?recipe=original@3",
        "version",
        ["version comes before the query", "@VERSION?recipe=NAME"],
    ),
    (
        "zoo:openzoo/x?recipe_type=original",
        "query",
        ["unknown query 'recipe_type'", "the only query is ?recipe=NAME", "?recipe=original"],
    ),
    ("zoo:openzoo/x?recipe=a&sort=b", "query", ["unknown query 'sort'", "?recipe=NAME"]),
    ("zoo:openzoo/x?", "recipe", ["nothing follows '?'"]),
    ("zoo:openzoo/x?recipe", "recipe", ["no name", "?recipe=NAME"]),
    ("zoo:openzoo/x?recipe=", "recipe", ["no name", "?recipe=NAME"]),
    ("zoo:openzoo/x?recipe=a&recipe=b", "recipe", ["twice"]),
    ("zoo:openzoo/x?recipe=a?b", "recipe", ["one query"]),
    (
        "zoo:openzoo/x?recipe=Transfer_Learn",
        "recipe",
        ["'Transfer_Learn'", "write 'transfer_learn'"],
    ),
    ("zoo:openzoo/x?recipe=a%20b", "recipe", ["'a%20b'", "character '%'"]),
]


@pytest.mark.parametrize(("text", "part", "fragments"), ERRORS)
def test_error_names_the_bad_part(text: str, part: str, fragments: list[str]) -> None:
    with pytest.raises(InvalidStubError) as info:
        parse_stub(text)
    error = info.value
    assert isinstance(error, ValueError)
    assert (error.stub, error.part) == (text, part)
    for fragment in fragments:
        assert fragment in str(error)
    assert not is_stub(text)


def test_error_survives_pickling() -> None:
    with pytest.raises(InvalidStubError) as info:
        parse_stub("zoo:openzoo/x?recipe_type=original")
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.stub, copy.part, copy.value, str(copy)) == (
        info.value.stub,
        "query",
        "recipe_type",
        str(info.value),
    )


def test_error_message_exact_wording() -> None:
    with pytest.raises(InvalidStubError) as info:
        parse_stub("zoo:cv/classification/resnet_v1-50")
    assert str(info.value) == (
        "invalid stub 'zoo:cv/classification/resnet_v1-50': a path stub has 7 segments "
        "(domain/task/architecture/framework/repo/dataset/sparse_tag), this one has 3; "
        "a namespaced stub has 2 (namespace/repo_name)"
    )


def _path_fields(**overrides: str | None) -> dict[str, str | None]:
    fields: dict[str, str | None] = dict(
        domain="cv",
        task="classification",
        architecture="resnet_v1",
        sub_architecture="50",
        framework="pytorch",
        repo="sparseml",
        dataset="imagenet",
        sparse_tag="base-none",
    )
    return fields | overrides


BUILD_ERRORS: list[tuple[dict[str, Any], str, list[str]]] = [
    (dict(form="short"), "repo_name", ["short stub needs a repo_name"]),
    (dict(form="short", repo_name="x", domain="cv"), "domain", ["short stub has no domain"]),
    (dict(form="namespaced", repo_name="x"), "namespace", ["needs a namespace"]),
    (dict(form="path", repo_name="x"), "repo_name", ["path stub has no repo_name"]),
    (dict(form="tree", repo_name="x"), "form", ["'tree'", "path, short, namespaced"]),
    (dict(form="short", repo_name="x", version=0), "version", ["'0'", "from 1"]),
    (dict(form="short", repo_name="x", version=True), "version", ["'True'", "@latest"]),
    (dict(form="short", repo_name="x", version="3"), "version", ["'3'", "integer"]),
    (dict(form="short", repo_name=3), "repo_name", ["str, not int"]),
    (dict(form="short", repo_name="x", recipe=""), "recipe", ["empty"]),
    (
        dict(
            _path_fields(
                domain="d" * 100, task="t" * 100, sparse_tag="s" * 100, framework="f" * 100
            ),
            form="path",
            repo="r" * 100,
        ),
        "stub",
        ["at most 512", "(530 characters)"],
    ),
]


@pytest.mark.parametrize(("fields", "part", "fragments"), BUILD_ERRORS)
def test_direct_construction_is_validated(
    fields: dict[str, Any], part: str, fragments: list[str]
) -> None:
    with pytest.raises(InvalidStubError) as info:
        Stub(**fields)
    assert info.value.part == part
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "part", "fragment"),
    [
        (
            dict(architecture="resnet_v1-50", sub_architecture=None),
            "architecture",
            "pass architecture='resnet_v1', sub_architecture='50'",
        ),
        (dict(dataset="imagenet-aug"), "dataset", "training_scheme='aug'"),
        (dict(sub_architecture=""), "sub_architecture", "empty"),
        (dict(sub_architecture="a" * 95), "sub_architecture", "at most 100"),
        (dict(domain="c/v"), "domain", "'/' (which separates segments)"),
        (dict(task="Classification"), "task", "write 'classification'"),
    ],
)
def test_path_stub_validates_like_the_parser(
    overrides: dict[str, str | None], part: str, fragment: str
) -> None:
    with pytest.raises(InvalidStubError) as info:
        path_stub(**_path_fields(**overrides))  # type: ignore[arg-type]
    assert info.value.part == part
    assert fragment in str(info.value)


# -- properties -----------------------------------------------------------------------------


@st.composite
def canonical_texts(draw: st.DrawFn) -> str:
    """Stub text written from the grammar directly, not through Stub."""
    form = draw(st.sampled_from(["path", "short", "namespaced"]))
    if form == "path":
        segments = [draw(SEGMENT) for _ in range(7)]
        for index in (2, 5):  # ARCH[-SUBARCH], DATASET[-SCHEME]
            head, tail = draw(NAME), draw(st.none() | SEGMENT)
            segments[index] = head if tail is None else f"{head}-{tail}"
        body = "/".join(segments)
    elif form == "short":
        body = draw(LONG_SEGMENT)
    else:
        body = f"{draw(NAMESPACE)}/{draw(LONG_SEGMENT)}"
    version, recipe = draw(VERSION), draw(RECIPE)
    return (
        "zoo:"
        + body
        + ("" if version is None else f"@{version}")
        + ("" if recipe is None else f"?recipe={recipe}")
    )


@FAST
@given(STUBS)
def test_parse_inverts_format(stub: Stub) -> None:
    text = format_stub(stub)
    assert text.startswith("zoo:") and len(text) <= MAX_STUB_LENGTH
    assert parse_stub(text) == stub
    assert parse_stub(text.removeprefix("zoo:"), require_prefix=False) == stub
    assert parse_stub(format_stub(stub.without_version())) == stub.without_version()


@FAST
@given(canonical_texts())
def test_format_inverts_parse(text: str) -> None:
    assert format_stub(parse_stub(text)) == text


def _parse_total(text: str, require_prefix: bool) -> None:
    """Parsing either fails with InvalidStubError or gives back the input, canonically."""
    try:
        stub = parse_stub(text, require_prefix=require_prefix)
    except InvalidStubError as error:
        assert error.stub == text
        assert error.part
        assert str(error).startswith(("invalid ", "unknown query "))
        return
    stripped = text.strip()
    canonical = stripped if stripped.startswith("zoo:") else "zoo:" + stripped
    assert format_stub(stub) == canonical  # nothing but whitespace and prefix is fixed
    assert parse_stub(canonical) == stub


# Characters that matter to the grammar, and some that must be refused.
GRAMMAR_CHARS = "zoo:/@?=&recipe_-.aZ0719 \t\n\x00\\é%"


@FAST
@given(st.text(max_size=80), st.booleans())
def test_fuzz_arbitrary_text(text: str, require_prefix: bool) -> None:
    _parse_total(text, require_prefix)


@FAST
@given(st.text(alphabet=GRAMMAR_CHARS, max_size=60), st.booleans())
def test_fuzz_grammar_characters(text: str, require_prefix: bool) -> None:
    _parse_total(text, require_prefix)
    _parse_total("zoo:" + text, require_prefix)


@FAST
@given(
    st.sampled_from(REAL_STUBS) | canonical_texts(),
    st.lists(
        st.tuples(
            st.sampled_from(["insert", "replace", "delete"]),
            st.integers(0, 600),
            st.characters(codec="utf-8") | st.sampled_from(GRAMMAR_CHARS),
        ),
        min_size=1,
        max_size=3,
    ),
    st.booleans(),
)
def test_fuzz_mutated_stubs(
    text: str, edits: list[tuple[str, int, str]], require_prefix: bool
) -> None:
    for action, position, char in edits:
        at = position % (len(text) + 1)
        if action == "insert":
            text = text[:at] + char + text[at:]
        elif action == "replace":
            text = text[:at] + char + text[at + 1 :]
        else:
            text = text[:at] + text[at + 1 :]
    _parse_total(text, require_prefix)
