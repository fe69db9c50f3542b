"""`crossentropy.distributed`: vocabulary-parallel cross-entropy on torch.distributed (gloo,
processes spawned on 127.0.0.1), against the single-process loss of the gathered logits."""

from __future__ import annotations

import datetime
import os
import queue
import socket
import time
import traceback
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

# every test of the module runs on one pytest worker, sharing one pool of ranks
pytestmark = pytest.mark.xdist_group("torch-distributed")

import crossentropy as ce  # noqa: E402
from crossentropy.distributed import vocab_parallel_cross_entropy  # noqa: E402

N, V = 13, 11  # V = 11: uneven shards over 2 (6, 5) and 4 ranks (3, 3, 3, 2)

OPTIONS: dict[str, dict[str, Any]] = {
    "plain": {},
    "smoothing": {"label_smoothing": 0.1},
    "z_loss": {"z_loss": 0.01},
    "softcap": {"softcap": 2.0},
    "temperature": {"temperature": 0.7},
    "weights": {"weight": True},
    "everything": {
        "weight": True,
        "label_smoothing": 0.2,
        "z_loss": 0.05,
        "softcap": 3.0,
        "temperature": 1.3,
    },
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


POOL = 4  # ranks started once for the module's tests


#: The pool's groups, in each rank's process (set by :func:`_serve`).
_POOL_GROUPS: dict[Any, Any] = {}


def _serve(rank: int, world: int, port: int, inbox: Any, outbox: Any) -> None:
    """A rank of the pool: joins the gloo group, makes the groups the jobs use (every rank
    must create each), then runs the jobs it is sent, ``name(rank, world, group)``, reporting
    each one's traceback or ``None``."""
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=60),
    )
    groups = {
        POOL: dist.group.WORLD,
        2: dist.new_group(ranks=[0, 1], backend="gloo"),
        # for the job of a rank that never makes the call: rank 0 gives up after 2 s
        "short": dist.new_group(
            ranks=[0, 1], timeout=datetime.timedelta(seconds=2), backend="gloo"
        ),
        # rank 0 alone: the others hold a placeholder (every process of the pool must make
        # each new_group call, so it is made here, not in a job of some of them)
        "first": dist.new_group(ranks=[0], backend="gloo"),
    }
    _POOL_GROUPS.update(groups)
    while (job := inbox.get()) is not None:
        name, size, group = job
        try:
            globals()[name](rank, size, groups[group])
            outbox.put((rank, None))
        except BaseException:  # reported to the test, which fails
            outbox.put((rank, traceback.format_exc()))
    outbox.close()
    outbox.join_thread()  # the last report is sent
    os._exit(0)  # no teardown of the groups: one of them timed out on purpose


class _Ranks:
    """``POOL`` processes spawned once, on 127.0.0.1 with a free port; each test sends a job
    to the first ``size`` of them and fails on any rank's exception or past its timeout (the
    pool is then stopped, and the next test starts a new one)."""

    def __init__(self) -> None:
        context = torch.multiprocessing.get_context("spawn")
        self.inboxes = [context.Queue() for _ in range(POOL)]
        self.outbox = context.Queue()
        port = _free_port()
        self.processes = [
            context.Process(
                target=_serve, args=(r, POOL, port, self.inboxes[r], self.outbox), daemon=True
            )
            for r in range(POOL)
        ]
        for process in self.processes:
            process.start()

    def run(self, name: str, size: int, group: Any = None, timeout: float = 180.0) -> None:
        for inbox in self.inboxes[:size]:
            inbox.put((name, size, size if group is None else group))
        reports: dict[int, str | None] = {}
        deadline = time.monotonic() + timeout
        while len(reports) < size:
            try:
                rank, error = self.outbox.get(timeout=1.0)
            except queue.Empty:
                if not self.alive() or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(
                        f"{name} on {size} ranks: a rank died, or the job ran past {timeout} s"
                    )
                continue
            reports[rank] = error
        errors = [f"rank {r}:\n{e}" for r, e in sorted(reports.items()) if e is not None]
        if errors:
            self.stop()  # a failed job may leave a collective half made: the next test restarts
            pytest.fail(f"{name} on {size} ranks:\n" + "\n".join(errors), pytrace=False)

    def alive(self) -> bool:
        return all(p.is_alive() for p in self.processes)

    def stop(self) -> None:
        for inbox in self.inboxes:
            inbox.put(None)
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()


_pool: list[_Ranks] = []


@pytest.fixture
def ranks():
    """The module's pool of ranks (started by the first test that needs it)."""
    if not _pool or not _pool[0].alive():
        _pool[:] = [_Ranks()]
    return _pool[0]


@pytest.fixture(scope="module", autouse=True)
def _stop_the_pool():
    yield
    if _pool:
        _pool.pop().stop()


def _mesh(group: Any):
    from torch.distributed.device_mesh import DeviceMesh

    return DeviceMesh.from_group(group, "cpu")


