"""`crossentropy.distributed`: vocabulary-parallel cross-entropy on torch.distributed (gloo,
processes spawned on 127.0.0.1), against the single-process loss of the gathered logits."""

from __future__ import annotations

import datetime
import os
import socket
import time
from typing import Any

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

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


def _entry(rank: int, world: int, port: int, name: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        globals()[name](rank, world)
    finally:
        dist.destroy_process_group()


def _spawn(world: int, name: str, timeout: float = 180.0) -> None:
    """Run ``name(rank, world)`` in ``world`` processes; a child's exception fails the test."""
    context = torch.multiprocessing.start_processes(
        _entry,
        args=(world, _free_port(), name),
        nprocs=world,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"{name} on {world} processes did not finish within {timeout} s")


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


def _compare(rank: int, world: int, logits, target, cw, option: str, reduction: str) -> None:
    start, stop = _shard(rank, world)
    kw = dict(OPTIONS[option])
    full_w = cw if kw.pop("weight", False) else None
    local = logits[:, start:stop].clone().requires_grad_(True)
    ours = vocab_parallel_cross_entropy(
        local,
        target,
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


def every_option(rank: int, world: int, options: tuple[str, ...] = tuple(OPTIONS)) -> None:
    logits, target, cw = _data(0)
    for option in options:
        for reduction in ("mean", "sum", "none"):
            _compare(rank, world, logits, target, cw, option, reduction)
    # targets only in the first shard: the other ranks hold none of them
    _compare(rank, world, logits, target.clamp(max=2), cw, "everything", "mean")
    # every target ignored: the mean is empty_mean, the sum 0, no gradient
    ignored = torch.full((N,), -100)
    local = logits[:, slice(*_shard(rank, world))].clone().requires_grad_(True)
    mean = vocab_parallel_cross_entropy(local, ignored)
    assert torch.isnan(mean)
    zero = vocab_parallel_cross_entropy(local, ignored, empty_mean=0.0, z_loss=0.1)
    zero.backward()
    assert float(zero) == 0.0
    assert float(local.grad.abs().max()) == 0.0
    # float32 logits, to rounding; an explicit vocab_start (no all-gather)
    l32 = logits.float()
    start, stop = _shard(rank, world)
    got = vocab_parallel_cross_entropy(l32[:, start:stop], target, vocab_start=start)
    torch.testing.assert_close(got, ce.cross_entropy(l32, target), rtol=1e-6, atol=1e-6)
    # a bad target is refused on every rank, naming it
    with pytest.raises(ValueError, match=r"target: entry 1 \(flattened\) is 11, out of range"):
        vocab_parallel_cross_entropy(
            logits[:, start:stop], target.clone().index_fill_(0, torch.tensor([1]), V)
        )


def dtensor_logits(rank: int, world: int) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    mesh = init_device_mesh("cpu", (world,))
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


def _fused_case(rank: int, world: int, option: str, reduction: str, aux: bool) -> None:
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

    def run(x, w, b, cw, group):
        out = linear_cross_entropy(
            x,
            w,
            y,
            linear_bias=b,
            weight=cw,
            reduction=reduction,
            chunk_size=4,
            return_aux=aux,
            process_group=group,
            **kw,
        )
        if not aux:
            return out, (out * cot).sum() if reduction == "none" else out
        total = (out.loss * cot).sum() if reduction == "none" else out.loss
        total = total + (cot * out.logp).sum() + 0.1 * out.entropy.sum() + 0.01 * out.lse.sum()
        return out, total

    xs, ws, bs = (t.clone().requires_grad_(True) for t in (x, w[start:stop], b[start:stop]))
    ours, total = run(xs, ws, bs, None if full_w is None else full_w[start:stop], dist.group.WORLD)
    total.backward()
    xr, wr, br = (t.clone().requires_grad_(True) for t in (x, w, b))
    ref, ref_total = run(xr, wr, br, full_w, None)
    ref_total.backward()
    case = (world, rank, option, reduction, aux)
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
    pairs += [(xs.grad, xr.grad), (ws.grad, wr.grad[start:stop]), (bs.grad, br.grad[start:stop])]
    for k, (got, want) in enumerate(pairs):
        torch.testing.assert_close(
            got, want, rtol=1e-12, atol=1e-12, msg=lambda m, k=k: f"{case} output {k}: {m}"
        )


def fused_every_option(rank: int, world: int, options: tuple[str, ...] = tuple(OPTIONS)) -> None:
    for option in options:
        for reduction in ("mean", "sum", "none"):
            for aux in (False, True):
                _fused_case(rank, world, option, reduction, aux)


def two_ranks(rank: int, world: int) -> None:
    every_option(rank, world)
    dtensor_logits(rank, world)
    fused_every_option(rank, world)


def four_ranks(rank: int, world: int) -> None:
    # each option alone runs on two ranks; here the uneven shards meet all of them at once
    every_option(rank, world, ("plain", "everything"))
    fused_every_option(rank, world, ("plain", "everything"))


def test_two_ranks_every_option_and_a_dtensor():
    """Two ranks (shards of 6 and 5 classes): every option and reduction, DTensor logits
    sharded on the class axis, and the fused op with a process group (loss, per-token outputs,
    gradients of the input and of the weight and bias shards), against the single-process
    results."""
    _spawn(2, "two_ranks")


def test_four_ranks_uneven_shards():
    """Four ranks (shards of 3, 3, 3 and 2 classes), logits-level and fused."""
    _spawn(4, "four_ranks")


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
        with pytest.raises(ValueError, match=r"weight must be this rank's \(11,\) shard"):
            vocab_parallel_cross_entropy(logits, target, weight=cw[:-1])
        with pytest.raises(ValueError, match="label_smoothing"):
            vocab_parallel_cross_entropy(logits, target, label_smoothing=2.0)
    finally:
        dist.destroy_process_group()


def hung_peer(rank: int, world: int) -> None:
    """Rank 1 never makes the call (a rank stuck or failed mid-step); rank 0's call gives a
    RuntimeError that says so within the group's timeout, instead of hanging."""
    group = dist.new_group(ranks=[0, 1], timeout=datetime.timedelta(seconds=2), backend="gloo")
    if rank == 1:
        time.sleep(4)  # busy elsewhere, past rank 0's timeout
        return
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="a rank may have stopped"):
        vocab_parallel_cross_entropy(
            torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), group, vocab_start=0
        )
    assert time.monotonic() - start < 15  # the group's timeout, not a hang


def test_a_rank_that_does_not_make_the_call_is_a_clear_error_on_the_others():
    _spawn(2, "hung_peer")
