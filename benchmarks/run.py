"""Benchmarks against the anchors, measured in one process and reported as ratios.

Absolute times on a shared machine are noise; the ratio to the anchor measured in the same run,
on the same data, is the number that matters. Run: ``make bench`` or
``.venv/bin/python benchmarks/run.py [--repeat 15]``.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

import crossentropy as ce
import crossentropy.fused as fused
from crossentropy import grad


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Minimum wall time of ``fn`` over ``repeat`` runs, after one warm-up, in seconds."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best-of times of several functions, measured in alternation so drift hits all alike."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def cross_entropy_forward(n: int, c: int, repeat: int) -> list[tuple[str, float, str]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c), dtype=np.float32)
    y = rng.integers(0, c, n)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    with torch.no_grad():
        t = interleaved(
            {
                "torch": lambda: F.cross_entropy(tx, ty),
                "ours_numpy": lambda: ce.cross_entropy(x, y),
                "one_pass": lambda: x.sum(axis=1),
            },
            repeat,
        )
    return [
        ("F.cross_entropy forward (anchor)", t["torch"], "1.00"),
        (
            "crossentropy.cross_entropy forward, NumPy arrays",
            t["ours_numpy"],
            f"{t['ours_numpy'] / t['torch']:.2f}",
        ),
        (
            "one read pass, x.sum(axis=1) (floor)",
            t["one_pass"],
            f"{t['one_pass'] / t['torch']:.2f}",
        ),
    ]


def cross_entropy_forward_backward(n: int, c: int, repeat: int) -> list[tuple[str, float, str]]:
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.standard_normal((n, c), dtype=np.float32)).requires_grad_()
    y = torch.from_numpy(rng.integers(0, c, n))

    def run(fn: Callable[..., torch.Tensor]) -> Callable[[], None]:
        def step() -> None:
            x.grad = None
            fn(x, y).backward()

        return step

    t = interleaved({"torch": run(F.cross_entropy), "ours": run(ce.cross_entropy)}, repeat)
    return [
        ("F.cross_entropy forward + backward (anchor)", t["torch"], "1.00"),
        (
            "crossentropy.cross_entropy forward + backward, torch tensors",
            t["ours"],
            f"{t['ours'] / t['torch']:.2f}",
        ),
    ]


def closed_form_gradient(n: int, c: int, repeat: int) -> list[tuple[str, float, str]]:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, c), dtype=np.float32)
    y = rng.integers(0, c, n)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty = torch.from_numpy(y)

    def torch_step() -> None:
        tx.grad = None
        F.cross_entropy(tx, ty).backward()

    t = interleaved(
        {
            "forward": lambda: ce.cross_entropy(x, y),
            "grad": lambda: grad.cross_entropy(x, y),
            "torch": torch_step,
        },
        repeat,
    )
    return [
        ("crossentropy.cross_entropy forward, NumPy (anchor)", t["forward"], "1.00"),
        (
            "crossentropy.grad.cross_entropy value + gradient, NumPy",
            t["grad"],
            f"{t['grad'] / t['forward']:.2f}",
        ),
        (
            "F.cross_entropy forward + backward, torch",
            t["torch"],
            f"{t['torch'] / t['forward']:.2f}",
        ),
    ]


FUSED_METHODS = ("eager", "torch_chunked", "ours")


def fused_worker(method: str, n: int, d: int, v: int, repeat: int) -> None:
    """One fused-CE method in a fresh process: best fwd+bwd time and peak RSS growth."""
    import resource

    torch.manual_seed(0)
    x = (torch.randn(n, d) / d**0.5).requires_grad_()
    w = (torch.randn(v, d) / d**0.5).requires_grad_()
    y = torch.randint(0, v, (n,))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fns = {
        "eager": lambda: F.cross_entropy(x @ w.T, y),
        "torch_chunked": lambda: F.linear_cross_entropy(
            x, w, y, options=torch.nn.LinearCrossEntropyOptions()
        ),
        "ours": lambda: fused.linear_cross_entropy(x, w, y),
    }
    best = float("inf")
    for _ in range(repeat):
        x.grad = w.grad = None
        start = time.perf_counter()
        fns[method]().backward()
        best = min(best, time.perf_counter() - start)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(f"{best} {grown}")


def fused_suite(n: int, d: int, v: int, repeat: int) -> list[tuple[str, float, str]]:
    import subprocess
    import sys

    results = {}
    for method in FUSED_METHODS:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--fused-worker",
                method,
                "-n",
                str(n),
                "-d",
                str(d),
                "-v",
                str(v),
                "--repeat",
                str(repeat),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        results[method] = (float(out[0]), float(out[1]))
    anchor = results["torch_chunked"][0]
    floor = 6 * n * d * v / _matmul_rate()
    rows = [
        (
            f"{name} (peak RSS growth {results[key][1]:.0f} MiB)",
            results[key][0],
            f"{results[key][0] / anchor:.2f}",
        )
        for key, name in (
            ("eager", "eager F.linear + F.cross_entropy"),
            ("torch_chunked", "F.linear_cross_entropy, LinearCrossEntropyOptions() (anchor)"),
            ("ours", "crossentropy.fused.linear_cross_entropy"),
        )
    ]
    rows.append(("6·N·D·V floor at the measured torch.mm rate", floor, f"{floor / anchor:.2f}"))
    return rows


def _matmul_rate() -> float:
    a, b = torch.randn(4096, 1024), torch.randn(1024, 4096)
    t = best_of(lambda: a @ b, 5)
    return 2 * 4096 * 1024 * 4096 / t


def table(title: str, rows: list[tuple[str, float, str]]) -> str:
    lines = [f"### {title}", "", "| what | best time (ms) | ratio to anchor |", "|---|---:|---:|"]
    lines += [f"| {name} | {sec * 1e3:.1f} | {ratio} |" for name, sec, ratio in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("-n", type=int, default=65536)
    parser.add_argument("-c", type=int, default=1000)
    parser.add_argument("-d", type=int, default=1024)
    parser.add_argument("-v", type=int, default=32000)
    parser.add_argument("--suite", choices=("ce", "fused"), default="ce")
    parser.add_argument("--fused-worker", choices=FUSED_METHODS)
    args = parser.parse_args()
    if args.fused_worker:
        fused_worker(args.fused_worker, args.n, args.d, args.v, args.repeat)
        return
    if args.suite == "fused":
        print(
            table(
                f"fused linear + cross-entropy, forward + backward, N = {args.n}, D = {args.d}, "
                f"V = {args.v}, float32",
                fused_suite(args.n, args.d, args.v, args.repeat),
            )
        )
        return
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), numpy {np.__version__}\n"
    )
    shape = f"N = {args.n}, C = {args.c}, float32"
    print(
        table(f"cross_entropy forward, {shape}", cross_entropy_forward(args.n, args.c, args.repeat))
    )
    print()
    print(
        table(
            f"cross_entropy forward + backward on torch tensors, {shape}",
            cross_entropy_forward_backward(args.n, args.c, args.repeat),
        )
    )
    print()
    print(
        table(
            f"closed-form gradient (crossentropy.grad) on NumPy, {shape}",
            closed_form_gradient(args.n, args.c, args.repeat),
        )
    )


if __name__ == "__main__":
    main()