def _shard(rank: int, world: int, v: int = V) -> tuple[int, int]:
    """torch.chunk's split of ``v`` classes (as DTensor's Shard): this rank's (start, stop)."""
    size = -(-v // world)
    start = min(rank * size, v)
    return start, min(start + size, v)


def _data(seed: int, dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(N, V, generator=g, dtype=dtype) * 3
    target = torch.randint(0, V, (N,), generator=g)
    target[::4] = -100
    cw = torch.rand(V, generator=g, dtype=dtype) + 0.5
    return logits, target, cw


def _reference(logits: torch.Tensor, target: torch.Tensor, reduction: str, **kw: Any):
    t = kw.pop("temperature", 1.0)
    return ce.cross_entropy(logits / t, target, reduction=reduction, **kw)


def _compare(
    rank: int, world: int, group: Any, logits, target, cw, option: str, reduction: str
) -> None:
    start, stop = _shard(rank, world)
    kw = dict(OPTIONS[option])
    full_w = cw if kw.pop("weight", False) else None
    local = logits[:, start:stop].clone().requires_grad_(True)
    ours = vocab_parallel_cross_entropy(
        local,
        target,
        group,
        weight=None if full_w is None else full_w[start:stop],
        reduction=reduction,
        **kw,
    )
    full = logits.clone().requires_grad_(True)
    ref = _reference(full, target, reduction, weight=full_w, **kw)
    cot = torch.linspace(-1, 1, N, dtype=logits.dtype) if reduction == "none" else 1.0
    (ours * cot).sum().backward()
    (ref * cot).sum().backward()
    case = (world, rank, option, reduction)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12, msg=lambda m: f"{case}: {m}")
    torch.testing.assert_close(
        local.grad,
        full.grad[:, start:stop],
        rtol=1e-12,
        atol=1e-12,
        msg=lambda m: f"{case} gradient: {m}",
    )


def every_option(
    rank: int, world: int, group: Any, options: tuple[str, ...] = tuple(OPTIONS)
) -> None:
    logits, target, cw = _data(0)
    for option in options:
        for reduction in ("mean", "sum", "none"):
            _compare(rank, world, group, logits, target, cw, option, reduction)
    # targets only in the first shard: the other ranks hold none of them
    _compare(rank, world, group, logits, target.clamp(max=2), cw, "everything", "mean")
    # every target ignored: the mean is empty_mean, the sum 0, no gradient
    ignored = torch.full((N,), -100)
    local = logits[:, slice(*_shard(rank, world))].clone().requires_grad_(True)
    mean = vocab_parallel_cross_entropy(local, ignored, group)
    assert torch.isnan(mean)
    zero = vocab_parallel_cross_entropy(local, ignored, group, empty_mean=0.0, z_loss=0.1)
    zero.backward()
    assert float(zero) == 0.0
    assert float(local.grad.abs().max()) == 0.0
    # float32 logits, to rounding; an explicit vocab_start (no all-gather)
    l32 = logits.float()
    start, stop = _shard(rank, world)
    got = vocab_parallel_cross_entropy(l32[:, start:stop], target, group, vocab_start=start)
    torch.testing.assert_close(got, ce.cross_entropy(l32, target), rtol=1e-6, atol=1e-6)
    # a vocab_start below 0, or past the group's classes, is refused (it gave another loss)
    with pytest.raises(ValueError, match="vocab_start must be >= 0"):
        vocab_parallel_cross_entropy(l32[:, start:stop], target, group, vocab_start=-1)
    late = start if rank + 1 < world else start + 1  # the last rank's classes run past V
    if rank + 1 < world:
        vocab_parallel_cross_entropy(l32[:, start:stop], target, group, vocab_start=late)
    else:
        with pytest.raises(ValueError, match=rf"run past the group's {V} classes"):
            vocab_parallel_cross_entropy(l32[:, start:stop], target, group, vocab_start=late)
    # a bad target is refused on every rank, naming it
    with pytest.raises(IndexError, match=r"target holds label 11 at index \(1,\)") as err:
        vocab_parallel_cross_entropy(
            logits[:, start:stop], target.clone().index_fill_(0, torch.tensor([1]), V), group
        )
    assert isinstance(err.value, ValueError)  # this library's type and torch's


def dtensor_logits(rank: int, world: int, group: Any) -> None:
    from torch.distributed.tensor import Shard, distribute_tensor

    mesh = _mesh(group)
    logits, target, _ = _data(1)
    sharded = distribute_tensor(logits, mesh, [Shard(1)]).requires_grad_(True)
    loss = vocab_parallel_cross_entropy(sharded, target, label_smoothing=0.1, z_loss=0.01)
    loss.backward()
    full = logits.clone().requires_grad_(True)
    ref = ce.cross_entropy(full, target, label_smoothing=0.1, z_loss=0.01)
    ref.backward()
    torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)
    start, stop = _shard(rank, world)
    torch.testing.assert_close(sharded.grad.to_local(), full.grad[:, start:stop])


D = 5


def _fused_case(
    rank: int,
    world: int,
    group: Any,
    option: str,
    reduction: str,
    aux: bool,
    tokens: list[int] | None = None,
) -> None:
    """The fused op with the vocabulary split over the group against the single-process op;
    with ``tokens`` (each rank's number of tokens), sequence-parallel: each rank passes its
    tokens and every rank backpropagates the same objective of all of them."""
    from crossentropy.fused import linear_cross_entropy

    g = torch.Generator().manual_seed(3)
    x = torch.randn(N, D, generator=g, dtype=torch.float64)
    w = torch.randn(V, D, generator=g, dtype=torch.float64)
    b = torch.randn(V, generator=g, dtype=torch.float64)
    cw = torch.rand(V, generator=g, dtype=torch.float64) + 0.5
    y = torch.randint(0, V, (N,), generator=g)
    y[::4] = -100
    kw = dict(OPTIONS[option])
    full_w = cw if kw.pop("weight", False) else None
    start, stop = _shard(rank, world)
    cot = torch.linspace(-1, 1, N, dtype=torch.float64)

    mine = slice(None)
    if tokens is not None:
        lo = sum(tokens[:rank])
        mine = slice(lo, lo + tokens[rank])

    def run(x, w, b, cw, group):
        out = linear_cross_entropy(
            x,
            w,
            y if group is None else y[mine],
            linear_bias=b,
            weight=cw,
            reduction=reduction,
            chunk_size=4,
            return_aux=aux,
            process_group=group,
            sequence_parallel=group is not None and tokens is not None,
            **kw,
        )
        if not aux:
            return out, (out * cot).sum() if reduction == "none" else out
        total = (out.loss * cot).sum() if reduction == "none" else out.loss
        total = total + (cot * out.logp).sum() + 0.1 * out.entropy.sum() + 0.01 * out.lse.sum()
        return out, total

    xs, ws, bs = (t.clone().requires_grad_(True) for t in (x[mine], w[start:stop], b[start:stop]))
    ours, total = run(xs, ws, bs, None if full_w is None else full_w[start:stop], group)
    total.backward()
    xr, wr, br = (t.clone().requires_grad_(True) for t in (x, w, b))
    ref, ref_total = run(xr, wr, br, full_w, None)
    ref_total.backward()
    case = (world, rank, option, reduction, aux, tokens)
    pairs = (
        [(ours, ref)]
        if not aux
        else [
            (ours.loss, ref.loss),
            (ours.logp, ref.logp),
            (ours.entropy, ref.entropy),
            (ours.lse, ref.lse),
            (ours.correct, ref.correct),
        ]
    )
    pairs += [
        (xs.grad, xr.grad[mine]),
        (ws.grad, wr.grad[start:stop]),
        (bs.grad, br.grad[start:stop]),
    ]
    for k, (got, want) in enumerate(pairs):
        torch.testing.assert_close(
            got, want, rtol=1e-12, atol=1e-12, msg=lambda m, k=k: f"{case} output {k}: {m}"
        )


