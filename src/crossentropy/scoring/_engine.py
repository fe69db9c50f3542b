"""The scoring engine: a resolved input (:mod:`~crossentropy.scoring._sources`) read in batches
(:mod:`~crossentropy.scoring._readers`, a pair joined by :mod:`~crossentropy.scoring._join`) and
fed to :class:`crossentropy.metrics.ScoreAccumulator` (where every formula lives), in this
process or on the workers of a ``dask.distributed`` cluster whose accumulators are merged.

pyarrow and dask are imported when a scoring runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from crossentropy._lib.extras import require

if TYPE_CHECKING:
    import numpy as np

    from crossentropy.metrics import ScoreAccumulator
    from crossentropy.scoring._join import SolutionIndex
    from crossentropy.scoring._readers import Batch
    from crossentropy.scoring._sources import InputError, Source, Unit

__all__ = [
    "CONNECT_TIMEOUT",
    "WORKER_TIMEOUT",
    "Part",
    "ProgressBar",
    "scheduler_address",
    "score_dask",
    "score_local",
    "score_unit",
]

#: How long a scheduler address may take to accept a connection.
CONNECT_TIMEOUT = "10s"
#: How long connecting to a scheduler may take in all, in seconds: a port that accepts the
#: connection but never answers as a scheduler (a web server, a silent socket) is given up on.
CONNECT_DEADLINE = 20.0
#: How long a cluster may be without any worker (at the start, or after losing them all)
#: before the scoring stops with an error, in seconds.
WORKER_TIMEOUT = 30.0
#: Threads of the local engine, each with its own accumulator (merged at the end).
THREADS = min(4, os.cpu_count() or 1)
#: How often the engine looks at the futures and the workers, in seconds.
POLL_SECONDS = 0.05


# --------------------------------------------------------------------------- progress bar


class ProgressBar:
    """A progress bar on a stream (stderr), drawn by tqdm: the share of the input read, the
    rows scored and their rate, redrawn at most every 0.2 s.

    Parameters
    ----------
    enabled : bool
        Draw anything at all (tqdm must be installed: else a ``ModuleNotFoundError`` naming it).
    stream : file-like, optional
        Where to draw (default: ``sys.stderr``).

    Attributes
    ----------
    label : str
        The text before the bar (``"scoring"``; a comparison names each prediction set there).
    """

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        if enabled:
            require("a progress bar", "tqdm")
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.bar: Any = None
        self.label = "scoring"

    def _bar(self) -> Any:
        if self.bar is None:
            from tqdm import tqdm  # type: ignore[import-untyped]

            self.bar = tqdm(
                total=100.0,
                file=self.stream,
                desc=self.label,
                bar_format="{desc} [{bar:30}] {percentage:5.1f}%{postfix}",
                ascii=".#",
                mininterval=0.2,
                dynamic_ncols=False,
            )
        return self.bar

    def update(self, fraction: float, rows: int | None, *, force: bool = False) -> None:
        """Show ``fraction`` of the input done and ``rows`` rows scored (if known)."""
        if not self.enabled:
            return
        bar = self._bar()
        bar.n = 100.0 * min(max(fraction, 0.0), 1.0)
        elapsed = bar.format_dict["elapsed"]
        text = f"{elapsed:6.1f} s"
        if rows is not None:
            rate = rows / elapsed if elapsed > 0 else 0.0
            text = f"{rows:,} rows  {text}  {rate:,.0f} rows/s"
        bar.set_postfix_str(text, refresh=False)
        if force:
            bar.refresh()
        else:
            bar.update(0)  # redraws when mininterval has passed

    def finish(self, rows: int) -> None:
        """Draw the bar at 100 % and end its line."""
        if self.enabled:
            self.update(1.0, rows, force=True)
            self._bar().close()
            self.bar = None

    def clear(self) -> None:
        """Erase the bar (before an error message)."""
        if self.enabled and self.bar is not None:
            self.bar.leave = False
            self.bar.close()
            self.bar = None


# --------------------------------------------------------------------------- engines


@dataclass
class Part:
    """What scoring one unit of the input gives: the accumulator and what the merge needs.

    Attributes
    ----------
    acc : ScoreAccumulator
        The unit's numbers.
    first_row : int
        1-based data row of the unit's first row.
    positions : numpy.ndarray or None
        Pair mode: the solution-index position of each row, to check every id is used once.
    ids : dict
        Pair mode: the id of each row among the unit's worst rows.
    """

    acc: ScoreAccumulator
    first_row: int
    positions: np.ndarray | None
    ids: dict[int, Any]


class _WorstIds:
    """Keeps the ids (pair mode) of the rows that are currently among the worst rows."""

    def __init__(self) -> None:
        self.ids: dict[int, Any] = {}

    def note(self, acc: ScoreAccumulator, batch: Batch) -> None:
        from crossentropy.scoring._readers import id_value

        if batch.ids is None or not len(batch.rows):
            return
        first = int(batch.rows[0])
        keep: dict[int, Any] = {}
        for w in acc.worst_rows():
            row = int(w["row"])
            if row in self.ids:
                keep[row] = self.ids[row]
            elif first <= row < first + len(batch.rows):
                keep[row] = id_value(batch.ids, row - first)
        self.ids = keep


def _new_accumulator(src: Source, options: Mapping[str, Any] | None) -> ScoreAccumulator:
    from crossentropy.metrics import ScoreAccumulator

    return ScoreAccumulator(list(src.classes), **(options or {}))


def _update(acc: ScoreAccumulator, batch: Batch, src: Source | None) -> None:
    """Add a batch; a value the options refuse (a row summing to 0 with renormalize=) is an
    ``InputError`` of the file."""
    from crossentropy.metrics._checks import ProbabilityError, describe_probability
    from crossentropy.metrics._score import RowError
    from crossentropy.scoring._readers import paired_keys
    from crossentropy.scoring._sources import PART_STRIDE, InputError

    where = batch.path or (src.path if src is not None else "")
    keys = None
    if acc.paired_totals is not None:  # comparing sets: which example each row is
        keys = paired_keys(batch, src is not None and src.mode == "pair")
    try:
        acc.update(
            batch.y,
            batch.proba,
            row_ids=batch.rows,
            keys=keys,
            groups=batch.split,
            sample_weight=batch.weight,
        )
    except RowError as exc:  # row ids of several files carry the file's index
        from crossentropy.metrics._score import too_many_groups

        if exc.argument == "groups" and src is not None and exc.reason == too_many_groups():
            raise _too_many_groups(src) from None
        raise InputError(where, exc.reason, row=exc.row % PART_STRIDE) from None
    except ProbabilityError as exc:  # the rule of metrics/, named by file, row and column
        i, j = exc.index[0], exc.index[-1]
        binary = src is not None and src.binary  # the file's column is the second, [1 - p, p]
        value = float(batch.proba[i, 1]) if binary else exc.value
        column = None if src is None else src.proba_columns[0 if binary else j]
        row = int(batch.rows[i]) % PART_STRIDE
        text = describe_probability(value, scores=acc.renormalize is not None)
        raise InputError(where, text, row=row, column=column) from None
    except ValueError as exc:
        raise InputError(where, str(exc)) from None


def _consume(
    new_acc: Callable[[], ScoreAccumulator],
    batches: Iterable[Batch],
    progress: ProgressBar,
    src: Source,
    with_ids: bool,
    seen: np.ndarray | None = None,
) -> tuple[ScoreAccumulator, dict[int, Any]]:
    """Feed ``batches`` to accumulators on :data:`THREADS` threads (NumPy and pyarrow release
    the GIL, so reading the next batch and scoring others overlap), then merge them.

    The batches are read, checked (ids used once, if ``seen``) and handed out in file order
    by this thread; at most ``2 * THREADS + 1`` batches are in memory at once. The first
    error in file order is raised: a thread that meets an error still scores the batches
    before it. Returns the merged accumulator and the ids of its worst rows (when
    ``with_ids``)."""
    import queue
    import threading

    from crossentropy.scoring._join import mark_seen
    from crossentropy.scoring._readers import id_value

    k = max(1, THREADS)
    accs = [new_acc() for _ in range(k)]
    worst = [_WorstIds() for _ in range(k)]
    work: queue.Queue[tuple[int, Batch] | None] = queue.Queue(maxsize=k)
    errors: list[tuple[int, BaseException]] = []

    stop = threading.Event()  # the reading stopped without an error of a batch (Ctrl-C)

    def run(i: int) -> None:
        while (item := work.get()) is not None:
            order, batch = item
            if stop.is_set() or (errors and order > min(e[0] for e in errors)):
                continue  # after an error: only the batches before it still count
            try:
                _update(accs[i], batch, src)
                if with_ids:
                    worst[i].note(accs[i], batch)
            except BaseException as exc:
                errors.append((order, exc))

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(k)]
    for t in threads:
        t.start()
    rows, order = 0, -1
    failure: BaseException | None = None  # of this thread: reading batch ``order``
    try:
        for order, batch in enumerate(batches):
            if errors:
                break
            if seen is not None and batch.positions is not None:
                dup = mark_seen(seen, batch.positions)
                if dup is not None:
                    assert batch.ids is not None
                    raise _twice(src, id_value(batch.ids, dup), int(batch.rows[dup]))
            work.put((order, batch))
            rows += len(batch.rows)
            progress.update(batch.done, rows)
        else:
            order += 1
    except Exception as exc:  # the reader's error at batch ``order``
        failure = exc
    except BaseException:  # Ctrl-C: the threads drop what is queued
        stop.set()
        raise
    finally:
        for _ in threads:
            work.put(None)
        for t in threads:
            t.join()
    # the first error in file order: a thread's on an earlier batch, else the reader's
    earlier = [e for e in errors if failure is None or e[0] < order]
    if earlier:
        raise min(earlier, key=lambda e: e[0])[1]
    if failure is not None:
        raise failure
    acc, ids = accs[0], dict(worst[0].ids)
    for other, seen_ids in zip(accs[1:], worst[1:], strict=True):
        _merge(acc, other, src)
        ids.update(seen_ids.ids)
    return acc, ids


def _merge(acc: ScoreAccumulator, other: ScoreAccumulator, src: Source) -> None:
    """``acc.merge(other)``; more groups than an accumulator keeps in all is an
    ``InputError`` of the file's split column."""
    from crossentropy.metrics._score import TooManyGroups

    try:
        acc.merge(other)
    except TooManyGroups:
        raise _too_many_groups(src) from None


