"""Restartable row-chunk sources for out-of-core fitting.

EM needs several passes over the data, so every input is wrapped in a :class:`ChunkSource`
that can be iterated any number of times, yields validated C-contiguous 2-D float chunks
together with their row offsets, and (optionally) reads the next chunk in a background
thread while the caller computes on the current one.

This is a leaf module: only numpy, the standard library, ``_reservoir`` (NumPy only) and
``_events`` (the standard library only) are imported at module level.
h5py, zarr and pyarrow are imported lazily by the readers that need them, so that
``import fastgmm`` stays cheap and works without the optional ``[io]`` extra.
"""

import contextlib
import copy
import math
import mmap
import numbers
import operator
import os
import queue
import re
import threading
import time
import zipfile
from collections.abc import Iterator

import numpy as np

from . import _events
from ._reservoir import sample

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "ChunkSource",
    "is_source_like",
    "open_source",
    "release_pages",
]

#: Default number of rows per chunk (smaller for very wide data, see ``_default_batch_size``).
DEFAULT_BATCH_SIZE = 65536
# Upper bound on the size of one default chunk.  Up to three chunks are alive at once with
# prefetching (the one being read, one queued, one being consumed), so this keeps the
# reader's footprint around 200 MB even for very wide data.
_MAX_CHUNK_BYTES = 64 * 2**20
# One queued chunk is enough to overlap I/O with compute; more only costs memory.
_PREFETCH_DEPTH = 1
# pyarrow CSV block size: larger blocks mean fewer Python-level iterations.
_CSV_BLOCK_BYTES = 4 * 2**20

_NPZ_EXTS = (".npz",)
_H5_EXTS = (".h5", ".hdf5")
_ZARR_EXTS = (".zarr",)
_PARQUET_EXTS = (".parquet", ".pq")
_CSV_EXTS = (".csv",)
_SUPPORTED_EXTS = (".npy", *_NPZ_EXTS, *_H5_EXTS, *_ZARR_EXTS, *_PARQUET_EXTS, *_CSV_EXTS)
# "container:member" syntax, e.g. "data.h5:/group/X".  Only containers can have members, and
# the extension anchors the split so that Windows drive letters ("C:\\...") are not mistaken
# for a member separator.
_MEMBER_RE = re.compile(r"^(.+?\.(?:npz|h5|hdf5|zarr))[/\\]?:(.+)$", re.IGNORECASE)


# --------------------------------------------------------------------------------------
# The source class
# --------------------------------------------------------------------------------------