def fused_every_option(
    rank: int, world: int, group: Any, options: tuple[str, ...] = tuple(OPTIONS)
) -> None:
    for option in options:
        for reduction in ("mean", "sum", "none"):
            for aux in (False, True):
                _fused_case(rank, world, group, option, reduction, aux)


def fused_edge_cases(rank: int, world: int, group: Any) -> None:
    """The fused op with a process group: float32 to rounding, targets only in rank 0's shard
    (the other ranks hold none), every target ignored."""
    from crossentropy.fused import linear_cross_entropy

    x, w, b, y = _tensor_parallel_data(7)
    start, stop = _shard(rank, world)
    cases = {
        "float32": (torch.float32, y, {"label_smoothing": 0.1, "z_loss": 0.01}),
        "targets in one shard": (torch.float64, y.clamp(max=2), {"label_smoothing": 0.1}),
        "all ignored": (torch.float64, torch.full_like(y, -100), {"empty_mean": 0.0}),
        # counted targets of class weight 0: the weighted mean is empty_mean, z-loss kept
        "weightless": (
            torch.float64,
            y,
            {"weight": torch.zeros(V, dtype=torch.float64), "empty_mean": 0.5, "z_loss": 0.1},
        ),
    }
    for case, (dtype, target, kw) in cases.items():
        tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {}
        xs, ws, bs = (
            t.to(dtype, copy=True).requires_grad_(True) for t in (x, w[start:stop], b[start:stop])
        )
        mine = {**kw, "weight": kw["weight"][start:stop]} if "weight" in kw else kw
        ours = linear_cross_entropy(xs, ws, target, linear_bias=bs, process_group=group, **mine)
        ours.backward()
        xr, wr, br = (t.to(dtype, copy=True).requires_grad_(True) for t in (x, w, b))
        ref = linear_cross_entropy(xr, wr, target, linear_bias=br, **kw)
        ref.backward()
        pairs = [
            (ours, ref),
            (xs.grad, xr.grad),
            (ws.grad, wr.grad[start:stop]),
            (bs.grad, br.grad[start:stop]),
        ]
        for k, (got, want) in enumerate(pairs):
            torch.testing.assert_close(got, want, **tol, msg=lambda m, c=case, k=k: f"{c} {k}: {m}")
        if case == "all ignored":
            assert float(ours) == 0.0
            assert float(ws.grad.abs().max()) == 0.0
        if case == "weightless":  # the z-loss's mean besides empty_mean, as the dense op
            logits = x @ w.T + b
            want = ce.cross_entropy(logits, target, kw["weight"], empty_mean=0.5, z_loss=0.1)
            torch.testing.assert_close(ours.detach(), want)


def unread_targets_out_of_range(rank: int, world: int, group: Any) -> None:
    """A target outside the vocabulary that no check reads (validation off): NaN for its token
    and for the reduced loss, and in the per-token outputs, as the other ops give (was a
    finite loss, its target logit taken as 0)."""
    from crossentropy.fused import linear_cross_entropy

    x, w, _, y = _tensor_parallel_data(9)
    start, stop = _shard(rank, world)
    y = y.clone()
    y[1], y[2] = V, 4  # V: in no shard
    kw = {"validate": False, "process_group": group}
    per_token = linear_cross_entropy(x, w[start:stop], y, reduction="none", **kw)
    assert torch.isnan(per_token[1])
    assert torch.isfinite(per_token[2:]).all()
    for reduction in ("mean", "sum"):
        xs = x.clone().requires_grad_(True)  # the early path: gradients formed in the forward
        assert torch.isnan(linear_cross_entropy(xs, w[start:stop], y, reduction=reduction, **kw))
    aux = linear_cross_entropy(x, w[start:stop], y, return_aux=("logp", "entropy"), **kw)
    assert torch.isnan(aux.loss)
    assert torch.isnan(aux.logp[1])
    assert torch.isfinite(aux.logp[2:]).all()
    with ce.validation(False):
        logits = vocab_parallel_cross_entropy(x @ w[start:stop].T, y, group, reduction="none")
    assert torch.isnan(logits[1])
    assert torch.isfinite(logits[2:]).all()
    # read (the default): refused on every rank as the single-device op refuses it, the
    # early path and the per-token one alike
    msg = rf"target holds label {V} at index \(1,\); class labels must lie in \[0, {V}\)"
    xs = x.clone().requires_grad_(True)
    for kw in ({}, {"return_aux": ("logp",)}):
        with pytest.raises(IndexError, match=msg) as err:
            linear_cross_entropy(xs, w[start:stop], y, process_group=group, **kw)
        assert isinstance(err.value, ValueError)


def two_ranks(rank: int, world: int, group: Any) -> None:
    every_option(rank, world, group)
    dtensor_logits(rank, world, group)
    fused_every_option(rank, world, group)
    fused_edge_cases(rank, world, group)
    unread_targets_out_of_range(rank, world, group)


