"""Progress bars of the ``fastgmm`` command: one tqdm bar per pass on a terminal, none elsewhere.

The command runs in subprocesses whose stderr is a pseudo-terminal (``os.openpty``), exactly as
in an interactive shell, and again with stderr on a pipe, as in a batch job. The pseudo-terminal
is put in raw mode, so that what the program writes arrives unchanged (no ``\\n`` -> ``\\r\\n``):
every ``\\r`` in the captured text was written by the bars.
"""

import contextlib
import fcntl
import io
import json
import os
import re
import struct
import subprocess
import sys
import termios
import threading
import tty

import numpy as np
import pytest
from tqdm import tqdm

from fastgmm.cli._progress import MISSING_TQDM_HINT, PassBars, pass_bars
from fastgmm.sources import ChunkSource, open_source

N_ROWS = 3000


def _env(**extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NUMBA_NUM_THREADS", "SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS")
        and not k.startswith("TQDM_")  # tqdm reads its defaults from TQDM_* variables
    }
    env.update(extra)
    return env


def on_terminal(*args, env=None):
    """``python -m fastgmm ARGS`` with stderr on a pseudo-terminal; (code, stdout, stderr)."""
    leader, follower = os.openpty()
    try:
        tty.setraw(follower)
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastgmm", *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=follower,
            env=env or _env(),
        )
    finally:
        os.close(follower)  # the child holds the only copy: its exit ends the reads below
    received = []

    def read():
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            received.append(data)

    reader = threading.Thread(target=read)
    reader.start()  # read while the child runs: a full terminal buffer would block it
    try:
        stdout, _ = proc.communicate(timeout=300)
    finally:
        reader.join(timeout=60)
        os.close(leader)
    return proc.returncode, stdout.decode(), b"".join(received).decode()


def on_pipe(*args, env=None):
    """The same command with stderr on a pipe (a batch job's log)."""
    proc = subprocess.run(
        [sys.executable, "-m", "fastgmm", *map(str, args)],
        capture_output=True,
        text=True,
        env=env or _env(),
        timeout=300,
    )
    return proc.returncode, proc.stdout, proc.stderr


def rendered(text):
    """The lines a terminal shows for ``text``: ``\\r`` returns to column 0 and overwrites."""
    lines = []
    for line in text.split("\n"):
        cells = []
        for i, piece in enumerate(line.split("\r")):
            column = 0 if i else len(cells)
            for char in piece:
                if column < len(cells):
                    cells[column] = char
                else:
                    cells.append(char)
                column += 1
        lines.append("".join(cells).rstrip())
    return lines


def without_timings(lines):
    return [re.sub(r"time lapse [0-9.]+s", "time lapse Ts", line) for line in lines]