def _too_many_groups(src: Source) -> InputError:
    """The error of a split column of more groups than an accumulator keeps: of the column,
    not of a row (each thread's or worker's accumulator counts the groups of its own rows);
    in a pair, of the solution, which holds the column."""
    from crossentropy.metrics._score import too_many_groups
    from crossentropy.scoring._sources import InputError

    path = src.solution if src.mode == "pair" and src.solution is not None else src.path
    return InputError(path, too_many_groups(), column=src.split_column)


def _twice(src: Source, value: Any, row: int) -> InputError:
    """The error of a submission id used twice, at its second row."""
    from crossentropy.scoring._sources import InputError

    return InputError(src.path, f"id {value!r} appears twice", row=row, column=src.id_column)


def _check_all_used(src: Source, seen: np.ndarray, index: SolutionIndex) -> None:
    from crossentropy.scoring._join import first_unseen
    from crossentropy.scoring._sources import InputError

    missing = first_unseen(seen, index)
    if missing is not None:
        assert src.solution is not None
        # none seen: the submission held no row (a row of another id is refused at its row)
        empty = "" if bool(seen.any()) else ", which holds no data rows"
        raise InputError(
            src.solution,
            f"id {index.id_at(missing)!r} has no row in the submission {src.path}{empty}",
            row=int(index.rows[missing]),
            column=src.id_column,
        )


