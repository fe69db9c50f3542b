"""The scoring engine (scoring/_engine.py) on a Dask cluster that has no workers, or loses them
all while it scores: a clear error within the timeout, never a wait without end."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from crossentropy.scoring import InputError, score

distributed = pytest.importorskip("distributed")
pytest.importorskip("pyarrow")
engine = pytest.importorskip("crossentropy.scoring._engine")


@pytest.fixture
def table(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), 3000)
    y = np.array(list("abc"))[rng.integers(0, 3, 3000)]
    lines = ["y,a,b,c"] + [f"{t},{r[0]},{r[1]},{r[2]}" for t, r in zip(y, p, strict=True)]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _cluster(n_workers: int) -> object:
    return distributed.LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.CRITICAL,
    )


def test_a_cluster_without_workers_is_an_error(table: Path, monkeypatch) -> None:
    monkeypatch.setattr(engine, "WORKER_TIMEOUT", 1.5)
    with _cluster(0) as cluster:
        start = time.monotonic()
        with pytest.raises(InputError, match="has no workers"):
            score(table, target="y", engine="dask", scheduler=cluster.scheduler_address)
        assert time.monotonic() - start < 15


def test_an_address_without_a_port_or_of_another_scheme_is_one_line_at_once(table: Path) -> None:
    """An address that names no scheduler (no port, an unknown scheme) is refused before any
    client exists: one line, exit 2, no client's cleanup hanging the exit."""
    import subprocess
    import sys

    for address, needle in (
        ("localhost", "missing port number"),
        ("http://127.0.0.1:1", "unknown address scheme 'http'"),
    ):
        start = time.monotonic()
        argv = ["score", str(table), "--target", "y", "--engine", "dask", "--scheduler", address]
        out = subprocess.run(
            [sys.executable, "-m", "crossentropy", *argv],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 2
        assert needle in out.stderr
        assert len(out.stderr.splitlines()) == 1, out.stderr
        assert time.monotonic() - start < 15


@pytest.mark.parametrize("answer", [b"", b"HTTP/1.1 200 OK\r\n\r\nnot a scheduler"])
def test_a_port_that_is_no_scheduler_is_an_error_within_the_deadline(
    table: Path, monkeypatch, answer: bytes
) -> None:
    """A port that accepts the connection but never speaks Dask's protocol (a silent socket,
    a web server) ends with an error naming the address, not a wait without end."""
    import socket

    monkeypatch.setattr(engine, "CONNECT_DEADLINE", 2.0)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:  # closed
            return
        accepted.append(conn)
        if answer:
            conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    import dask

    default = dask.config.get("scheduler", None)
    try:
        start = time.monotonic()
        with pytest.raises(InputError, match="cannot connect to the Dask scheduler") as info:
            score(table, target="y", engine="dask", scheduler=address)
        assert time.monotonic() - start < 12
        assert address in str(info.value)
        assert dask.config.get("scheduler", None) == default  # no failed client left as it
    finally:
        server.close()
        for conn in accepted:
            conn.close()


def _default_client() -> object:
    try:
        return distributed.default_client()
    except ValueError:  # none
        return None


def test_a_failed_connection_leaves_no_client_and_no_scheduler_behind(
    table: Path, monkeypatch
) -> None:
    """The connection attempt that outlives its deadline ends later without leaving a client
    registered as the process's default: a notebook's client opened and closed afterwards
    puts dask's default scheduler back, and later computations do not go to a dead client
    (they waited without end)."""
    import socket

    import dask
    import dask.array

    monkeypatch.setattr(engine, "CONNECT_DEADLINE", 1.0)
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT", "2s")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    scheduler, client = dask.config.get("scheduler", None), _default_client()
    try:
        with pytest.raises(InputError, match="cannot connect to the Dask scheduler"):
            score(table, target="y", engine="dask", scheduler=address)
    finally:
        server.close()
    for thread in threading.enumerate():  # the attempt, which ends when its timeout passes
        if thread.name == "crossentropy-connect":
            thread.join(20)
    assert dask.config.get("scheduler", None) == scheduler
    assert _default_client() is client
    with _cluster(1) as cluster, distributed.Client(cluster):
        pass
    assert dask.config.get("scheduler", None) == scheduler
    assert float(dask.array.ones(4, chunks=2).sum().compute()) == 4.0


def test_no_garbage_collection_runs_while_an_event_loop_starts(table: Path, monkeypatch) -> None:
    """``distributed`` starts an event loop's thread under a class-wide lock that closing a
    ``Client`` takes too: a collection then, finding a client never closed, waited for the lock
    forever (a 600 s hang of the test suite). The engine starts its cluster and clients with
    automatic collection off, and closes the half-built client of a failed connection at once.
    """
    import gc
    import weakref

    from distributed.utils import LoopRunner

    real_start, collecting = LoopRunner._start_unlocked, []

    def start(self: object) -> None:
        collecting.append(gc.isenabled())
        real_start(self)

    made: list[weakref.ref[object]] = []

    class Recording(distributed.Client):  # type: ignore[misc]
        def __init__(self, *args: object, **kwargs: object) -> None:
            made.append(weakref.ref(self))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(LoopRunner, "_start_unlocked", start)
    monkeypatch.setattr(distributed, "Client", Recording)
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT", "1s")  # the refused port below
    assert gc.isenabled()
    score(table, target="y", engine="dask", bootstrap=0)
    assert collecting
    assert not any(collecting)
    assert gc.isenabled()

    collecting.clear()
    with _cluster(1) as cluster:
        score(table, target="y", engine="dask", scheduler=cluster.scheduler_address, bootstrap=0)
    assert collecting[-1] is False  # the engine's client; the cluster above is the test's
    assert gc.isenabled()

    made.clear()
    gc.collect()
    gc.disable()  # only the engine collects
    try:
        with pytest.raises(InputError, match="cannot connect"):
            score(table, target="y", engine="dask", scheduler="tcp://127.0.0.1:9")
        assert len(made) == 1
        assert made[0]() is None
    finally:
        gc.enable()


def test_overlapping_starts_keep_collection_off_until_the_last_ends() -> None:
    """Two threads' starts overlap: the first to end leaves collection off for the other; the
    last restores what was before (on, or off where the program had turned it off)."""
    import gc

    for before in (True, False):
        (gc.enable if before else gc.disable)()
        try:
            first, second = engine._no_collection(), engine._no_collection()
            first.__enter__()
            second.__enter__()
            first.__exit__(None, None, None)
            assert not gc.isenabled()
            second.__exit__(None, None, None)
            assert gc.isenabled() is before
        finally:
            gc.enable()


def test_the_engines_clients_are_never_the_process_default(table: Path, monkeypatch) -> None:
    """Every client the engine opens (to a given scheduler, or to its own local cluster) is
    made with ``set_as_default=False``: a client registered as the default outlives a failed
    or late connection and takes later Dask computations to a dead scheduler."""
    made: list[object] = []

    class Recording(distributed.Client):  # type: ignore[misc]
        def __init__(self, *args: object, **kwargs: object) -> None:
            made.append(kwargs.get("set_as_default", True))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(distributed, "Client", Recording)
    score(table, target="y", engine="dask", bootstrap=0)
    with _cluster(1) as cluster:
        score(table, target="y", engine="dask", scheduler=cluster.scheduler_address, bootstrap=0)
    assert made == [False, False]


def test_a_local_cluster_whose_event_loop_starts_late_is_started_again(
    table: Path, monkeypatch
) -> None:
    """``distributed`` gives the thread of a new cluster's event loop 10 s to start and then
    fails on a bare ``assert``: the engine starts the cluster once more, and a second failure
    is an ``InputError`` that says what did not start."""
    real, calls = distributed.LocalCluster, []

    def late_once(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise AssertionError
        return real(*args, **kwargs)

    monkeypatch.setattr(distributed, "LocalCluster", late_once)
    local = score(table, target="y", bootstrap=0)
    report = score(table, target="y", engine="dask", bootstrap=0)
    assert report.log_loss == pytest.approx(local.log_loss, rel=1e-14)
    assert len(calls) == 2

    def never(*args: object, **kwargs: object) -> object:
        calls.append(1)
        raise AssertionError

    calls.clear()
    monkeypatch.setattr(distributed, "LocalCluster", never)
    with pytest.raises(InputError, match="cannot start a local Dask cluster: its event loop"):
        score(table, target="y", engine="dask", bootstrap=0)
    assert len(calls) == 2


def test_a_client_or_a_cluster_is_taken_for_its_address(table: Path) -> None:
    """``scheduler=`` takes a ``distributed.Client`` (a notebook's) or a cluster: the scoring
    connects to its scheduler with a client of its own and leaves the user's open."""
    local = score(table, target="y")
    with _cluster(1) as cluster, distributed.Client(cluster) as client:
        for given in (client, cluster):
            report = score(table, target="y", engine="dask", scheduler=given)
            assert report.log_loss == pytest.approx(local.log_loss, rel=1e-14)
        assert client.status == "running"
        closed = distributed.Client(cluster)
        closed.close()  # no scheduler to name: said so (it said "got Client" of a Client)
        with pytest.raises(ValueError, match=r"^scheduler is a distributed.Client that is clo"):
            score(table, target="y", engine="dask", scheduler=closed)
    with pytest.raises(TypeError, match="scheduler"):
        score(table, target="y", engine="dask", scheduler=8786)
    # dask's own scheduler names are no address (read as one: "missing port number"), and an
    # empty address is no default (it started a local cluster)
    for name in ("threads", "synchronous", "processes"):
        with pytest.raises(ValueError, match=rf"^scheduler='{name}' names one of dask's local"):
            score(table, target="y", engine="dask", scheduler=name)
    with pytest.raises(ValueError, match=r"^scheduler is an empty address"):
        score(table, target="y", engine="dask", scheduler="")


def test_a_callers_cluster_keeps_its_log_levels_and_a_lost_gather_is_an_input_error(
    table: Path, monkeypatch
) -> None:
    """Scoring on the caller's cluster gives distributed's loggers their levels back (they
    stayed silenced for the rest of the process); a cluster that goes away between the last
    piece and the gather is an InputError naming it (distributed's FutureCancelledError
    escaped)."""
    names = ("distributed", "distributed.client", "tornado")
    with _cluster(1) as cluster, distributed.Client(cluster) as client:
        for name, level in zip(names, (logging.INFO, logging.WARNING, logging.ERROR), strict=True):
            logging.getLogger(name).setLevel(level)
        before = {n: logging.getLogger(n).level for n in names}
        score(table, target="y", engine="dask", scheduler=client, bootstrap=0)
        assert {n: logging.getLogger(n).level for n in names} == before

        def lost(self: object, *args: object, **kwargs: object) -> None:
            raise distributed.client.FutureCancelledError("k", "scheduler-connection-lost")

        monkeypatch.setattr(distributed.Client, "gather", lost)
        with pytest.raises(InputError, match=r"lost the Dask scheduler: .*connection-lost"):
            score(table, target="y", engine="dask", scheduler=cluster, bootstrap=0)


def test_losing_every_worker_is_an_error_within_the_timeout(table: Path, monkeypatch) -> None:
    monkeypatch.setattr(engine, "WORKER_TIMEOUT", 1.5)
    slow_unit = engine.score_unit

    def slow(*args: object, **kwargs: object) -> object:
        time.sleep(0.3)
        return slow_unit(*args, **kwargs)

    monkeypatch.setattr(engine, "score_unit", slow)  # in-process workers run this module's code
    with _cluster(1) as cluster:

        def close_workers() -> None:
            time.sleep(0.8)
            for worker in list(cluster.workers.values()):
                cluster.sync(worker.close)

        threading.Thread(target=close_workers, daemon=True).start()
        start = time.monotonic()
        with pytest.raises(InputError, match="lost all its workers"):
            score(
                table,
                target="y",
                engine="dask",
                scheduler=cluster.scheduler_address,
                partitions=30,
                bootstrap=0,
            )
        assert time.monotonic() - start < 20


def test_threads_give_the_first_error_in_file_order_and_the_serial_numbers(
    table: Path, tmp_path: Path, monkeypatch
) -> None:
    lines = table.read_text().splitlines()
    for row in (50, 500, 2500):  # data row r is line r
        cells = lines[row].split(",")
        cells[1] = "oops"
        lines[row] = ",".join(cells)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    for _ in range(5):  # the threads race; the error must not
        with pytest.raises(InputError, match="row 50, column 'a'"):
            score(bad, target="y", batch_rows=16, bootstrap=0)
    threaded = score(table, target="y", batch_rows=64, bootstrap=20, id=None)
    monkeypatch.setattr(engine, "THREADS", 1)
    serial = score(table, target="y", batch_rows=64, bootstrap=20)
    assert threaded.log_loss == pytest.approx(serial.log_loss, rel=1e-14)
    assert threaded.worst == serial.worst
    assert threaded.calibration["smooth_ece"]["ci_low"] == pytest.approx(
        serial.calibration["smooth_ece"]["ci_low"], rel=1e-9
    )
