"""Safe model files: one ``.npz`` holding a JSON header and the parameter arrays, no pickle.

A model file is an ordinary NumPy ``.npz`` archive (a zip file). Its member ``header`` is a
``uint8`` array holding UTF-8 JSON; every other member is a plain numeric array. The header
describes the whole model as a tree::

    {
      "format": "fastgmm-model", "format_version": 1,
      "fastgmm_version": "0.1.0", "created": "2026-01-01T00:00:00Z",
      "class": "GaussianMixture",
      "model": {"class": "GaussianMixture",
                "params": {...constructor parameters...},
                "attributes": {...fitted attributes...}},
      "arrays": {"model.means_": {"dtype": "<f8", "shape": [3, 2]}, ...},
      "notes": [...], "metadata": {...}
    }

Values that JSON cannot hold directly are tagged: ``{"__array__": "model.means_"}`` names an
array member, ``{"__model__": {...}}`` a nested estimator (the mixture inside an outlier
detector), ``{"__float__": "-inf"}`` a non-finite float, ``{"__tuple__": [...]}`` and
``{"__range__": [start, stop, step]}`` keep those types, ``{"__random_state__": ...}`` a
``numpy.random.RandomState`` (below) and ``{"__prior__": ...}`` a
:class:`fastgmm.covariance.ConjugatePrior` (a ``prior`` parameter).

mclust's models store their decomposition (``volumes_``, ``shapes_``, ``orientations_``, which
must rebuild ``covariances_``), and a noise component its weight and volume (``noise_weight_``,
``noise_volume_``; the weights then sum to ``1 - noise_weight_``); :func:`load` checks both.

Why this format and not pickle or joblib: loading a pickle runs code chosen by whoever wrote the
file. Here the file is read with ``numpy.load(..., allow_pickle=False)``, JSON is parsed as data,
and only the classes of a fixed list can be built, so a file from an untrusted source can at
worst be refused. It is refused with :class:`ModelFileError` when it is truncated or corrupted
(the zip CRC of every member is checked), has an unknown format version or class, arrays that
differ from the header's manifest or have the wrong shape or dtype for the model, non-finite
parameters, weights that do not sum to 1, or precision factors that are not positive definite.
Covariances are checked for shape, finiteness and positive diagonals, but not recomputed from
the precisions: prediction uses only the weights, means and precision factors.

Random state. A ``random_state`` that is an int or None is stored as is. A
``numpy.random.RandomState`` instance is stored *exactly*: the 624-word MT19937 key as a
``uint32`` array plus its position and Gaussian cache, so ``sample()`` on the loaded model draws
what the saved model would have drawn next, as with pickle. A ``RandomState`` over another bit
generator cannot be written this way and ``save`` refuses it (set ``random_state`` to an int
first).

Writes are atomic: the archive is written to a temporary file in the target's directory,
flushed to disk (``fsync``), and renamed over the target with ``os.replace``. A job killed
mid-write leaves the previous file (or none), never a truncated one.

Pickle and joblib keep working for in-process use (for example joblib's parallel backends);
they are the right tool there and the wrong one for files that outlive the process.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import re
import secrets
import zipfile
from importlib import import_module

import numpy as np

from . import __version__, _interrupts

__all__ = ["FORMAT_VERSION", "ModelFileError", "load", "read_header", "save"]

FORMAT_NAME = "fastgmm-model"
#: Version of the file layout written by :func:`save`; :func:`load` reads versions up to this.
FORMAT_VERSION = 1

_HEADER_MEMBER = "header"
# A header larger than this is not one that save() wrote; refuse it before parsing.
_MAX_HEADER_BYTES = 64 * 2**20
# Only these array dtypes may appear in a model file (bool, integers, floats).
_ARRAY_KINDS = "biuf"

# Classes a model file may hold: name -> module. Only these are ever imported or built by load().
_CLASSES = {
    "GaussianMixture": "fastgmm.mixture",
    "BayesianGaussianMixture": "fastgmm.bayesian_mixture",
    "GaussianMixtureIC": "fastgmm.selection",
    "GaussianMixtureOutlierDetector": "fastgmm.outliers",
}

# Nested values that are not estimators but may sit inside one (a detector's selection_).
_RECORDS = {"SelectionResult": "fastgmm.selection"}

# A GaussianMixture needs these fitted attributes, and they are checked in depth on load.
# precisions_ is not stored: it is recomputed from precisions_cholesky_ exactly as fit() does.
_GM_ARRAYS = ("weights_", "means_", "covariances_", "precisions_cholesky_")
_GM_SCALARS = ("converged_", "n_iter_", "lower_bound_", "lower_bounds_", "n_features_in_")
_GM_DERIVED = ("precisions_",)
# Fitted attributes are public names with sklearn's trailing underscore; nothing else is set.
_ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]*_$")


class ModelFileError(ValueError):
    """A model file that cannot be loaded: corrupted, truncated, tampered with or unsupported.

    A subclass of ``ValueError``; the message names the file and what is wrong with it.

    Examples
    --------
    >>> import os, tempfile
    >>> import fastgmm
    >>> from fastgmm.persistence import ModelFileError
    >>> path = os.path.join(tempfile.mkdtemp(), "broken.npz")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"not a model file")
    >>> try:
    ...     fastgmm.load(path)
    ... except ModelFileError as exc:
    ...     print("refused:", "is not a fastgmm model file" in str(exc))
    refused: True
    """


# ---------------------------------------------------------------------------------- public API
def save(model, path, *, metadata=None):
    """Write a fitted model to a safe ``.npz`` model file (atomically).

    Parameters
    ----------
    model : GaussianMixture, BayesianGaussianMixture, GaussianMixtureIC or
        GaussianMixtureOutlierDetector
        A fitted fastgmm estimator (the exact class; subclasses are refused because
        :func:`load` could not rebuild them).
    path : str or os.PathLike
        Destination, written as given (no suffix is added). An existing file is replaced only
        once the new one is complete.
    metadata : dict, optional
        JSON-serialisable information to keep in the header (e.g. the training input's name);
        :func:`read_header` returns it under ``"metadata"``.

    Returns
    -------
    path : str
        The path written.

    Raises
    ------
    TypeError
        Unsupported model class, or a parameter or attribute that cannot be stored without
        pickle (the message names it).
    ValueError
        The model is not fitted.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import fastgmm
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> gm = fastgmm.GaussianMixture(2, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> _ = fastgmm.save(gm, path)
    >>> again = fastgmm.load(path)
    >>> bool(np.array_equal(again.score_samples(X), gm.score_samples(X)))
    True
    """
    path = os.fspath(path)
    arrays: dict[str, np.ndarray] = {}
    notes: list[str] = []
    tree = _encode_model(model, "model", arrays, notes)
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "fastgmm_version": __version__,
        "numpy_version": np.__version__,
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "class": tree["class"],
        "model": tree,
        "arrays": {
            key: {"dtype": value.dtype.str, "shape": list(value.shape)}
            for key, value in arrays.items()
        },
        "notes": notes,
        "metadata": _plain_json(metadata or {}, "metadata"),
    }
    text = json.dumps(header, allow_nan=False, sort_keys=True, indent=1)
    members = {_HEADER_MEMBER: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    members.update(arrays)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **members)
    return path


def load(path):
    """Read a model written by :func:`save`, refusing anything that is not a valid model.

    No pickle is involved: arrays are read with ``allow_pickle=False`` and only fastgmm's own
    model classes can be built, so loading an untrusted file cannot run code.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    model : GaussianMixture, BayesianGaussianMixture, GaussianMixtureIC or
        GaussianMixtureOutlierDetector
        Predictions are bit-identical to those of the saved model.

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFileError
        The file is truncated or corrupted, has an unknown format version or class, arrays of
        the wrong shape or dtype, non-finite parameters, weights that do not sum to 1 or
        precision factors that are not positive definite. The message says which.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import fastgmm
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> path = os.path.join(tempfile.mkdtemp(), "gm.npz")
    >>> _ = fastgmm.save(fastgmm.GaussianMixture(1).fit(X), path)
    >>> fastgmm.load(path).means_.shape
    (1, 3)
    """
    path = os.fspath(path)
    header, arrays = _read_file(path, with_arrays=True)
    decoder = _Decoder(path, arrays)
    model = decoder.model(header["model"], "model")
    unused = set(arrays) - decoder.used
    if unused:
        raise ModelFileError(
            f"{path}: arrays {sorted(unused)} are not referenced by the header; the file was "
            "not written by fastgmm.save or has been modified"
        )
    return model


def read_header(path):
    """Return the parsed JSON header of a model file without building the model.

    The header is checked as far as it goes (format name and version, known class); the
    arrays are not read. Use :func:`load` to validate the whole file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    header : dict

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import fastgmm
    >>> from fastgmm.persistence import read_header
    >>> path = os.path.join(tempfile.mkdtemp(), "gm.npz")
    >>> _ = fastgmm.save(fastgmm.GaussianMixture(1).fit(np.eye(3)), path)
    >>> h = read_header(path)
    >>> h["class"], h["format_version"]
    ('GaussianMixture', 1)
    """
    return _read_file(os.fspath(path), with_arrays=False)[0]


# ------------------------------------------------------------------------------ atomic writes
@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on success move it over ``path`` atomically.

    The body writes the temporary file. On normal exit the file is flushed to disk
    (``fsync``), renamed onto ``path`` with ``os.replace`` (atomic on POSIX within one file
    system, hence the same directory), and the directory entry is flushed too. On any
    exception, including ``KeyboardInterrupt`` and the exception a signal handler raises, the
    temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or os.PathLike
        Final destination. Its directory must exist.

    Examples
    --------
    >>> import os, tempfile
    >>> from fastgmm.persistence import atomic_path
    >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_path(target) as tmp:
    ...     with open(tmp, "w") as f:
    ...         _ = f.write("done")
    >>> open(target).read()
    'done'
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {path!r}: it is a directory")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path!r}: directory {directory!r} does not exist")
    tmp = _create_temporary(directory, os.path.basename(path))
    try:
        yield tmp
        # A signal whose exception was lost inside a callback must still stop the commit.
        _interrupts.check()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _create_temporary(directory, name):
    # os.open with mode 0o666 lets the umask decide the permissions, as for a normal file
    # (tempfile.mkstemp would make it 0o600); O_EXCL makes the name ours alone.
    for _ in range(100):
        tmp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"could not create a temporary file in {directory!r}")


def _fsync_directory(directory):
    # Makes the rename itself durable; not every platform or file system allows it.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------------- encoding
def _class_name(model):
    cls = type(model)
    name = cls.__name__
    module = _CLASSES.get(name)
    if module is None or cls.__module__ != module:
        supported = ", ".join(f"{m}.{n}" for n, m in _CLASSES.items())
        raise TypeError(
            f"cannot save a {cls.__module__}.{cls.__qualname__}: model files hold only "
            f"{supported} (use pickle or joblib for other objects, in-process only)"
        )
    return name


def _encode_model(model, key, arrays, notes):
    name = _class_name(model)
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except Exception as exc:
        raise ValueError(f"cannot save an unfitted {name}: {exc}") from None
    params = {
        pname: _encode(value, f"{key}.params.{pname}", arrays, notes)
        for pname, value in model.get_params(deep=False).items()
    }
    # Estimators are stored by their public fitted attributes (sklearn's convention: a trailing
    # underscore), whatever they are; each must be encodable. Attributes that are copies of a
    # nested estimator's (GaussianMixtureIC._COPIED) or derived (precisions_) are rebuilt on
    # load instead, so a file cannot hold inconsistent copies.
    skipped = set(getattr(type(model), "_COPIED", ()))
    if name in ("GaussianMixture", "BayesianGaussianMixture"):
        skipped.update(_GM_DERIVED)
    attributes = {}
    for attribute in sorted(vars(model)):
        if not _ATTRIBUTE_NAME.match(attribute) or attribute in skipped:
            continue
        value = getattr(model, attribute)
        where = f"{key}.{attribute}"
        if type(value).__name__ in _RECORDS:
            attributes[attribute] = _encode_record(value, model, where, arrays, notes)
        else:
            attributes[attribute] = _encode(value, where, arrays, notes)
    return {"class": name, "params": params, "attributes": attributes}


def _encode_record(record, owner, key, arrays, notes):
    """A SelectionResult inside a detector: its fields, minus the model it shares."""
    fields = dict(vars(record))
    best = fields.pop("best_estimator_", None)
    if best is not getattr(owner, "mixture_", None):
        raise TypeError(
            f"cannot save {_label(key)}: its best_estimator_ is not the model's mixture_"
        )
    return {
        "__record__": {
            "class": type(record).__name__,
            "fields": {k: _encode(v, f"{key}.{k}", arrays, notes) for k, v in fields.items()},
        }
    }


def _encode(value, key, arrays, notes):
    """JSON-able form of ``value``; arrays go to ``arrays[key]``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isfinite(value):
            return value
        return {"__float__": repr(value)}  # 'nan', 'inf' or '-inf'
    if isinstance(value, np.ndarray):
        if value.dtype == object and value.ndim == 1 and all(isinstance(v, str) for v in value):
            # sklearn's feature_names_in_: an object array of str, kept as a JSON list.
            return {"__strings__": [str(v) for v in value]}
        if value.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(
                f"cannot save {_label(key)}: arrays of dtype {value.dtype} cannot be stored "
                "without pickle (only bool, integer and float arrays)"
            )
        arrays[key] = np.ascontiguousarray(value)
        return {"__array__": key}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{key}.{i}", arrays, notes) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{key}.{i}", arrays, notes) for i, v in enumerate(value)]
    if isinstance(value, range):
        return {"__range__": [value.start, value.stop, value.step]}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or (k.startswith("__") and k.endswith("__")):
                raise TypeError(f"cannot save {_label(key)}: dict key {k!r} is not storable")
            out[k] = _encode(v, f"{key}.{k}", arrays, notes)
        return out
    if isinstance(value, np.random.RandomState):
        return _encode_random_state(value, key, arrays, notes)
    from .covariance import ConjugatePrior

    if isinstance(value, ConjugatePrior):
        return {
            "__prior__": {
                name: _encode(getattr(value, name), f"{key}.{name}", arrays, notes)
                for name in ("shrinkage", "mean", "dof", "scale")
            }
        }
    if type(value).__name__ in _CLASSES:
        return {"__model__": _encode_model(value, key, arrays, notes)}
    raise TypeError(
        f"cannot save {_label(key)}: a {type(value).__module__}.{type(value).__qualname__} "
        "cannot be stored without pickle; model files hold numbers, strings, lists, numeric "
        "arrays and fastgmm estimators"
    )


