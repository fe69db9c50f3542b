"""The fused linear + cross-entropy on a CUDA GPU against eager PyTorch, PyTorch's chunked
``F.linear_cross_entropy``, liger-kernel and cut-cross-entropy: forward + backward time (median
of CUDA-event timings), peak memory, and each method's error against a float32 reference.

All methods run in one process on the same inputs, one after another; each method's peak is
``torch.cuda.max_memory_allocated`` over one step, less what was allocated before it (the
inputs), so it counts the gradients and everything the method holds. A method whose library is
missing or that fails is reported with its error. Run on a GPU machine:
``python benchmarks/gpu.py [-n 8192 -d 4096 -v 128256 --dtype bfloat16]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

try:
    import crossentropy.fused as fused
except Exception as exc:  # reported in every row of ours, the other methods still measured
    print(f"import crossentropy.fused failed: {type(exc).__name__}: {exc}", flush=True)

Step = Callable[[], torch.Tensor]


def methods(x: torch.Tensor, w: torch.Tensor, y: torch.Tensor) -> dict[str, tuple[str, Step]]:
    """Each method's label and a function computing its mean loss (the backward is the
    caller's)."""

    def eager() -> torch.Tensor:
        return F.cross_entropy(F.linear(x, w).float(), y)

    def torch_chunked() -> torch.Tensor:
        return F.linear_cross_entropy(x, w, y)  # type: ignore[attr-defined]

    def liger() -> torch.Tensor:
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

        return liger_fused_linear_cross_entropy(x, w, y)

    def cce(**kw: object) -> Step:
        def run() -> torch.Tensor:
            from cut_cross_entropy import linear_cross_entropy

            return linear_cross_entropy(x, w, y, **kw)

        return run

    def ours(**kw: object) -> Step:
        return lambda: fused.linear_cross_entropy(x, w, y, **kw)  # type: ignore[arg-type]

    advantage = torch.randn(x.shape[0], device=x.device)

    def ours_aux() -> torch.Tensor:
        return fused.linear_cross_entropy(x, w, y, return_aux=("logp", "entropy")).loss

    def ours_rl() -> torch.Tensor:
        out = fused.linear_cross_entropy(x, w, y, reduction="none", return_aux=("logp", "entropy"))
        return -(advantage * out.logp).mean() - 0.01 * out.entropy.mean()

    compiled = torch.compile(eager)
    return {
        "eager": ("eager F.linear + F.cross_entropy (float32 logits)", eager),
        "torch_chunked": ("PyTorch F.linear_cross_entropy (chunked)", torch_chunked),
        "liger": ("liger-kernel fused linear cross-entropy", liger),
        "cce": ("cut-cross-entropy, impl='cce' (default gradient filter)", cce()),
        "cce_exact": ("cut-cross-entropy, impl='cce', filter_eps=None", cce(filter_eps=None)),
        "ours": ("crossentropy.fused, Triton row kernels (default chunks)", ours()),
        **{
            f"ours_{c}": (f"crossentropy.fused, Triton, chunk_size={c}", ours(chunk_size=c))
            for c in (512, 1024, 4096, 8192)
        },
        "ours_torch": ("crossentropy.fused, kernel='torch'", ours(kernel="torch")),
        "ours_none": (
            "crossentropy.fused, reduction='none' (summed / N)",
            lambda: fused.linear_cross_entropy(x, w, y, reduction="none").mean(),
        ),
        "ours_aux": ("crossentropy.fused + logp and entropy (logging)", ours_aux),
        "ours_rl": ("crossentropy.fused, RL objective through logp and entropy", ours_rl),
        "eager_compiled": ("torch.compile of eager", lambda: compiled()),
    }