def four_ranks(rank: int, world: int, group: Any) -> None:
    # each option alone runs on two ranks; here the uneven shards meet all of them at once
    every_option(rank, world, group, ("plain", "everything"))
    fused_every_option(rank, world, group, ("plain", "everything"))
    # a head sharded over a 2 x 2 mesh (data and tensor parallel) is not one rank's rows
    from torch.distributed.device_mesh import DeviceMesh
    from torch.distributed.tensor import Shard, distribute_tensor

    from crossentropy.fused import linear_cross_entropy

    x, w, _, y = _tensor_parallel_data()
    mesh = DeviceMesh("cpu", torch.arange(world).reshape(2, 2))
    both = distribute_tensor(w, mesh, [Shard(0), Shard(0)])
    with pytest.raises(ValueError, match=r"over a mesh of shape \(2, 2\)"):
        linear_cross_entropy(x, both, y, process_group=group)


def ranks_disagree_on_tokens(rank: int, world: int, group: Any) -> None:
    """Ranks that pass different token counts without ``sequence_parallel`` (or hidden states
    of different sizes): a ValueError naming the arguments on every rank, from the all-gather
    of the shard sizes, and no collective of mismatched sizes (gloo aborts on those)."""
    from crossentropy.fused import linear_cross_entropy

    x, w, _, y = _tensor_parallel_data()
    start, stop = _shard(rank, world)
    n = N - rank  # N, N - 1, ...
    with pytest.raises(
        ValueError, match=r"input and target \(without sequence_parallel\).*\[13, 12"
    ):
        linear_cross_entropy(x[:n], w[start:stop], y[:n], process_group=group)
    with pytest.raises(ValueError, match=r"logits and target: .*\[13, 12"):
        vocab_parallel_cross_entropy((x @ w.T)[:n, start:stop], y[:n], group)
    d = D - rank
    with pytest.raises(ValueError, match=r"input: every rank .* same size .*\[5, 4"):
        linear_cross_entropy(x[:, :d], w[start:stop, :d], y, process_group=group)
    # the group is still usable: the next call is the whole loss
    got = linear_cross_entropy(x, w[start:stop], y, process_group=group)
    torch.testing.assert_close(got, linear_cross_entropy(x, w, y), rtol=1e-12, atol=1e-12)


def tied_maxima(rank: int, world: int, group: Any) -> None:
    """``correct`` where a row's maximum is tied, within a shard and across shards: argmax's
    rule (the lowest class index among the maxima), as the single-process op counts."""
    from crossentropy.fused import linear_cross_entropy

    eye = torch.eye(V, dtype=torch.float64)  # the logits are the hidden states
    rows, targets = [], []
    for tied, labels in (
        ([], [0, 3, V - 1]),  # every logit tied: class 0 is the argmax
        ([V - 5, V - 2], [V - 5, V - 2, 0]),  # tied in the last shards
        ([1, 4, V - 3], [1, 4, V - 3]),  # tied across shards
        ([2], [2, 5]),  # no tie
    ):
        for label in labels:
            row = torch.zeros(V, dtype=torch.float64)
            row[tied] = 1.0
            rows.append(row)
            targets.append(label)
    x, y = torch.stack(rows), torch.tensor(targets)
    start, stop = _shard(rank, world)
    for reduction in ("mean", "none"):
        ours = linear_cross_entropy(
            x, eye[start:stop], y, return_aux=("correct",), reduction=reduction, process_group=group
        )
        ref = linear_cross_entropy(x, eye, y, return_aux=("correct",), reduction=reduction)
        assert int(ref.correct) == 4  # labels 0, V - 5, 1 and 2: one hit per row kind
        assert int(ours.correct) == int(ref.correct), (world, rank, int(ours.correct))


def half_precision(rank: int, world: int, group: Any) -> None:
    """bfloat16 and float16 inputs: the loss in the input's dtype, as the single-process op
    returns it (the per-token outputs in float32); under autocast, float32 for both."""
    from crossentropy.fused import linear_cross_entropy

    x, w, _, y = _tensor_parallel_data()
    start, stop = _shard(rank, world)
    for dtype in (torch.bfloat16, torch.float16):
        xh, wh = x.to(dtype), w.to(dtype)
        for reduction in ("mean", "sum", "none"):
            for aux in (False, ("lse",)):
                kw = {"reduction": reduction, "return_aux": aux}
                ours = linear_cross_entropy(xh, wh[start:stop], y, process_group=group, **kw)
                ref = linear_cross_entropy(xh, wh, y, **kw)
                case = (dtype, reduction, aux)
                if aux:
                    assert ours.lse.dtype == ref.lse.dtype == torch.float32, case
                    ours, ref = ours.loss, ref.loss
                assert ours.dtype == ref.dtype == dtype, case
                torch.testing.assert_close(ours, ref, msg=lambda m, c=case: f"{c}: {m}")
    xs = x.float().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = linear_cross_entropy(xs, w.float()[start:stop], y, process_group=group)
        ref = linear_cross_entropy(x.float(), w.float(), y)
    assert ours.dtype == ref.dtype == torch.float32
    ours.backward()
    assert xs.grad is not None
    assert xs.grad.dtype == torch.float32