def _encode_random_state(rs, key, arrays, notes):
    state = rs.get_state(legacy=False)
    if state.get("bit_generator") != "MT19937":
        raise TypeError(
            f"cannot save {_label(key)}: a RandomState over {state.get('bit_generator')} "
            "cannot be stored exactly; set random_state to an int or None before saving"
        )
    key_array = np.asarray(state["state"]["key"], dtype=np.uint32)
    arrays[f"{key}.key"] = key_array
    notes.append(
        f"{_label(key)} is a numpy RandomState; its exact MT19937 state is stored, so sample() "
        "continues the same random stream after loading"
    )
    return {
        "__random_state__": {
            "key": {"__array__": f"{key}.key"},
            "pos": int(state["state"]["pos"]),
            "has_gauss": int(state["has_gauss"]),
            "gauss": float(state["gauss"]),
        }
    }


def _label(key):
    """'model.params.means_init' -> 'parameter means_init'; attributes keep their path."""
    parts = key.split(".")
    if "params" in parts:
        i = parts.index("params")
        return "parameter " + ".".join(parts[i + 1 :])
    return "attribute " + ".".join(parts[1:])


def _plain_json(value, where):
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where} must be JSON-serialisable: {exc}") from None


# ------------------------------------------------------------------------------------ reading
def _read_file(path, *, with_arrays):
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path!r}")
    if os.path.isdir(path):
        raise ModelFileError(f"{path} is a directory, not a fastgmm model file")
    # np.load(path) leaks its file handle when a corrupted archive fails to open; a handle
    # of our own is closed on every path.
    with open(path, "rb") as fid:
        try:
            npz = np.load(fid, allow_pickle=False)
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise ModelFileError(
                f"{path} is not a fastgmm model file, or it is truncated or corrupted ({exc})"
            ) from None
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ModelFileError(f"{path} is a single .npy array, not a fastgmm model file")
        with npz:
            if _HEADER_MEMBER not in npz.files:
                raise ModelFileError(f"{path} is an .npz archive but not a fastgmm model file")
            header = _parse_header(path, _read_member(path, npz, _HEADER_MEMBER))
            if not with_arrays:
                return header, None
            manifest = header["arrays"]
            members = set(npz.files) - {_HEADER_MEMBER}
            missing = sorted(set(manifest) - members)
            if missing:
                raise ModelFileError(f"{path}: the header lists arrays {missing} that are missing")
            extra = sorted(members - set(manifest))
            if extra:
                raise ModelFileError(f"{path}: arrays {extra} are not listed in the header")
            arrays = {}
            for key, spec in manifest.items():
                array = _read_member(path, npz, key)
                if not isinstance(spec, dict) or set(spec) != {"dtype", "shape"}:
                    raise ModelFileError(f"{path}: malformed manifest entry for array {key!r}")
                if array.dtype.str != spec["dtype"] or list(array.shape) != spec["shape"]:
                    raise ModelFileError(
                        f"{path}: array {key!r} has dtype {array.dtype.str} and shape "
                        f"{list(array.shape)}, but the header says {spec['dtype']} and "
                        f"{spec['shape']}"
                    )
                if array.dtype.kind not in _ARRAY_KINDS:
                    raise ModelFileError(
                        f"{path}: array {key!r} has unsupported dtype {array.dtype}"
                    )
                arrays[key] = array
            return header, arrays