class ChunkSource:
    """A restartable source of row chunks (the streaming counterpart of a 2-D array).

    Create instances with :func:`open_source`; the concrete readers are private subclasses.

    Attributes
    ----------
    kind : str
        Reader kind: ``"array"``, ``"npy"``, ``"npz"``, ``"hdf5"``, ``"zarr"``,
        ``"parquet"``, ``"csv"`` or ``"callable"``.
    name : str
        Short description used in messages (usually the path).
    n_features : int
        Number of columns of every chunk.
    dtype : numpy.dtype
        dtype of the yielded chunks: float32 data stays float32, float64 stays float64 and
        every other numeric type (ints, bools, float16, ...) is converted to float64.
    n_samples : int or None
        Number of rows.  Known up front for arrays, npy/npz, HDF5, Zarr and Parquet; None for
        CSV files and callables until the first complete pass, which sets it.
    batch_size : int or None
        Rows per chunk (the last chunk may be shorter).  None only for callables opened
        without ``batch_size``: their chunks are passed through as produced.
    allow_nan : bool
        Whether NaN is data (a missing entry) rather than an input error.  False unless set on a
        copy by a fit with ``missing='marginalize'``; infinity is refused either way, and so is
        a row whose every entry is NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.sources import open_source
    >>> X = np.arange(10.0).reshape(5, 2)
    >>> src = open_source(X, batch_size=2)
    >>> src
    ChunkSource(kind='array', name='ndarray of shape (5, 2)', n_samples=5, n_features=2, \
dtype=float64, batch_size=2)
    >>> for offset, chunk in src.iter_chunks():
    ...     print(offset, chunk.tolist())
    0 [[0.0, 1.0], [2.0, 3.0]]
    2 [[4.0, 5.0], [6.0, 7.0]]
    4 [[8.0, 9.0]]
    >>> sample, rows = src.reservoir_sample(3, random_state=0)
    >>> sample.shape, bool(np.all(np.diff(rows) > 0))
    ((3, 2), True)
    """

    #: Whether the reader produces its own chunk sizes that must be re-cut to ``batch_size``
    #: (False for sliceable readers, which already read exactly ``batch_size`` rows).
    _rebatch_native = False
    allow_nan = False

    def __init__(self, *, kind, name, n_features, dtype, n_samples, batch_size):
        self.kind = kind
        self.name = name
        self.n_features = int(n_features)
        self.dtype = np.dtype(dtype)
        self.n_samples = None if n_samples is None else int(n_samples)
        self.batch_size = batch_size
        if self.n_features < 1:
            raise ValueError(f"source {name} has {self.n_features} features; at least 1 needed")
        if self.n_samples == 0:
            raise ValueError(f"source {name} is empty (0 rows)")

    def __repr__(self):
        return (
            f"ChunkSource(kind={self.kind!r}, name={self.name!r}, n_samples={self.n_samples}, "
            f"n_features={self.n_features}, dtype={self.dtype}, batch_size={self.batch_size})"
        )

    # -- to be implemented by readers -------------------------------------------------

    def _read_pass(self) -> Iterator[np.ndarray]:
        """Yield the raw chunks of one pass (any numeric dtype, validated by the caller)."""
        raise NotImplementedError

    # -- public API ---------------------------------------------------------------------

    def iter_chunks(self, prefetch=True, writable=False):
        """Iterate once over the data as ``(row_offset, chunk)`` pairs.

        Parameters
        ----------
        prefetch : bool, default=True
            Read (and validate) the next chunk in one background daemon thread while the
            caller works on the current one.  Errors raised by the reader are re-raised
            here; closing the generator early (``break``, ``.close()``, an exception in the
            loop body) stops and joins the thread.
        writable : bool, default=False
            Copy chunks that are read-only views of a memory-mapped file into fresh arrays,
            and release the file's pages from the resident set (:func:`release_pages`), in
            the reader (so, with ``prefetch``, in the background thread).

        Yields
        ------
        row_offset : int
            Index of the chunk's first row in the whole data set.
        chunk : ndarray of shape (n_rows, n_features)
            C-contiguous array of ``self.dtype``.  For in-memory arrays this may be a view
            of the caller's data: do not modify it.

        Raises
        ------
        ValueError
            A chunk has the wrong number of columns or non-finite values; the pass yielded
            no rows; or a pass yielded a different number of rows than ``n_samples``.
        TypeError
            A chunk has a non-numeric or complex dtype.
        """
        chunks = self._checked_pass()
        if writable:
            chunks = _writable(chunks)
        if prefetch:
            return _prefetch(chunks, self.name)
        return chunks

    def reservoir_sample(self, n, random_state=None):
        """Draw a uniform random sample of rows in one pass.

        Every row gets an i.i.d. uniform random key and the rows with the ``n`` smallest keys
        are kept, chunk by chunk (vectorised reservoir sampling).  Each subset of
        ``min(n, n_samples)`` rows is therefore exactly equally likely.  Keys are drawn
        sequentially from one random stream, so for a given seed the sample does not even
        depend on how the data is chunked, and it is the sample the estimators' initialisation
        draws from the same rows (``sample_rows`` of the estimators' providers).

        Parameters
        ----------
        n : int
            Requested sample size (>= 1).
        random_state : int, RandomState, Generator or None
            Seed or random generator (scikit-learn semantics; None uses the global
            ``np.random`` state).  A generator instance is advanced.

        Returns
        -------
        sample : ndarray of shape (min(n, n_samples), n_features)
            The sampled rows, in increasing original row order, of ``self.dtype``.
        indices : ndarray of shape (min(n, n_samples),), dtype int64
            Their original row indices (sorted).
        """
        n = operator.index(n)
        if n < 1:
            raise ValueError(f"reservoir_sample needs n >= 1, got {n}")
        rng = _check_random_state(random_state)
        no_weights = np.empty(0)
        rows, _, indices = sample(
            lambda: ((offset, chunk, no_weights) for offset, chunk in self.iter_chunks()),
            n,
            rng,
            n_features=self.n_features,
            dtype=self.dtype,
            n_rows=self.n_samples,
        )
        return rows, indices

    def to_array(self):
        """Read the whole source into one array (for tests and small data)."""
        return np.concatenate([chunk for _, chunk in self.iter_chunks(prefetch=False)])

    # -- internals --------------------------------------------------------------------

    def _checked_pass(self):
        """One validated pass: ``(offset, chunk)`` pairs, then the row-count bookkeeping."""
        raw = self._read_pass()
        try:
            chunks = self._validated(raw)
            if self._rebatch_native and self.batch_size is not None:
                chunks = _rebatch(chunks, self.batch_size)
            if _events.listening("source.chunk"):
                chunks = _timed(chunks, self)
            offset = 0
            for chunk in chunks:
                yield offset, chunk
                offset += len(chunk)
        finally:
            # Close the reader (and its open file) now, also when the pass is abandoned,
            # rather than whenever the generator happens to be garbage collected.
            raw.close()
        self._end_pass(offset)

    def _validated(self, raw):
        offset = 0
        for i, chunk in enumerate(raw):
            chunk = np.asarray(chunk)
            if _is_empty(chunk):
                continue  # harmless: skip
            where = f"chunk {i} (row offset {offset}) of {self.name}"
            if chunk.ndim != 2:
                raise ValueError(f"{where} has shape {chunk.shape}; expected a 2-D array")
            if chunk.shape[1] != self.n_features:
                raise ValueError(
                    f"{where} has {chunk.shape[1]} columns; expected {self.n_features}"
                )
            _output_dtype(chunk.dtype, where)  # raises TypeError for non-numeric data
            with np.errstate(over="ignore"):  # float64 values beyond float32: checked below
                out = np.ascontiguousarray(chunk, dtype=self.dtype)
            # Integers and bools are always finite, even after conversion to float.  For
            # memory-mapped data this check also pulls the pages in, inside the reader thread.
            if chunk.dtype.kind == "f":
                if out.dtype.itemsize < chunk.dtype.itemsize:
                    _check_narrowing(chunk, out, where)
                _check_finite(out, i, offset, self.name, self.allow_nan)
            yield out
            offset += len(out)

    def _end_pass(self, n_rows):
        if n_rows == 0:
            raise ValueError(f"source {self.name} is empty (0 rows)")
        if self.n_samples is None:
            self.n_samples = n_rows
        elif n_rows != self.n_samples:
            raise ValueError(
                f"rows were lost or added between passes over {self.name}: this pass yielded "
                f"{n_rows} rows but {self.n_samples} were expected (from the metadata or an "
                "earlier pass); a source must produce the same rows on every pass"
            )