def _finish(
    src: Source, acc: ScoreAccumulator, ids: dict[int, Any], parts: Sequence[Source] = ()
) -> dict[str, Any]:
    from crossentropy.metrics import ZeroWeightError
    from crossentropy.scoring._sources import PART_STRIDE, InputError

    try:
        result = acc.result()
    except ZeroWeightError:
        where = src.solution if src.weight_in_solution and src.solution else src.path
        raise InputError(
            where,
            "the total sample weight is zero (sample_weight, --sample-weight): every weight is "
            "0, so no weighted mean is defined",
            column=src.weight_column,
        ) from None
    if result["n"] == 0:
        once = type(src.table).__name__ == "RecordBatchReader"  # (a stream is read once)
        raise InputError(src.path, "no data rows" + (" (was it read already?)" if once else ""))
    if src.id_column:
        for w in result["worst"]:
            w["id"] = ids.get(int(w["row"]))
    if len(parts) > 1:  # rows of several files: the file and its row
        for w in result["worst"]:
            part, row = divmod(int(w["row"]), PART_STRIDE)
            w["file"], w["row"] = parts[part].path, row
    if acc.paired_totals is not None:
        result["paired_totals"] = acc.paired_totals
    return result


def score_local(
    src: Source | Sequence[Source],
    *,
    options: Mapping[str, Any] | None = None,
    progress: ProgressBar | None = None,
) -> dict[str, Any]:
    """Score ``src`` in this process, batch by batch.

    Parameters
    ----------
    src : Source or sequence of Source
        The resolved input (:func:`crossentropy.scoring._sources.resolve_source`), or the files of
        an input of several files (tables with the same columns), read in turn.
    options : mapping, optional
        Keywords of :class:`~crossentropy.metrics.ScoreAccumulator` (``n_bins``, ``worst``,
        ``bootstrap``, ``seed``).
    progress : ProgressBar, optional
        Where to show progress.

    Returns
    -------
    dict
        :meth:`ScoreAccumulator.result`, with an ``id`` for each worst row in pair mode or
        when the table has an id column.

    Raises
    ------
    InputError
        Bad input, with its position.
    """
    import numpy as np

    from crossentropy.scoring._join import (
        NotAligned,
        SolutionIndex,
        iter_ordered_pair,
        pair_batches,
    )
    from crossentropy.scoring._readers import iter_batches, part_batches
    from crossentropy.scoring._sources import Source

    bar = progress or ProgressBar(False)
    parts = [src] if isinstance(src, Source) else list(src)
    src = parts[0]

    def new_acc() -> ScoreAccumulator:
        return _new_accumulator(src, options)

    if len(parts) > 1:
        acc, ids = _consume(new_acc, part_batches(parts), bar, src, bool(src.id_column))
        return _finish(src, acc, ids, parts)
    if src.mode != "pair":
        acc, ids = _consume(new_acc, iter_batches(src), bar, src, bool(src.id_column))
        return _finish(src, acc, ids)
    try:
        acc, ids = _consume(new_acc, iter_ordered_pair(src), bar, src, True)
    except NotAligned:
        # Not in the same id order: join through a sorted id table of the solution.
        index = SolutionIndex.build(src)
        seen = np.zeros(len(index), dtype=bool)
        acc, ids = _consume(new_acc, pair_batches(src, index), bar, src, True, seen)
        _check_all_used(src, seen, index)
    return _finish(src, acc, ids)