def _read_member(path, npz, key):
    try:
        # Reading a member to its end makes zipfile verify its CRC-32: flipped bytes are caught.
        return npz[key]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, MemoryError) as exc:
        raise ModelFileError(
            f"{path}: member {key!r} cannot be read; the file is truncated or corrupted ({exc})"
        ) from None


def _parse_header(path, raw):
    if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > _MAX_HEADER_BYTES:
        raise ModelFileError(f"{path}: the header member is not a UTF-8 JSON byte string")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path}: not a fastgmm model file (wrong format name in header)")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{path}: unknown model format version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {version} was written by a newer fastgmm "
            f"({header.get('fastgmm_version')}); this fastgmm ({__version__}) reads versions "
            f"up to {FORMAT_VERSION}. Upgrade fastgmm to load it."
        )
    for field, kind in (("model", dict), ("arrays", dict), ("class", str)):
        if not isinstance(header.get(field), kind):
            raise ModelFileError(f"{path}: the header has no valid {field!r} entry")
    if header["class"] not in _CLASSES:
        raise ModelFileError(
            f"{path}: unknown model class {header['class']!r}; this fastgmm loads "
            f"{', '.join(_CLASSES)}"
        )
    if header["model"].get("class") != header["class"]:
        raise ModelFileError(f"{path}: the header's class and model entries disagree")
    return header


