"""Nothing a results file, a fingerprint or a pasted line holds makes a reader fail otherwise than by its
one error: 10,000 generated inputs per reader, on a fixed seed (each reader's run is timed in the note of
the change that added it: well under a minute on the 2-core machine)."""

import copy
import functools
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_port import golden
from test_store import result

from harness import port, store
from harness.errors import UsageError
from harness.fingerprint import Fingerprint

golden = functools.cache(golden)  # each fingerprint read once for the module's thousands of examples

FUZZ = settings(max_examples=10_000, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=5,
)


def paths(document, prefix=()):
    """Every path to a value of a JSON document: dict keys and list indices."""
    yield prefix
    children = (
        document.items() if isinstance(document, dict) else enumerate(document) if isinstance(document, list) else ()
    )
    for key, value in children:
        yield from paths(value, (*prefix, key))


def mutated(document, path, how, value):
    """``document`` with the value at ``path`` replaced by ``value``, deleted, or its list cut in half (the
    containers along the path copied, the rest shared: ``document`` is left as it was)."""
    if not path:
        return value
    *head, last = path
    found = parent = copy.copy(document)
    for key in head:
        parent[key] = copy.copy(parent[key])
        parent = parent[key]
    if how == "replace":
        parent[last] = value
    elif how == "delete":
        del parent[last]
    elif isinstance(parent[last], list):
        parent[last] = parent[last][: len(parent[last]) // 2]
    return found


RESULT = json.loads(result().to_json())
RESULT_PATHS = list(paths(RESULT))


@FUZZ
@given(
    st.sampled_from(RESULT_PATHS), st.sampled_from(["replace", "delete", "halve"]), json_values, st.integers(0, 2000)
)
def test_a_mutated_or_truncated_result_is_read_whole_or_refused_as_bad(tmp_path_factory, path, how, value, cut):
    """The reader reads a valid result or raises BadResult; a result it reads has passed its checks."""
    text = json.dumps(mutated(RESULT, path, how, value))
    text = text if cut > len(text) else text[:cut]
    file = tmp_path_factory.getbasetemp() / "fuzzed.json"
    file.write_text(text)
    try:
        found = store.read(file)
    except store.BadResult as error:
        assert str(error).startswith(str(file)) and "\n" not in str(error)
        return
    assert found.check() is found  # what a report may read


SMALL = json.loads(golden("torch").to_json())
SMALL = {key: value[:2] if isinstance(value, list) else value for key, value in SMALL.items()}  # two probes a part
FINGERPRINT_PATHS = list(paths(SMALL))


@FUZZ
@given(st.sampled_from(FINGERPRINT_PATHS), st.sampled_from(["replace", "delete", "halve"]), json_values)
def test_a_mutated_fingerprint_is_read_or_refused_as_not_a_fingerprint(path, how, value):
    try:
        Fingerprint.from_json(mutated(SMALL, path, how, value))
    except ValueError as error:
        assert "\n" not in str(error)


CORPUS_CODE = [
    "torch.optim.AdamW([{'params': decay, 'weight_decay': 0.01}, {'params': no_decay, 'weight_decay': 0.0}], lr=1e-3)",
    "opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)\n"
    "scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)",
    "torch.optim.RMSprop(model.parameters(), lr=0.01, weight_decay=1e-4)",
    "torch.optim.Adam(params, 1e-3, (0.9, 0.98), 1e-6, 0.01)",
]
numbers = st.one_of(st.floats(), st.integers(), st.sampled_from(["1e999", "-0.0", "9" * 40, "None", "'x'", "-'x'"]))


@st.composite
def call_text(draw):
    """Text near what a user pastes: a corpus snippet with a number, a name or a slice of it changed."""
    text = draw(st.sampled_from(CORPUS_CODE))
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, min(len(text), start + 12)))
    middle = draw(st.one_of(numbers.map(str), st.text(max_size=6), st.sampled_from(["(", ")", "[", ",", "=", "\x00"])))
    return text[:start] + middle + text[end:]


@FUZZ
@given(st.one_of(call_text(), st.text(max_size=40)))
def test_any_pasted_text_is_answered_or_refused_in_one_line(text):
    source = golden("torch")
    try:
        found = port.validated(port.read(text, source))
    except UsageError as error:
        assert "\n" not in str(error)
        return
    assert all(isinstance(value, int | float) for value in found.values.values())
    port.describe(port.port(found, source, golden("jax")))