#: The names of dask's own schedulers (``dask.config.set(scheduler=...)``), not addresses.
_LOCAL_SCHEDULERS = frozenset(
    {
        "threads",
        "threading",
        "sync",
        "synchronous",
        "single-threaded",
        "processes",
        "multiprocessing",
    }
)


def scheduler_address(scheduler: Any) -> str | None:
    """The address of ``scheduler`` (``scheduler=``): a str as given, a cluster's
    ``scheduler_address``, a ``distributed.Client``'s scheduler's address; a ``ValueError``
    for an empty str, a dask local scheduler's name or a closed client, a ``TypeError``
    naming ``scheduler`` otherwise."""
    if isinstance(scheduler, str) and scheduler.strip().lower() in _LOCAL_SCHEDULERS:
        raise ValueError(
            f"scheduler={scheduler!r} names one of dask's local schedulers; scheduler= takes a "
            "distributed scheduler's address, Client or cluster (without one, engine='dask' "
            "starts a local cluster, and engine='local' scores on this process's threads)"
        )
    if isinstance(scheduler, str) and not scheduler.strip():
        raise ValueError("scheduler is an empty address; leave it out for a local cluster")
    if scheduler is None or isinstance(scheduler, str):
        return scheduler
    address = getattr(scheduler, "scheduler_address", None)  # a cluster
    if not isinstance(address, str):  # a client
        address = getattr(getattr(scheduler, "scheduler", None), "address", None)
    if not isinstance(address, str):
        status = getattr(scheduler, "status", None)
        if hasattr(scheduler, "gather") and status in ("closed", "closing", "failed"):
            raise ValueError(  # a client of no scheduler: it has no address to read
                f"scheduler is a distributed.Client that is {status}; give a running one, or "
                "its cluster"
            )
        raise TypeError(
            "scheduler must be a Dask scheduler's address (a str, tcp://host:port), a "
            f"distributed.Client or a cluster; got {type(scheduler).__name__}"
        )
    return address