class _SlicedSource(ChunkSource):
    """Anything sliceable by rows: ndarrays, memory-mapped .npy, npz members, HDF5, Zarr."""

    def __init__(self, opener, **kwargs):
        super().__init__(**kwargs)
        # ``opener()`` returns a context manager giving the array-like for one pass; files are
        # reopened on every pass so that no handle stays open between passes.
        self._opener = opener

    def _read_pass(self):
        with _reading(self.name, active=self.kind != "array"), self._opener() as array:
            n_rows, step = array.shape[0], self.batch_size
            for start in range(0, n_rows, step):
                yield array[start : start + step]


class _ArrowSource(ChunkSource):
    """Parquet and CSV: pyarrow record batches converted to 2-D float arrays."""

    _rebatch_native = True

    def __init__(self, open_batches, arrow_type, **kwargs):
        super().__init__(**kwargs)
        self._open_batches = open_batches  # () -> context manager giving record batches
        self._arrow_type = arrow_type  # pyarrow type matching self.dtype

    def _read_pass(self):
        import pyarrow as pa
        import pyarrow.compute as pc

        with _reading(self.name), self._open_batches() as batches:
            it = iter(batches)
            while True:
                try:
                    batch = next(it)
                except StopIteration:
                    return
                except pa.ArrowException as exc:  # e.g. unparsable value later in a CSV
                    raise ValueError(f"could not read {self.name}: {exc}") from exc
                yield self._to_rows(batch, pc)

    def _to_rows(self, batch, pc):
        """A record batch as a C-contiguous ``(rows, columns)`` array of ``self.dtype``."""
        # Columns go into the rows of a column-major buffer (contiguous writes), then one
        # transposing copy makes the row-major chunk: cheaper than writing each column with a
        # stride straight into the chunk.
        columns = np.empty((batch.num_columns, batch.num_rows), dtype=self.dtype)
        for j, column in enumerate(batch.columns):
            if column.type != self._arrow_type:
                # safe=False: int -> float may round, like numpy's astype; nulls -> NaN.
                column = pc.cast(column, self._arrow_type, safe=False)
            columns[j] = column.to_numpy(zero_copy_only=False)
        return np.ascontiguousarray(columns.T)


class _CallableSource(ChunkSource):
    """A zero-argument callable returning a fresh iterator of 2-D chunks per pass."""

    _rebatch_native = True

    def __init__(self, factory, **kwargs):
        super().__init__(**kwargs)
        self._factory = factory
        self._last_iterator = None

    def _read_pass(self):
        iterator = _call_factory(self._factory, self.name)
        # A callable returning the same (already consumed) iterator would silently give
        # empty or partial passes: catch that explicitly.
        if iterator is self._last_iterator:
            raise TypeError(
                f"{self.name} returned the same iterator twice; it must return a *fresh* "
                "iterator on every call (e.g. a generator function, not a generator object)"
            )
        self._last_iterator = iterator
        try:
            yield from iterator
        finally:
            if hasattr(iterator, "close"):
                iterator.close()


# --------------------------------------------------------------------------------------
# open_source
# --------------------------------------------------------------------------------------


