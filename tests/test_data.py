import numpy as np

from harness import data, spec

# SHA-256 of the d2l spec's arrays. Pinned so NumPy 1.23 (mxnet env) and NumPy 2 (the
# others) must both produce exactly these arrays; every tox env runs this test.
D2L_ARRAYS_SHA256 = "0e7194e9f49a4ed8163d5f725cf6219a0f2491af3ae5f546a868391afd7e8835"


def d2l_case():
    return spec.load("d2l").cases("torch")[0][1]


def test_d2l_arrays_are_the_same_in_every_numpy():
    assert data.make(d2l_case()).sha256 == D2L_ARRAYS_SHA256


def test_arrays_have_the_spec_shapes_and_statistics():
    case = d2l_case()
    arrays = data.make(case)
    assert arrays.x_train.shape == (20, 200) and arrays.x_test.shape == (100, 200)
    assert arrays.x_valid.shape == (0, 200) and arrays.w0.shape == (200,) and arrays.b0.shape == ()
    assert arrays.batches.shape == (100, 4, 5)
    for epoch in arrays.batches:
        assert sorted(epoch.ravel()) == list(range(20))
    noise = arrays.y_test - 0.05 - 0.01 * arrays.x_test.sum(axis=1)
    assert 0.005 < noise.std() < 0.02 and abs(arrays.w0.std() - 1) < 0.2 and arrays.b0 == 0


def test_without_shuffle_batches_are_in_order():
    arrays = data.make(d2l_case().replace({"train.shuffle": False}))
    assert (arrays.batch_order().ravel() == np.tile(np.arange(20), 100)).all()


def test_each_component_has_its_own_stream():
    case = d2l_case()
    base = data.make(case)
    more = data.make(case.replace({"train.epochs": 3, "data.n_test": 7}))
    assert (base.x_train == more.x_train).all() and (base.w0 == more.w0).all()
    assert (base.batches[:3] == more.batches).all() and base.sha256 != more.sha256
    other_seed = data.make(case.replace({"data.seed": 1}))
    assert not np.allclose(base.x_train, other_seed.x_train)


def test_saved_arrays_keep_their_hash(tmp_path):
    arrays = data.make(d2l_case())
    path = data.save(arrays, tmp_path)
    assert path.name == f"{arrays.sha256}.npz"
    with np.load(path) as stored:
        assert data.Arrays(**stored).sha256 == arrays.sha256
    assert data.save(arrays, tmp_path) == path and len(list(tmp_path.iterdir())) == 1


def test_the_arrays_depend_on_data_init_scale_and_batching_only():
    case = d2l_case()
    for key, value in {
        "optimizer.lr": 0.5,
        "penalty.strength": 3.0,
        "model.dtype": "float32",
        "train.loss": "mse",
    }.items():
        assert not data.depends_on(key) and data.make(case.replace({key: value})).sha256 == data.make(case).sha256, key
    for key, value in {"data.seed": 1, "model.init_std": 2.0, "train.epochs": 3, "train.shuffle": False}.items():
        assert data.depends_on(key) and data.make(case.replace({key: value})).sha256 != data.make(case).sha256, key