def bar_descriptions(stderr):
    """The description of every bar drawn, in order (a bar redrawn is listed once).

    tqdm draws ``\\r<description>: <percent>%|<bar>| ...`` when it knows the total and
    ``\\r<description>: <count>rows [...]`` when it does not.
    """
    found = re.findall(
        r"\r([A-Za-z][A-Za-z ]*?(?: pass \d+)?): +(?:\d+%\||[0-9.]+[kMG]?rows)", stderr
    )
    return list(dict.fromkeys(found))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two overlapping clusters (so that EM takes several iterations), as .npy and .csv."""
    root = tmp_path_factory.mktemp("progress")
    rng = np.random.default_rng(1)
    shift = np.array([1.5, 0.5])
    X = np.concatenate(
        [rng.normal(size=(N_ROWS // 2, 2)), rng.normal(size=(N_ROWS // 2, 2)) + shift]
    )
    np.save(root / "X.npy", X)
    np.savetxt(root / "X.csv", X, delimiter=",", header="a,b", comments="", fmt="%.17g")
    return root, X


@pytest.fixture(scope="module")
def fitted(data):
    """The same fit with stderr on a terminal and on a pipe."""
    root, _ = data
    runs = {}
    for name, runner in (("terminal", on_terminal), ("pipe", on_pipe)):
        model = root / f"{name}.npz"
        args = ("fit", root / "X.npy", "-k", 2, "--seed", 0, "--threads", 1, "--json")
        runs[name] = (*runner(*args, "--verbose-interval", 1, "--out", model), model)
    return runs


# ------------------------------------------------------------------------------ end to end
def test_fit_on_a_terminal_draws_a_bar_per_pass(fitted):
    code, stdout, stderr, _ = fitted["terminal"]
    assert code == 0, stderr
    n_iter = json.loads(stdout)["model"]["n_iter"]
    assert n_iter >= 3  # overlapping clusters: several EM passes to see
    # The k-means initialisation's passes (its sample, ...), one bar per EM iteration, and the
    # scoring pass for BIC and AIC.
    descriptions = bar_descriptions(stderr)
    n_init_passes = sum(d.startswith("init pass") for d in descriptions)
    assert n_init_passes >= 1
    expected = [f"init pass {i}" for i in range(1, n_init_passes + 1)]
    expected += [f"EM pass {i}" for i in range(1, n_iter + 1)]
    assert descriptions == [*expected, "scoring"]
    assert stderr.count("rows/s") >= len(expected) + 1  # unit: rows
    assert stderr.count(f"/{N_ROWS / 1000:.2f}k") >= len(expected) + 1  # the total is known


def test_terminal_bars_are_erased_and_leave_the_batch_log(fitted):
    """What stays on the terminal is the log of the batch run, line for line."""
    _, _, terminal, terminal_model = fitted["terminal"]
    code, _, piped, piped_model = fitted["pipe"]
    assert code == 0, piped
    terminal = terminal.replace(str(terminal_model), "MODEL")
    piped = piped.replace(str(piped_model), "MODEL")
    assert "\r" not in piped and "rows/s" not in piped and "pass 1" not in piped
    assert without_timings(rendered(terminal)) == without_timings(rendered(piped))
    # The verbose lines (one per --verbose-interval iteration) are in both.
    assert len(re.findall(r"^  Iteration \d+\t", piped, flags=re.M)) >= 3


def test_a_terminal_does_not_change_the_model(fitted):
    outputs = {}
    for name, (code, stdout, stderr, model) in fitted.items():
        assert code == 0, stderr
        payload = json.loads(stdout)
        with np.load(model) as arrays:
            outputs[name] = (
                payload["model"],
                {key: arrays[key] for key in arrays.files if key != "header"},
            )
    (report_tty, arrays_tty), (report_pipe, arrays_pipe) = outputs["terminal"], outputs["pipe"]
    assert report_tty == report_pipe
    assert arrays_tty.keys() == arrays_pipe.keys() and arrays_tty
    for key, value in arrays_tty.items():
        np.testing.assert_array_equal(value, arrays_pipe[key], err_msg=key)


def test_predict_a_csv_on_a_terminal(data, fitted):
    """A CSV's rows are counted first (a bar without a total), then predicted (with one)."""
    root, _ = data
    model = fitted["pipe"][3]
    labels = {}
    for name, runner in (("terminal", on_terminal), ("pipe", on_pipe)):
        out = root / f"labels_{name}.npy"
        code, _, stderr = runner("predict", model, root / "X.csv", "--threads", 1, "--out", out)
        assert code == 0, stderr
        labels[name] = np.load(out)
        if name == "terminal":
            assert bar_descriptions(stderr) == ["counting rows", "predicting"]
            counting = stderr[stderr.index("\rcounting rows") : stderr.index("\rpredicting")]
            assert "rows [" in counting and "/" not in counting.split("rows [")[0]
            assert f"/{N_ROWS / 1000:.2f}k" in stderr[stderr.index("\rpredicting") :]
        else:
            assert "\r" not in stderr and "rows/s" not in stderr
    np.testing.assert_array_equal(labels["terminal"], labels["pipe"])
    assert labels["terminal"].shape == (N_ROWS,)