class _Decoder:
    """Turns the header tree back into objects, checking each value on the way."""

    def __init__(self, path, arrays):
        self.path = path
        self.arrays = arrays
        self.used = set()

    def fail(self, message):
        raise ModelFileError(f"{self.path}: {message}")

    def model(self, tree, where):
        if not isinstance(tree, dict) or set(tree) != {"class", "params", "attributes"}:
            self.fail(f"malformed model entry at {where!r}")
        name = tree["class"]
        if name not in _CLASSES:
            self.fail(f"unknown model class {name!r} at {where!r}")
        try:
            cls = getattr(import_module(_CLASSES[name]), name)
        except (ImportError, AttributeError) as exc:
            self.fail(f"class {name} needs {_CLASSES[name]}, which this fastgmm lacks ({exc})")
        if not isinstance(tree["params"], dict) or not isinstance(tree["attributes"], dict):
            self.fail(f"malformed model entry at {where!r}")
        params = {k: self.value(v, f"{where}.params.{k}") for k, v in tree["params"].items()}
        known = set(cls().get_params(deep=False))
        unknown = sorted(set(params) - known)
        if unknown:
            self.fail(f"{name} has no parameters {unknown} (written by another fastgmm version?)")
        model = cls(**params)
        if hasattr(cls, "_parameter_constraints"):
            try:
                model._validate_params()
            except (ValueError, TypeError) as exc:
                self.fail(f"invalid {name} parameter: {exc}")
        attributes = {}
        for attribute, node in tree["attributes"].items():
            if not isinstance(attribute, str) or not _ATTRIBUTE_NAME.match(attribute):
                self.fail(f"{where}: {attribute!r} is not a fitted attribute that can be restored")
            attributes[attribute] = self.value(node, f"{where}.{attribute}")
        check = _CHECKS.get(name)
        if check is not None:
            check(model, attributes, self.fail, where)
        for attribute, value in attributes.items():
            setattr(model, attribute, value)
        _REBUILD.get(name, lambda model: None)(model)
        return model

    def value(self, node, where):
        if node is None or isinstance(node, (bool, str, int)):
            return node
        if isinstance(node, float):
            return node
        if isinstance(node, list):
            return [self.value(v, f"{where}.{i}") for i, v in enumerate(node)]
        if not isinstance(node, dict):
            self.fail(f"unexpected value at {where!r}")
        tags = [k for k in node if k.startswith("__") and k.endswith("__")]
        if not tags:
            return {k: self.value(v, f"{where}.{k}") for k, v in node.items()}
        tag = tags[0]
        body = node[tag]
        if tag == "__array__":
            if body not in self.arrays or body in self.used:
                self.fail(f"{where!r} refers to array {body!r}, which is missing or reused")
            self.used.add(body)
            return self.arrays[body]
        if tag == "__float__":
            if body not in ("nan", "inf", "-inf"):
                self.fail(f"bad float {body!r} at {where!r}")
            return float(body)
        if tag == "__tuple__" and isinstance(body, list):
            return tuple(self.value(v, f"{where}.{i}") for i, v in enumerate(body))
        if tag == "__range__" and isinstance(body, list) and len(body) == 3:
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in body):
                self.fail(f"bad range at {where!r}")
            return range(*body)
        if tag == "__strings__" and isinstance(body, list):
            if not all(isinstance(v, str) for v in body):
                self.fail(f"bad string array at {where!r}")
            return np.asarray(body, dtype=object)
        if tag == "__model__":
            return self.model(body, where)
        if tag == "__record__" and isinstance(body, dict):
            return self.record(body, where)
        if tag == "__random_state__" and isinstance(body, dict):
            return self.random_state(body, where)
        if tag == "__prior__" and isinstance(body, dict):
            return self.prior(body, where)
        self.fail(f"unknown tag {tag!r} at {where!r}")

    def record(self, body, where):
        name = body.get("class")
        if name not in _RECORDS or not isinstance(body.get("fields"), dict):
            self.fail(f"unknown record {name!r} at {where!r}")
        try:
            cls = getattr(import_module(_RECORDS[name]), name)
        except (ImportError, AttributeError) as exc:
            self.fail(f"{name} needs {_RECORDS[name]}, which this fastgmm lacks ({exc})")
        fields = {k: self.value(v, f"{where}.{k}") for k, v in body["fields"].items()}
        try:
            # The shared best_estimator_ is put back by the owner's rebuild step.
            return cls(best_estimator_=None, **fields)
        except TypeError as exc:
            self.fail(f"invalid {name} at {where!r}: {exc}")

    def prior(self, body, where):
        from .covariance import ConjugatePrior

        if set(body) != {"shrinkage", "mean", "dof", "scale"}:
            self.fail(f"malformed prior at {where!r}")
        fields = {k: self.value(v, f"{where}.{k}") for k, v in body.items()}
        numbers = [fields["shrinkage"], fields["dof"], fields["mean"], fields["scale"]]
        if not all(
            isinstance(v, (int, float, np.ndarray)) and np.all(np.isfinite(v)) for v in numbers
        ):
            self.fail(f"the prior at {where!r} must hold finite numbers")
        return ConjugatePrior(**fields)

    def random_state(self, body, where):
        if set(body) != {"key", "pos", "has_gauss", "gauss"}:
            self.fail(f"malformed random state at {where!r}")
        key = self.value(body["key"], f"{where}.key")
        if not isinstance(key, np.ndarray) or key.dtype != np.uint32 or key.shape != (624,):
            self.fail(f"the random state at {where!r} needs a uint32 key of shape (624,)")
        rs = np.random.RandomState()
        try:
            rs.set_state(
                ("MT19937", key, int(body["pos"]), int(body["has_gauss"]), float(body["gauss"]))
            )
        except (ValueError, TypeError) as exc:
            self.fail(f"invalid random state at {where!r}: {exc}")
        return rs


