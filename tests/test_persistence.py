"""Model files: exact round trips, refusal of every kind of bad file, atomic writes."""

import json
import os
import pickle
import stat
import warnings

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, make_mixture_data
from sklearn.exceptions import ConvergenceWarning

import fastgmm
from fastgmm import GaussianMixture
from fastgmm.persistence import FORMAT_VERSION, ModelFileError, atomic_path, read_header


@pytest.fixture(scope="module")
def data():
    return make_mixture_data(n_samples=400, n_features=3, n_components=3, seed=5)[0]


def _fit(X, covariance_type="full", **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(3, covariance_type=covariance_type, random_state=0, **params).fit(X)


def _assert_same_model(a, b, X):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.converged_ == b.converged_ and a.n_iter_ == b.n_iter_
    assert a.lower_bound_ == b.lower_bound_ and a.lower_bounds_ == b.lower_bounds_
    assert a.n_features_in_ == b.n_features_in_
    # Bit-identical predictions, not merely close ones.
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_is_exact(tmp_path, data, covariance_type, dtype):
    X = data.astype(dtype)
    gm = _fit(X, covariance_type)
    path = tmp_path / "model.npz"
    assert fastgmm.save(gm, path) == str(path)
    loaded = fastgmm.load(path)
    assert type(loaded) is GaussianMixture
    assert loaded.get_params() == gm.get_params()
    _assert_same_model(gm, loaded, X)
    # An int random_state is stored as is, so sample() draws the same rows.
    np.testing.assert_array_equal(loaded.sample(7)[0], gm.sample(7)[0])


def test_round_trip_keeps_array_params_and_feature_names(tmp_path, data):
    init = {
        "weights_init": np.array([0.2, 0.3, 0.5]),
        "means_init": data[:3].copy(),
        "precisions_init": np.ones((3, 3)),
    }
    gm = _fit(data, "diag", **init)
    gm.feature_names_in_ = np.array(["a", "b", "c"], dtype=object)
    path = tmp_path / "m.npz"
    fastgmm.save(gm, path)
    loaded = fastgmm.load(path)
    for name, value in init.items():
        stored = loaded.get_params()[name]
        assert stored.dtype == value.dtype
        np.testing.assert_array_equal(stored, value)
    assert loaded.feature_names_in_.dtype == object
    assert list(loaded.feature_names_in_) == ["a", "b", "c"]
    header = read_header(path)
    assert header["arrays"]["model.params.means_init"] == {"dtype": "<f8", "shape": [3, 3]}


def test_random_state_instance_is_stored_exactly(tmp_path, full_model):
    # Decision: a RandomState is stored as its exact MT19937 state (no pickle needed), so the
    # loaded model continues the same random stream.
    gm = pickle.loads(pickle.dumps(full_model))
    gm.set_params(random_state=np.random.RandomState(42))
    gm.sample(3)  # move the stream on: the saved state is the current one, not the seed's
    path = tmp_path / "m.npz"
    fastgmm.save(gm, path)
    loaded = fastgmm.load(path)
    assert isinstance(loaded.random_state, np.random.RandomState)
    np.testing.assert_array_equal(loaded.sample(20)[0], gm.sample(20)[0])
    assert any("RandomState" in note for note in read_header(path)["notes"])


def test_random_state_over_another_bit_generator_is_refused(tmp_path, full_model):
    gm = pickle.loads(pickle.dumps(full_model))
    gm.set_params(random_state=np.random.RandomState(np.random.PCG64(0)))
    with pytest.raises(TypeError, match="PCG64 cannot be stored exactly; set random_state"):
        fastgmm.save(gm, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_save_refuses_unsupported_objects(tmp_path, data, full_model):
    from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

    with pytest.raises(TypeError, match=r"cannot save a sklearn\.mixture"):
        fastgmm.save(SklearnGaussianMixture(2).fit(data), tmp_path / "m.npz")

    class MyMixture(GaussianMixture):
        pass

    with pytest.raises(TypeError, match="MyMixture: model files hold only"):
        fastgmm.save(MyMixture(2).fit(data), tmp_path / "m.npz")
    with pytest.raises(ValueError, match="cannot save an unfitted GaussianMixture"):
        fastgmm.save(GaussianMixture(2), tmp_path / "m.npz")
    gm = pickle.loads(pickle.dumps(full_model))
    gm.set_params(means_init=np.array([["x", "y", "z"]] * 3))
    with pytest.raises(TypeError, match="parameter means_init: arrays of dtype <U1 cannot"):
        fastgmm.save(gm, tmp_path / "m.npz")
    gm.set_params(means_init=None)
    with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
        fastgmm.save(gm, tmp_path / "m.npz", metadata={"when": object()})
    assert not (tmp_path / "m.npz").exists()


def test_pickle_still_works_in_process(data, full_model):
    gm = full_model
    again = pickle.loads(pickle.dumps(gm))
    _assert_same_model(gm, again, data)


def test_header_content(tmp_path, data):
    gm = _fit(data, "spherical")
    path = tmp_path / "m.npz"
    fastgmm.save(gm, path, metadata={"input": "train.npy"})
    header = read_header(path)
    assert header["format"] == "fastgmm-model"
    assert header["format_version"] == FORMAT_VERSION
    assert header["fastgmm_version"] == fastgmm.__version__
    assert header["class"] == "GaussianMixture"
    assert header["metadata"] == {"input": "train.npy"}
    assert header["model"]["params"]["covariance_type"] == "spherical"
    assert header["model"]["attributes"]["n_iter_"] == gm.n_iter_
    # The file is a plain npz that numpy reads without pickle.
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) == {"header", *header["arrays"]}


# ------------------------------------------------------------------------------ bad files
@pytest.fixture(scope="module")
def full_model(data):
    return _fit(data, "full")


@pytest.fixture
def model_file(tmp_path, full_model):
    path = tmp_path / "good.npz"
    fastgmm.save(full_model, path)
    return path


def _rewrite(path, mutate):
    """Read a valid model file, let ``mutate(header, arrays)`` change it, write it back."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays.pop("header").tobytes().decode())
    mutate(header, arrays)
    for key, value in arrays.items():
        if key in header["arrays"]:
            header["arrays"][key] = {"dtype": value.dtype.str, "shape": list(value.shape)}
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        np.savez(f, header=np.frombuffer(text, dtype=np.uint8), **arrays)
    return path


def _refused(path, match):
    with pytest.raises(ModelFileError, match=match):
        fastgmm.load(path)


def test_refuses_truncated_file(model_file):
    content = model_file.read_bytes()
    for cut in (10, len(content) // 2, len(content) - 30):
        model_file.write_bytes(content[:cut])
        _refused(model_file, "truncated or corrupted")


def test_refuses_corrupted_bytes(model_file, data):
    gm = fastgmm.load(model_file)
    content = bytearray(model_file.read_bytes())
    start = content.find(gm.means_.tobytes())
    assert start > 0
    content[start + 3] ^= 0x10  # one flipped bit inside means_
    model_file.write_bytes(bytes(content))
    _refused(model_file, "member 'model.means_' cannot be read.*(CRC|corrupted)")


def test_refuses_files_that_are_not_model_files(tmp_path, model_file):
    random_bytes = tmp_path / "random.npz"
    random_bytes.write_bytes(os.urandom(2000))
    _refused(random_bytes, "not a fastgmm model file, or it is truncated or corrupted")
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    _refused(npy, "single .npy array, not a fastgmm model file")
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    _refused(other, "an .npz archive but not a fastgmm model file")
    with pytest.raises(FileNotFoundError, match="no such model file"):
        fastgmm.load(tmp_path / "missing.npz")
    _refused(tmp_path, "is a directory")


def test_refuses_bad_header(model_file):
    with np.load(model_file) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "header"}
    np.savez(model_file, header=np.frombuffer(b"{not json", dtype=np.uint8), **arrays)
    _refused(model_file, "the header is not valid JSON")


def test_refuses_object_arrays(model_file):
    # allow_pickle=False: an object array would need pickle, so it is never unpickled.
    def mutate(header, arrays):
        arrays["model.means_"] = np.array([[1, "a", None]] * 3, dtype=object)

    _rewrite(model_file, mutate)
    _refused(model_file, "cannot be read.*allow_pickle=False")


@pytest.mark.parametrize(
    ("version", "match"),
    [
        (FORMAT_VERSION + 1, "written by a newer fastgmm .* reads versions up to 1"),
        (0, "unknown model format version 0"),
        ("1", "unknown model format version '1'"),
    ],
)
def test_refuses_unknown_format_version(model_file, version, match):
    _rewrite(model_file, lambda h, a: h.update(format_version=version))
    _refused(model_file, match)


def test_refuses_unknown_class(model_file):
    def mutate(header, arrays):
        header["class"] = header["model"]["class"] = "os.system"

    _rewrite(model_file, mutate)
    _refused(model_file, "unknown model class 'os.system'")


@pytest.mark.parametrize(
    ("array", "replace", "match"),
    [
        ("model.means_", lambda a: a[:, :2].copy(), r"means_ has shape \(3, 2\).*needs \(3, 3\)"),
        ("model.weights_", lambda a: a.astype(np.int64), "weights_ has dtype int64"),
        ("model.covariances_", lambda a: a.astype(np.float32), "covariances_ has dtype float32"),
        ("model.means_", lambda a: np.where(a == a.max(), np.nan, a), "means_ contains NaN"),
        ("model.covariances_", lambda a: a * np.inf, "covariances_ contains NaN or infinity"),
        ("model.weights_", lambda a: a * 1.01, "weights_ must be non-negative and sum to 1"),
        (
            "model.weights_",
            lambda a: np.array([-0.1, 0.6, 0.5]),
            r"weights_ must be non-negative and sum to 1, but they sum to 1.0 \(min -0.1\)",
        ),
        (
            "model.precisions_cholesky_",
            lambda a: a * np.array([1.0, -1.0, 1.0])[:, None, None],
            r"precisions_cholesky_\[1\] is not positive definite",
        ),
        (
            "model.precisions_cholesky_",
            lambda a: a + np.tril(np.ones((3, 3)), -1),
            "is not upper-triangular",
        ),
    ],
)
def test_refuses_bad_parameters(model_file, array, replace, match):
    def mutate(header, arrays):
        arrays[array] = replace(arrays[array])

    _rewrite(model_file, mutate)
    _refused(model_file, match)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_refuses_non_positive_diagonal_factors(tmp_path, data, covariance_type):
    path = tmp_path / "m.npz"
    fastgmm.save(_fit(data, covariance_type), path)

    def mutate(header, arrays):
        arrays["model.precisions_cholesky_"] = -arrays["model.precisions_cholesky_"]

    _rewrite(path, mutate)
    _refused(path, "precisions_cholesky_ is not positive definite")


def test_refuses_manifest_mismatch(model_file):
    def mutate(header, arrays):
        arrays["model.means_"] = arrays["model.means_"].astype(np.float32)

    _rewrite(model_file, mutate)
    header_and_arrays = np.load(model_file)
    arrays = {k: header_and_arrays[k] for k in header_and_arrays.files}
    header = json.loads(arrays.pop("header").tobytes())
    header["arrays"]["model.means_"]["dtype"] = "<f8"  # the header now lies about the array
    np.savez(
        model_file, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays
    )
    _refused(model_file, "'model.means_' has dtype <f4 .* but the header says <f8")


def test_refuses_missing_and_unlisted_arrays(model_file, tmp_path, full_model):
    other = tmp_path / "other.npz"
    fastgmm.save(full_model, other)
    _rewrite(model_file, lambda h, a: a.pop("model.means_"))
    _refused(model_file, r"lists arrays \['model.means_'\] that are missing")

    def add_unlisted(header, arrays):
        arrays["extra"] = np.zeros(2)

    _rewrite(other, add_unlisted)
    _refused(other, r"arrays \['extra'\] are not listed in the header")

    def add_unreferenced(header, arrays):
        arrays["extra"] = np.zeros(2)
        header["arrays"]["extra"] = {"dtype": "<f8", "shape": [2]}

    _rewrite(other, add_unreferenced)
    _refused(other, r"arrays \['extra'\] are not referenced by the header")


def test_refuses_bad_constructor_params(model_file):
    _rewrite(model_file, lambda h, a: h["model"]["params"].update(covariance_type="banana"))
    _refused(model_file, "invalid GaussianMixture parameter.*covariance_type")


def test_refuses_unknown_params_and_attributes(model_file):
    original = model_file.read_bytes()
    _rewrite(model_file, lambda h, a: h["model"]["params"].update(shell="rm -rf /"))
    _refused(model_file, r"GaussianMixture has no parameters \['shell'\]")
    model_file.write_bytes(original)
    _rewrite(model_file, lambda h, a: h["model"]["attributes"].update(fit="overridden"))
    _refused(model_file, "'fit' is not a fitted attribute that can be restored")
    model_file.write_bytes(original)
    _rewrite(model_file, lambda h, a: h["model"]["attributes"].update(__class__="x"))
    _refused(model_file, "'__class__' is not a fitted attribute")
    model_file.write_bytes(original)
    _rewrite(model_file, lambda h, a: h["model"]["attributes"].pop("n_iter_"))
    _refused(model_file, r"lacks fitted attributes \['n_iter_'\]")
    model_file.write_bytes(original)
    _rewrite(model_file, lambda h, a: h["model"]["attributes"].update(converged_={"__x__": 1}))
    _refused(model_file, "unknown tag '__x__'")


# -------------------------------------------------------------------------- atomic writes
def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)), atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"partial")
            raise exc
        assert target.read_bytes() == b"old"
        assert os.listdir(tmp_path) == ["out.bin"]  # the temporary file is gone too
    with atomic_path(target) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path)  # same directory: rename is atomic
        with open(tmp, "wb") as f:
            f.write(b"new")
        assert target.read_bytes() == b"old"  # not visible before the body ends
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_atomic_path_uses_umask_permissions(tmp_path):
    target = tmp_path / "out.bin"
    old = os.umask(0o022)
    try:
        with atomic_path(target) as tmp, open(tmp, "wb") as f:
            f.write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644


def test_atomic_path_errors(tmp_path):
    with (
        pytest.raises(FileNotFoundError, match="does not exist"),
        atomic_path(tmp_path / "no" / "x"),
    ):
        pass
    with pytest.raises(IsADirectoryError), atomic_path(tmp_path):
        pass


def test_failed_save_keeps_previous_model(tmp_path, full_model):
    path = tmp_path / "m.npz"
    fastgmm.save(full_model, path)
    before = path.read_bytes()
    bad = pickle.loads(pickle.dumps(full_model))
    bad.set_params(random_state=np.random.RandomState(np.random.PCG64(1)))
    with pytest.raises(TypeError):
        fastgmm.save(bad, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


# ------------------------------------------------------- selection and outlier-detector models
@pytest.fixture(scope="module")
def two_blobs():
    rng = np.random.default_rng(1)
    return np.vstack([rng.normal(0, 1, (80, 2)), rng.normal(5, 1, (80, 2)), [[15.0, -9.0]]])


def test_round_trip_gaussian_mixture_ic(tmp_path, two_blobs):
    from fastgmm.selection import GaussianMixtureIC

    X = two_blobs
    ic = GaussianMixtureIC(range(1, 3), covariance_types=("full", "diag"), random_state=0)
    ic.fit(X)
    path = tmp_path / "ic.npz"
    fastgmm.save(ic, path)
    loaded = fastgmm.load(path)
    assert type(loaded) is GaussianMixtureIC
    assert loaded.get_params() == ic.get_params()  # including the range of n_components
    assert (loaded.n_components_, loaded.covariance_type_) == (
        ic.n_components_,
        ic.covariance_type_,
    )
    assert loaded.results_ == ic.results_
    np.testing.assert_array_equal(loaded.criterion_, ic.criterion_)
    _assert_same_model(ic.best_estimator_, loaded.best_estimator_, X)
    # The copies of the best model's attributes are rebuilt from it, not stored twice.
    assert loaded.means_ is loaded.best_estimator_.means_
    assert "model.means_" not in read_header(path)["arrays"]
    np.testing.assert_array_equal(loaded.predict_proba(X), ic.predict_proba(X))

    def mutate(header, arrays):
        header["model"]["attributes"]["n_components_"] = 7

    _rewrite(path, mutate)
    _refused(path, "n_components_ disagrees with best_estimator_")


@pytest.mark.parametrize("n_components", [2, "bic"])
def test_round_trip_outlier_detector(tmp_path, two_blobs, monkeypatch, n_components):
    from fastgmm import outliers
    from fastgmm.outliers import GaussianMixtureOutlierDetector

    # A short BIC grid keeps the test fast; the code path is that of the default grid.
    monkeypatch.setattr(outliers, "BIC_GRID", range(1, 3))
    X = two_blobs
    detector = GaussianMixtureOutlierDetector(n_components, contamination=0.02, random_state=0)
    detector.fit(X)
    path = tmp_path / "detector.npz"
    fastgmm.save(detector, path)
    loaded = fastgmm.load(path)
    assert type(loaded) is GaussianMixtureOutlierDetector
    assert loaded.get_params() == detector.get_params()
    assert loaded.offset_ == detector.offset_ and loaded.threshold_ == detector.threshold_
    _assert_same_model(detector.mixture_, loaded.mixture_, X)
    np.testing.assert_array_equal(loaded.decision_function(X), detector.decision_function(X))
    np.testing.assert_array_equal(loaded.predict(X), detector.predict(X))
    if n_components == "bic":
        assert loaded.selection_.results_ == detector.selection_.results_
        assert loaded.selection_.best_estimator_ is loaded.mixture_
        assert loaded.selection_.n_components_ == detector.selection_.n_components_
    else:
        assert loaded.selection_ is None

    def mutate(header, arrays):
        header["model"]["attributes"]["offset_"] = {"__float__": "nan"}

    _rewrite(path, mutate)
    _refused(path, "offset_ must be a finite float")


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_signal_whose_exception_was_lost_still_stops_the_commit(tmp_path, signum):
    """A handler's exception dropped inside a ctypes callback must not let the file through."""
    import signal

    from fastgmm import _interrupts

    target = tmp_path / "out.npy"
    target.write_bytes(b"previous")
    expected = KeyboardInterrupt if signum == "SIGINT" else _interrupts.Interrupted
    try:
        with pytest.raises(expected):
            with atomic_path(target) as tmp, open(tmp, "wb") as f:
                np.save(f, np.arange(3.0))
                # What the command line's handler leaves behind when its exception is lost.
                _interrupts.record(getattr(signal, signum))
    finally:
        _interrupts.clear()
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.npy"]
    with atomic_path(target) as tmp, open(tmp, "wb") as f:  # cleared: the next write commits
        np.save(f, np.arange(3.0))
    np.testing.assert_array_equal(np.load(target), np.arange(3.0))


@pytest.mark.parametrize("stage", ["kmeans_plusplus", "kmeans"])
def test_a_recorded_signal_stops_the_kmeans_initialisation(stage):
    """The initialisation checks the record too, so a dropped signal does not wait for EM."""
    import signal

    from fastgmm import _interrupts, init

    X, _ = make_mixture_data(n_samples=300)
    run = getattr(init, stage)
    _interrupts.record(signal.SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt):
            run(X, 3, np.random.RandomState(0))
    finally:
        _interrupts.clear()
    result = run(X, 3, np.random.RandomState(0))  # cleared: it runs again
    centres = result[0] if stage == "kmeans_plusplus" else result  # (centres, row indices)
    assert centres.shape == (3, X.shape[1])


def test_a_recorded_signal_stops_em_at_the_next_iteration():
    """A dropped command-line signal does not let a long fit run to its end."""
    import signal

    from fastgmm import _interrupts

    X, _ = make_mixture_data(n_samples=300)
    gm = GaussianMixture(2, max_iter=5, random_state=0)
    _interrupts.record(signal.SIGTERM)
    try:
        with pytest.raises(_interrupts.Interrupted):
            gm.fit(X)
    finally:
        _interrupts.clear()
    assert gm.fit(X).n_iter_ >= 1  # cleared: fits run again
