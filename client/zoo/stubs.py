"""The ``zoo:`` stub grammar, shared by the server and the client (stdlib only).

A stub names a model, optionally a version of it and a recipe. Three forms exist::

    zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/pruned95_quant-none   path
    zoo:resnet_v1-50-imagenet-pruned95_quant                                            short
    zoo:openzoo/resnet_v1-50-imagenet-pruned90                                          namespaced

- Path form (SparseZoo v1), seven segments:
  ``DOMAIN/TASK/ARCH[-SUBARCH]/FRAMEWORK/REPO/DATASET[-SCHEME]/SPARSE_TAG``. The architecture
  segment splits at its first ``-`` (``resnet_v1-50`` is ``resnet_v1`` + ``50``), the dataset
  segment likewise (``imagenet-augmented`` is ``imagenet`` + ``augmented``); the sparse tag is
  one field and may hold hyphens (``pruned95_quant-none``).
- Short form (SparseZoo v2): ``ARCH[-SUBARCH]-DATASET[-TRAIN_DATASET]-SPARSE_TAG``. Its
  hyphens are ambiguous, so it is kept whole as ``repo_name`` (the server's key for it).
- Namespaced form: ``NAMESPACE/REPO_NAME``.

Any form may end in ``@VERSION`` (a positive integer or an alias such as ``latest``) and
then ``?recipe=NAME``. Parsing is strict: surrounding whitespace is stripped and nothing
else is fixed, and every error names the bad part and what to write instead.

>>> s = parse_stub("zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/pruned90-none@3")
>>> (s.architecture, s.sub_architecture, s.sparse_tag, s.version)
('resnet_v1', '50', 'pruned90-none', 3)
>>> str(s.without_version())
'zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/pruned90-none'
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "MAX_SEGMENT_LENGTH",
    "MAX_STUB_LENGTH",
    "MAX_VERSION",
    "PREFIX",
    "InvalidStubError",
    "Stub",
    "StubForm",
    "format_stub",
    "is_stub",
    "parse_stub",
    "path_stub",
]

StubForm = Literal["path", "short", "namespaced"]

PREFIX = "zoo:"
MAX_STUB_LENGTH = 512  # of the canonical text, prefix included
MAX_SEGMENT_LENGTH = 100
MAX_VERSION = 2**31 - 1  # version numbers are stored as 32-bit integers by the server

_FORMS: tuple[StubForm, ...] = ("path", "short", "namespaced")
_PATH_PARTS = ("domain", "task", "architecture", "framework", "repo", "dataset", "sparse_tag")
_PATH_SHAPE = "/".join(_PATH_PARTS)

# Anchored pieces of the grammar (always used with fullmatch).
_SEGMENT = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]{0,98}[a-z0-9_])?")
_SEGMENT_NO_HYPHEN = re.compile(r"[a-z0-9_](?:[a-z0-9_.]{0,98}[a-z0-9_])?")
_NAMESPACE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_VERSION_NUMBER = re.compile(r"[1-9][0-9]*")
_VERSION_ALIAS = re.compile(r"[a-z][a-z0-9._-]{0,99}")
# BODY[@VERSION][?QUERY]: at most one '@', at most one '?', the version before the query.
_STRUCTURE = re.compile(r"(?P<body>[^@?]*)(?:@(?P<version>[^@?]*))?(?:\?(?P<query>[^@?]*))?", re.S)

_SEGMENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")
_NAMESPACE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
_VERSION_HINT = "use an integer such as @3 or an alias such as @latest"


class InvalidStubError(ValueError):
    """A text is not a valid ``zoo:`` stub; ``part`` names what is wrong with it."""

    stub: str
    part: str
    value: str | None
    reason: str

    def __init__(
        self, stub: str, part: str, reason: str, *, value: str | None = None, label: str = ""
    ) -> None:
        self.stub = stub
        self.part = part
        self.value = value
        self.reason = reason
        self._label = label
        quoted = repr(stub)
        if len(stub) > MAX_STUB_LENGTH:  # the attribute keeps it whole; the message need not
            quoted = f"{stub[:60]!r}... ({len(stub)} characters)"
        if value is None:
            message = f"invalid stub {quoted}: {reason}"
        else:
            message = f"{label or 'invalid ' + part} {value!r} in stub {quoted}: {reason}"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, tuple[str, str, str]]:
        # Keyword arguments survive pickling (errors cross process boundaries in workers).
        rebuild = functools.partial(InvalidStubError, value=self.value, label=self._label)
        return rebuild, (self.stub, self.part, self.reason)

    def _for(self, stub: str) -> InvalidStubError:
        # The same error, quoted against another spelling of the stub (the caller's input).
        return InvalidStubError(stub, self.part, self.reason, value=self.value, label=self._label)


@dataclass(frozen=True, slots=True, kw_only=True)
class Stub:
    """A parsed stub. Fields a form does not have are None.

    Build one with :func:`parse_stub` or :func:`path_stub`; direct construction is validated
    too, so every Stub formats to text that parses back to an equal Stub.
    """

    form: StubForm
    domain: str | None = None
    task: str | None = None
    architecture: str | None = None
    sub_architecture: str | None = None
    framework: str | None = None
    repo: str | None = None
    dataset: str | None = None
    training_scheme: str | None = None
    sparse_tag: str | None = None
    namespace: str | None = None
    repo_name: str | None = None
    version: int | str | None = None
    recipe: str | None = None

    def __post_init__(self) -> None:
        _validate(self, _render(self))

    def __str__(self) -> str:
        return format_stub(self)

    @property
    def version_is_alias(self) -> bool:
        """True if the version is an alias (``@latest``), False for a number or no version."""
        return isinstance(self.version, str)

    @property
    def path(self) -> str | None:
        """The path without prefix, version or recipe for path stubs; None for other forms."""
        if self.form != "path":
            return None
        return _render_body(self)

    def without_version(self) -> Stub:
        """This stub naming the model only: version and recipe dropped."""
        return dataclasses.replace(self, version=None, recipe=None)


def parse_stub(text: str, *, require_prefix: bool = True) -> Stub:
    """Parse ``text`` into a :class:`Stub`, or raise :class:`InvalidStubError`.

    ``require_prefix=False`` also accepts text without ``zoo:`` (an HTTP ``?stub=`` value).

    >>> s = parse_stub("zoo:openzoo/resnet_v1-50-imagenet-pruned90@latest?recipe=original")
    >>> (s.form, s.namespace, s.repo_name, s.version, s.recipe)
    ('namespaced', 'openzoo', 'resnet_v1-50-imagenet-pruned90', 'latest', 'original')
    """
    if not isinstance(text, str):
        raise TypeError(f"a stub is a str, not {type(text).__name__}")
    s = text.strip()
    if not s:
        raise InvalidStubError(text, "stub", "it is empty; write e.g. 'zoo:NAMESPACE/REPO_NAME'")
    if len(s) > MAX_STUB_LENGTH:
        raise InvalidStubError(text, "stub", _too_long(len(s)))

    if s.startswith(PREFIX):
        s = s[len(PREFIX) :]
    elif s[: len(PREFIX)].lower() == PREFIX:
        reason = f"the prefix is lowercase: write {PREFIX + s[len(PREFIX) :]!r}"
        raise InvalidStubError(text, "prefix", reason, value=s[: len(PREFIX)])
    elif require_prefix:
        hint = "" if ":" in s else f" (write {PREFIX + s!r})"
        raise InvalidStubError(text, "prefix", f"a stub starts with {PREFIX!r}{hint}")

    match = _STRUCTURE.fullmatch(s)
    if match is None:
        raise _structure_error(text, s)
    body, version_text, query = match.group("body", "version", "query")

    if not body:
        raise InvalidStubError(text, "segments", "it names no model; write e.g. 'zoo:NS/REPO_NAME'")
    version = None if version_text is None else _parse_version(text, version_text)
    recipe = None if query is None else _parse_query(text, query)
    try:
        return _parse_body(text, body, version, recipe)
    except InvalidStubError as e:
        if e.stub == text:
            raise
        raise e._for(text) from None


def format_stub(stub: Stub) -> str:
    """The canonical text of ``stub``, with the ``zoo:`` prefix.

    >>> format_stub(path_stub(domain="nlp", task="question_answering", architecture="bert",
    ...     sub_architecture="base", framework="pytorch", repo="huggingface", dataset="squad",
    ...     sparse_tag="pruned90-none", version=2))
    'zoo:nlp/question_answering/bert-base/pytorch/huggingface/squad/pruned90-none@2'
    """
    return _render(stub)


def path_stub(
    *,
    domain: str,
    task: str,
    architecture: str,
    sub_architecture: str | None = None,
    framework: str,
    repo: str,
    dataset: str,
    training_scheme: str | None = None,
    sparse_tag: str,
    version: int | str | None = None,
    recipe: str | None = None,
) -> Stub:
    """Build a path-form stub from its SparseZoo fields, validated like :func:`parse_stub`."""
    return Stub(
        form="path",
        domain=domain,
        task=task,
        architecture=architecture,
        sub_architecture=sub_architecture,
        framework=framework,
        repo=repo,
        dataset=dataset,
        training_scheme=training_scheme,
        sparse_tag=sparse_tag,
        version=version,
        recipe=recipe,
    )


def is_stub(text: object, *, require_prefix: bool = True) -> bool:
    """True if ``text`` is a str that :func:`parse_stub` accepts."""
    if not isinstance(text, str):
        return False
    try:
        parse_stub(text, require_prefix=require_prefix)
    except InvalidStubError:
        return False
    return True


# -- parsing ------------------------------------------------------------------------------


def _structure_error(text: str, s: str) -> InvalidStubError:
    # _STRUCTURE fails only on a second '?', an '@' after the '?', or a second '@'.
    _, _, query = s.partition("?")
    if "?" in query:
        return InvalidStubError(text, "recipe", "a stub has one query, ?recipe=NAME, after one '?'")
    if "@" in query:
        reason = "the version comes before the query: write ...@VERSION?recipe=NAME"
        return InvalidStubError(text, "version", reason)
    return InvalidStubError(text, "version", f"a stub has at most one '@' version; {_VERSION_HINT}")


def _parse_body(text: str, body: str, version: int | str | None, recipe: str | None) -> Stub:
    segments = body.split("/")
    if len(segments) == 1:
        return Stub(form="short", repo_name=segments[0], version=version, recipe=recipe)
    if len(segments) == 2:
        namespace, repo_name = segments
        return Stub(
            form="namespaced",
            namespace=namespace,
            repo_name=repo_name,
            version=version,
            recipe=recipe,
        )
    if len(segments) != len(_PATH_PARTS):
        reason = (
            f"a path stub has {len(_PATH_PARTS)} segments ({_PATH_SHAPE}), "
            f"this one has {len(segments)}"
        )
        if len(segments) == 3:
            reason += "; a namespaced stub has 2 (namespace/repo_name)"
        if "" in segments:
            reason += "; remove the stray '/'"
        raise InvalidStubError(text, "segments", reason)
    domain, task, arch, framework, repo, data, sparse_tag = segments
    # Check the combined segments whole first, so 'resnet-' is reported as written.
    _check_segment(text, "architecture", arch)
    _check_segment(text, "dataset", data)
    architecture, _, sub_architecture = arch.partition("-")
    dataset, _, training_scheme = data.partition("-")
    return path_stub(
        domain=domain,
        task=task,
        architecture=architecture,
        sub_architecture=sub_architecture if "-" in arch else None,
        framework=framework,
        repo=repo,
        dataset=dataset,
        training_scheme=training_scheme if "-" in data else None,
        sparse_tag=sparse_tag,
        version=version,
        recipe=recipe,
    )


def _parse_version(text: str, version: str) -> int | str:
    if _VERSION_NUMBER.fullmatch(version):
        return int(version)  # the stub length limit keeps the digit count small
    if _VERSION_ALIAS.fullmatch(version):
        return version
    if version.isascii() and version.isdigit():
        number = int(version)
        reason = f"write @{number}" if number else "version numbers start at 1"
        raise InvalidStubError(text, "version", reason, value=version)
    if version and _VERSION_ALIAS.fullmatch(version.lower()):
        reason = f"aliases are lowercase: write @{version.lower()}"
        raise InvalidStubError(text, "version", reason, value=version)
    reason = f"{_VERSION_HINT} (a lowercase letter, then letters, digits, '.', '_' or '-')"
    raise InvalidStubError(text, "version", reason, value=version)


def _parse_query(text: str, query: str) -> str:
    if not query:
        raise InvalidStubError(text, "recipe", "nothing follows '?'; write ?recipe=NAME or drop it")
    recipe: str | None = None
    for item in query.split("&"):
        key, equals, value = item.partition("=")
        if key != "recipe":
            reason = "the only query is ?recipe=NAME"
            if key == "recipe_type":
                reason += f" (SparseZoo's ?recipe_type={value} is written ?recipe={value})"
            raise InvalidStubError(text, "query", reason, value=key, label="unknown query")
        if recipe is not None:
            raise InvalidStubError(text, "recipe", "?recipe= is given twice; keep one")
        if not equals or not value:
            reason = "the recipe has no name; write ?recipe=NAME, e.g. ?recipe=original"
            raise InvalidStubError(text, "recipe", reason)
        recipe = value
    assert recipe is not None  # the loop ran at least once and raised unless it set recipe
    return recipe


# -- validation (shared by the parser and direct construction) ----------------------------


def _validate(stub: Stub, text: str) -> None:
    if stub.form not in _FORMS:
        reason = f"the form is one of {', '.join(_FORMS)}"
        raise InvalidStubError(text, "form", reason, value=str(stub.form))
    present = {f.name for f in dataclasses.fields(stub) if getattr(stub, f.name) is not None}
    allowed = {"form", "version", "recipe"} | _FORM_FIELDS[stub.form]
    extra = sorted(present - allowed)
    if extra:
        reason = f"a {stub.form} stub has no {extra[0]}; leave it None"
        raise InvalidStubError(text, extra[0], reason, value=str(getattr(stub, extra[0])))

    if stub.form == "path":
        for name in _PATH_PARTS:
            tail = _SPLIT_PARTS.get(name)
            _check_segment(text, name, _required(stub, name, text), hyphen=tail is None)
            tail_value = None if tail is None else getattr(stub, tail)
            if tail is not None and tail_value is not None:
                _check_segment(text, tail, tail_value)
                if len(getattr(stub, name)) + 1 + len(tail_value) > MAX_SEGMENT_LENGTH:
                    reason = f"{name}-{tail} has at most {MAX_SEGMENT_LENGTH} characters"
                    raise InvalidStubError(text, tail, reason, value=tail_value)
    else:
        if stub.form == "namespaced":
            _check_namespace(text, _required(stub, "namespace", text))
        _check_segment(text, "repo_name", _required(stub, "repo_name", text))

    _check_version(text, stub.version)
    if stub.recipe is not None:
        _check_segment(text, "recipe", stub.recipe)
    if len(text) > MAX_STUB_LENGTH:
        raise InvalidStubError(text, "stub", _too_long(len(text)))


# The path segments that split at their first '-', and the field after the split.
_SPLIT_PARTS = {"architecture": "sub_architecture", "dataset": "training_scheme"}
_FORM_FIELDS: dict[str, set[str]] = {
    "path": set(_PATH_PARTS) | {"sub_architecture", "training_scheme"},
    "short": {"repo_name"},
    "namespaced": {"namespace", "repo_name"},
}


def _required(stub: Stub, name: str, text: str) -> str:
    value = getattr(stub, name)
    if value is None:
        raise InvalidStubError(text, name, f"a {stub.form} stub needs a {name}")
    if not isinstance(value, str):
        reason = f"{name} is a str, not {type(value).__name__}"
        raise InvalidStubError(text, name, reason, value=repr(value))
    return value


def _check_segment(text: str, part: str, value: str, *, hyphen: bool = True) -> None:
    pattern = _SEGMENT if hyphen else _SEGMENT_NO_HYPHEN
    if isinstance(value, str) and pattern.fullmatch(value):
        return
    raise InvalidStubError(text, part, _segment_problem(value, part, hyphen), value=str(value))


def _segment_problem(value: str, part: str, hyphen: bool) -> str:
    if not isinstance(value, str):
        return f"{part} is a str, not {type(value).__name__}"
    if not value:
        return "it is empty"
    if len(value) > MAX_SEGMENT_LENGTH:
        return f"it has {len(value)} characters, at most {MAX_SEGMENT_LENGTH} are allowed"
    for char in value:
        if char.lower() in _SEGMENT_CHARS and char.isascii():
            continue
        return f"{_describe(char)} is not allowed; use lowercase letters, digits, '_', '.', '-'"
    if value != value.lower():
        return f"stubs are lowercase: write {value.lower()!r}"
    if not hyphen and "-" in value:
        head, _, tail = value.partition("-")
        tail_part = _SPLIT_PARTS.get(part, "next part")
        return f"it cannot hold '-': pass {part}={head!r}, {tail_part}={tail!r}"
    return "it must not start or end with '.' or '-'"


def _check_namespace(text: str, value: str) -> None:
    if _NAMESPACE.fullmatch(value):
        return
    if not value:
        reason = "it is empty"
    elif len(value) > 63:
        reason = f"it has {len(value)} characters, at most 63 are allowed"
    elif any(not (c.isascii() and c.lower() in _NAMESPACE_CHARS) for c in value):
        char = next(c for c in value if not (c.isascii() and c.lower() in _NAMESPACE_CHARS))
        reason = f"{_describe(char)} is not allowed; use lowercase letters, digits, '_', '-'"
    elif value != value.lower():
        reason = f"namespaces are lowercase: write {value.lower()!r}"
    else:
        reason = "it must start with a lowercase letter or a digit"
    raise InvalidStubError(text, "namespace", reason, value=value)


def _check_version(text: str, version: object) -> None:
    if version is None:
        return
    if isinstance(version, int) and not isinstance(version, bool):
        if 1 <= version <= MAX_VERSION:
            return
        reason = f"version numbers go from 1 to {MAX_VERSION}"
        raise InvalidStubError(text, "version", reason, value=str(version))
    if isinstance(version, str) and _VERSION_ALIAS.fullmatch(version):
        return
    raise InvalidStubError(text, "version", _VERSION_HINT, value=str(version))


def _describe(char: str) -> str:
    if char == "/":
        return "'/' (which separates segments)"
    if char.isspace() or not char.isprintable():
        return f"character {char!r} (U+{ord(char):04X})"
    return f"character {char!r}"


def _too_long(length: int) -> str:
    return f"a stub has at most {MAX_STUB_LENGTH} characters with its prefix, this one has {length}"


# -- rendering ----------------------------------------------------------------------------


def _render_body(stub: Stub) -> str:
    if stub.form == "path":
        arch = _join(stub.architecture, stub.sub_architecture)
        data = _join(stub.dataset, stub.training_scheme)
        parts = (stub.domain, stub.task, arch, stub.framework, stub.repo, data, stub.sparse_tag)
        return "/".join(str(p) for p in parts)
    if stub.form == "namespaced":
        return f"{stub.namespace}/{stub.repo_name}"
    return str(stub.repo_name)


def _render(stub: Stub) -> str:
    text = PREFIX + _render_body(stub)
    if stub.version is not None:
        text += f"@{stub.version}"
    if stub.recipe is not None:
        text += f"?recipe={stub.recipe}"
    return text


def _join(head: str | None, tail: str | None) -> str:
    return f"{head}" if tail is None else f"{head}-{tail}"