# ------------------------------------------------------------------------------- validation
def _check_gaussian_mixture(model, attributes, fail, where):
    """Refuse fitted GaussianMixture attributes that could not come from a fit."""
    required = (*_GM_ARRAYS, *_GM_SCALARS)
    missing = [a for a in required if a not in attributes]
    if missing:
        fail(f"{where}: the {type(model).__name__} lacks fitted attributes {missing}")
    derived = [a for a in _GM_DERIVED if a in attributes]
    if derived:
        fail(f"{where}: {derived} must not be stored; they are recomputed on load")

    n_features = attributes["n_features_in_"]
    if not isinstance(n_features, int) or isinstance(n_features, bool) or n_features < 1:
        fail(f"{where}: n_features_in_ must be a positive int, got {n_features!r}")
    from .covariance import COVARIANCE_TYPES, get_model

    k, d, ctype = model.n_components, n_features, model.covariance_type
    if ctype not in COVARIANCE_TYPES:
        fail(f"{where}: unknown covariance_type {ctype!r}")
    cov_shape = get_model(ctype).covariance_shape(k, d)
    shapes = {
        "weights_": (k,),
        "means_": (k, d),
        "covariances_": cov_shape,
        "precisions_cholesky_": cov_shape,
    }
    dtype = None
    for name, shape in shapes.items():
        value = attributes[name]
        if not isinstance(value, np.ndarray):
            fail(f"{where}: {name} must be an array")
        if value.dtype not in (np.float32, np.float64):
            fail(f"{where}: {name} has dtype {value.dtype}; expected float32 or float64")
        dtype = value.dtype if dtype is None else dtype
        if value.dtype != dtype:
            fail(f"{where}: {name} has dtype {value.dtype} but weights_ has {dtype}")
        if value.shape != shape:
            fail(
                f"{where}: {name} has shape {value.shape}; a {ctype} mixture with {k} "
                f"components and {d} features needs {shape}"
            )
        if not np.all(np.isfinite(value)):
            fail(f"{where}: {name} contains NaN or infinity")

    weights = attributes["weights_"]
    total = float(np.sum(weights, dtype=np.float64))
    tolerance = 1e-5 if dtype == np.float32 else 1e-10
    noise = _check_noise(attributes, fail, where)
    if np.any(weights < 0) or abs(total + noise - 1.0) > tolerance:
        with_noise = f" with noise_weight_ {noise!r}" if noise else ""
        fail(
            f"{where}: weights_ must be non-negative and sum to 1{with_noise}, but they sum to "
            f"{total!r} (min {float(weights.min())!r})"
        )
    if hasattr(get_model(ctype), "mclust_name"):
        _check_decomposition(attributes, k, d, fail, where)

    prec = attributes["precisions_cholesky_"]
    cov = attributes["covariances_"]
    if ctype not in ("diag", "spherical"):  # matrices, one per component or one shared
        factors = prec.reshape(-1, d, d)
        for i, u in enumerate(factors):
            label = f"precisions_cholesky_[{i}]" if prec.ndim == 3 else "precisions_cholesky_"
            if np.any(np.tril(u, -1) != 0):
                fail(
                    f"{where}: {label} is not upper-triangular, so it is not the Cholesky "
                    "factor of a precision matrix"
                )
            diagonal = np.diagonal(u)
            if np.any(diagonal <= 0):
                fail(
                    f"{where}: {label} is not positive definite (diagonal entry "
                    f"{float(diagonal.min())!r} <= 0)"
                )
        matrices = cov.reshape(-1, d, d)
        for i, c in enumerate(matrices):
            if not np.allclose(c, c.T, rtol=1e-5, atol=0) or np.any(np.diagonal(c) <= 0):
                fail(f"{where}: covariances_ [{i}] is not a symmetric, positive-diagonal matrix")
    else:
        if np.any(prec <= 0):
            fail(
                f"{where}: precisions_cholesky_ is not positive definite (entry "
                f"{float(prec.min())!r} <= 0)"
            )
        if np.any(cov <= 0):
            fail(f"{where}: covariances_ must be positive")

    if not isinstance(attributes["converged_"], bool):
        fail(f"{where}: converged_ must be a bool")
    n_iter = attributes["n_iter_"]
    if not isinstance(n_iter, int) or isinstance(n_iter, bool) or n_iter < 0:
        fail(f"{where}: n_iter_ must be a non-negative int")
    if not isinstance(attributes["lower_bound_"], (int, float)):
        fail(f"{where}: lower_bound_ must be a number")
    bounds = attributes["lower_bounds_"]
    if not isinstance(bounds, list) or not all(
        isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds
    ):
        fail(f"{where}: lower_bounds_ must be a list of numbers")
    names = attributes.get("feature_names_in_")
    if names is not None and (not isinstance(names, np.ndarray) or names.shape != (d,)):
        fail(f"{where}: feature_names_in_ must hold {d} names")


