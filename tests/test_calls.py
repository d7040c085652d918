"""The recorder of native calls: each call runs once and is written down from what ran."""

import types

import pytest

from backends._calls import Calls, Shown, signature


def library():
    """A stand-in framework: ``lib.optim.SGD(params, lr=...)`` and ``lib.chain(*parts)`` record how they were called."""
    made = []

    class SGD:
        def __init__(self, params, lr, momentum=0.0):
            made.append(("SGD", params, lr, momentum))

        def exclude(self, names):
            made.append(("exclude", names))

    def chain(*parts):
        made.append(("chain", [part.rate for part in parts]))
        return types.SimpleNamespace(parts=parts)

    def decay(rate):
        return types.SimpleNamespace(rate=rate)

    return types.SimpleNamespace(optim=types.SimpleNamespace(SGD=SGD), chain=chain, decay=decay), made


def test_a_call_runs_with_its_arguments_and_is_written_as_called():
    lib, made = library()
    calls = Calls(lib=lib)
    weight = object()
    calls.name(weight, "model.weight")
    optimizer = calls.let("optimizer", "lib.optim.SGD", [{"params": [weight]}], lr=0.1, momentum=0.9)
    calls("optimizer.exclude", names=("bias",))
    assert made == [("SGD", [{"params": [weight]}], 0.1, 0.9), ("exclude", ("bias",))]
    assert isinstance(optimizer, lib.optim.SGD)
    assert calls.text == (
        "optimizer = lib.optim.SGD([{'params': [model.weight]}], lr=0.1, momentum=0.9); "
        "optimizer.exclude(names=('bias',))"
    )


def test_a_result_passed_to_a_later_call_is_written_inside_it():
    lib, made = library()
    calls = Calls(lib=lib)
    assert len(calls.let("tx", "lib.chain", calls("lib.decay", 0.5), calls("lib.decay", rate=2)).parts) == 2
    assert made == [("chain", [0.5, 2])]
    assert calls.text == "tx = lib.chain(lib.decay(0.5), lib.decay(rate=2))"


def test_a_shown_argument_runs_as_its_value_and_reads_as_its_text():
    lib, made = library()
    calls = Calls(lib=lib)
    calls("lib.optim.SGD", [], lr=Shown(1.0, "LR"))
    calls.note("lr set later")
    assert made[0][2] == 1.0 and calls.text == "lib.optim.SGD([], lr=LR); lr set later"


def test_only_objects_can_be_named():
    with pytest.raises(TypeError, match="only objects"):
        Calls().name(1.0, "lr")


def test_a_call_that_returns_none_or_a_number_stays_a_line_of_its_own():
    lib = types.SimpleNamespace(set_mode=lambda mode: None, build=lambda shape: None)
    calls = Calls(lib=lib)
    calls("lib.set_mode", "float64")
    calls("lib.build", (None, 2))
    assert calls.text == "lib.set_mode('float64'); lib.build((None, 2))"


def test_each_statement_keeps_its_kind_and_the_signatures_of_what_it_called():
    lib, _ = library()
    calls = Calls(lib=lib)
    calls.let("tx", "lib.chain", calls("lib.decay", 0.5))
    calls.loss("loss = f(x)")
    calls.penalty("loss = loss + 0.25 * w")
    kinds = [(s.kind, s.text) for s in calls.statements]
    assert kinds == [
        ("call", "tx = lib.chain(lib.decay(0.5))"),
        ("loss", "loss = f(x)"),
        ("penalty", "loss = loss + 0.25 * w"),
    ]
    # the folded call's signature travels with the statement it was folded into
    assert calls.statements[0].signatures == {"lib.decay": (("rate", None, "p"),), "lib.chain": (("parts", None, "*"),)}


class Base:
    def __init__(self, learning_rate=None, wd=0.0, clip=object()):
        pass


class Child(Base):
    def __init__(self, momentum=0.0, **kwargs):
        super().__init__(**kwargs)


def test_a_signature_reads_defaults_as_literals_and_follows_kwargs_to_the_bases():
    assert signature(Child) == (
        ("momentum", "0.0", "p"), ("learning_rate", "None", "k"), ("wd", "0.0", "k"), ("clip", "…", "k"),
    )  # fmt: skip
    assert signature(len) == (("obj", None, "p"),)


def test_defaults_of_a_named_configuration_take_the_frameworks_own_values_for_none():
    calls = Calls()
    calls.defaults("Trainer:'child'", Child, learning_rate=0.01)
    (note,) = calls.statements
    assert note.kind == "note" and note.signatures["Trainer:'child'"][1] == ("learning_rate", "0.01", "k")
