"""The library's named events (fastgmm._events): who emits what, and listening from threads."""

import contextlib
import threading

import numpy as np
import pytest

from fastgmm import GaussianMixture, _events
from fastgmm.sources import open_source


@contextlib.contextmanager
def recording(*names):
    """Record ``(name, payload, thread name)`` of every event of ``names``, checking payloads."""
    heard = []

    def listener_for(name):
        def listener(**payload):
            assert set(payload) == set(_events.EVENTS[name]), name
            heard.append((name, payload, threading.current_thread().name))

        return listener

    with contextlib.ExitStack() as stack:
        for name in names:
            stack.enter_context(_events.listen(name, listener_for(name)))
        yield heard


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 1.5])


def test_a_streamed_fit_emits_chunks_initialisations_and_iterations(X):
    source = open_source(X, batch_size=128)
    gm = GaussianMixture(2, n_init=2, random_state=0, n_jobs=1)
    with recording(*_events.EVENTS) as heard:
        gm.fit(source)
    names = [name for name, _, _ in heard]

    chunks = [(payload, thread) for name, payload, thread in heard if name == "source.chunk"]
    assert all(payload["source"] is source for payload, _ in chunks)
    assert [payload["n_rows"] for payload, _ in chunks[:5]] == [128, 128, 128, 128, 88]
    assert sum(payload["n_rows"] for payload, _ in chunks) % len(X) == 0  # whole passes
    assert all(payload["seconds"] >= 0 for payload, _ in chunks)
    # Prefetching reads in a background thread: the events come from there.
    assert all(thread.startswith("fastgmm-prefetch") for _, thread in chunks)

    fit_events = [(name, payload) for name, payload, _ in heard if name != "source.chunk"]
    assert all(payload["estimator"] is gm for _, payload in fit_events)
    # Per restart: start, end, then iterations 1, 2, ... of that restart.
    restarts = []
    for name, payload in fit_events:
        if name == "init.start":
            restarts.append([])
            assert payload["init"] == len(restarts) - 1
        elif name == "init.end":
            assert payload["init"] == len(restarts) - 1 and payload["seconds"] >= 0
            assert restarts[-1] == []
        else:
            restarts[-1].append(payload["n_iter"])
    assert len(restarts) == 2
    assert all(iterations == list(range(1, len(iterations) + 1)) for iterations in restarts)
    assert gm.n_iter_ in {len(iterations) for iterations in restarts}
    assert names.index("init.end") > names.index("init.start")


def test_a_span_ends_also_when_its_block_raises():
    heard = []
    with _events.listen("init.start", lambda **payload: heard.append("start")):
        with _events.listen("init.end", lambda **payload: heard.append("end")):
            with pytest.raises(KeyError), _events.span("init", estimator=None, init=0):
                raise KeyError
    assert heard == ["start", "end"]


def test_a_pass_is_timed_only_while_someone_listens(X, monkeypatch):
    from fastgmm import sources

    wrapped = []

    def spy(chunks, source):
        wrapped.append(source)
        return chunks

    monkeypatch.setattr(sources, "_timed", spy)
    source = open_source(X, batch_size=128)
    source.to_array()
    assert wrapped == []
    with _events.listen("source.chunk", lambda **payload: None):
        assert _events.listening("source.chunk")
        source.to_array()
    assert wrapped == [source]
    assert not _events.listening("source.chunk")  # no entry left behind


def test_listen_refuses_unknown_names_and_counts_registrations():
    with pytest.raises(ValueError, match=r"unknown event 'em\.iter'"):
        with _events.listen("em.iter", print):
            pass
    heard = []

    def listener(**payload):
        heard.append(payload["n_iter"])

    with _events.listen("em.iteration", listener):
        with _events.listen("em.iteration", listener):
            _events.emit("em.iteration", estimator=None, n_iter=1, change=0.0)
        _events.emit("em.iteration", estimator=None, n_iter=2, change=0.0)
    _events.emit("em.iteration", estimator=None, n_iter=3, change=0.0)
    assert heard == [1, 1, 2]
    assert not _events.listening("em.iteration")


def test_a_listener_error_reaches_the_emitter(X):
    def broken(**payload):
        raise RuntimeError("listener bug")

    with _events.listen("source.chunk", broken), pytest.raises(RuntimeError, match="listener"):
        # Raised in the prefetch thread, re-raised in the consumer.
        open_source(X, batch_size=128).to_array()


def test_listening_and_emitting_from_many_threads():
    counts = [0] * 8
    start = threading.Barrier(16)

    def listener_thread(i):
        def listener(**payload):
            counts[i] += 1

        start.wait()
        for _ in range(200):
            with _events.listen("em.iteration", listener):
                _events.emit("em.iteration", estimator=None, n_iter=i, change=0.0)

    def emitter_thread():
        start.wait()
        for _ in range(2000):
            _events.emit("em.iteration", estimator=None, n_iter=-1, change=0.0)

    threads = [threading.Thread(target=listener_thread, args=(i,)) for i in range(8)]
    threads += [threading.Thread(target=emitter_thread) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Each listener heard at least its own 200 events; nothing is left registered.
    assert all(count >= 200 for count in counts)
    assert not _events.listening("em.iteration")