def _check_noise(attributes, fail, where) -> float:
    """The noise weight of a model with a noise component (0 without), checked."""
    weight = attributes.get("noise_weight_")
    volume = attributes.get("noise_volume_")
    if weight is None and volume is None:
        return 0.0
    if not all(isinstance(v, float) and math.isfinite(v) for v in (weight, volume)):
        fail(f"{where}: noise_weight_ and noise_volume_ must be finite floats together")
    if not (0.0 <= weight <= 1.0 and volume > 0.0):
        fail(f"{where}: noise_weight_ must lie in [0, 1] and noise_volume_ be positive")
    return weight


def _check_decomposition(attributes, k, d, fail, where):
    """volumes_, shapes_ and orientations_ of an mclust model: shapes, signs, orthogonality,
    and that they rebuild covariances_."""
    shapes = {"volumes_": (k,), "shapes_": (k, d), "orientations_": (k, d, d)}
    values = {}
    for name, shape in shapes.items():
        value = attributes.get(name)
        if not isinstance(value, np.ndarray) or value.shape != shape:
            fail(f"{where}: an mclust model needs {name} of shape {shape}")
        if value.dtype.kind != "f" or not np.all(np.isfinite(value)):
            fail(f"{where}: {name} must hold finite floats")
        values[name] = value.astype(np.float64)
    if np.any(values["volumes_"] <= 0) or np.any(values["shapes_"] <= 0):
        fail(f"{where}: volumes_ and shapes_ must be positive")
    tolerance = 1e-4 if attributes["weights_"].dtype == np.float32 else 1e-8
    o = values["orientations_"]
    if not np.allclose(np.swapaxes(o, 1, 2) @ o, np.eye(d), atol=tolerance):
        fail(f"{where}: orientations_ must be orthogonal matrices")
    variances = values["volumes_"][:, None] * values["shapes_"]
    rebuilt = np.einsum("kij,kj,klj->kil", o, variances, o)
    cov = attributes["covariances_"].astype(np.float64)
    scale = np.abs(cov).max(axis=(1, 2), keepdims=True)
    if not np.all(np.abs(rebuilt - cov) <= tolerance * scale):
        fail(f"{where}: volumes_, shapes_ and orientations_ do not rebuild covariances_")