def _connect(dd: Any, scheduler: Any) -> Any:
    """A ``distributed.Client`` of ``scheduler``, or an ``InputError`` within
    :data:`CONNECT_DEADLINE` seconds: the client's own timeout covers the connection, not the
    handshake, which waits without end on a port that accepts and never answers. The attempt
    runs on a daemon thread, left behind if it does not end in time."""
    import threading

    from crossentropy.scoring._sources import InputError, first_line

    address = scheduler if isinstance(scheduler, str) else ""
    if address:
        from distributed.comm.addressing import get_address_host_port
        from distributed.comm.registry import get_backend

        # an unknown scheme (entry points' backends are loaded by get_backend), an IP
        # address without a port: refused before a client exists (a half-built one holds the
        # exit for 20 s); other schemes' addresses are their own
        scheme = address.split("://")[0] if "://" in address else "tcp"
        try:
            get_backend(scheme)
            if scheme in ("tcp", "tls", "ws", "wss"):
                get_address_host_port(address)
        except ValueError as exc:
            raise InputError(
                address, f"cannot connect to the Dask scheduler: {first_line(exc)}"
            ) from None
    done: dict[str, Any] = {}
    lock = threading.Lock()

    def run() -> None:
        try:
            # not the process's default client: one that fails (or arrives late) would be left
            # registered as it, and dask's default scheduler set to it, for every later compute
            client = dd.Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except BaseException as exc:  # handed to the caller's thread
            done["error"] = exc
            _collect_dead_clients(exc)  # the half-built client, here rather than anywhere
            return
        with lock:
            late = done.get("late", False)
            done["client"] = client
        if late:  # the caller gave up: no one else will close it
            client.close()

    thread = threading.Thread(target=run, name="crossentropy-connect", daemon=True)
    with _no_collection():  # the client starts its event loop on the thread
        thread.start()
        thread.join(CONNECT_DEADLINE)
    with lock:
        arrived = "client" in done or "error" in done
        done["late"] = not arrived
    if not arrived:
        raise InputError(
            str(scheduler),
            f"cannot connect to the Dask scheduler: no answer as a scheduler within "
            f"{CONNECT_DEADLINE:g} s (is it a scheduler's address, tcp://host:port?)",
        )
    error = done.get("error")
    if isinstance(error, (OSError, TimeoutError, ValueError)):
        raise InputError(
            str(scheduler), f"cannot connect to the Dask scheduler: {first_line(error)}"
        ) from None
    if isinstance(error, Exception):  # bytes of another protocol read as Dask's frames
        raise InputError(
            str(scheduler),
            "cannot connect to the Dask scheduler: the port does not answer in Dask's protocol "
            f"({type(error).__name__}; is it a scheduler's address, tcp://host:port?)",
        ) from None
    if error is not None:
        raise error
    return done["client"]


