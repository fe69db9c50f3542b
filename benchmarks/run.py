"""Benchmarks against the anchors, measured in one process and reported as ratios.

Absolute times on a shared machine are noise; the ratio to the anchor measured in the same run,
on the same data, is the number that matters. Run: ``make bench`` or
``.venv/bin/python benchmarks/run.py [--repeat 15]``.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

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


FUSED_METHODS = (
    "eager",
    "eager_compiled",
    "cce",
    "torch_chunked",
    "ours",
    "ours_none",
    "ours_aux",
    "ours_rl",
    "ours_kl",
)


def fused_worker(
    method: str, n: int, d: int, v: int, repeat: int, ignore: float = 0.0, dtype: str = "float32"
) -> None:
    """One fused-CE method in a fresh process: best fwd+bwd time and peak RSS growth.

    ``ours_none`` is ``reduction="none"`` (summed for the backward), ``ours_aux`` the mean loss
    with the per-token log-probabilities and entropy for logging, ``ours_rl`` an RL objective
    through them (``reduction="none"``), ``ours_kl`` the fused forward KL against a second head
    of the same shape (the teacher, under ``no_grad``); ``ignore`` is the fraction of targets
    set to -100 (every method skips them as it can)."""
    import resource

    torch.manual_seed(0)
    dt = getattr(torch, dtype)
    # In place, so no temporary copy of an input raises the high-water mark before ``base``.
    x = torch.randn(n, d).div_(d**0.5).to(dt).requires_grad_()
    w = torch.randn(v, d).div_(d**0.5).to(dt).requires_grad_()
    y = torch.randint(0, v, (n,))
    if ignore:
        y[torch.randperm(n)[: int(ignore * n)]] = -100
    teacher = (x.detach().flip(0), w.detach().flip(0)) if method == "ours_kl" else None
    advantage = torch.randn(n)
    # torch's own imports are not the method's memory: Dynamo (which torch.library's custom
    # operators import on their first call, about 140 MiB) and, for the compiled ones, Inductor
    importlib.import_module("torch._dynamo")
    if method in ("eager_compiled", "cce"):
        torch.compile(lambda t: t + 1)(torch.zeros(1))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def rl() -> torch.Tensor:
        out = fused.linear_cross_entropy(x, w, y, reduction="none", return_aux=("logp", "entropy"))
        return -(advantage * out.logp).mean() - 0.01 * out.entropy.mean()

    def eager(x: torch.Tensor, w: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy((x @ w.T).float(), y)

    def cce() -> torch.Tensor:
        from cut_cross_entropy import linear_cross_entropy

        return linear_cross_entropy(x, w, y, impl="torch_compile")

    compiled = torch.compile(eager) if method == "eager_compiled" else eager
    fns = {
        "eager": lambda: eager(x, w, y),
        "eager_compiled": lambda: compiled(x, w, y),
        "cce": cce,
        "torch_chunked": lambda: F.linear_cross_entropy(
            x, w, y, options=torch.nn.LinearCrossEntropyOptions()
        ),
        "ours": lambda: fused.linear_cross_entropy(x, w, y),
        "ours_none": lambda: fused.linear_cross_entropy(x, w, y, reduction="none").sum(),
        "ours_aux": lambda: (
            fused.linear_cross_entropy(x, w, y, return_aux=("logp", "entropy")).loss
        ),
        "ours_rl": rl,
        "ours_kl": lambda: fused.linear_kl_div(x, w, *teacher, target=y),  # type: ignore[misc]
    }
    best = float("inf")
    for _ in range(repeat):
        x.grad = w.grad = None
        start = time.perf_counter()
        fns[method]().backward()
        best = min(best, time.perf_counter() - start)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(f"{best} {grown}")


def fused_suite(
    n: int,
    d: int,
    v: int,
    repeat: int,
    methods: list[str],
    rounds: int,
    ignore: float = 0.0,
    dtype: str = "float32",
    timeout: float | None = None,
) -> list[tuple[str, float, str]]:
    """Each method in its own process (so peak RSS is its own), the processes alternated for
    ``rounds`` rounds so that load on the machine hits every method alike; best times. A method
    whose process runs past ``timeout`` seconds is stopped and reported as such."""
    import subprocess
    import sys

    results: dict[str, tuple[float, float]] = {}
    for _ in range(rounds):
        for method in methods:
            cmd = [sys.executable, __file__, "--fused-worker", method, "-n", str(n), "-d", str(d)]
            cmd += ["-v", str(v), "--repeat", str(repeat), "--ignore", str(ignore)]
            cmd += ["--dtype", dtype]
            best, rss = results.get(method, (float("inf"), 0.0))
            try:
                run = subprocess.run(
                    cmd, capture_output=True, text=True, check=True, timeout=timeout
                )
            except subprocess.TimeoutExpired:
                results[method] = (best, rss)
                continue
            out = run.stdout.split()
            results[method] = (min(best, float(out[0])), max(rss, float(out[1])))
    anchor_key = "torch_chunked" if "torch_chunked" in results else methods[0]
    anchor = results[anchor_key][0]
    floor = _product_floor(n, d, v)
    names = {
        "eager": "eager F.linear + F.cross_entropy",
        "eager_compiled": "torch.compile of eager",
        "cce": "cut-cross-entropy, impl='torch_compile'",
        "torch_chunked": "F.linear_cross_entropy, LinearCrossEntropyOptions()",
        "ours": "crossentropy.fused.linear_cross_entropy",
        "ours_none": "ours, reduction='none'",
        "ours_aux": "ours + logp and entropy outputs (logging)",
        "ours_rl": "ours, RL objective through logp and entropy",
        "ours_kl": "crossentropy.fused.linear_kl_div (two heads)",
    }
    rows = [
        (
            f"{names[key]}{' (anchor)' if key == anchor_key else ''} "
            + (
                f"(peak RSS growth {results[key][1]:.0f} MiB)"
                if results[key][0] < float("inf")
                else f"(stopped after {timeout:.0f} s)"
            ),
            results[key][0],
            f"{results[key][0] / anchor:.2f}",
        )
        for key in methods
    ]
    rows.append(
        ("6·N·D·V floor: the three float32 products at this shape", floor, f"{floor / anchor:.2f}")
    )
    if "ours" in results:
        rows.append(("ours / floor", results["ours"][0], f"{results['ours'][0] / floor:.2f}"))
    return rows


HF_METHODS = ("model", "fused")


def hf_worker(method: str, repeat: int) -> None:
    """A tiny Llama (hidden 256, 2 layers, V = 32000) training step on a 4 x 512 batch, with the
    model's own loss or with ``use_fused_loss``: best step time and peak RSS growth."""
    import resource

    from transformers import LlamaConfig, LlamaForCausalLM

    from crossentropy.integrations.transformers import use_fused_loss

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=32000,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
    )
    model = LlamaForCausalLM(config)
    if method == "fused":
        use_fused_loss(model)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    ids = torch.randint(0, 32000, (4, 512))
    importlib.import_module("torch._dynamo")  # torch's own import, not the loss's memory

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    best = float("inf")
    for _ in range(repeat):
        opt.zero_grad(set_to_none=True)
        start = time.perf_counter()
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        best = min(best, time.perf_counter() - start)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(f"{best} {grown}")