def test_select_and_outliers_on_a_terminal(data):
    root, _ = data
    results = {}
    for name, runner in (("terminal", on_terminal), ("pipe", on_pipe)):
        code, stdout, stderr = runner(
            "select",
            root / "X.npy",
            "-k",
            "1:2",
            "--covariance",
            "diag",
            "--seed",
            0,
            "--threads",
            1,
            "--json",
            "--out",
            root / f"select_{name}.npz",
        )
        assert code == 0, stderr
        results[name] = json.loads(stdout)["results"]
        if name == "terminal":
            descriptions = bar_descriptions(stderr)
            assert descriptions[0] == "select pass 1" and len(descriptions) >= 3
            assert descriptions == [f"select pass {i}" for i in range(1, len(descriptions) + 1)]
            # The table, on the same terminal after the bars, is intact.
            lines = rendered(stderr)
            assert any(line.startswith("covariance    K") for line in lines)
            assert sum(line.endswith("<- best BIC") for line in lines) == 1
        else:
            assert "\r" not in stderr and "pass 1" not in stderr
    for row in (*results["terminal"], *results["pipe"]):
        row.pop("fit_seconds")
    assert results["terminal"] == results["pipe"]

    # A CSV converted to float32 while reading: the conversion's first read, the fit's passes
    # (counting rows included), the threshold's pass, then the flagging pass.
    flags = {}
    for name, runner in (("terminal", on_terminal), ("pipe", on_pipe)):
        out = root / f"flags_{name}.npy"
        code, _, stderr = runner(
            "outliers",
            root / "X.csv",
            "-k",
            2,
            "--contamination",
            0.02,
            "--dtype",
            "float32",
            "--seed",
            0,
            "--threads",
            1,
            "--out",
            out,
        )
        assert code == 0, stderr
        flags[name] = np.load(out)
        if name == "terminal":
            descriptions = bar_descriptions(stderr)
            assert descriptions[0] == "reading" and descriptions[-1] == "flagging"
            fit_passes = descriptions[1:-1]
            assert fit_passes == [f"fit pass {i}" for i in range(1, len(fit_passes) + 1)]
            assert len(fit_passes) >= 4
        else:
            assert "\r" not in stderr and "rows/s" not in stderr
    np.testing.assert_array_equal(flags["terminal"], flags["pipe"])
    assert 0 < np.count_nonzero(flags["terminal"] == -1) < N_ROWS // 10


def test_quiet_terminal_gets_nothing(data, tmp_path):
    root, _ = data
    code, stdout, stderr = on_terminal(
        "fit",
        root / "X.npy",
        "-k",
        2,
        "--seed",
        0,
        "--threads",
        1,
        "-q",
        "--out",
        tmp_path / "m.npz",
    )
    assert code == 0
    assert stderr == ""
    assert stdout.startswith("fit: 2 full components")


def test_terminal_without_tqdm_gets_the_log_lines_and_one_hint(data, tmp_path):
    """A tqdm that cannot be imported (shadowed on PYTHONPATH): no bars, one hint line."""
    root, _ = data
    shadow = tmp_path / "shadow" / "tqdm"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('tqdm is not installed')\n")
    path = os.pathsep.join(filter(None, [str(shadow.parent), os.environ.get("PYTHONPATH")]))
    args = ("fit", root / "X.npy", "-k", 2, "--seed", 0, "--threads", 1, "--verbose-interval", 1)
    code, _, stderr = on_terminal(*args, "--out", tmp_path / "m.npz", env=_env(PYTHONPATH=path))
    assert code == 0, stderr
    assert stderr.count(MISSING_TQDM_HINT) == 1
    assert "\r" not in stderr and "rows/s" not in stderr
    assert len(re.findall(r"^  Iteration \d+\t", stderr, flags=re.M)) >= 3


# ------------------------------------------------------------------------------- in process
class _Terminal(io.StringIO):
    def isatty(self):
        super().isatty()  # raises ValueError once closed, as a real file does
        return True


def test_pass_bars_only_on_a_terminal_and_not_quiet(monkeypatch):
    assert pass_bars(_Terminal()).active
    assert not pass_bars(io.StringIO()).active
    assert not pass_bars(_Terminal(), quiet=True).active
    closed = _Terminal()
    closed.close()  # isatty() raises ValueError on a closed stream
    assert not pass_bars(closed).active
    # Without tqdm: inert, and the hint is logged only where a bar would have been drawn
    # (tqdm is not even looked for elsewhere).
    monkeypatch.setitem(sys.modules, "tqdm", None)
    logged = []
    assert not pass_bars(io.StringIO(), log=logged.append).active
    assert logged == []
    assert not pass_bars(_Terminal(), log=logged.append).active
    assert logged == [MISSING_TQDM_HINT]