def score_unit(
    unit: Unit,
    src: Source,
    part: int = 0,
    key_base: int = 0,
    *,
    index: SolutionIndex | None = None,
    options: Mapping[str, Any] | None = None,
) -> Part:
    """Score one unit of the input (runs on a Dask worker, which reads the unit itself).

    Parameters
    ----------
    unit : Unit
        The piece of the file (:func:`crossentropy.scoring._split.split_units`).
    src : Source
        The resolved input.
    part : int, default 0
        The file's index in an input of several files (its rows are numbered from
        ``part * PART_STRIDE``).
    key_base : int, default 0
        The rows of the files before it (:class:`~crossentropy.scoring._readers.Batch`).
    index : SolutionIndex or None
        Pair mode: the solution's id table (scattered to the workers).
    options : mapping, optional
        As in :func:`score_local`.

    Returns
    -------
    Part
        The unit's accumulator, and in pair mode the solution positions and worst-row ids.
    """
    import dataclasses

    from crossentropy.scoring._join import pair_batches
    from crossentropy.scoring._readers import iter_batches
    from crossentropy.scoring._sources import PART_STRIDE

    acc = _new_accumulator(src, options)
    ids = _WorstIds() if src.id_column else None
    positions = []
    batches = iter_batches(src, unit) if index is None else pair_batches(src, index, unit)
    for batch in batches:
        if part:
            batch = dataclasses.replace(
                batch, rows=batch.rows + part * PART_STRIDE, key_base=key_base
            )
        _update(acc, batch, src)
        if ids is not None:
            ids.note(acc, batch)
        if batch.positions is not None:
            positions.append(batch.positions)
    import numpy as np

    pos = np.concatenate(positions) if positions else None
    return Part(acc, unit.first_row, pos, ids.ids if ids is not None else {})


def _key_bases(files: Sequence[Source], options: Mapping[str, Any] | None) -> list[int]:
    """The rows before each file of an input of several files, where a comparison pairs rows
    by their position in the whole input (no id column): from the files' row counts, which a
    CSV file does not state (then an ``InputError``)."""
    from crossentropy.scoring._sources import InputError

    bases = [0] * len(files)
    if len(files) < 2 or not (options or {}).get("paired") or files[0].id_column:
        return bases
    for i, one in enumerate(files[:-1]):
        if one.n_rows is None:
            raise InputError(
                one.path,
                "comparing prediction sets of several CSV files on the Dask engine pairs their "
                "rows by id: name the id column (id, --id), or use the local engine",
            )
        bases[i + 1] = bases[i] + one.n_rows
    return bases


def _quiet_logs() -> dict[str, int]:
    """Silence the loggers of distributed (and its event loop), returning their levels
    before (as :func:`_restore_logs` takes them): the in-process cluster's threads may still
    log (closed connections) after it shut down, so they stay silent after its run; a
    cluster of the caller's gets them back."""
    prefixes = ("distributed", "tornado", "asyncio")
    names = [n for n in logging.root.manager.loggerDict if n.startswith(prefixes)]
    before = {}
    for name in {*prefixes, *names}:
        logger = logging.getLogger(name)
        before[name] = logger.level
        logger.setLevel(logging.CRITICAL)
    return before


