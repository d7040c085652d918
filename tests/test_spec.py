import pytest

import backends
from harness import spec
from harness.case import Case


def test_d2l_is_the_reference_experiment_over_every_penalty_api():
    d2l = spec.load("d2l")
    points = [point for point, _ in d2l.cases("torch")]
    # 3 optimizers × (none at λ = 0, four APIs at λ ∈ {0, 3}) + adamw with adam at λ ∈ {0, 3}
    assert len(points) == 3 * (1 + 4 * 2) + 2
    assert {p["penalty.kind"] for p in points if p["optimizer.name"] != "adam"} == {
        "none",
        "l2_loss",
        "l1_loss",
        "weight_decay",
        "regularizer",
    }
    assert not any(p["penalty.kind"] == "none" and p["penalty.strength"] for p in points)
    _, case = d2l.cases("torch")[0]
    assert (case.data.dim, case.data.n_train, case.train.batch_size, case.optimizer.lr) == (200, 20, 5, 0.003)
    assert case.steps == 400


def test_case_ids_are_stable_and_differ_by_value():
    case = Case()
    assert case.id == Case().id == Case.from_dict(case.to_dict()).id
    assert case.replace({"optimizer.lr": 0.03}).id != case.id
    assert case.replace({"penalty.strength": 3}).id == case.replace({"penalty.strength": 3.0}).id


def test_a_case_without_a_schedule_keeps_its_id_and_a_schedule_sweeps_like_any_section():
    before = "3ea91e947c30bce4"  # Case().id before the [schedule] section existed (the d2l default case)
    assert Case().id == Case().replace({"schedule.kind": "constant"}).id == before
    swept = spec.parse('[sweep]\nschedule = [{kind = "constant"}, {kind = "step", interval = 50}]\n')
    assert [(c.schedule.kind, c.schedule.interval) for _, c in swept.cases("torch")] == [
        ("constant", 100),
        ("step", 50),
    ]


def test_overrides_apply_to_one_backend():
    loaded = spec.parse(
        '[penalty]\nkind = "l2_loss"\n[overrides.jax]\n"train.loss" = "native"\npenalty.decay_bias = true\n'
    )
    assert loaded.cases("jax")[0][1].train.loss == "native" and loaded.cases("jax")[0][1].penalty.decay_bias
    assert loaded.cases("torch")[0][1].train.loss == "half_mse"


def test_sweeps_accept_nested_and_dotted_keys():
    dotted = spec.parse('[sweep]\n"optimizer.lr" = [0.1, 0.2]\n"train.epochs" = [1, 2, 3]\n')
    nested = spec.parse("[sweep]\noptimizer.lr = [0.1, 0.2]\ntrain.epochs = [1, 2, 3]\n")
    assert [c.id for _, c in dotted.cases("torch")] == [c.id for _, c in nested.cases("torch")]
    assert len(dotted.cases("torch")) == 6 and list(dotted.cases("torch")[0][0]) == ["optimizer.lr", "train.epochs"]