_BGM_PRIORS = (
    "weight_concentration_prior_",
    "mean_precision_prior_",
    "mean_prior_",
    "degrees_of_freedom_prior_",
    "covariance_prior_",
)


def _check_bayesian_mixture(model, attributes, fail, where):
    """A GaussianMixture's checks, then the variational posterior's and the priors'."""
    _check_gaussian_mixture(model, attributes, fail, where)
    missing = [
        a
        for a in ("weight_concentration_", "mean_precision_", "degrees_of_freedom_", *_BGM_PRIORS)
        if a not in attributes
    ]
    if missing:
        fail(f"{where}: the BayesianGaussianMixture lacks fitted attributes {missing}")
    k, d = model.n_components, attributes["n_features_in_"]
    concentration = attributes["weight_concentration_"]
    if model.weight_concentration_prior_type == "dirichlet_process":
        if not (isinstance(concentration, tuple) and len(concentration) == 2):
            fail(f"{where}: weight_concentration_ must be a pair of arrays (a_k, b_k)")
        parts = concentration
    else:
        parts = (concentration,)
    nu = attributes["degrees_of_freedom_"]
    nu_shape = () if model.covariance_type == "tied" else (k,)
    positive = [*(("weight_concentration_", p, (k,)) for p in parts)]
    positive.append(("mean_precision_", attributes["mean_precision_"], (k,)))
    positive.append(("degrees_of_freedom_", nu, nu_shape))
    for name, value, shape in positive:
        value = np.asarray(value) if isinstance(value, (int, float)) else value
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or value.shape != shape:
            fail(f"{where}: {name} must be a float array of shape {shape}")
        if not np.all(np.isfinite(value)) or np.any(value <= 0):
            fail(f"{where}: {name} must be finite and positive")
    if np.any(np.asarray(nu) <= d - 1):
        fail(f"{where}: degrees_of_freedom_ must exceed n_features - 1 = {d - 1}")
    mean_prior = attributes["mean_prior_"]
    if not isinstance(mean_prior, np.ndarray) or mean_prior.shape != (d,):
        fail(f"{where}: mean_prior_ must be an array of shape ({d},)")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_ic(model, attributes, fail, where):
    from .mixture import GaussianMixture

    best = attributes.get("best_estimator_")
    if not isinstance(best, GaussianMixture):
        fail(f"{where}: GaussianMixtureIC needs a fitted GaussianMixture as best_estimator_")
    if attributes.get("n_components_") != best.n_components:
        fail(f"{where}: n_components_ disagrees with best_estimator_")
    if attributes.get("covariance_type_") != best.covariance_type:
        fail(f"{where}: covariance_type_ disagrees with best_estimator_")
    if attributes.get("n_features_in_") != best.n_features_in_:
        fail(f"{where}: n_features_in_ disagrees with best_estimator_")
    if not isinstance(attributes.get("results_"), list):
        fail(f"{where}: results_ must be a list of records")
    copied = set(getattr(type(model), "_COPIED", ())) & set(attributes)
    if copied:
        fail(f"{where}: {sorted(copied)} must not be stored; they are best_estimator_'s")