def ranks_disagree_on_options(rank: int, world: int, group: Any) -> None:
    """Options or dtypes that differ between the ranks, and a rank that refuses its own
    arguments: a ValueError on every rank from the all-gather of the sizes (a collective of
    mismatched sizes aborted a process; a rank that stopped alone left the others waiting for
    the group's timeout); the group usable after."""
    from crossentropy.fused import linear_cross_entropy

    x, w, _, y = _tensor_parallel_data()
    start, stop = _shard(rank, world)
    others = ", ".join(str(r) for r in range(1, world))
    same = rf"same options and dtypes .*; ranks differ: 0 / {others}$"
    with pytest.raises(ValueError, match=same):
        linear_cross_entropy(
            x, w[start:stop], y, label_smoothing=0.1 if rank == 0 else 0.0, process_group=group
        )
    xr, wr = (x.float(), w.float()) if rank == 0 else (x, w)
    with pytest.raises(ValueError, match=same):
        linear_cross_entropy(xr, wr[start:stop], y, process_group=group)
    items = r"same options and dtypes \(.*num_items_in_batch.*\); ranks differ: 0 / 1"
    with pytest.raises(ValueError, match=items):  # each rank its own count: its own loss
        linear_cross_entropy(x, w[start:stop], y, num_items_in_batch=3 + rank, process_group=group)
    chunk = np.int64(5) if rank == 0 else 5  # the same size, however written
    got = linear_cross_entropy(x, w[start:stop], y, chunk_size=chunk, process_group=group)
    torch.testing.assert_close(got, linear_cross_entropy(x, w, y), rtol=1e-12, atol=1e-12)
    logits = (x @ w.T)[:, start:stop]
    with pytest.raises(ValueError, match=same) as refused:
        vocab_parallel_cross_entropy(logits, y, group, label_smoothing=0.1 if rank == 0 else 0.0)
    assert "return_aux" not in str(refused.value)  # the options this op takes
    bias = torch.zeros(stop - start + (rank == 1), dtype=x.dtype)  # rank 1's is one too long
    message = (
        r"linear_bias must have shape" if rank == 1 else r"rank 1 of the process group refused"
    )
    with pytest.raises(ValueError, match=message):
        linear_cross_entropy(x, w[start:stop], y, linear_bias=bias, process_group=group)
    # an option or a count refused on rank 1 alone: the others are told
    for bad, says in (({"reduction": "avg"}, "reduction"), ({"num_items_in_batch": 0}, "items")):
        kw = bad if rank == 1 else {}
        with pytest.raises(ValueError, match=says if rank == 1 else message):
            linear_cross_entropy(x, w[start:stop], y, process_group=group, **kw)
    # the logits-level op likewise (its sizes all-gathered: vocab_start not given)
    shard = (x @ w.T)[:, start:stop]
    for bad, says in (({"reduction": "avg"}, "reduction"), ({"target": y.float()}, "target")):
        kw = {"target": y, **(bad if rank == 1 else {})}
        with pytest.raises((TypeError, ValueError), match=says if rank == 1 else message):
            vocab_parallel_cross_entropy(shard, group=group, **kw)
    listed = x.tolist() if rank == 1 else x  # not a tensor: no dtype or device to read
    with pytest.raises(
        TypeError if rank == 1 else ValueError, match="input must" if rank == 1 else message
    ):
        linear_cross_entropy(listed, w[start:stop], y, process_group=group)
    got = linear_cross_entropy(x, w[start:stop], y, process_group=group)
    torch.testing.assert_close(got, linear_cross_entropy(x, w, y), rtol=1e-12, atol=1e-12)
    if rank > 0:  # the other ranks hold a placeholder for the group of rank 0 alone
        with pytest.raises(ValueError, match="process_group: this rank is not a member"):
            linear_cross_entropy(x, w, y, process_group=_POOL_GROUPS["first"])


def uneven_shards_in_default_chunks(rank: int, world: int, group: Any) -> None:
    """Shards of 1 and 1000 - (P - 1) classes with one token more than the large shard's
    default chunk: the ranks chunk the tokens alike (by the largest shard), where each rank's
    own chunking made collectives of different sizes (gloo aborted a process)."""
    from crossentropy.fused import linear_cross_entropy
    from crossentropy.fused._terms import device_chunk

    sizes = [1] * (world - 1) + [1000 - (world - 1)]
    n = device_chunk(sizes[-1], False) + 1
    assert device_chunk(sizes[0], False) >= n  # one chunk for the small shards, alone
    g = torch.Generator().manual_seed(3)
    x = torch.randn(n, 2, generator=g)
    w = torch.randn(1000, 2, generator=g)
    y = torch.randint(0, 1000, (n,), generator=g)
    lo = sum(sizes[:rank])
    got = linear_cross_entropy(x, w[lo : lo + sizes[rank]], y, process_group=group)
    torch.testing.assert_close(got, linear_cross_entropy(x, w, y), rtol=1e-5, atol=1e-6)