def open_source(obj, *, batch_size=None, columns=None, dataset=None):
    """Wrap array-like data, a file or a chunk generator as a restartable :class:`ChunkSource`.

    Parameters
    ----------
    obj : ndarray, str, os.PathLike, callable or ChunkSource
        The data:

        - a 2-D numpy array (chunks are views/slices of it);
        - a path to a ``.npy`` file (memory-mapped), a ``.npz`` file (member given by
          ``dataset=`` or ``"file.npz:key"``; npz members cannot be memory-mapped, so the
          member is loaded into memory once, lazily, on the first pass), an HDF5 file
          ``.h5``/``.hdf5`` (``dataset=`` or ``"file.h5:/group/X"``), a Zarr v3 array
          directory ``.zarr`` (optionally ``"store.zarr:path/in/group"``), a Parquet file
          ``.parquet``/``.pq`` or a ``.csv`` file with a header row.  For npz, HDF5 and Zarr
          the member may be omitted when the container holds a single array;
        - a zero-argument callable returning a fresh iterator of 2-D chunks; each call is one
          pass.  It is called once when the source is opened, to read the first chunk and
          learn ``n_features`` and ``dtype`` (later chunks are cast to that dtype).  With
          prefetching the iterator runs in a background thread;
        - an existing ChunkSource (returned as is, or re-batched if ``batch_size`` differs).
    batch_size : int, optional
        Rows per chunk.  Defaults to 65536 rows (fewer for data wider than 128 float64
        columns, to bound memory); for chunked HDF5 datasets and Zarr arrays the default is
        rounded up to a multiple of the storage chunk rows.  Callables opened without
        ``batch_size`` keep their own chunking.
    columns : list of str, optional
        Parquet/CSV only: the columns to read, in this order (default: all).  They must be
        numeric (int, float or bool).
    dataset : str, optional
        npz/HDF5/Zarr only: the member, dataset or array path inside the container.

    Returns
    -------
    ChunkSource

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    ValueError
        Unknown extension, missing dataset/member/column, not 2-D, empty data.
    TypeError
        Unsupported object type, a one-shot iterator, non-numeric data.
    ImportError
        h5py, zarr or pyarrow is needed but not installed (``pip install 'fastgmm[io]'``).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.sources import open_source
    >>> X = np.arange(12, dtype=np.float32).reshape(6, 2)
    >>> src = open_source(X, batch_size=4)
    >>> src.dtype, src.n_samples, src.n_features
    (dtype('float32'), 6, 2)
    >>> [(offset, chunk.shape) for offset, chunk in src.iter_chunks()]
    [(0, (4, 2)), (4, (2, 2))]

    A callable streams data of unknown length; the first full pass counts the rows:

    >>> def chunks():
    ...     for start in range(0, 6, 3):
    ...         yield X[start : start + 3].astype(int)
    >>> src = open_source(chunks)
    >>> src.dtype, src.n_samples
    (dtype('float64'), None)
    >>> src.to_array().shape, src.n_samples
    ((6, 2), 6)

    Files are opened by extension: a ``.npy`` file is memory-mapped, and the same call takes
    ``"data.h5:/train/X"``, ``"store.zarr"``, or ``"data.parquet"`` with ``columns=["x", "y"]``:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "X.npy")
    >>> np.save(path, X)
    >>> src = open_source(path, batch_size=5)
    >>> src.n_samples, [len(chunk) for _, chunk in src.iter_chunks()]
    (6, [5, 1])
    """
    if batch_size is not None:
        batch_size = _check_batch_size(batch_size)
    if columns is not None:
        columns = [columns] if isinstance(columns, str) else list(columns)
        if not columns or not all(isinstance(c, str) for c in columns):
            raise ValueError(f"columns must be a non-empty list of column names, got {columns!r}")

    if isinstance(obj, ChunkSource):
        _reject_options(obj.name, "an existing ChunkSource", columns=columns, dataset=dataset)
        if batch_size is None or batch_size == obj.batch_size:
            return obj
        rebatched = copy.copy(obj)
        rebatched.batch_size = batch_size
        return rebatched
    if isinstance(obj, np.ndarray):
        _reject_options("ndarray", "numpy arrays", columns=columns, dataset=dataset)
        return _array_source(obj, batch_size)
    if isinstance(obj, (str, os.PathLike)):
        return _open_path(os.fspath(obj), batch_size, columns, dataset)
    if isinstance(obj, Iterator):
        raise TypeError(
            f"got a one-shot {type(obj).__name__}, but fitting needs several passes over the "
            "data. Pass a zero-argument callable that returns a fresh iterator on each call "
            "instead, e.g. open_source(lambda: read_chunks(path)) or a generator function "
            "like `def chunks(): yield from ...` passed as open_source(chunks)"
        )
    if callable(obj):
        _reject_options("callable", "callables", columns=columns, dataset=dataset)
        return _callable_source(obj, batch_size)
    raise TypeError(
        f"cannot stream data of type {type(obj).__module__}.{type(obj).__qualname__}; "
        "expected a 2-D numpy array, a file path, a zero-argument callable returning an "
        "iterator of 2-D chunks, or a ChunkSource"
    )


def is_source_like(obj):
    """Return True if ``obj`` should be streamed through :func:`open_source`.

    True for ChunkSource instances, paths (str / os.PathLike) and callables.  Also True for
    one-shot iterators, so that :func:`open_source` can explain why they are not accepted.
    False for arrays and other array-likes, which are validated in memory.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.sources import is_source_like
    >>> is_source_like("data.npy"), is_source_like(lambda: iter([])), is_source_like(np.ones(3))
    (True, True, False)
    """
    if isinstance(obj, np.ndarray):
        return False
    return isinstance(obj, (ChunkSource, str, os.PathLike, Iterator)) or callable(obj)


# --------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------


def _array_source(array, batch_size, *, kind="array", name=None):
    if array.ndim != 2:
        raise ValueError(
            f"expected a 2-D array (n_samples, n_features), got shape {array.shape}"
            + (f" in {name}" if name else "")
        )
    name = name or f"ndarray of shape {array.shape}"
    return _sliced(
        lambda: contextlib.nullcontext(array), kind, name, array.shape, array.dtype, batch_size
    )


