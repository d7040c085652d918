"""Reading a call probe's statements: where each value goes, by value, and the framework's default there."""

import itertools

from backends.contract import Statement
from harness import forms

TORCH_ADAMW = {
    "torch.optim.AdamW": (
        ("params", None, "p"), ("lr", "0.001", "p"), ("betas", "(0.9, 0.999)", "p"), ("eps", "1e-08", "p"),
        ("weight_decay", "0.01", "p"), ("amsgrad", "False", "p"),
    ),
}  # fmt: skip
CHAIN = {
    "optax.chain": (("args", None, "*"),),
    "optax.add_decayed_weights": (("weight_decay", "0.0", "p"), ("mask", "None", "p")),
    "optax.sgd": (("learning_rate", None, "p"), ("momentum", "None", "p"), ("nesterov", "False", "p")),
}


def test_no_two_expressions_of_the_sentinels_are_equal():
    """Every number a call probe's statements hold made of the sentinels is made of them one way only."""
    values = forms.ALL_SENTINELS
    numbers = list(forms.expressions(values))
    assert all(abs(a - b) > 1e-9 * max(abs(a), abs(b)) for a, b in itertools.combinations(numbers, 2)), (
        "two expressions of the sentinels coincide"
    )
    assert not {1, 2, 0, 1.0, 0.0} & set(numbers)  # the probe model's widths, a group's weight_decay 0.0


def test_a_call_probe_reads_as_the_place_of_each_value_and_its_default():
    statement = forms.Parsed(
        "optimizer = torch.optim.AdamW(params, lr=0.0123, betas=(0.8234, 0.9345), eps=3.21e-05, weight_decay=0.0678)",
        TORCH_ADAMW,
    )
    slots = forms.slots(statement, forms.SENTINELS)
    assert slots == {
        ("lr",): ("value", "optimizer.lr"),
        ("betas", 0): ("value", "optimizer.beta1"),
        ("betas", 1): ("value", "optimizer.beta2"),
        ("eps",): ("value", "optimizer.eps"),
        ("weight_decay",): ("value", "penalty.strength"),
    }
    assert [forms.default_at(statement, path) for path in slots] == [0.001, 0.9, 0.999, 1e-08, 0.01]


def test_a_user_call_by_position_reads_on_the_paths_the_signature_names():
    mine = forms.Parsed("torch.optim.AdamW(model.parameters(), 1e-3, (0.9, 0.98))", TORCH_ADAMW)
    nodes = forms.nodes(mine)
    assert forms.literal(nodes[("lr",)]) == 1e-3 and forms.literal(nodes[("betas", 1)]) == 0.98


def test_a_call_inside_a_chain_is_placed_by_its_function_not_its_position():
    """The order of optax.chain's parts changes no path, so the two orders read alike argument by argument."""
    before = forms.Parsed("optax.chain(optax.add_decayed_weights(0.0678), optax.sgd(learning_rate=0.0123))", CHAIN)
    after = forms.Parsed("optax.chain(optax.sgd(learning_rate=0.0123), optax.add_decayed_weights(0.0678))", CHAIN)
    expected = {("add_decayed_weights", "weight_decay"): ("value", "penalty.strength"),
                ("sgd", "learning_rate"): ("value", "optimizer.lr")}  # fmt: skip
    assert forms.slots(before, forms.SENTINELS) == forms.slots(after, forms.SENTINELS) == expected
    assert forms.default_at(before, ("sgd", "momentum")) is None  # optax.sgd's momentum=None: no momentum


def test_a_penalty_in_the_loss_shows_half_the_strength_and_a_schedule_its_span():
    penalty = forms.Parsed("loss = loss + 0.0339 * (model.weight.pow(2).sum())", {}, "penalty")
    assert forms.slots(penalty, forms.SENTINELS) == {("#", 0): ("half", "penalty.strength")}
    cosine = forms.Parsed("schedule = CosineDecay(0.0, 39, alpha=0.0789, warmup_target=0.0123, warmup_steps=7)")
    slots = forms.slots(cosine, forms.ALL_SENTINELS)
    assert slots[(1,)] == ("difference", forms.STEPS, "schedule.warmup")
    assert slots[(1,)].of({forms.STEPS: 100, "schedule.warmup": 10}) == 90
    assert slots[(1,)].solve(90, {"schedule.warmup": 10}) == (forms.STEPS, 100)


def test_a_configuration_dict_takes_the_defaults_kept_for_it():
    """MXNet's Trainer takes the optimizer's options as a dict; their defaults are the optimizer class's,
    kept under gluon.Trainer.optimizer_params by Calls.defaults."""
    signatures = {
        "gluon.Trainer": (("params", None, "p"), ("optimizer", None, "p"), ("optimizer_params", "None", "p")),
        "gluon.Trainer.optimizer_params": (("momentum", "0.0", "p"), ("learning_rate", "0.01", "k")),
    }
    (trainer,) = forms.parsed([Statement("call", "gluon.Trainer(p, 'sgd', {'learning_rate': 0.0123})", signatures)])
    assert forms.default_at(trainer, ("optimizer_params", "learning_rate")) == 0.01
    assert forms.default_at(trainer, ("optimizer_params", "momentum")) == 0.0
    assert forms.default_at(trainer, ("optimizer_params", "nosuch")) is ...