def refusals_on_one_rank_and_paths(rank: int, world: int, group: Any) -> None:
    """Refusals on one rank that were raised before the relay (the logits-level op's default
    group, ``kernel="triton"``, ``sequence_ids``, a non-bool ``sequence_parallel``) and ranks
    that differ in grad mode or in which inputs require grad (which pick the collectives: a
    rank waited for the group's timeout, or gloo aborted the process): a ``ValueError`` on
    every rank; torch.func refused; DTensor class weights of DTensor logits."""
    from torch.distributed.tensor import Shard, distribute_tensor

    from crossentropy.fused import linear_cross_entropy

    x, w, _, y = _tensor_parallel_data()
    start, stop = _shard(rank, world)
    told = r"rank 1 of the process group refused its arguments"
    if world == POOL:  # the default group is the whole world: every rank of the pool
        shard = (x @ w.T)[:, start:stop]
        bad = {"label_smoothing": 1.5} if rank == 1 else {}
        with pytest.raises(ValueError, match="label_smoothing" if rank == 1 else told):
            vocab_parallel_cross_entropy(shard, y, **bad)
    for bad, says in (
        ({"kernel": "triton"}, "kernel='triton' does not take a process_group"),
        ({"sequence_ids": torch.zeros(len(y), dtype=torch.long)}, "sequence_ids and cu_seqlens"),
        ({"sequence_parallel": "yes"}, "sequence_parallel must be True or False"),
    ):
        kw = bad if rank == 1 else {}
        with pytest.raises((TypeError, ValueError), match=says if rank == 1 else told):
            linear_cross_entropy(x, w[start:stop], y, process_group=group, **kw)
    paths = r"same options and dtypes \(.*grad mode and which of input, linear_weight"
    for cw in (None, torch.ones(stop - start, dtype=x.dtype)):
        xg = x.clone().requires_grad_(True)
        wg = w[start:stop].clone().requires_grad_(True)
        with pytest.raises(ValueError, match=paths), torch.set_grad_enabled(rank != 0):
            linear_cross_entropy(xg, wg, y, weight=cw, process_group=group)
        xs = xg.detach() if rank == 1 else xg  # no input gradient on rank 1
        with pytest.raises(ValueError, match=paths):
            linear_cross_entropy(xs, wg, y, weight=cw, process_group=group)
    refused = "with a process group does not run under torch.func"
    with pytest.raises(TypeError, match=refused):  # on every rank, before any collective
        torch.func.grad(lambda a: linear_cross_entropy(a, w[start:stop], y, process_group=group))(x)
    with pytest.raises(TypeError, match=refused):
        torch.func.grad(lambda z: vocab_parallel_cross_entropy(z, y, group))(x @ w[start:stop].T)
    if world == 2:  # fullgraph: Dynamo's error gives the reason, before any collective
        step = torch.compile(
            lambda a: linear_cross_entropy(a, w[start:stop], y, process_group=group),
            fullgraph=True,
            backend="eager",
        )
        with pytest.raises(Exception, match="process_group without fullgraph=True"):
            step(x)
        torch._dynamo.reset()
    mesh = _mesh(group)
    logits, target, cw = _data(2)
    got = vocab_parallel_cross_entropy(
        distribute_tensor(logits, mesh, [Shard(1)]),
        target,
        weight=distribute_tensor(cw, mesh, [Shard(0)]),
    )
    torch.testing.assert_close(got, ce.cross_entropy(logits, target, weight=cw))
    got = linear_cross_entropy(x, w[start:stop], y, process_group=group)  # the group still works
    torch.testing.assert_close(got, linear_cross_entropy(x, w, y), rtol=1e-12, atol=1e-12)


def argument_checks(rank: int, world: int, group: Any) -> None:
    refusals_on_one_rank_and_paths(rank, world, group)
    ranks_disagree_on_tokens(rank, world, group)
    ranks_disagree_on_options(rank, world, group)
    uneven_shards_in_default_chunks(rank, world, group)
    tied_maxima(rank, world, group)
    half_precision(rank, world, group)


def test_ranks_that_disagree_ties_and_half_precision(ranks):
    """Token counts or feature sizes that differ between the ranks are a ValueError on every
    rank; ``correct`` follows argmax's first-index rule across the shards; half-precision
    losses come back in the input's dtype, as on one process."""
    ranks.run("argument_checks", 2)
    ranks.run("argument_checks", 4)


def test_two_ranks_every_option_and_a_dtensor(ranks):
    """Two ranks (shards of 6 and 5 classes): every option and reduction, DTensor logits
    sharded on the class axis, and the fused op with a process group (loss, per-token outputs,
    gradients of the input and of the weight and bias shards), against the single-process
    results."""
    ranks.run("two_ranks", 2)


def test_four_ranks_uneven_shards(ranks):
    """Four ranks (shards of 3, 3, 3 and 2 classes), logits-level and fused."""
    ranks.run("four_ranks", 4)


def sequence_parallel(rank: int, world: int, group: Any) -> None:
    """Each rank passes its own tokens (uneven counts; on four ranks one rank has none)."""
    import warnings

    tokens = [8, 5] if world == 2 else [6, 0, 4, 3]
    options = tuple(OPTIONS) if world == 2 else ("plain", "everything")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for option in options:
            for reduction in ("mean", "sum", "none"):
                for aux in (False, True):
                    _fused_case(rank, world, group, option, reduction, aux, tokens)
    # the collectives by torch's current names (the older ones warn on every call)
    assert [str(w.message) for w in caught if w.category is FutureWarning] == []
    # the module: this rank's rows and tokens
    from crossentropy.fused import linear_cross_entropy
    from crossentropy.nn import LinearCrossEntropyLoss

    x, w, _, y = _tensor_parallel_data()
    start, stop = _shard(rank, world)
    lo = sum(tokens[:rank])
    mine = slice(lo, lo + tokens[rank])
    module = LinearCrossEntropyLoss(
        D, stop - start, dtype=torch.float64, process_group=group, sequence_parallel=True
    )
    with torch.no_grad():
        module.linear.weight.copy_(w[start:stop])
    torch.testing.assert_close(
        module(x[mine], y[mine]), linear_cross_entropy(x, w, y), rtol=1e-12, atol=1e-12
    )


def _tensor_parallel_data(seed: int = 5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, D, generator=g, dtype=torch.float64)
    w = torch.randn(V, D, generator=g, dtype=torch.float64)
    b = torch.randn(V, generator=g, dtype=torch.float64)
    y = torch.randint(0, V, (N,), generator=g)
    y[::3] = -100
    return x, w, b, y