def _sliced(opener, kind, name, shape, dtype, batch_size, chunk_rows=None):
    """A row-sliceable source of a 2-D array of ``shape`` and ``dtype`` (see ``_SlicedSource``);
    ``chunk_rows``, the rows of the storage's chunks, aligns the default batch size."""
    if len(shape) != 2:
        raise ValueError(f"expected a 2-D array (n_samples, n_features) in {name}, got {shape}")
    return _SlicedSource(
        opener,
        kind=kind,
        name=name,
        n_features=shape[1],
        dtype=_output_dtype(dtype, name),
        n_samples=shape[0],
        batch_size=batch_size or _default_batch_size(shape[1], chunk_rows),
    )


def _callable_source(factory, batch_size):
    name = f"callable {getattr(factory, '__qualname__', type(factory).__name__)}"
    # Peek at the first non-empty chunk to learn n_features and dtype, then drop that
    # iterator: the callable promises a fresh one per call.
    iterator = _call_factory(factory, name)
    first = None
    try:
        for chunk in map(np.asarray, iterator):
            if not _is_empty(chunk):
                first = chunk
                break
    finally:
        if hasattr(iterator, "close"):
            iterator.close()
    if first is None:
        raise ValueError(f"source {name} is empty (its first pass yielded no rows)")
    if first.ndim != 2:
        raise ValueError(f"chunk 0 of {name} has shape {first.shape}; expected a 2-D array")
    source = _CallableSource(
        factory,
        kind="callable",
        name=name,
        n_features=first.shape[1],
        dtype=_output_dtype(first.dtype, f"chunk 0 of {name}"),
        n_samples=None,
        batch_size=batch_size,
    )
    source._last_iterator = iterator  # so that returning it again on the first pass is caught
    return source


def _call_factory(factory, name):
    result = factory()
    if isinstance(result, np.ndarray):
        raise TypeError(
            f"{name} returned an ndarray; it must return an iterator of 2-D chunks "
            "(e.g. `lambda: iter([X])`, or pass the array itself)"
        )
    try:
        return iter(result)
    except TypeError:
        raise TypeError(
            f"{name} must return an iterator of 2-D chunks, got {type(result).__name__}"
        ) from None


def _open_path(path, batch_size, columns, dataset):
    file_path, member = path, None
    if not os.path.exists(path) and (match := _MEMBER_RE.match(path)):
        file_path, member = match.group(1), match.group(2)
        if dataset is not None:
            raise ValueError(
                f"{path!r} names member {member!r} and dataset={dataset!r} was also given; "
                "use only one of them"
            )
    member = member if member is not None else dataset
    if not os.path.exists(file_path):
        raise FileNotFoundError(f"no such file or directory: {file_path!r}")

    ext = os.path.splitext(file_path.rstrip("/\\"))[1].lower()
    if ext not in _SUPPORTED_EXTS and os.path.isdir(file_path):
        # A Zarr store without the conventional suffix is still recognisable by its metadata.
        if any(os.path.exists(os.path.join(file_path, f)) for f in ("zarr.json", ".zarray")):
            ext = ".zarr"
    if ext not in _SUPPORTED_EXTS:
        raise ValueError(
            f"cannot read {file_path!r}: unknown extension {ext or '(none)'!r}; supported: "
            f"{', '.join(_SUPPORTED_EXTS)}"
        )
    if ext in _PARQUET_EXTS or ext in _CSV_EXTS:
        _reject_options(file_path, f"{ext} files", dataset=member)
        reader = _parquet_source if ext in _PARQUET_EXTS else _csv_source
        with _reading(file_path):
            return reader(file_path, batch_size, columns)
    _reject_options(file_path, f"{ext} files", columns=columns)
    with _reading(file_path):
        if ext == ".npy":
            _reject_options(file_path, ".npy files", dataset=member)
            array = np.load(file_path, mmap_mode="r")
            return _array_source(array, batch_size, kind="npy", name=file_path)
        if ext in _NPZ_EXTS:
            return _npz_source(file_path, member, batch_size)
        if ext in _H5_EXTS:
            return _hdf5_source(file_path, member, batch_size)
        return _zarr_source(file_path, member, batch_size)


def _npz_source(path, member, batch_size):
    with zipfile.ZipFile(path) as zf:
        members = [n[: -len(".npy")] for n in zf.namelist() if n.endswith(".npy")]
        if member is None:
            member = _only_member(path, members, "member")
        member = member.removesuffix(".npy")
        if member not in members:
            raise ValueError(
                f"{path!r} has no member {member!r}; available: {_list_names(members)}"
            )
        # Read only the .npy header of the member: shape and dtype without loading the data.
        with zf.open(member + ".npy") as f:
            shape, dtype = _read_npy_header(f)
    name = f"{path}:{member}"
    lazy = _LazyNpzMember(path, member)
    if shape is None:  # unusual header version: fall back to loading the member now
        shape, dtype = lazy.load().shape, lazy.load().dtype
    return _sliced(
        lambda: contextlib.nullcontext(lazy.load()), "npz", name, shape, dtype, batch_size
    )