def _rebuild_ic(model):
    for name in getattr(type(model), "_COPIED", ()):
        setattr(model, name, getattr(model.best_estimator_, name))


def _check_detector(model, attributes, fail, where):
    from .mixture import GaussianMixture

    mixture = attributes.get("mixture_")
    if not isinstance(mixture, GaussianMixture):
        fail(f"{where}: the detector needs a fitted GaussianMixture as mixture_")
    offset = attributes.get("offset_")
    if not isinstance(offset, float) or not math.isfinite(offset):
        fail(f"{where}: offset_ must be a finite float, got {offset!r}")
    if attributes.get("threshold_", offset) != offset:
        fail(f"{where}: threshold_ must equal offset_")
    if attributes.get("n_features_in_") != mixture.n_features_in_:
        fail(f"{where}: n_features_in_ disagrees with mixture_")
    if "n_iter_" in attributes and not _is_int(attributes["n_iter_"]):
        fail(f"{where}: n_iter_ must be an int")
    selection = attributes.get("selection_")
    if selection is not None and type(selection).__name__ != "SelectionResult":
        fail(f"{where}: selection_ must be a SelectionResult or None")


def _rebuild_detector(model):
    selection = getattr(model, "selection_", None)
    if selection is not None:
        selection.best_estimator_ = model.mixture_


def _rebuild_gaussian_mixture(model):
    from .covariance import get_model

    # The same computation, on the same array, as GaussianMixture._set_params.
    model.precisions_ = get_model(model.covariance_type).precisions(model.precisions_cholesky_)
    # The decomposition the iterative M-steps continue from (a warm start).
    if hasattr(model, "volumes_"):
        from .covariance import Decomposition

        model._decomposition = Decomposition(
            get_model(model.covariance_type).mclust_name,
            *(
                np.asarray(getattr(model, a), np.float64)
                for a in ("volumes_", "shapes_", "orientations_")
            ),
        )


_CHECKS = {
    "GaussianMixture": _check_gaussian_mixture,
    "BayesianGaussianMixture": _check_bayesian_mixture,
    "GaussianMixtureIC": _check_ic,
    "GaussianMixtureOutlierDetector": _check_detector,
}
_REBUILD = {
    "GaussianMixture": _rebuild_gaussian_mixture,
    "BayesianGaussianMixture": _rebuild_gaussian_mixture,
    "GaussianMixtureIC": _rebuild_ic,
    "GaussianMixtureOutlierDetector": _rebuild_detector,
}