def compile_check(dev: str) -> str:
    """The RL objective through the per-token outputs, with every option, inside
    ``torch.compile(fullgraph=True)`` on ``dev`` (the Triton kernels on CUDA) against eager:
    the largest relative gradient difference, and Dynamo's graph-break count."""
    import torch._dynamo

    torch.manual_seed(1)
    n, d, v = 1024, 256, 4096
    x = torch.randn(n, d, device=dev).to(torch.bfloat16).requires_grad_()
    w = (torch.randn(v, d, device=dev) / 16).to(torch.bfloat16).requires_grad_()
    y = torch.randint(0, v, (n,), device=dev)
    y[::7] = -100
    adv = torch.randn(n, device=dev)
    kw = {"label_smoothing": 0.1, "z_loss": 1e-4, "softcap": 30.0, "temperature": 0.9}

    def objective(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        out = fused.linear_cross_entropy(
            x,
            w,
            y,
            reduction="none",
            return_aux=("logp", "entropy"),
            **kw,  # type: ignore[arg-type]
        )
        return out.loss.mean() - (adv * out.logp).mean() - 0.01 * out.entropy.mean()

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    eager = torch.autograd.grad(objective(x, w), (x, w))
    compiled = torch.autograd.grad(torch.compile(objective, fullgraph=True)(x, w), (x, w))
    breaks = sum(torch._dynamo.utils.counters["graph_break"].values())
    diff = max(_rel(c, e) for c, e in zip(compiled, eager, strict=True))
    return (
        "torch.compile(fullgraph=True), RL objective, all options: "
        f"gradients' relative difference to eager {diff:.1e}, {breaks} graph breaks"
    )


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=8192)
    parser.add_argument("-d", type=int, default=4096)
    parser.add_argument("-v", type=int, default=128256)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--methods", default=None, help="comma-separated; default: all")
    parser.add_argument("--budget", type=float, default=240.0, help="seconds for all methods")
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script itself")
    args = parser.parse_args()
    n, d, v, dt = args.n, args.d, args.v, getattr(torch, args.dtype)
    dev = args.device
    torch.manual_seed(0)
    # logits of standard deviation about 2, as a trained LM head's
    x = torch.randn(n, d, device=dev).to(dt).requires_grad_()
    w = (torch.randn(v, d, device=dev) * (2.0 / d**0.5)).to(dt).requires_grad_()
    y = torch.randint(0, v, (n,), device=dev)
    name = torch.cuda.get_device_name() if dev == "cuda" else dev
    print(f"device: {name}, torch {torch.__version__}", flush=True)
    print(f"N = {n}, D = {d}, V = {v}, {args.dtype}, forward + backward", flush=True)

    # float32 reference from the same (rounded) inputs
    xr, wr = x.detach().float().requires_grad_(), w.detach().float().requires_grad_()
    ref = F.cross_entropy(xr @ wr.T, y)
    ref.backward()
    ref_loss, gx_ref, gw_ref = ref.item(), xr.grad, wr.grad
    del xr, wr, ref

    floor = _floor(x.detach(), w.detach(), args.repeat)

    table = methods(x, w, y)
    chosen = args.methods.split(",") if args.methods else list(table)
    rows: list[tuple[str, float, float, str]] = []
    start = time.perf_counter()
    for key in chosen:
        label, fn = table[key]
        if time.perf_counter() - start > args.budget:
            rows.append((label, float("nan"), float("nan"), "skipped: time budget"))
            continue

        def step(fn: Step = fn) -> torch.Tensor:
            x.grad = w.grad = None
            loss = fn()
            loss.backward()
            return loss

        try:
            loss = step()  # compiles
            err = (
                "— (another objective)"
                if key == "ours_rl"
                else f"loss {abs(loss.item() - ref_loss) / ref_loss:.1e}, "
                f"dX {_rel(x.grad, gx_ref):.1e}, dW {_rel(w.grad, gw_ref):.1e}"
            )
            x.grad = w.grad = None
            peak = _peak(step) if dev == "cuda" else float("nan")
            ms = _median(step, args.repeat, dev == "cuda") * 1e3
        except Exception as exc:  # reported, not hidden: the row says what failed
            first = (str(exc).strip().splitlines() or [""])[0][:120]
            rows.append(
                (label, float("nan"), float("nan"), f"failed: {type(exc).__name__}: {first}")
            )
            continue
        finally:
            x.grad = w.grad = None
        rows.append((label, ms, peak, err))
        print(f"{key}: {ms:.2f} ms, {peak:.0f} MiB, {err}", flush=True)

    if time.perf_counter() - start < args.budget:
        try:
            print(compile_check(dev), flush=True)
        except Exception as exc:
            print(f"compile check failed: {type(exc).__name__}: {exc}", flush=True)
    # PyTorch's chunked op where it ran, else the first method that ran
    timed = [(label, ms) for (label, ms, _, _) in rows if ms == ms]
    anchor = next((ms for label, ms in timed if label.startswith("PyTorch")), None)
    if anchor is None:
        anchor = timed[0][1] if timed else float("nan")
    print()
    print(
        f"### fused linear + cross-entropy on {name}, N = {n}, D = {d}, "
        f"V = {v}, {args.dtype}, forward + backward (median of {args.repeat})"
    )
    print()
    print("| method | time (ms) | ratio to anchor | peak memory (MiB) | error vs float32 |")
    print("|---|---:|---:|---:|---|")
    for label, ms, peak, err in rows:
        print(f"| {label} | {ms:.2f} | {ms / anchor:.2f} | {peak:.0f} | {err} |")
    print(
        f"| the three products alone (cuBLAS floor) | {floor * 1e3:.2f} | "
        f"{floor * 1e3 / anchor:.2f} | — | — |"
    )


def _floor(x: torch.Tensor, w: torch.Tensor, repeat: int) -> float:
    """The cuBLAS floor: median seconds of the three products (``X Wᵀ``, ``G W``, ``Gᵀ X``)
    in the storage dtype."""
    g = torch.randn(x.shape[0], w.shape[0], device=x.device).to(x.dtype)
    products = (lambda: x @ w.T, lambda: g @ w, lambda: g.T @ x)
    return sum(_median(f, repeat, x.is_cuda) for f in products)


def _peak(step: Callable[[], object]) -> float:
    """MiB allocated at the high-water mark of one ``step`` beyond what was held before it."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    step()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def _median(fn: Callable[[], object], repeat: int, cuda: bool) -> float:
    """Median seconds of ``fn`` over ``repeat`` runs timed with CUDA events (with the host
    clock where ``cuda`` is false), after 2 warm-ups."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeat):
        if not cuda:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
            continue
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    return statistics.median(times)


if __name__ == "__main__":
    main()