class _LazyNpzMember:
    """Load an npz member on first use, once (shared by re-batched copies of a source)."""

    def __init__(self, path, member):
        self.path, self.member = path, member
        self._array = None
        self._lock = threading.Lock()

    def load(self):
        with self._lock:
            if self._array is None:
                with np.load(self.path) as npz:
                    self._array = npz[self.member]
            return self._array


def _read_npy_header(f):
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        return None, None
    return shape, dtype


def _hdf5_source(path, member, batch_size):
    h5py = _import_optional("h5py", "HDF5")
    with h5py.File(path, "r") as f:
        if member is None:
            member = _only_member(path, _h5_datasets(h5py, f), "dataset")
        if not isinstance(f.get(member), h5py.Dataset):
            raise ValueError(
                f"HDF5 file {path!r} has no dataset {member!r}; available datasets: "
                f"{_list_names(_h5_datasets(h5py, f))}"
            )
        ds = f[member]
        shape, dtype, chunks = ds.shape, ds.dtype, ds.chunks

    name = f"{path}:{member}"

    @contextlib.contextmanager
    def opener():
        with h5py.File(path, "r") as f:
            yield f[member]

    chunk_rows = chunks[0] if chunks else None
    return _sliced(opener, "hdf5", name, shape, dtype, batch_size, chunk_rows)


def _h5_datasets(h5py, f):
    names = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def _zarr_source(path, member, batch_size):
    zarr = _import_optional("zarr", "Zarr")
    root = zarr.open(path, mode="r")
    if isinstance(root, zarr.Array):
        if member is not None:
            raise ValueError(f"Zarr store {path!r} is a single array; it has no {member!r}")
        array = root
    else:
        if member is None:
            member = _only_member(path, sorted(root.array_keys()), "array")
        try:
            array = root[member]
        except KeyError:
            array = None
        if not isinstance(array, zarr.Array):
            raise ValueError(
                f"Zarr store {path!r} has no array {member!r}; arrays at its top level: "
                f"{_list_names(sorted(root.array_keys()))}"
            )
    name = path if member is None else f"{path}:{member}"
    # With sharding, a shard is the unit of storage I/O, so align to shards rather than chunks.
    chunks = getattr(array, "shards", None) or array.chunks

    def opener():
        node = zarr.open(path, mode="r")
        return contextlib.nullcontext(node if member is None else node[member])

    chunk_rows = chunks[0] if chunks else None
    return _sliced(opener, "zarr", name, array.shape, np.dtype(array.dtype), batch_size, chunk_rows)


def _parquet_source(path, batch_size, columns):
    _import_optional("pyarrow", "Parquet")
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as pf:
            schema, n_rows = pf.schema_arrow, pf.metadata.num_rows
    except pa.ArrowException as exc:
        raise ValueError(f"could not read Parquet file {path!r}: {exc}") from exc
    if columns is None:
        # pandas may store its index as a column; it is not a feature.
        index_cols = (schema.pandas_metadata or {}).get("index_columns", [])
        columns = [n for n in schema.names if n not in index_cols]
    types = _arrow_column_types(path, schema, columns)
    dtype, arrow_type = _arrow_output_type(types)
    batch_size = batch_size or _default_batch_size(len(columns))

    @contextlib.contextmanager
    def open_batches():
        with pq.ParquetFile(path) as pf:
            yield pf.iter_batches(batch_size=batch_size, columns=columns)

    return _ArrowSource(
        open_batches,
        arrow_type,
        kind="parquet",
        name=path,
        n_features=len(columns),
        dtype=dtype,
        n_samples=n_rows,
        batch_size=batch_size,
    )


def _csv_source(path, batch_size, columns):
    _import_optional("pyarrow", "CSV")
    import pyarrow as pa
    import pyarrow.csv as pcsv

    read_options = pcsv.ReadOptions(block_size=_CSV_BLOCK_BYTES)
    # Column types are inferred from the first block only.  Read it once now to check the
    # columns, then fix the types for the real passes: an integer-looking column that has a
    # decimal point further down must not fail the stream halfway through.
    try:
        with pcsv.open_csv(path, read_options=read_options) as reader:
            schema = reader.schema
    except pa.ArrowException as exc:
        raise ValueError(f"could not read CSV file {path!r}: {exc}") from exc
    columns = list(schema.names) if columns is None else columns
    types = _arrow_column_types(path, schema, columns, allow_null=True)
    column_types = {
        c: pa.bool_() if pa.types.is_boolean(t) else pa.float64()
        for c, t in zip(columns, types, strict=True)
    }
    convert_options = pcsv.ConvertOptions(include_columns=columns, column_types=column_types)
    batch_size = batch_size or _default_batch_size(len(columns))

    def open_batches():
        return pcsv.open_csv(path, read_options=read_options, convert_options=convert_options)

    return _ArrowSource(
        open_batches,
        pa.float64(),
        kind="csv",
        name=path,
        n_features=len(columns),
        dtype=np.float64,  # CSV text is parsed as float64
        n_samples=None,
        batch_size=batch_size,
    )