def tensor_parallel_modules(rank: int, world: int, group: Any) -> None:
    """The head as a DTensor sharded on the vocabulary axis (tensor parallelism), and
    ``nn.LinearCrossEntropyLoss`` holding this rank's rows, against the whole head."""
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    from crossentropy.fused import linear_cross_entropy
    from crossentropy.nn import LinearCrossEntropyLoss

    x, w, b, y = _tensor_parallel_data()
    start, stop = _shard(rank, world)
    kw = {"label_smoothing": 0.1, "z_loss": 0.01, "chunk_size": 4}
    xr, wr, br = (t.clone().requires_grad_(True) for t in (x, w, b))
    ref = linear_cross_entropy(xr, wr, y, linear_bias=br, **kw)
    ref.backward()

    mesh = _mesh(group)
    wd = distribute_tensor(w, mesh, [Shard(0)]).requires_grad_(True)
    bd = distribute_tensor(b, mesh, [Shard(0)]).requires_grad_(True)
    xs = x.clone().requires_grad_(True)
    loss = linear_cross_entropy(xs, wd, y, linear_bias=bd, process_group=group, **kw)
    loss.backward()
    torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(xs.grad, xr.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(wd.grad.to_local(), wr.grad[start:stop], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(bd.grad.to_local(), br.grad[start:stop], rtol=1e-12, atol=1e-12)
    # the gradients formed in the forward sweep serve one backward
    again = linear_cross_entropy(xs, wd, y, linear_bias=bd, process_group=group, **kw)
    again.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="compute the loss again for another backward"):
        again.backward()

    module = LinearCrossEntropyLoss(
        D, stop - start, bias=True, dtype=torch.float64, process_group=group, **kw
    )
    with torch.no_grad():
        module.linear.weight.copy_(w[start:stop])
        module.linear.bias.copy_(b[start:stop])
    value = module(x, y)
    value.backward()
    torch.testing.assert_close(value, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(module.linear.weight.grad, wr.grad[start:stop])

    replicated = distribute_tensor(w, mesh, [Replicate()])
    with pytest.raises(ValueError, match="linear_weight: with a process_group, a DTensor must"):
        linear_cross_entropy(x, replicated, y, process_group=group)
    with pytest.raises(TypeError, match="input and target must be plain tensors"):
        linear_cross_entropy(distribute_tensor(x, mesh, [Replicate()]), wd, y, process_group=group)


class _TinyLM(torch.nn.Module):
    """Embedding, a hidden layer and an output head; ``forward`` gives the hidden states (the
    head is applied by the loss, as Hugging Face's trainers and torchtune do)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(V, D)
        self.proj = torch.nn.Linear(D, D)
        self.head = torch.nn.Linear(D, V, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.proj(self.embed(ids)))


def _tiny_lm() -> _TinyLM:
    torch.manual_seed(0)
    return _TinyLM().double()


def fsdp2_training(rank: int, world: int, group: Any) -> None:
    """``fully_shard`` on the model and its head: two SGD steps whose loss takes the head's
    sharded DTensor weight (outside the head's forward) equal the single-process steps on the
    ranks' batches (the mean of the ranks' losses, as FSDP2 averages the gradients); the same
    through ``OutputProjectionLoss``, and ``nn.LinearCrossEntropyLoss`` sharded and called
    as a module."""
    from torch.distributed.fsdp import fully_shard

    from crossentropy.fused import linear_cross_entropy
    from crossentropy.integrations import OutputProjectionLoss
    from crossentropy.nn import LinearCrossEntropyLoss

    mesh = _mesh(group)
    g = torch.Generator().manual_seed(6)
    ids = torch.randint(0, V, (world, 7), generator=g)
    labels = torch.randint(0, V, (world, 7), generator=g)
    labels[:, ::3] = -100
    kw = {"label_smoothing": 0.1, "z_loss": 0.01, "chunk_size": 4}
    projection = OutputProjectionLoss(**kw)

    def functional(model, r):
        return linear_cross_entropy(model(ids[r]), model.head.weight, labels[r], **kw)

    def through_module(model, r):
        projection.set_model_output(model.head)
        return projection(model(ids[r]), labels[r])

    for loss_of in (functional, through_module):
        ref = _tiny_lm()
        opt = torch.optim.SGD(ref.parameters(), lr=0.5)
        for _ in range(2):
            opt.zero_grad()
            (sum(loss_of(ref, r) for r in range(world)) / world).backward()
            opt.step()
        model = _tiny_lm()
        fully_shard(model.head, mesh=mesh)
        fully_shard(model, mesh=mesh)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        for _ in range(2):
            opt.zero_grad()
            assert type(model.head.weight).__name__ == "DTensor"
            loss_of(model, rank).backward()
            opt.step()
        for (name, got), want in zip(model.named_parameters(), ref.parameters(), strict=True):
            torch.testing.assert_close(
                got.full_tensor(), want, rtol=1e-12, atol=1e-12, msg=lambda m, n=name: f"{n} {m}"
            )
        assert float((want - _tiny_lm().head.weight).abs().max()) > 1e-3  # it trained

    hidden = torch.randn(world, 7, D, generator=g, dtype=torch.float64)
    torch.manual_seed(1)
    sharded = LinearCrossEntropyLoss(D, V, dtype=torch.float64, **kw)
    whole = LinearCrossEntropyLoss(D, V, dtype=torch.float64, **kw)
    whole.load_state_dict(sharded.state_dict())
    fully_shard(sharded, mesh=mesh)
    sharded(hidden[rank], labels[rank]).backward()
    (sum(whole(hidden[r], labels[r]) for r in range(world)) / world).backward()
    torch.testing.assert_close(
        sharded.linear.weight.grad.full_tensor(), whole.linear.weight.grad, rtol=1e-12, atol=1e-12
    )

    # fully_shard on the model alone, the loss module one of its children, called after the
    # model's forward (outside it)
    def with_loss() -> torch.nn.Module:
        model = _tiny_lm()
        model.loss = LinearCrossEntropyLoss(D, V, dtype=torch.float64, **kw)
        return model

    ref = with_loss()
    (sum(ref.loss(ref(ids[r]), labels[r]) for r in range(world)) / world).backward()
    model = with_loss()
    fully_shard(model, mesh=mesh)
    model.loss(model(ids[rank]), labels[rank]).backward()
    for (name, got), want in zip(model.named_parameters(), ref.parameters(), strict=True):
        if name.startswith("head."):  # not used here
            assert got.grad is None
            assert want.grad is None
            continue
        torch.testing.assert_close(
            got.grad.full_tensor(),
            want.grad,
            rtol=1e-12,
            atol=1e-12,
            msg=lambda m, n=name: f"{n} {m}",
        )


def test_sequence_parallel_tokens_split_over_the_ranks(ranks):
    """``sequence_parallel=True``: each rank's own tokens (8 and 5; on four ranks 6, 0, 4 and
    3), every option and reduction, per-token outputs: the results of all the tokens on every
    rank, each rank's input gradient, the weight and bias shards' gradients."""
    ranks.run("sequence_parallel", 2)
    ranks.run("sequence_parallel", 4)


def test_tensor_parallel_dtensor_head_and_module(ranks):
    ranks.run("tensor_parallel_modules", 2)


def test_fsdp2_sharded_head_trains_as_one_process(ranks):
    ranks.run("fsdp2_training", 2)


def test_needs_an_initialised_process_group():
    if dist.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    with pytest.raises(RuntimeError, match="init_process_group"):
        vocab_parallel_cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]))


def test_single_process_group_is_the_plain_loss(tmp_path):
    """One rank holding the whole vocabulary: the core's cross-entropy, in this process."""
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        logits, target, cw = _data(2)
        got = vocab_parallel_cross_entropy(logits, target, weight=cw, label_smoothing=0.1)
        want = ce.cross_entropy(logits, target, weight=cw, label_smoothing=0.1)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        with pytest.raises(TypeError, match="logits must be a floating-point tensor"):
            vocab_parallel_cross_entropy(torch.ones(2, 3, dtype=torch.int64), target[:2])
        with pytest.raises(ValueError, match="target must have logits' shape"):
            vocab_parallel_cross_entropy(logits, target[:-1])
        with pytest.raises(
            TypeError, match=r"target must hold integer class indices; got torch\.bool"
        ):
            vocab_parallel_cross_entropy(logits[:2], torch.tensor([True, False]))  # as the fused op
        with pytest.raises(ValueError, match=r"^logits must have a class axis"):
            vocab_parallel_cross_entropy(torch.tensor(1.0), torch.tensor(0))  # named target
        with pytest.raises(ValueError, match=r"weight must be this rank's \(11,\) shard"):
            vocab_parallel_cross_entropy(logits, target, weight=cw[:-1])
        with pytest.raises(ValueError, match="label_smoothing"):
            vocab_parallel_cross_entropy(logits, target, label_smoothing=2.0)
        _fused_in_one_process()
    finally:
        dist.destroy_process_group()


def _fused_in_one_process() -> None:
    """A DTensor head on a one-rank mesh is the plain op; a DTensor input, and
    ``sequence_parallel`` without a group, are refused."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    from crossentropy.fused import linear_cross_entropy

    x, w, _, y = _tensor_parallel_data()
    mesh = init_device_mesh("cpu", (1,))
    wd = distribute_tensor(w, mesh, [Shard(0)]).requires_grad_(True)
    got = linear_cross_entropy(x, wd, y, label_smoothing=0.1)
    got.backward()
    wr = w.clone().requires_grad_(True)
    want = linear_cross_entropy(x, wr, y, label_smoothing=0.1)
    want.backward()
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(wd.grad.full_tensor(), wr.grad, rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError, match="input and target must be plain tensors"):
        linear_cross_entropy(distribute_tensor(x, mesh, [Shard(0)]), wd, y)
    with pytest.raises(ValueError, match="sequence_parallel needs a process_group"):
        linear_cross_entropy(x, w, y, sequence_parallel=True)
    with pytest.raises(TypeError, match="sequence_parallel must be True or False"):
        linear_cross_entropy(x, w, y, sequence_parallel=1)
    # with a group, the single-device op's argument checks
    world = dist.group.WORLD
    with pytest.raises(TypeError, match="input must be a floating tensor"):
        linear_cross_entropy(x.long(), w, y, process_group=world)
    for kw in ({"linear_weight": w.bfloat16()}, {"linear_bias": torch.zeros(V)}):
        name = next(iter(kw))
        message = f"{name} must have input's dtype torch.float64; got torch."
        for group in (None, world):  # the same error with a group as without
            args = {"linear_weight": w, **kw}
            with pytest.raises(TypeError, match=message):
                linear_cross_entropy(x, target=y, process_group=group, **args)
    with pytest.raises(TypeError, match=r"process_group must be a torch.distributed ProcessGroup"):
        linear_cross_entropy(x, w, y, process_group=True)
    from crossentropy.nn import LinearCrossEntropyLoss

    with pytest.raises(TypeError, match=r"process_group must be a torch.distributed ProcessGroup"):
        LinearCrossEntropyLoss(D, V, process_group=True)  # refused when built
    with pytest.raises(
        TypeError, match=r"group must be a torch.distributed ProcessGroup .*; got str"
    ):
        vocab_parallel_cross_entropy(x @ w.T, y, "world")
    with pytest.raises(ValueError, match=r"linear_bias must have shape \(11,\)"):
        linear_cross_entropy(x, w, y, linear_bias=torch.zeros(3), process_group=world)
    # an ignored row's non-finite hidden state reaches no gradient, with a group as without
    bad = x.clone()
    bad[0] = float("nan")  # y[0] is ignored
    for group in (world, None):
        xb, wb = bad.clone().requires_grad_(True), w.clone().requires_grad_(True)
        for reduction in ("mean", "none"):
            out = linear_cross_entropy(xb, wb, y, process_group=group, reduction=reduction)
            out.sum().backward()
        assert bool(torch.isfinite(wb.grad).all())
        assert bool(torch.isfinite(xb.grad).all())


def hung_peer(rank: int, world: int, group: Any) -> None:
    """Rank 1 never makes the call (a rank stuck or failed mid-step); rank 0's call gives a
    RuntimeError that says so within the group's timeout (2 s), instead of hanging."""
    if rank == 1:
        time.sleep(4)  # busy elsewhere, past rank 0's timeout
        return
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="a rank may have stopped"):
        vocab_parallel_cross_entropy(
            torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), group, vocab_start=0
        )
    assert time.monotonic() - start < 15  # the group's timeout, not a hang


def test_a_rank_that_does_not_make_the_call_is_a_clear_error_on_the_others(ranks):
    ranks.run("hung_peer", 2, "short")