@pytest.mark.parametrize(
    "text, names",
    [
        ("[optimizer]\nlrr = 0.1\n", ["optimizer.lrr", "allowed keys in [optimizer]", "lr, momentum"]),
        ("[optimizers]\nlr = 0.1\n", ["[optimizers]", "allowed sections"]),
        ('[optimizer]\nlr = "fast"\n', ["optimizer.lr", "a finite number > 0"]),
        ("[optimizer]\nlr = 0\n", ["optimizer.lr = 0", "a finite number > 0"]),
        ("[penalty]\nstrength = -3\n", ["penalty.strength = -3", "a finite number >= 0"]),
        ("[train]\nbatch_size = 50\n", ["train.batch_size = 50", "data.n_train = 20", "divisor"]),
        ('[penalty]\nkind = "adamw"\nstrength = 3\n', ["penalty.kind", "adamw", "optimizer.name", "sgd"]),
        ('[penalty]\nkind = "ridge"\n', ["penalty.kind", "ridge", "l2_loss"]),
        ("[train]\nshuffle = 1\n", ["train.shuffle", "true, false"]),
        ("[data]\ndim = 2.5\n", ["data.dim", "an integer"]),
        ('[sweep]\n"optimizer.lr" = 0.1\n', ["sweep.optimizer.lr", "non-empty list"]),
        ('[sweep]\n"optimizer.lr" = [0.1, -1]\n', ["sweep.optimizer.lr = -1"]),
        ('[overrides.keras]\n"optimizer.lr" = 0.1\n', ["overrides.keras", "allowed backends", "torch"]),
        (
            '[overrides.torch]\n"optimizer.name" = "sgd"\n[penalty]\nkind = "adamw"\n[optimizer]\nname = "adam"\n',
            ["[overrides.torch]", "adamw"],
        ),
        (
            '[factors]\nloss = ["train.loss"]\n[overrides.jax]\n"model.init" = "native"\n',
            ["[overrides.jax]", "model.init", "no factor", "train.loss"],
        ),
        (
            '[factors]\na = ["train.loss"]\nb = ["train.loss"]\n',
            ["train.loss", "factors.a", "factors.b", "one factor per key"],
        ),
        ('[factors]\nloss = ["train.losses"]\n', ["factors.loss.train.losses", "allowed keys in [train]"]),
        ('[factors]\nloss = "train.loss"\n', ["factors.loss", "non-empty lists of dotted keys"]),
        ('[factors]\nall = ["train.loss"]\n', ["factors.all", '"none" and "all"']),
        (
            '[penalty]\nkind = "l2_loss"\n[factors]\nbias = ["penalty.decay_bias"]\n'
            '[overrides.jax]\n"penalty.decay_bias" = "default"\n',
            ['[overrides.jax] with factor "bias" alone', "penalty.decay_bias", "allowed"],
        ),
        ('[schedule]\nkind = "warmup_cosine"\n', ["schedule.warmup = 0", "1 to 399", 'kind = "cosine"']),
        ('[schedule]\nkind = "warmup_cosine"\nwarmup = 400\n', ["schedule.warmup = 400", "1 to 399"]),
        ('[schedule]\nkind = "linear"\n', ["schedule.kind", "constant", "warmup_cosine"]),
        ("[schedule]\nfactor = 0\n", ["schedule.factor = 0", "> 0 and <= 1"]),
        ("[schedule]\nfloor = 1.5\n", ["schedule.floor = 1.5", ">= 0 and <= 1"]),
        ("[model]\nhidden = [8]\n", ["model.hidden", 'model.kind = "mlp"']),
        ('[model]\nkind = "mlp"\nhidden = []\n', ["model.hidden = []", "at least one width"]),
        ('[model]\nkind = "mlp"\nhidden = [0]\n', ["model.hidden = [0]", "an integer >= 1"]),
        ('[model]\nkind = "mlp"\nactivation = "gelu"\n', ["model.activation", "relu", "tanh"]),
        ('[penalty]\nkind = "weight_decay"\nstrength = 1\nspare = ["hidden_bias"]\n', ["hidden_bias", "linear"]),
        ('[penalty]\nkind = "weight_decay"\nstrength = 1\nspare = ["output_weight"]\n', ["no weight to decay"]),
        ('[penalty]\nkind = "l2_loss"\nstrength = 1\nspare = ["output_bias"]\n', ["spares nothing more"]),
        ('[penalty]\nspare = ["biases"]\n', ["penalty.spare", "hidden_weight"]),
        (
            '[model]\nkind = "mlp"\nhidden = [4096]\n[data]\ndim = 1000\n',
            ["(steps + 1) × parameters", "at most"],
        ),
        ("[data\n", ["not valid TOML"]),
        ("[optimizer]\nlr = nan\n", ["optimizer.lr", "finite"]),
        ("[data]\nn_train = 100000000000000000\n", ["data.n_train", "<= 1000000"]),
        ("[data]\ndim = 1000000\nn_train = 1000\n", ["data.dim × (n_train + n_valid + n_test)", "at most"]),
        (
            "[data]\ndim = 10000\nn_train = 1000\n[train]\nepochs = 100\n",
            ["train.epochs × data.n_train × data.dim", "at most"],
        ),
    ],
)
def test_bad_specs_get_one_line_naming_key_and_allowed_values(text, names):
    with pytest.raises(spec.SpecError) as error:
        spec.parse(text, source="bad.toml")
    message = str(error.value)
    assert "\n" not in message and message.startswith("bad.toml: ")
    for name in names:
        assert name in message


def test_factors_run_each_backend_one_factor_at_a_time():
    loaded = spec.parse(
        '[penalty]\nkind = "l2_loss"\n[sweep]\n"penalty.strength" = [0, 3]\n'
        '[factors]\ninit = ["model.init"]\nloss = ["train.loss"]\n'
        '[overrides.torch]\n"model.init" = "native"\n"train.loss" = "native"\n[overrides.jax]\n"train.loss" = "mse"\n'
    )

    def variants(backend):
        return [(p["overrides"], p["penalty.strength"], c.model.init, c.train.loss) for p, c in loaded.cases(backend)]

    assert variants("torch") == [
        (v, s, init, loss)
        for v, init, loss in [
            ("none", "shared", "half_mse"),
            ("init", "native", "half_mse"),
            ("loss", "shared", "native"),
            ("all", "native", "native"),
        ]
        for s in (0.0, 3.0)
    ]
    # a variant that changes nothing is left out: jax overrides no init, and all = loss alone
    assert variants("jax") == [
        (v, s, "shared", loss) for v, loss in [("none", "half_mse"), ("loss", "mse")] for s in (0.0, 3.0)
    ]
    assert [p["overrides"] for p, _ in loaded.cases("mxnet")] == ["none", "none"]
    assert spec.load("d2l-book").cases("torch")[0][1].id in {c.id for _, c in spec.load("d2l").cases("torch")}


def test_sweeps_leave_out_cases_that_make_no_sense():
    loaded = spec.parse('[sweep]\n"optimizer.name" = ["sgd", "adam"]\n"penalty.kind" = ["adamw"]\n')
    assert [p for p, _ in loaded.cases("torch")] == [{"optimizer.name": "adam", "penalty.kind": "adamw"}]
    with pytest.raises(spec.SpecError, match="leaves no valid case"):
        spec.parse('[sweep]\n"optimizer.name" = ["sgd"]\n"penalty.kind" = ["adamw"]\n')


def test_every_builtin_spec_is_valid_for_every_backend():
    for name in spec.builtin_names():
        loaded = spec.load(name)
        assert all(loaded.cases(backend) for backend in backends.NAMES)


def test_unknown_spec_names_the_builtins():
    with pytest.raises(spec.SpecError, match="built-in specs: .*d2l"):
        spec.load("nope")