def hf_suite(repeat: int, rounds: int) -> list[tuple[str, float, str]]:
    """Each way in its own process, alternated; best step times."""
    import subprocess
    import sys

    results: dict[str, tuple[float, float]] = {}
    for _ in range(rounds):
        for method in HF_METHODS:
            cmd = [sys.executable, __file__, "--hf-worker", method, "--repeat", str(repeat)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
            best, rss = results.get(method, (float("inf"), 0.0))
            results[method] = (min(best, float(out[0])), max(rss, float(out[1])))
    names = {"model": "the model's own loss (anchor)", "fused": "use_fused_loss(model)"}
    anchor = results["model"][0]
    return [
        (
            f"{names[m]} (peak RSS growth {results[m][1]:.0f} MiB)",
            results[m][0],
            f"{results[m][0] / anchor:.2f}",
        )
        for m in HF_METHODS
    ]


def _product_floor(n: int, d: int, v: int) -> float:
    """The 6·N·D·V floor of a linear + cross-entropy's forward and backward passes: the time of
    its three float32 products at this shape (logits ``X Wᵀ``, ``G W`` and ``Gᵀ X``), each the
    best of 3."""
    x, w, g = torch.randn(n, d), torch.randn(v, d), torch.randn(n, v)
    return sum(best_of(f, 3) for f in (lambda: x @ w.T, lambda: g @ w, lambda: g.T @ x))


SCORE_CHILD = """
import sys
import numpy as np, pyarrow.parquet as pq
from sklearn.metrics import accuracy_score, log_loss
t = pq.read_table(sys.argv[1])
y = t.column("y").to_numpy()
p = np.stack([t.column(f"p_{j}").to_numpy() for j in range(t.num_columns - 1)], axis=1)
del t
print(log_loss(y, p, labels=np.arange(p.shape[1])), accuracy_score(y, p.argmax(axis=1)))
"""


def _write_score_file(file: str, rows: int, classes: int = 10) -> None:
    """A Parquet file of ``rows`` softmax predictions (float64) and an int64 target."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    names = [f"p_{j}" for j in range(classes)]
    schema = pa.schema([("y", pa.int64())] + [(n, pa.float64()) for n in names])
    with pq.ParquetWriter(file, schema) as writer:
        for lo in range(0, rows, 1 << 20):
            k = min(1 << 20, rows - lo)
            p = np.exp(2.0 * rng.standard_normal((k, classes)))
            p /= p.sum(axis=1, keepdims=True)
            y = (rng.random(k)[:, None] > np.cumsum(p, axis=1)).sum(axis=1).clip(0, classes - 1)
            cols = {"y": y.astype(np.int64), **{n: p[:, j] for j, n in enumerate(names)}}
            writer.write_table(pa.table(cols, schema=schema), row_group_size=1 << 20)


#: Prepended to a child's code: at exit it writes its own peak RSS (VmHWM, KiB) to stderr. The
#: rusage of a child is no good here: on Linux it inherits the parent's high-water mark at exec.
PEAK_HOOK = """
import atexit, sys
def _peak():
    with open("/proc/self/status") as fh:
        kib = next(line.split()[1] for line in fh if line.startswith("VmHWM"))
    sys.stderr.write(f"\\npeak_kib {kib}\\n")
atexit.register(_peak)
"""
#: The ``crossentropy`` console script, as installed (``python -c`` leaves the arguments in
#: ``sys.argv[1:]``, as the script does).
SCORE_CLI = "import sys\nfrom crossentropy.cli import console\nsys.exit(console())\n"


@functools.cache
def _compile_package() -> None:
    """Write the package's bytecode, as an install does: with ``PYTHONDONTWRITEBYTECODE`` set
    (as on the reference machine) an editable checkout is otherwise compiled from source by
    every child, ~0.3 s of each run that no installed package pays."""
    import compileall

    compileall.compile_dir(os.path.dirname(ce.__file__), quiet=1)


def _child_peak(code: str, args: list[str]) -> tuple[float, float, str]:
    """Run Python ``code`` with ``args`` in a child; (wall s, its peak RSS in MiB, its stdout)."""
    import subprocess
    import sys

    _compile_package()

    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_HOOK + code, *args], capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"child failed: {proc.stderr[-2000:]}")
    kib = int(proc.stderr.rsplit("peak_kib ", 1)[1].split()[0])
    return wall, kib / 1024, proc.stdout


def score_suite(rows: int, folder: str | None, anchor: bool = True) -> str:
    """``crossentropy score`` on a Parquet file of >= 1 GB: wall time, rows/s, peak RSS.

    Generates the file (10 float64 probability columns and an int64 target) in a temporary
    folder (under ``folder`` if given), scores it in subprocesses (the local engine, the Dask
    engine on its own in-process cluster, and, as the anchor, ``pyarrow.parquet.read_table`` +
    scikit-learn's ``log_loss`` in memory), and deletes the file. The peak RSS is each child's
    own high-water mark (``VmHWM``), which the child reports at exit.
    """
    import json
    import os
    import shutil
    import tempfile

    tmp = tempfile.mkdtemp(prefix="crossentropy-score-bench-", dir=folder)
    file = os.path.join(tmp, "predictions.parquet")
    try:
        start = time.perf_counter()
        _write_score_file(file, rows)
        made = time.perf_counter() - start
        size = os.path.getsize(file)
        cli = ["score", file, "--target", "y", "--proba-cols", "p_*", "--json"]
        runs = []
        ours = None
        for name, code, args in (
            ("crossentropy score (local engine)", SCORE_CLI, cli),
            (
                "crossentropy score --engine dask (local cluster)",
                SCORE_CLI,
                [*cli, "--engine", "dask"],
            ),
            ("anchor: pq.read_table + sklearn log_loss, in memory", SCORE_CHILD, [file]),
        ):
            if name.startswith("anchor") and not anchor:
                continue
            wall, rss, out = _child_peak(code, args)
            runs.append((name, wall, rss))
            if ours is None:
                ours = json.loads(out)["log_loss"]
            else:
                got = json.loads(out)["log_loss"] if out.startswith("{") else float(out.split()[0])
                assert abs(got - ours) <= 1e-9 * abs(ours), (name, got, ours)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = [
        f"### crossentropy score on a Parquet file: {rows:,} rows x (10 float64 + int64 target), "
        f"{size / 2**30:.2f} GiB ({size:,} bytes; written in {made:.0f} s, then deleted)",
        "",
        "| what | wall time (s) | rows/s | peak RSS (MiB) |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {n} | {w:.1f} | {rows / w:,.0f} | {r:,.0f} |" for n, w, r in runs]
    return "\n".join(lines)


# --------------------------------------------------------------------------- tables (issue 12)

#: DuckDB: the clipped log loss and the accuracy of a table ``{src}`` with target ``y`` and
#: probability columns ``{cols}`` (the true class's column picked by a CASE).
DUCKDB_TABLE = """
import sys, duckdb
duckdb.sql("SET enable_progress_bar = false")
cols = sys.argv[2].split(",")
pick = "CASE y " + " ".join(f"WHEN {j} THEN {c}" for j, c in enumerate(cols)) + " END"
src = sys.argv[1]
src = f"read_parquet('{src}')" if src.endswith(".parquet") else f"read_csv('{src}')"
eps = 2.220446049250313e-16
sql = (f"SELECT avg(-ln(greatest(least({pick}, 1 - {eps}), {eps}))), "
       f"avg(CASE WHEN {pick} = greatest({', '.join(cols)}) THEN 1.0 ELSE 0.0 END) FROM {src}")
print(*duckdb.sql(sql).fetchall()[0])
"""

#: DuckDB on a solution/submission pair: the join on ``id``, then the same two numbers.
DUCKDB_PAIR = """
import sys, duckdb
duckdb.sql("SET enable_progress_bar = false")
cols = sys.argv[3].split(",")
pick = "CASE s.y " + " ".join(f"WHEN {j} THEN b.{c}" for j, c in enumerate(cols)) + " END"
top = "greatest(" + ", ".join(f"b.{c}" for c in cols) + ")"
eps = 2.220446049250313e-16
sql = (f"SELECT avg(-ln(greatest(least({pick}, 1 - {eps}), {eps}))), "
       f"avg(CASE WHEN {pick} = {top} THEN 1.0 ELSE 0.0 END) "
       f"FROM read_csv('{sys.argv[1]}') s JOIN read_csv('{sys.argv[2]}') b ON s.id = b.id")
print(*duckdb.sql(sql).fetchall()[0])
"""

#: polars, lazily with its streaming engine: the same two numbers.
POLARS_TABLE = """
import sys, polars as pl
cols = sys.argv[2].split(",")
src = sys.argv[1]
frame = pl.scan_parquet(src) if src.endswith(".parquet") else pl.scan_csv(src)
eps = 2.220446049250313e-16
pick = pl.coalesce([pl.when(pl.col("y") == j).then(pl.col(c)) for j, c in enumerate(cols)])
out = frame.select(
    (-pick.clip(eps, 1 - eps).log()).mean().alias("ll"),
    (pick == pl.max_horizontal(cols)).cast(pl.Float64).mean().alias("acc"),
).collect(engine="streaming")
print(out["ll"][0], out["acc"][0])
"""

#: Our reader with a plain streaming log loss (no report): what the report adds to.
PLAIN_LOG_LOSS = """
import sys
from crossentropy.cli._score import spare_pandas_import
spare_pandas_import()  # as the console script does
from crossentropy.metrics import LogLoss
from crossentropy.scoring._readers import iter_batches
from crossentropy.scoring._sources import resolve_source
src = resolve_source(file=sys.argv[1], target="y", proba_cols=["p_*"], classes=None,
                     solution=None, submission=None, id_column=None, target_file=None,
                     fmt=None, batch_rows=65536)
acc = LogLoss(labels=list(range(len(src.classes))))
for batch in iter_batches(src):
    acc.update(batch.y, batch.proba)
print(acc.result())
"""


def _write_csv_file(file: str, rows: int, classes: int, ids: bool = False) -> None:
    """A CSV of ``rows`` softmax predictions with 6 decimals and an integer target."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(1)
    names = [f"p_{j}" for j in range(classes)]
    with open(file, "wb") as fh:
        header = True
        for lo in range(0, rows, 1 << 20):
            k = min(1 << 20, rows - lo)
            p = np.exp(2.0 * rng.standard_normal((k, classes)))
            p /= p.sum(axis=1, keepdims=True)
            p = np.round(p, 6)
            y = (rng.random(k)[:, None] > np.cumsum(p, axis=1)).sum(axis=1).clip(0, classes - 1)
            cols = {"y": y.astype(np.int64), **{n: p[:, j] for j, n in enumerate(names)}}
            if ids:
                cols = {"id": np.arange(lo, lo + k), **cols}
            pcsv.write_csv(pa.table(cols), fh, pcsv.WriteOptions(include_header=header))
            header = False


def _write_pair(folder: str, rows: int, classes: int) -> tuple[str, str]:
    """A Kaggle pair: ``sol.csv`` (id, y) in id order, ``sub.csv`` (id, p_*) shuffled."""
    import pyarrow.csv as pcsv

    table_file = f"{folder}/pair_all.csv"
    _write_csv_file(table_file, rows, classes, ids=True)
    t = pcsv.read_csv(table_file)
    os.remove(table_file)
    sol, sub = f"{folder}/sol.csv", f"{folder}/sub.csv"
    pcsv.write_csv(t.select(["id", "y"]), sol)
    order = np.random.default_rng(2).permutation(rows)
    pcsv.write_csv(t.drop_columns(["y"]).take(order), sub)
    return sol, sub


def tables_suite(folder: str | None, parquet_rows: int, csv_rows: int, pair_rows: int) -> str:
    """``crossentropy score`` against DuckDB SQL and polars computing the same clipped log loss
    and accuracy, on a large Parquet file, a smaller one, a large CSV and an unordered
    solution/submission pair; each in a child process whose peak RSS (VmHWM) is reported."""
    import shutil
    import tempfile

    tmp = tempfile.mkdtemp(prefix="crossentropy-tables-bench-", dir=folder)
    out = [machine()]
    print(out[0] + "\n", flush=True)
    try:
        files = []
        for rows in (parquet_rows, parquet_rows // 6):
            path = f"{tmp}/p{rows}.parquet"
            _write_score_file(path, rows)
            files.append((path, rows, 10))
        path = f"{tmp}/t{csv_rows}.csv"
        _write_csv_file(path, csv_rows, 7)
        files.append((path, csv_rows, 7))
        for path, rows, classes in files:
            cols = ",".join(f"p_{j}" for j in range(classes))
            cli = ["score", path, "--target", "y", "--proba-cols", "p_*", "--json"]
            runs = [
                ("crossentropy score (full report)", SCORE_CLI, cli),
                (
                    "crossentropy score, report without bootstrap",
                    SCORE_CLI,
                    [*cli, "--bootstrap", "0"],
                ),
                ("our reader + streaming LogLoss only", PLAIN_LOG_LOSS, [path]),
                ("DuckDB SQL (anchor)", DUCKDB_TABLE, [path, cols]),
                ("polars, lazy, streaming engine", POLARS_TABLE, [path, cols]),
            ]
            out.append(_table_runs(path, rows, runs))
            print(out[-1] + "\n", flush=True)
        sol, sub = _write_pair(tmp, pair_rows, 7)
        runs = _pair_runs(sol, sub)
        out.append(_table_runs(f"unordered pair {os.path.basename(sub)}", pair_rows, runs, sub))
        print(out[-1], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ""


def _pair_runs(sol: str, sub: str) -> list[tuple[str, str, list[str]]]:
    """The pair's three runs: ``crossentropy score`` with and without the bootstrap, and
    DuckDB's join (the anchor)."""
    cols = ",".join(f"p_{j}" for j in range(7))
    cli = ["score", "--solution", sol, "--submission", sub, "--id", "id", "--target", "y"]
    cli += ["--proba-cols", "p_*", "--json"]
    return [
        ("crossentropy score (full report)", SCORE_CLI, cli),
        ("crossentropy score, report without bootstrap", SCORE_CLI, [*cli, "--bootstrap", "0"]),
        ("DuckDB SQL join (anchor)", DUCKDB_PAIR, [sol, sub, cols]),
    ]


def pair_suite(folder: str | None, rows: int, rounds: int) -> str:
    """The unordered solution/submission pair of :func:`tables_suite` alone: ``crossentropy
    score`` (full report, and without the bootstrap) against DuckDB's join, each in a child
    process, alternated ``rounds`` times; best wall time and largest peak RSS of each."""
    import shutil
    import tempfile

    tmp = tempfile.mkdtemp(prefix="crossentropy-pair-bench-", dir=folder)
    try:
        sol, sub = _write_pair(tmp, rows, 7)
        runs = {name: (code, args) for name, code, args in _pair_runs(sol, sub)}
        best: dict[str, tuple[float, float]] = {}
        for _ in range(rounds):
            for name, (code, args) in runs.items():
                wall, rss, _ = _child_peak(code, args)
                old = best.get(name, (float("inf"), 0.0))
                best[name] = (min(old[0], wall), max(old[1], rss))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    anchor = best["DuckDB SQL join (anchor)"][0]
    lines = [
        f"### unordered pair, {rows:,} rows x 7 classes (best of {rounds} alternated rounds)",
        "",
        "| what | wall (s) | time / anchor | peak RSS (MiB) |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {n} | {w:.2f} | {w / anchor:.2f} | {r:,.0f} |" for n, (w, r) in best.items()]
    return "\n".join(lines)


def _table_runs(
    label: str, rows: int, runs: list[tuple[str, str, list[str]]], size_of: str | None = None
) -> str:
    import json

    size = os.path.getsize(size_of or label)
    results, reference = [], None
    for name, code, args in runs:
        wall, rss, text = _child_peak(code, args)
        last = text.strip().splitlines()[-1] if not text.startswith("{") else ""
        value = json.loads(text)["log_loss"] if text.startswith("{") else float(last.split()[0])
        reference = value if reference is None else reference
        assert abs(value - reference) <= 1e-9 * abs(reference), (name, value, reference)
        results.append((name, wall, rss))
    anchor = next(w for n, w, _ in results if "anchor" in n)
    lines = [
        f"### {os.path.basename(label)}: {rows:,} rows, {size / 2**20:,.0f} MiB",
        "",
        "| what | wall (s) | rows/s | time / anchor | peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {n} | {w:.2f} | {rows / w:,.0f} | {w / anchor:.2f} | {r:,.0f} |" for n, w, r in results
    ]
    return "\n".join(lines)


def metrics_suite(n: int, c: int, repeat: int) -> list[tuple[str, float, str]]:
    """``crossentropy.metrics.log_loss`` against scikit-learn and one read pass of the input."""
    from sklearn.metrics import log_loss as sk_log_loss

    from crossentropy.metrics import log_loss

    rng = np.random.default_rng(3)
    p = rng.random((n, c))
    p /= p.sum(axis=1, keepdims=True)
    y = rng.integers(0, c, n)
    if abs(log_loss(y, p) - sk_log_loss(y, p)) > 1e-12:
        raise SystemExit("crossentropy.metrics.log_loss disagrees with scikit-learn")
    t = interleaved(
        {
            "sklearn": lambda: sk_log_loss(y, p),
            "ours": lambda: log_loss(y, p),
            "one_pass": lambda: p.sum(axis=1),
        },
        repeat,
    )
    rows = [
        ("sklearn.metrics.log_loss (anchor)", t["sklearn"], "1.00"),
        (
            f"crossentropy.metrics.log_loss ({t['sklearn'] / t['ours']:.1f}x faster than sklearn, "
            f"{t['ours'] / t['one_pass']:.2f}x the read pass)",
            t["ours"],
            f"{t['ours'] / t['sklearn']:.3f}",
        ),
        (
            "one read pass, y_proba.sum(axis=1)",
            t["one_pass"],
            f"{t['one_pass'] / t['sklearn']:.3f}",
        ),
    ]
    return rows + _labels_and_brier(y, p, repeat) + _calibration_rows(y, p, repeat)


def _calibration_rows(y: np.ndarray, p: np.ndarray, repeat: int) -> list[tuple[str, float, str]]:
    """``calibration_error`` (15 bins, top label, l1) against torchmetrics'
    ``multiclass_calibration_error``, on NumPy arrays and on torch tensors; with the values'
    relative difference (torchmetrics computes the confidences in float32)."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    from crossentropy.metrics import calibration_error

    c = p.shape[1]
    tp, ty = torch.from_numpy(p), torch.from_numpy(y)
    ref = float(calibration_error(y, p))
    theirs = float(multiclass_calibration_error(tp, ty, num_classes=c, n_bins=15, norm="l1"))
    on_torch = float(calibration_error(ty, tp))
    t = interleaved(
        {
            "tm": lambda: multiclass_calibration_error(tp, ty, num_classes=c, n_bins=15),
            "np": lambda: calibration_error(y, p),
            "torch": lambda: calibration_error(ty, tp),
        },
        repeat,
    )
    diff = abs(theirs - ref) / ref
    return [
        (
            f"torchmetrics multiclass_calibration_error, torch tensors (anchor; value differs "
            f"from ours by {diff:.1e} relative: float32 confidences)",
            t["tm"],
            "1.00",
        ),
        (
            f"ours, NumPy arrays ({t['tm'] / t['np']:.2f}x faster)",
            t["np"],
            f"{t['np'] / t['tm']:.3f}",
        ),
        (
            f"ours, torch tensors ({t['tm'] / t['torch']:.2f}x faster; equal to NumPy's: "
            f"{on_torch == ref})",
            t["torch"],
            f"{t['torch'] / t['tm']:.3f}",
        ),
    ]


def dask_suite(n: int, c: int, repeat: int) -> list[tuple[str, float, str]]:
    """``metrics.log_loss`` on Dask arrays (``n`` x ``c`` float64, chunks of 1M rows, held in the
    memory of a 2-worker ``LocalCluster`` on 127.0.0.1) against the one-line ``da.choose``
    gather and a ``map_blocks`` + ``take_along_axis`` gather, each clipped as scikit-learn
    clips."""
    import logging

    import dask.array as da
    from distributed import Client, LocalCluster

    from crossentropy.metrics import log_loss

    eps = float(np.finfo(np.float64).eps)
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster),
    ):
        rs = da.random.RandomState(0)
        logits = rs.standard_normal((n, c), chunks=(1 << 20, c))
        p = da.exp(2 * logits)
        p = (p / p.sum(axis=1, keepdims=True)).persist()
        y = rs.randint(0, c, size=n, chunks=1 << 20).persist()

        def choose() -> float:
            picked = da.choose(y, p.T)
            return float((-da.log(da.clip(picked, eps, 1 - eps))).mean().compute())

        def take() -> float:
            picked = da.map_blocks(
                lambda a, b: np.take_along_axis(a, b, axis=1),
                p,
                y[:, None],
                chunks=(p.chunks[0], (1,)),
                dtype=p.dtype,
            )[:, 0]
            return float((-da.log(da.clip(picked, eps, 1 - eps))).mean().compute())

        def ours() -> float:
            return float(log_loss(y, p, labels=np.arange(c)))

        values = [choose(), take(), ours()]
        if max(values) - min(values) > 1e-9 * abs(values[0]):
            raise SystemExit(f"the Dask log losses disagree: {values}")
        t = interleaved({"choose": choose, "take": take, "ours": ours}, repeat)
    return [
        ("da.choose gather (anchor)", t["choose"], "1.00"),
        ("map_blocks + take_along_axis gather", t["take"], f"{t['take'] / t['choose']:.2f}"),
        (
            f"crossentropy.metrics.log_loss ({t['choose'] / t['ours']:.2f}x the anchor's speed)",
            t["ours"],
            f"{t['ours'] / t['choose']:.2f}",
        ),
    ]


def _labels_and_brier(
    y: np.ndarray, p: np.ndarray, repeat: int, binary_rows: int = 10_000_000
) -> list[tuple[str, float, str]]:
    """``log_loss`` with string labels held as objects (as a pandas column gives them), and the
    binary ``brier_score_loss`` of ``binary_rows`` 1-D probabilities, against scikit-learn."""
    from sklearn.metrics import brier_score_loss as sk_brier
    from sklearn.metrics import log_loss as sk_log_loss

    from crossentropy.metrics import brier_score_loss, log_loss

    names = np.array([f"class {j:02d}" for j in range(p.shape[1])], dtype=object)[y]
    rng = np.random.default_rng(4)
    yb, pb = rng.integers(0, 2, binary_rows), rng.random(binary_rows)
    if abs(log_loss(names, p) - sk_log_loss(names, p)) > 1e-12 or (
        abs(brier_score_loss(yb, pb) - sk_brier(yb, pb)) > 1e-12
    ):
        raise SystemExit("crossentropy.metrics disagrees with scikit-learn")
    t = interleaved(
        {
            "sk_names": lambda: sk_log_loss(names, p),
            "names": lambda: log_loss(names, p),
            "sk_brier": lambda: sk_brier(yb, pb),
            "brier": lambda: brier_score_loss(yb, pb),
        },
        repeat,
    )
    return [
        ("sklearn log_loss, string labels as objects (anchor)", t["sk_names"], "1.00"),
        (
            f"ours, string labels as objects ({t['sk_names'] / t['names']:.1f}x faster)",
            t["names"],
            f"{t['names'] / t['sk_names']:.3f}",
        ),
        (f"sklearn brier_score_loss, binary, {binary_rows:,} rows (anchor)", t["sk_brier"], "1.00"),
        (
            f"ours, binary Brier ({t['sk_brier'] / t['brier']:.1f}x faster)",
            t["brier"],
            f"{t['brier'] / t['sk_brier']:.3f}",
        ),
    ]


# ---------------------------------------------------------------------------------------------
# The core under the workflows of issue 10: JAX against optax, small tensors through nn, the
# generic path's options against PyTorch's same-option calls, segmentation losses eager and
# compiled.
# ---------------------------------------------------------------------------------------------


def jax_suite(n: int, c: int, repeat: int) -> list[tuple[str, float, str]]:
    """``jax.jit(jax.value_and_grad(...))`` of the mean cross-entropy against optax's, and the
    log-sum-exp's gradient against ``jax.nn.logsumexp``'s."""
    import jax
    import jax.numpy as jnp
    import optax

    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (n, c), jnp.float32)
    y = jax.random.randint(key, (n,), 0, c)
    ours = jax.jit(jax.value_and_grad(lambda v: ce.cross_entropy(v, y)))
    theirs = jax.jit(
        jax.value_and_grad(
            lambda v: optax.losses.softmax_cross_entropy_with_integer_labels(v, y).mean()
        )
    )
    soft = jax.nn.softmax(3 * jax.random.normal(jax.random.PRNGKey(1), (n, c), jnp.float32))
    # the targets an argument, as a training step's batch is (a constant would be folded)
    soft_ours = jax.jit(jax.value_and_grad(lambda v, s: ce.cross_entropy(v, s, axis=-1)))
    soft_theirs = jax.jit(
        jax.value_and_grad(lambda v, s: optax.losses.softmax_cross_entropy(v, s).mean())
    )
    lse_ours = jax.jit(jax.grad(lambda v: ce.logsumexp(v).sum()))
    lse_jax = jax.jit(jax.grad(lambda v: jax.nn.logsumexp(v, axis=-1).sum()))
    if abs(float(ours(x)[0]) - float(theirs(x)[0])) > 1e-5:
        raise SystemExit("cross_entropy disagrees with optax")
    if abs(float(soft_ours(x, soft)[0]) - float(soft_theirs(x, soft)[0])) > 1e-5:
        raise SystemExit("cross_entropy with probability targets disagrees with optax")

    def ready(fn: Callable[[], object]) -> Callable[[], object]:
        return lambda: jax.block_until_ready(fn())

    t = interleaved(
        {
            "optax": ready(lambda: theirs(x)),
            "ours": ready(lambda: ours(x)),
            "soft_optax": ready(lambda: soft_theirs(x, soft)),
            "soft_ours": ready(lambda: soft_ours(x, soft)),
            "lse_jax": ready(lambda: lse_jax(x)),
            "lse_ours": ready(lambda: lse_ours(x)),
        },
        repeat,
    )
    return [
        (
            "optax softmax_cross_entropy_with_integer_labels(...).mean() (anchor)",
            t["optax"],
            "1.00",
        ),
        ("crossentropy.cross_entropy", t["ours"], f"{t['ours'] / t['optax']:.2f}"),
        (
            "optax softmax_cross_entropy(...).mean(), probability targets (anchor)",
            t["soft_optax"],
            "1.00",
        ),
        (
            "crossentropy.cross_entropy, probability targets",
            t["soft_ours"],
            f"{t['soft_ours'] / t['soft_optax']:.2f}",
        ),
        ("gradient of jax.nn.logsumexp (anchor)", t["lse_jax"], "1.00"),
        (
            "gradient of crossentropy.logsumexp",
            t["lse_ours"],
            f"{t['lse_ours'] / t['lse_jax']:.2f}",
        ),
    ]


def jax_fused_suite(repeat: int) -> str:
    """``crossentropy.fused.jax.linear_cross_entropy`` against the dense jitted program
    (``x @ w.T`` then optax's integer-label cross-entropy, averaged): the compiled programs'
    temporary memory (XLA's ``memory_analysis``, nothing run) at N = 8192, D = 512, V = 128256,
    and the time of ``jit(value_and_grad)`` at N = 4096, D = 1024, V = 32000, float32."""
    import jax
    import jax.numpy as jnp
    import optax

    from crossentropy.fused.jax import linear_cross_entropy

    def fused(x: jax.Array, w: jax.Array, y: jax.Array) -> jax.Array:
        return linear_cross_entropy(x, w, y)

    def dense(x: jax.Array, w: jax.Array, y: jax.Array) -> jax.Array:
        return optax.losses.softmax_cross_entropy_with_integer_labels(x @ w.T, y).mean()

    def step(fn: Callable[..., jax.Array]) -> Callable[..., object]:
        return jax.jit(jax.value_and_grad(fn, argnums=(0, 1)))

    n, d, v = 8192, 512, 128256
    spec = (
        jax.ShapeDtypeStruct((n, d), jnp.float32),
        jax.ShapeDtypeStruct((v, d), jnp.float32),
        jax.ShapeDtypeStruct((n,), jnp.int32),
    )
    temp = {}
    for name, fn in (("dense", dense), ("fused", fused)):
        analysis = step(fn).lower(*spec).compile().memory_analysis()
        temp[name] = analysis.temp_size_in_bytes
    mib = 2.0**20
    lines = [
        f"### jit(value_and_grad) temporary memory, N = {n}, D = {d}, V = {v}, float32",
        "",
        "| program | temp (MiB) | ratio |",
        "|---|---:|---:|",
        f"| dense: x @ w.T, optax integer-label CE, mean (anchor) | {temp['dense'] / mib:,.0f} "
        "| 1.00 |",
        f"| crossentropy.fused.jax.linear_cross_entropy | {temp['fused'] / mib:,.0f} | "
        f"{temp['fused'] / temp['dense']:.3f} |",
        "",
    ]
    n, d, v = 4096, 1024, 32000
    key = jax.random.PRNGKey(0)
    kx, kw, ky = jax.random.split(key, 3)
    x = jax.random.normal(kx, (n, d), jnp.float32)
    w = jax.random.normal(kw, (v, d), jnp.float32) * 0.02
    y = jax.random.randint(ky, (n,), 0, v)
    ours, anchor = step(fused), step(dense)
    a, b = ours(x, w, y), anchor(x, w, y)
    if abs(float(a[0]) - float(b[0])) > 1e-4 * abs(float(b[0])):
        raise SystemExit("the fused JAX loss disagrees with the dense one")
    t = interleaved(
        {
            "dense": lambda: jax.block_until_ready(anchor(x, w, y)),
            "fused": lambda: jax.block_until_ready(ours(x, w, y)),
        },
        repeat,
    )
    lines += [
        f"### jit(value_and_grad) time, N = {n}, D = {d}, V = {v}, float32, best of {repeat}",
        "",
        "| program | s | ratio |",
        "|---|---:|---:|",
        f"| dense: x @ w.T, optax integer-label CE, mean (anchor) | {t['dense']:.3f} | 1.00 |",
        f"| crossentropy.fused.jax.linear_cross_entropy | {t['fused']:.3f} | "
        f"{t['fused'] / t['dense']:.2f} |",
    ]
    return "\n".join(lines)


VOCAB_METHODS = ("ours", "logits")


def _vocab_rank(
    rank: int,
    world: int,
    port: int,
    method: str,
    shape: tuple[int, int, int],
    repeat: int,
    out: str,
) -> None:
    """One rank of the vocabulary-parallel benchmark: ``repeat`` forward + backward steps (after
    one warm-up) of ``method`` on this rank's rows of the head; writes its best time, the
    growth of its peak RSS over the step (the step's own memory) and the bytes it handed to
    collectives per step."""
    import json
    import resource

    import torch.distributed as dist

    from crossentropy.distributed import vocab_parallel_cross_entropy

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    sent = [0]

    def counting(fn: Callable[..., object], payload: int) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            sent[0] += args[payload].nbytes  # type: ignore[attr-defined]
            return fn(*args, **kwargs)

        return call

    for name, payload in (
        ("all_reduce", 0),
        ("all_gather", 1),
        ("all_gather_into_tensor", 1),
        ("reduce_scatter_tensor", 1),
    ):
        setattr(dist, name, counting(getattr(dist, name), payload))
    n, d, v = shape
    rows = -(-v // world)
    lo, hi = min(rank * rows, v), min((rank + 1) * rows, v)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g).div_(d**0.5).requires_grad_()
    w = torch.randn(v, d, generator=g)[lo:hi].div_(d**0.5).requires_grad_()
    y = torch.randint(0, v, (n,), generator=g)
    importlib.import_module("torch._dynamo")  # torch's own import, not the method's memory

    def step() -> None:
        if method == "ours":
            fused.linear_cross_entropy(x, w, y, process_group=dist.group.WORLD).backward()
        else:  # Megatron's way: local logits, their vocabulary-parallel CE, dx all-reduced
            vocab_parallel_cross_entropy(x @ w.T, y, vocab_start=lo).backward()
            dist.all_reduce(x.grad)

    x.grad = w.grad = None
    dist.barrier()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    before = sent[0]
    step()
    per_step = sent[0] - before
    best = float("inf")
    for _ in range(repeat):
        x.grad = w.grad = None
        dist.barrier()
        start = time.perf_counter()
        step()
        dist.barrier()
        best = min(best, time.perf_counter() - start)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    with open(f"{out}/{rank}.json", "w") as f:
        json.dump({"time": best, "grown": grown, "sent": per_step}, f)
    dist.destroy_process_group()


def vocab_parallel_suite(n: int, d: int, v: int, repeat: int, worlds: list[int]) -> str:
    """``fused.linear_cross_entropy(..., process_group=)`` on P = 1, 2, 4 gloo ranks on
    127.0.0.1 against the logits-level anchor (each rank's ``[N, V/P]`` logits, then
    ``vocab_parallel_cross_entropy``, the input's gradient all-reduced: Megatron-Core's
    scheme): per rank, the best forward + backward time, the step's peak memory (RSS growth)
    and the bytes handed to collectives per step (the input gradient's all-reduce, ``4·N·D``,
    and the per-token statistics); each (P, method) in processes of its own."""
    import json
    import socket
    import tempfile

    def port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    lines = [
        f"### vocabulary-parallel forward + backward, N = {n}, D = {d}, V = {v}, float32, "
        f"gloo on 127.0.0.1, best of {repeat}",
        "",
        "| P | method | s (slowest rank) | peak MiB per rank (most) | sent MiB per rank |"
        " of which per-token statistics, bytes per token | time ratio | memory ratio |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for world in worlds:
        got = {}
        for method in VOCAB_METHODS:
            with tempfile.TemporaryDirectory() as out:
                torch.multiprocessing.start_processes(
                    _vocab_rank,
                    args=(world, port(), method, (n, d, v), repeat, out),
                    nprocs=world,
                    start_method="spawn",
                )
                ranks = [json.loads(Path(out, f"{r}.json").read_text()) for r in range(world)]
            got[method] = (
                max(r["time"] for r in ranks),
                max(r["grown"] for r in ranks),
                max(r["sent"] for r in ranks),
            )
        anchor = got["logits"]
        for method, label in (
            ("logits", "logits + vocab_parallel_cross_entropy (anchor)"),
            ("ours", "fused, process_group"),
        ):
            t, mem, sent = got[method]
            stats = (sent - 4 * n * d) / n  # all but the input gradient's all-reduce
            lines.append(
                f"| {world} | {label} | {t:.2f} | {mem:,.0f} | {sent / 2**20:,.1f} | "
                f"{stats:.0f} | {t / anchor[0]:.2f} | {mem / anchor[1]:.2f} |"
            )
    return "\n".join(lines)


def small_module_suite(repeat: int, calls: int = 2000) -> list[tuple[str, float, str]]:
    """``nn.CrossEntropyLoss`` forward + backward on 64 x 10 logits: the per-call overhead."""
    import crossentropy.nn as cnn

    torch.manual_seed(0)
    x = torch.randn(64, 10, requires_grad=True)
    y = torch.randint(0, 10, (64,))

    def loop(module: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            for _ in range(calls):
                x.grad = None
                module(x, y).backward()

        return run

    t = interleaved(
        {"torch": loop(torch.nn.CrossEntropyLoss()), "ours": loop(cnn.CrossEntropyLoss())},
        repeat,
    )
    return [
        ("torch.nn.CrossEntropyLoss, per call (anchor)", t["torch"] / calls, "1.00"),
        (
            "crossentropy.nn.CrossEntropyLoss, per call",
            t["ours"] / calls,
            f"{t['ours'] / t['torch']:.2f}",
        ),
    ]


def _forward_backward(
    fn: Callable[..., torch.Tensor], x: torch.Tensor, *rest: object
) -> Callable[[], None]:
    def step() -> None:
        x.grad = None
        fn(x, *rest).backward()

    return step


def options_suite(n: int, c: int, repeat: int) -> list[tuple[str, float, str]]:
    """Options that PyTorch's ``F.cross_entropy`` lacks or handles differently, forward +
    backward, each against PyTorch's same-option call written out."""
    torch.manual_seed(0)
    x = torch.randn(n, c).requires_grad_()
    y = torch.randint(0, c, (n,))
    y[::7] = -100
    w = torch.rand(c) + 0.5
    valid = y != -100
    soft = torch.randn(n, c).softmax(1)  # mixup / distillation targets
    cases = {
        "probability targets": (
            lambda a: ce.cross_entropy(a, soft),
            lambda a: F.cross_entropy(a, soft),
        ),
        "probability targets, validate=False (the generic path)": (
            lambda a: ce.cross_entropy(a, soft, validate=False),
            lambda a: F.cross_entropy(a, soft),
        ),
        "label smoothing + weight + ignore_index, empty_mean=0.0": (
            lambda a: ce.cross_entropy(a, y, w, label_smoothing=0.1, empty_mean=0.0),
            lambda a: F.cross_entropy(a, y, w, label_smoothing=0.1),
        ),
        "z_loss=1e-4": (
            lambda a: ce.cross_entropy(a, y, z_loss=1e-4),
            lambda a: F.cross_entropy(a, y) + 1e-4 * (torch.logsumexp(a, 1)[valid] ** 2).mean(),
        ),
        "softcap=30": (
            lambda a: ce.cross_entropy(a, y, softcap=30.0),
            lambda a: F.cross_entropy(30.0 * torch.tanh(a / 30.0), y),
        ),
    }
    rows = []
    for name, (ours, theirs) in cases.items():
        with torch.no_grad():
            if abs(float(ours(x)) - float(theirs(x))) > 1e-4:
                raise SystemExit(f"{name}: values differ")
        t = interleaved(
            {"theirs": _forward_backward(theirs, x), "ours": _forward_backward(ours, x)}, repeat
        )
        rows.append((f"{name}: PyTorch's call (anchor)", t["theirs"], "1.00"))
        rows.append((f"{name}: crossentropy", t["ours"], f"{t['ours'] / t['theirs']:.2f}"))
    return rows


def _torchvision_focal(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """torchvision.ops.sigmoid_focal_loss's formula (alpha 0.25, gamma 2, mean), written out."""
    p = torch.sigmoid(x)
    bce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = bce * ((1 - p_t) ** 2.0)
    return ((0.25 * t + 0.75 * (1 - t)) * loss).mean()


def _plain_dice(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A plain PyTorch multi-class soft Dice loss (segmentation-models-pytorch's defaults)."""
    p = x.softmax(1)
    onehot = F.one_hot(y, x.shape[1]).permute(0, 3, 1, 2).to(p.dtype)
    inter = (p * onehot).sum((0, 2, 3))
    card = (p + onehot).sum((0, 2, 3))
    dice = 2 * inter / card.clamp_min(1e-7)
    return ((1 - dice) * (onehot.sum((0, 2, 3)) > 0)).mean()


def segmentation_suite(repeat: int, compiled: bool) -> list[tuple[str, float, str]]:
    """``sigmoid_focal_loss`` and ``dice_loss`` forward + backward at (8, 21, 256, 256) against
    torchvision's formula and a plain PyTorch Dice, eager or under ``torch.compile``."""
    torch.manual_seed(0)
    shape = (8, 21, 256, 256)
    x = torch.randn(shape).requires_grad_()
    t = (torch.rand(shape) < 0.1).float()
    y = torch.randint(0, shape[1], (shape[0], *shape[2:]))
    pairs = {
        "sigmoid_focal_loss vs torchvision's formula": (
            lambda a: ce.sigmoid_focal_loss(a, t, reduction="mean"),
            lambda a: _torchvision_focal(a, t),
        ),
        "dice_loss (multiclass) vs a plain PyTorch Dice": (
            lambda a: ce.dice_loss(a, y, mode="multiclass"),
            lambda a: _plain_dice(a, y),
        ),
    }
    rows = []
    for name, (ours, theirs) in pairs.items():
        with torch.no_grad():
            if abs(float(ours(x)) - float(theirs(x))) > 1e-5:
                raise SystemExit(f"{name}: values differ")
        if compiled:
            ours, theirs = torch.compile(ours), torch.compile(theirs)
        t_ = interleaved(
            {"theirs": _forward_backward(theirs, x), "ours": _forward_backward(ours, x)}, repeat
        )
        rows.append((f"{name}: anchor", t_["theirs"], "1.00"))
        rows.append((f"{name}: crossentropy", t_["ours"], f"{t_['ours'] / t_['theirs']:.2f}"))
    return rows


def table(title: str, rows: list[tuple[str, float, str]]) -> str:
    if all(sec < 1e-3 for _, sec, _ in rows):
        unit, factor, digits = "µs", 1e6, 1
    else:
        unit, factor, digits = "ms", 1e3, 1
    lines = [
        f"### {title}",
        "",
        f"| what | best time ({unit}) | ratio to anchor |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {sec * factor:.{digits}f} | {ratio} |" for name, sec, ratio in rows]
    return "\n".join(lines)


def machine() -> str:
    return (
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), numpy {np.__version__}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("-n", type=int, default=65536)
    parser.add_argument("-c", type=int, default=1000)
    parser.add_argument("-d", type=int, default=1024)
    parser.add_argument("-v", type=int, default=32000)
    parser.add_argument(
        "--suite",
        choices=(
            "ce",
            "core",
            "jax",
            "options",
            "fused",
            "jaxfused",
            "hf",
            "score",
            "metrics",
            "tables",
            "dask",
            "vocab",
            "pair",
        ),
        default="ce",
    )
    parser.add_argument("--parquet-rows", type=int, default=13_000_000, help="tables: rows")
    parser.add_argument("--csv-rows", type=int, default=8_000_000, help="tables: CSV rows")
    parser.add_argument("--pair-rows", type=int, default=2_000_000, help="tables: pair rows")
    parser.add_argument("--metrics-rows", type=int, default=1_000_000, help="metrics suite: rows")
    parser.add_argument("--metrics-classes", type=int, default=10, help="metrics suite: classes")
    parser.add_argument("--path", help="score suite: folder for the temporary Parquet file")
    parser.add_argument("--score-rows", type=int, default=13_000_000, help="score suite: rows")
    parser.add_argument("--no-anchor", action="store_true", help="score suite: skip the anchor")
    parser.add_argument("--fused-worker", choices=FUSED_METHODS)
    parser.add_argument("--hf-worker", choices=HF_METHODS)
    parser.add_argument(
        "--fused-methods", default=",".join(FUSED_METHODS), help="fused suite: methods to run"
    )
    parser.add_argument("--worlds", default="1,2,4", help="vocab suite: numbers of ranks")
    parser.add_argument("--rounds", type=int, default=2, help="fused suite: alternations")
    parser.add_argument("--ignore", type=float, default=0.0, help="fused suite: ignored share")
    parser.add_argument("--dtype", default="float32", help="fused suite: float32 or bfloat16")
    parser.add_argument(
        "--timeout", type=float, default=None, help="fused suite: seconds a method may run"
    )
    args = parser.parse_args()
    if args.hf_worker:
        hf_worker(args.hf_worker, args.repeat)
        return
    if args.suite == "hf":
        print(
            table(
                "tiny Llama training step (hidden 256, 2 layers, V = 32000, batch 4 x 512), "
                "float32",
                hf_suite(args.repeat, args.rounds),
            )
        )
        return
    if args.fused_worker:
        fused_worker(
            args.fused_worker, args.n, args.d, args.v, args.repeat, args.ignore, args.dtype
        )
        return
    if args.suite == "vocab":
        print(machine())
        worlds = [int(p) for p in args.worlds.split(",")]
        print(vocab_parallel_suite(args.n, args.d, args.v, args.repeat, worlds))
        return
    if args.suite == "jaxfused":
        print(machine())
        print(jax_fused_suite(args.repeat))
        return
    if args.suite == "dask":
        n, c = args.metrics_rows, args.metrics_classes
        print(
            table(
                f"log_loss on Dask arrays, N = {n:,}, C = {c}, float64",
                dask_suite(n, c, args.repeat),
            )
        )
        return
    if args.suite == "pair":
        print(machine())
        print(pair_suite(args.path, args.pair_rows, args.rounds))
        return
    if args.suite == "tables":
        tables_suite(args.path, args.parquet_rows, args.csv_rows, args.pair_rows)
        return
    if args.suite == "metrics":
        n, c = args.metrics_rows, args.metrics_classes
        print(
            table(
                f"log_loss, N = {n}, C = {c}, float64, integer labels",
                metrics_suite(n, c, args.repeat),
            )
        )
        return
    if args.suite == "options":
        print(machine())
        title = f"cross_entropy options, forward + backward, N = {args.n}, C = {args.c}, float32"
        print(table(title, options_suite(args.n, args.c, args.repeat)))
        return
    if args.suite in ("core", "jax"):
        print(machine())
        print(
            table(
                f"JAX, jit(value_and_grad), N = {args.n}, C = {args.c}, float32",
                jax_suite(args.n, args.c, args.repeat),
            )
        )
        if args.suite == "jax":
            return
        print()
        print(
            table(
                "nn.CrossEntropyLoss forward + backward, 64 x 10, float32",
                small_module_suite(args.repeat),
            )
        )
        print()
        print(
            table(
                f"cross_entropy options, forward + backward, N = {args.n}, C = {args.c}, float32",
                options_suite(args.n, args.c, args.repeat),
            )
        )
        print()
        for compiled in (False, True):
            how = "torch.compile (inductor)" if compiled else "eager"
            print(
                table(
                    f"segmentation losses, forward + backward, (8, 21, 256, 256) float32, {how}",
                    segmentation_suite(max(3, args.repeat // 3), compiled),
                )
            )
            print()
        return
    if args.suite == "score":
        print(score_suite(args.score_rows, args.path, anchor=not args.no_anchor))
        return
    if args.suite == "fused":
        print(
            table(
                f"fused linear + cross-entropy, forward + backward, N = {args.n}, D = {args.d}, "
                f"V = {args.v}, {args.dtype}, {args.ignore:.0%} of the targets ignored",
                fused_suite(
                    args.n,
                    args.d,
                    args.v,
                    args.repeat,
                    args.fused_methods.split(","),
                    args.rounds,
                    args.ignore,
                    args.dtype,
                    args.timeout,
                ),
            )
        )
        return
    print(machine())
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