class _Recording(tqdm):
    """A tqdm that records each bar's description, count and total when it is closed."""

    closed = []

    def close(self):
        if not self.disable:  # tqdm disables a bar once closed; close() may run twice
            _Recording.closed.append((self.desc, self.n, self.total))
        super().close()


def test_wrap_keeps_the_source_class_and_counts_rows(data):
    root, X = data
    csv = open_source(root / "X.csv", batch_size=1000)
    assert PassBars(None, io.StringIO()).wrap(csv) is csv  # inert: the source itself
    out = io.StringIO()
    _Recording.closed.clear()
    bars = PassBars(_Recording, out)
    wrapped = bars.wrap(csv)
    assert isinstance(wrapped, type(csv)) and isinstance(wrapped, ChunkSource)
    assert type(wrapped) is not type(csv) and wrapped.n_samples is None
    bars.phase("counting rows", numbered=False)
    assert sum(len(chunk) for _, chunk in wrapped.iter_chunks()) == N_ROWS
    assert wrapped.n_samples == N_ROWS and csv.n_samples is None  # recorded on the copy
    bars.phase("sampling")
    rows, indices = wrapped.reservoir_sample(10, random_state=0)  # a pass too
    np.testing.assert_array_equal(rows, X[indices])
    assert bar_descriptions(out.getvalue()) == ["counting rows", "sampling pass 1"]
    # Every row counted; the row count of the first pass is the total of the next.
    assert _Recording.closed == [
        ("counting rows", N_ROWS, None),
        ("sampling pass 1", N_ROWS, N_ROWS),
    ]
    with pytest.raises(TypeError, match="expected a ChunkSource"):
        bars.wrap(X)


def test_an_abandoned_pass_closes_its_bar_and_prefetch_thread(data):
    root, _ = data
    bars = PassBars(tqdm, io.StringIO())
    wrapped = bars.wrap(open_source(root / "X.npy", batch_size=500))
    chunks = wrapped.iter_chunks(prefetch=True)
    next(chunks)
    assert len(tqdm._instances) == 1
    chunks.close()
    assert len(tqdm._instances) == 0
    assert not [t for t in threading.enumerate() if t.name.startswith("fastgmm-prefetch")]


def test_estimators_accept_a_wrapped_source(data):
    """fit, predict, select_model and the outlier detector read a wrapped source as any other."""
    from fastgmm import GaussianMixture, GaussianMixtureOutlierDetector, select_model

    root, X = data
    out = io.StringIO()
    bars = PassBars(tqdm, out)
    wrapped = bars.wrap(open_source(root / "X.npy", batch_size=1000))
    params = {"random_state": 0, "n_jobs": 1}
    gm = GaussianMixture(2, covariance_type="diag", **params)
    bars.phase("EM")
    gm.fit(wrapped)
    reference = GaussianMixture(2, covariance_type="diag", **params)
    reference.fit(open_source(root / "X.npy", batch_size=1000))
    np.testing.assert_array_equal(gm.means_, reference.means_)
    assert gm.lower_bounds_ == reference.lower_bounds_
    # Every pass of the fit drew a bar: the initialisation's, then one per EM iteration.
    descriptions = bar_descriptions(out.getvalue())
    assert descriptions == [f"EM pass {i}" for i in range(1, len(descriptions) + 1)]
    assert len(descriptions) > gm.n_iter_
    bars.phase("predicting", numbered=False)
    np.testing.assert_array_equal(gm.predict(wrapped), reference.predict(X))
    with contextlib.redirect_stdout(io.StringIO()):
        result = select_model(wrapped, n_components=[1, 2], covariance_types=("diag",), **params)
    assert result.best_estimator_.n_components == 2
    detector = GaussianMixtureOutlierDetector(
        2, covariance_type="diag", contamination=0.01, **params
    ).fit(wrapped)
    assert np.count_nonzero(detector.predict(X) == -1) > 0
    assert len(tqdm._instances) == 0  # every bar was closed