def _arrow_column_types(path, schema, columns, allow_null=False):
    import pyarrow as pa

    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise ValueError(
            f"column(s) {missing} not found in {path!r}; available columns: "
            f"{_list_names(schema.names)}"
        )
    types = [schema.field(c).type for c in columns]
    for c, t in zip(columns, types, strict=True):
        numeric = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
        if not (numeric or (allow_null and pa.types.is_null(t))):
            raise TypeError(
                f"column {c!r} of {path!r} has non-numeric type {t}; only int, float and bool "
                "columns can be used (select numeric columns with columns=[...])"
            )
    return types


def _arrow_output_type(types):
    import pyarrow as pa

    if all(t == pa.float32() for t in types):
        return np.dtype(np.float32), pa.float32()
    return np.dtype(np.float64), pa.float64()


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def release_pages(view: np.ndarray) -> bool:
    """Drop the pages under ``view`` from this process's resident set, if it is file-mapped.

    ``view`` must be a contiguous array whose base chain ends in an :class:`mmap.mmap` (a slice
    of :func:`numpy.load` with ``mmap_mode`` or of :class:`numpy.memmap`, or a view of one).
    ``madvise(MADV_DONTNEED)`` unmaps the pages from the process only: they stay in the page
    cache, so reading them again is a cheap page fault, and for shared writable mappings (the
    ``.npy`` outputs of :func:`fastgmm.streaming.score_into`) the written data is already in
    the page cache and is not lost. Pages at the edges of ``view`` are released whole. Never call
    it on a private (copy-on-write, ``mmap_mode='c'``) mapping that was written to: its changes
    would be lost.

    Returns
    -------
    bool
        True if pages were released; False for ordinary memory or where the platform has no
        ``madvise`` (nothing to do there).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from fastgmm.sources import release_pages
    >>> path = os.path.join(tempfile.mkdtemp(), "X.npy")
    >>> np.save(path, np.ones((1000, 4)))
    >>> chunk = np.load(path, mmap_mode="r")[:500]
    >>> total = float(chunk.sum())  # reading maps the pages in
    >>> _ = release_pages(chunk)  # True on Linux: the pages leave the resident set ...
    >>> float(chunk.sum()) == total  # ... and are read again from the page cache
    True
    >>> release_pages(np.ones(10))  # ordinary memory: nothing to do
    False
    """
    base = view
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    if base is None or not hasattr(base, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return False
    if base.closed or view.nbytes == 0:
        return False
    mapping_start = np.frombuffer(base, dtype=np.uint8).ctypes.data
    begin = view.ctypes.data - mapping_start
    end = begin + view.nbytes
    page = mmap.PAGESIZE
    begin -= begin % page
    end = min(len(base), -(-end // page) * page)
    base.madvise(mmap.MADV_DONTNEED, begin, end - begin)
    return True


def _writable(chunks):
    """Copy read-only chunks (views of a memory-mapped file) and release their mapped pages."""
    for offset, chunk in chunks:
        if not chunk.flags.writeable:
            owned = np.array(chunk, order="C")
            release_pages(chunk)
            chunk = owned
        yield offset, chunk


def _prefetch(items, name):
    """Run generator ``items`` in a background thread, one item ahead of the consumer."""
    q = queue.Queue(maxsize=_PREFETCH_DEPTH)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put((item, None))
            q.put((done, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            q.put((None, exc))
        finally:
            items.close()  # in this thread: a generator must not run in two threads at once

    thread = threading.Thread(target=produce, name=f"fastgmm-prefetch {name}", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if exc is not None:
                raise exc
            if item is done:
                return
            yield item
    finally:
        # Also reached when the consumer stops early.  Tell the producer to stop and keep
        # draining the queue so that it cannot stay blocked in put(); then join it.
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.01)
        thread.join()


# Conditions of the system rather than of the file's contents, and errors that already say what
# to do: these pass through _reading unchanged.
_PASS_THROUGH = (FileNotFoundError, PermissionError, IsADirectoryError, ImportError, MemoryError)


@contextlib.contextmanager
def _reading(name, active=True):
    """Turn a reader's failure on a damaged file into a ValueError that names the file.

    A truncated or corrupted file makes each library fail in its own way (zipfile.BadZipFile,
    h5py's KeyError and RuntimeError, pyarrow's OSError, numpy's SyntaxError from a mangled
    header, ...). Callers should see one kind of error, with the path in it.
    """
    if not active:
        yield
        return
    try:
        yield
    except _PASS_THROUGH:
        raise
    except (ValueError, TypeError) as exc:
        if name in str(exc):
            raise  # one of ours, or already explicit about the file
        kind = ValueError if isinstance(exc, ValueError) else TypeError  # not a subclass:
        raise kind(f"could not read {name}: {exc}") from exc  # their signatures vary
    except Exception as exc:
        raise ValueError(
            f"could not read {name}: the file is damaged or not in the expected format "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def _rebatch(chunks, size):
    """Re-cut a stream of 2-D arrays into chunks of exactly ``size`` rows (last: fewer)."""
    pending, n_pending = [], 0
    for chunk in chunks:
        pending.append(chunk)
        n_pending += len(chunk)
        if n_pending < size:
            continue
        # A lone pending chunk is sliced without copying; several are joined once.
        data = pending[0] if len(pending) == 1 else np.concatenate(pending)
        n_full = n_pending - n_pending % size
        for start in range(0, n_full, size):
            yield data[start : start + size]
        pending = [data[n_full:]] if n_full < n_pending else []
        n_pending -= n_full
    if n_pending:
        yield pending[0] if len(pending) == 1 else np.concatenate(pending)


def _timed(chunks, source):
    """``chunks``, emitting a ``"source.chunk"`` event with the time each took to produce."""
    while True:
        start = time.perf_counter()
        chunk = next(chunks, None)
        if chunk is None:
            return
        _events.emit(
            "source.chunk", source=source, n_rows=len(chunk), seconds=time.perf_counter() - start
        )
        yield chunk


def _is_empty(chunk):
    # A (0, k) chunk has no rows whatever k is; a 1-D np.array([]) is an empty chunk too.
    # A (m, 0) chunk is *not* empty: it has the wrong number of columns.
    return chunk.shape[0] == 0 if chunk.ndim == 2 else chunk.ndim == 1 and chunk.size == 0


def _check_finite(chunk, index, offset, name, allow_nan=False):
    # Fast path: the sum of finite values is finite (barring overflow, which the exact check
    # below then clears), and NaN/inf propagate.  Avoids a full boolean mask per chunk.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(chunk, axis=None)):
            return
    if allow_nan:
        _check_missing(chunk, index, offset, name)
        return
    bad = ~np.isfinite(chunk)
    count = int(np.count_nonzero(bad))
    if count:
        row, col = divmod(int(np.argmax(bad.ravel())), chunk.shape[1])
        raise ValueError(
            f"Input contains NaN or infinity in chunk {index} (rows {offset}.."
            f"{offset + len(chunk) - 1}) of {name}: {count} non-finite values, first at row "
            f"{offset + row}, column {col}"
        )


def _check_missing(chunk, index, offset, name):
    """NaN allowed: refuse infinity, and rows without any observed entry."""
    where = f"chunk {index} (rows {offset}..{offset + len(chunk) - 1}) of {name}"
    infinite = np.isinf(chunk)
    if infinite.any():
        row, col = divmod(int(np.argmax(infinite.ravel())), chunk.shape[1])
        raise ValueError(
            f"Input contains infinity in {where}: {int(np.count_nonzero(infinite))} infinite "
            f"values, first at row {offset + row}, column {col} (NaN is a missing value here, "
            "infinity is not)"
        )
    empty = np.isnan(chunk).all(axis=1)
    if empty.any():
        raise ValueError(
            f"Row {offset + int(np.argmax(empty))} of {name} has no observed value (all "
            f"{chunk.shape[1]} entries are NaN; {int(empty.sum())} such row(s) in {where}): "
            "a row needs at least one observed entry. Remove these rows."
        )


def _check_narrowing(chunk, out, where):
    """Refuse finite values that became infinite when cast to the source's (float32) dtype."""
    overflowed = np.isinf(out) & np.isfinite(chunk)
    if overflowed.any():
        value = float(chunk[np.unravel_index(int(np.argmax(overflowed)), chunk.shape)])
        raise ValueError(
            f"{where} has values beyond the float32 range ({value!r}), but the source yields "
            f"float32 because its first chunk was float32; yield float64 chunks throughout"
        )


def _output_dtype(dtype, where):
    """dtype that chunks of input ``dtype`` are yielded as, or TypeError if not numeric."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and dtype.itemsize in (4, 8):
        return np.dtype(np.float32 if dtype.itemsize == 4 else np.float64)
    if dtype.kind in "fiub":
        return np.dtype(np.float64)
    if dtype.kind == "c":
        raise TypeError(f"{where} has complex dtype {dtype}; complex data is not supported")
    raise TypeError(f"{where} has non-numeric dtype {dtype}; expected int, float or bool data")


def _default_batch_size(n_features, chunk_rows=None):
    rows = min(DEFAULT_BATCH_SIZE, max(64, _MAX_CHUNK_BYTES // (8 * max(1, n_features))))
    if chunk_rows:
        # Whole storage chunks per read: a chunk split across two reads is decoded twice.
        rows = chunk_rows * max(1, math.ceil(rows / chunk_rows))
    return rows


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size must be a positive integer, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    return int(batch_size)


def _check_random_state(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state
    from sklearn.utils import check_random_state  # scikit-learn is a core dependency

    return check_random_state(random_state)


def _only_member(path, available, what):
    """The member to use when none was named: allowed only if there is exactly one."""
    if len(available) == 1:
        return available[0]
    raise ValueError(
        f"{path!r} holds {'several' if available else 'no'} arrays; choose the {what} with "
        f"dataset=... or '{path}:<{what}>' (available: {_list_names(available)})"
    )


def _list_names(names, limit=20):
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return (shown + more) or "(none)"


def _reject_options(name, what, **options):
    given = [k for k, v in options.items() if v is not None]
    if given:
        raise ValueError(f"{given[0]}= is not supported for {what} ({name})")


def _import_optional(module, what):
    try:
        return __import__(module)
    except ImportError as exc:
        raise ImportError(
            f"reading {what} files requires the optional dependency {module!r}, which is not "
            f"installed; install it with: pip install 'fastgmm[io]'"
        ) from exc