def _restore_logs(levels: dict[str, int]) -> None:
    """Give the loggers :func:`_quiet_logs` silenced their levels back."""
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _wait(client: Any, futures: list[Any], bar: ProgressBar, where: str) -> None:
    """Wait for ``futures`` (or the first error), showing progress; a cluster left without
    workers for :data:`WORKER_TIMEOUT` seconds, or a scheduler that stops answering, is an
    ``InputError`` instead of a wait without end."""
    import time

    from crossentropy.scoring._sources import InputError, first_line

    alone_since: float | None = None
    shown = -1
    while True:
        status = [f.status for f in futures]
        done = sum(s == "finished" for s in status)
        if done != shown:
            bar.update(done / len(futures), None, force=True)
            shown = done
        if "error" in status or done == len(futures):
            return
        try:
            workers = len(client.nthreads())
        except Exception as exc:  # the scheduler is gone: any comm error of distributed
            client.cancel(futures)
            raise InputError(where, f"lost the Dask scheduler: {first_line(exc)}") from None
        now = time.monotonic()
        if workers:
            alone_since = None
        elif alone_since is None:
            alone_since = now
        elif now - alone_since > WORKER_TIMEOUT:
            client.cancel(futures)
            raise InputError(
                where,
                f"the Dask cluster lost all its workers ({len(futures) - done} of "
                f"{len(futures)} pieces not scored; waited {WORKER_TIMEOUT:g} s for a worker)",
            )
        time.sleep(POLL_SECONDS)


def _collect_dead_clients(error: BaseException) -> None:
    """Close now the half-built ``distributed.Client`` that a failed connection leaves behind
    (held in reference cycles and by ``error``'s traceback), rather than at a collection
    that may run while a later cluster or client starts (see :func:`_no_collection`)."""
    import gc

    error.__traceback__ = None  # its frames hold the client
    gc.collect()


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """No automatic garbage collection while a Dask cluster or client starts its event loop.

    ``distributed`` starts the loop's thread under a class-wide ``LoopRunner`` lock, and
    closing a ``Client`` takes the same lock: a collection that runs then (on the starting
    thread or on the new one) and finds a garbage client that was never closed waits for the
    lock forever, and the start waits for it.
    """
    import gc

    with _NO_COLLECTION_LOCK:  # the first one in turns it off, the last one out back on
        if _no_collection_depth[0] == 0:
            _no_collection_depth[1] = gc.isenabled()
            gc.disable()
        _no_collection_depth[0] += 1
    try:
        yield
    finally:
        with _NO_COLLECTION_LOCK:
            _no_collection_depth[0] -= 1
            if _no_collection_depth[0] == 0 and _no_collection_depth[1]:
                gc.enable()


_NO_COLLECTION_LOCK = threading.Lock()
_no_collection_depth: list[Any] = [0, True]  # [starts inside, collection on before the first]


def _local_cluster(dd: Any) -> Any:
    """An in-process ``distributed.LocalCluster`` whose workers talk through memory
    (``inproc://``): no port is opened but the scheduler's HTTP server on loopback.

    ``distributed`` waits 10 s for the thread of the cluster's event loop to start, and then
    fails on an ``assert``; on a machine stalled for that long the start is tried once more
    before the failure is an ``InputError``.
    """
    from crossentropy.scoring._sources import InputError, first_line

    def start() -> Any:
        return dd.LocalCluster(
            n_workers=max(1, min(4, os.cpu_count() or 1)),
            threads_per_worker=1,
            processes=False,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.CRITICAL,
        )

    try:
        try:
            with _no_collection():
                return start()
        except AssertionError:  # the event loop's thread did not start within 10 s
            with _no_collection():
                return start()
    except AssertionError:
        raise InputError(
            "", "cannot start a local Dask cluster: its event loop did not start within 10 s"
        ) from None
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise InputError("", f"cannot start a local Dask cluster: {first_line(exc)}") from None


