"""Spec validation never crashes: any document is either valid or rejected with one line."""

import tomllib
from importlib import resources

from hypothesis import given, settings
from hypothesis import strategies as st

from harness import spec

D2L = tomllib.loads(resources.files("harness").joinpath("specs").joinpath("d2l.toml").read_text())
KEYS = [f"{section}.{key}" for section, table in D2L.items() if section != "sweep" for key in table]

scalars = st.one_of(
    st.none().map(lambda _: ""),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.sampled_from(["sgd", "adam", "adamw", "native", "float32", "l2_loss", "weight_decay"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
names = st.one_of(
    st.sampled_from([*spec.SECTIONS, "sweep", "overrides", "factors", "torch", "jax", *KEYS]), st.text(max_size=10)
)


def assert_valid_or_one_line(document):
    try:
        spec.from_document(document, source="fuzz.toml")
    except spec.SpecError as error:
        message = str(error)
        assert "\n" not in message and message.startswith("fuzz.toml: ") and "allowed" in message, message


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(names, st.dictionaries(names, values, max_size=4) | values, max_size=5))
def test_random_documents(document):
    assert_valid_or_one_line(document)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(KEYS + ["sweep.optimizer.name", "sweep.penalty.strength"]), values, st.booleans())
def test_mutations_of_the_reference_spec(key, value, delete):
    document = _copy(D2L)
    section, _, name = key.partition(".")
    if delete:
        document[section].pop(name, None)
    else:
        document[section][name] = value
    assert_valid_or_one_line(document)


@given(st.text(max_size=200))
def test_random_text(text):
    try:
        spec.parse(text, source="fuzz.toml")
    except spec.SpecError as error:
        assert "\n" not in str(error) and str(error).startswith("fuzz.toml: ")


def _copy(document):
    return {key: _copy(value) if isinstance(value, dict) else value for key, value in document.items()}
