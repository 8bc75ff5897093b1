"""Hypothesis strategies for stubs, written from the documented grammar (README, "Stubs"),
independently of ``zoo.stubs``' own patterns: the client's property tests and the hardening
fuzz test draw from the same ones."""

from __future__ import annotations

from hypothesis import strategies as st

from zoo.stubs import MAX_VERSION, Stub, path_stub


def _segments(max_inner: int, hyphen: bool = True) -> st.SearchStrategy[str]:
    inner = "[a-z0-9_.-]" if hyphen else "[a-z0-9_.]"
    return st.from_regex(rf"[a-z0-9_](?:{inner}{{0,{max_inner}}}[a-z0-9_])?", fullmatch=True)


SEGMENT = _segments(12)
LONG_SEGMENT = _segments(98)  # up to the 100-character limit
NAME = _segments(12, hyphen=False)
NAMESPACE = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,62}", fullmatch=True)
ALIAS = st.from_regex(r"[a-z][a-z0-9._-]{0,20}", fullmatch=True)
VERSION = st.none() | st.integers(1, MAX_VERSION) | ALIAS
RECIPE = st.none() | SEGMENT

STUBS = st.one_of(
    st.builds(
        path_stub,
        domain=SEGMENT,
        task=SEGMENT,
        architecture=NAME,
        sub_architecture=st.none() | SEGMENT,
        framework=SEGMENT,
        repo=SEGMENT,
        dataset=NAME,
        training_scheme=st.none() | SEGMENT,
        sparse_tag=SEGMENT,
        version=VERSION,
        recipe=RECIPE,
    ),
    st.builds(Stub, form=st.just("short"), repo_name=LONG_SEGMENT, version=VERSION, recipe=RECIPE),
    st.builds(
        Stub,
        form=st.just("namespaced"),
        namespace=NAMESPACE,
        repo_name=LONG_SEGMENT,
        version=VERSION,
        recipe=RECIPE,
    ),
)