def score_dask(
    src: Source | Sequence[Source],
    *,
    scheduler: str | None = None,
    partitions: int | None = None,
    options: Mapping[str, Any] | None = None,
    progress: ProgressBar | None = None,
) -> dict[str, Any]:
    """Score ``src`` on a ``dask.distributed`` cluster: one task per unit, merged in order.

    Parameters
    ----------
    src : Source or sequence of Source
        The resolved input, or the files of an input of several files; the workers read them,
        so their paths must be readable there.
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``); without it a ``LocalCluster`` of
        in-process workers (inproc://, no port but the scheduler's HTTP one on 127.0.0.1) is started
        and closed.
    partitions : int, optional
        About how many units to cut the input into (default: 4 per worker).
    options : mapping, optional
        As in :func:`score_local`.
    progress : ProgressBar, optional
        Shows units done.

    Returns
    -------
    dict
        The same result as :func:`score_local` (to rounding: ~1e-16 relative, but ~1e-11
        for the Murphy decomposition's within-bin variance and covariance, differences of
        nearly equal sums merged in another order), but for a
        pair whose solution repeats an id: the local engine joins two files in the same id
        order row by row (a repeated id is then two rows), the workers always join through
        the solution's index, which refuses a repeated id.
    """
    import numpy as np

    from crossentropy.scoring._join import SolutionIndex, mark_seen
    from crossentropy.scoring._sources import InputError, Source, first_line
    from crossentropy.scoring._split import split_units

    files = [src] if isinstance(src, Source) else list(src)
    src = files[0]

    bar = progress or ProgressBar(False)
    with contextlib.ExitStack() as stack:
        import importlib

        dd: Any = importlib.import_module("distributed")  # untyped: used through Any
        levels = _quiet_logs()  # after the import, which sets distributed's own levels

        if scheduler:  # the caller's cluster: its logs as they were, once scored
            stack.callback(_restore_logs, levels)
            client = stack.enter_context(_connect(dd, scheduler))
        else:
            cluster = stack.enter_context(_local_cluster(dd))
            with _no_collection():
                client = stack.enter_context(dd.Client(cluster, set_as_default=False))
        where = scheduler or "the local cluster"
        try:
            client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
        except (TimeoutError, OSError) as exc:
            raise InputError(
                where, f"the Dask cluster has no workers (waited {WORKER_TIMEOUT:g} s)"
            ) from exc
        n_workers = max(len(client.scheduler_info().get("workers", {})), 1)
        pieces = max(1, -(-(partitions or 4 * n_workers) // len(files)))
        units, sources, numbers = [], [], []
        for i, one in enumerate(files):
            for unit in split_units(one, pieces):
                units.append(unit)
                sources.append(one)
                numbers.append(i)
        bases = _key_bases(files, options)
        index = SolutionIndex.build(src) if src.mode == "pair" else None
        shared = client.scatter(index, broadcast=True) if index is not None else None
        futures = client.map(
            score_unit,
            units,
            sources,
            numbers,
            [bases[i] for i in numbers],
            index=shared,
            options=options,
            pure=False,
        )
        _wait(client, futures, bar, where)
        while True:  # the first failing unit in file order reports its error
            first = next((i for i, f in enumerate(futures) if f.status == "error"), None)
            if first is None:
                break
            before = [f for f in futures[:first] if f.status == "pending"]
            if not before:
                failure = futures[first].exception()
                client.cancel(futures)
                raise failure
            _wait(client, before, bar, where)  # an earlier unit may fail too
        try:
            parts: list[Part] = client.gather(futures)
        except Exception as exc:  # every piece finished: the cluster went away since
            raise InputError(where, f"lost the Dask scheduler: {first_line(exc)}") from None
    acc = parts[0].acc
    for part in parts[1:]:
        _merge(acc, part.acc, src)
    ids: dict[int, Any] = {}
    for part in parts:
        ids.update(part.ids)
    if index is not None:
        seen = np.zeros(len(index), dtype=bool)
        for part in parts:
            if part.positions is None:
                continue
            dup = mark_seen(seen, part.positions)
            if dup is not None:
                raise _twice(src, index.id_at(part.positions[dup]), part.first_row + dup)
        _check_all_used(src, seen, index)
    return _finish(src, acc, ids, files)
