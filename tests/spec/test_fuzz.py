"""The loader never raises: any text gives a definition or a clean list of errors."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssmd import spec
from ssmd.spec import SpecError

REPO = Path(__file__).resolve().parents[2]
TEXTS = [(REPO / "environments" / f"{n}.yaml").read_text() for n in ("dev", "prod")]
YAMLISH = st.text(alphabet=st.sampled_from(list(" \n\t-:[]{},#&*!|>'\"%@`?abc019.")), max_size=300)


def _check(text: str) -> None:
    env, errors = spec.check_text(text, "f.yaml")
    assert all(isinstance(e, SpecError) for e in errors)
    assert all(e.file == "f.yaml" and e.line >= 1 and e.col >= 1 for e in errors)
    assert all(str(e).startswith(f"f.yaml:{e.line}:{e.col}: ") for e in errors)
    if not errors:
        assert env is not None
        assert spec.from_json(spec.canonical_json(env)) == env


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    _check(text)


@settings(max_examples=300, deadline=None)
@given(YAMLISH)
def test_yaml_punctuation(text: str) -> None:
    _check(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(TEXTS),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 20), YAMLISH), min_size=1, max_size=4),
)
def test_mutated_examples(text: str, cuts: list[tuple[float, int, str]]) -> None:
    for where, length, insert in cuts:
        at = int(where * len(text))
        text = text[:at] + insert + text[at + length :]
    _check(text)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.dates(),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_random_sections(value: object) -> None:
    import io

    from ruamel.yaml import YAML

    for section in ("feeds", "storage", "streams", "clients", "schedules", "deploy"):
        doc = {"apiVersion": "ssmd/v1", "kind": "Environment", "metadata": {"name": "x"}}
        doc[section] = value
        out = io.StringIO()
        YAML(typ="safe").dump(doc, out)
        _check(out.getvalue())
