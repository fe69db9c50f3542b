"""The Triton per-row kernel of the fused linear + cross-entropy: on CUDA when there is one, else
under Triton's interpreter on CPU tensors (``TRITON_INTERPRET=1``, set in conftest), held against
the functional core and the torch path; and compiled for an H100 (sm_90) without a GPU."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

import crossentropy as ce  # noqa: E402
from crossentropy.fused import linear_cross_entropy  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
OPTIONS = [
    {},
    {"label_smoothing": 0.1},
    {"z_loss": 1e-3},
    {"softcap": 3.0},
    {"label_smoothing": 0.2, "z_loss": 1e-2, "softcap": 2.0},
    {"temperature": 0.7},
    {"temperature": 1.5, "label_smoothing": 0.2, "z_loss": 1e-2, "softcap": 2.0},
]


def _case(n, d, v, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(v, d, generator=g) / math.sqrt(d)
    b = torch.randn(v, generator=g)
    y = torch.randint(0, v, (n,), generator=g)
    if n > 2:
        y[1] = -100
    return [t.to(DEVICE, dtype) for t in (x, w, b)] + [y.to(DEVICE)]


def _value_and_grads(fn, x, w, b):
    leaves = [t.detach().clone().requires_grad_(True) for t in (x, w, b)]
    out = fn(*leaves)
    cot = torch.linspace(0.5, 1.5, out.numel(), device=out.device).reshape(out.shape)
    grads = torch.autograd.grad((out.float() * cot).sum(), leaves)
    return out.detach(), grads


# V = 1500 is not a multiple of the kernel's block (1024): the second block is partly masked.
@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("n", "chunk"), [(1, None), (7, 3), (9, None)])
def test_kernel_matches_the_core(options, reduction, n, chunk):
    x, w, b, y = _case(n, 5, 1500)
    kw = {**options, "reduction": reduction}
    ours = _value_and_grads(
        lambda x, w, b: linear_cross_entropy(
            x, w, y, linear_bias=b, chunk_size=chunk, kernel="triton", **kw
        ),
        x,
        w,
        b,
    )
    dense = {k: v for k, v in kw.items() if k != "temperature"}
    t = kw.get("temperature", 1.0)
    ref = _value_and_grads(
        lambda x, w, b: ce.cross_entropy((x @ w.T + b) / t, y, mean_divisor="count", **dense),
        x,
        w,
        b,
    )
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-5, atol=1e-5)
    for a, r in zip(ours[1], ref[1], strict=True):
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_kernel_on_half_precision_matches_the_torch_path(dtype):
    x, w, b, y = _case(6, 8, 300, dtype=dtype)
    kw = {"label_smoothing": 0.1, "z_loss": 1e-3, "chunk_size": 4}
    ours = _value_and_grads(
        lambda x, w, b: linear_cross_entropy(x, w, y, kernel="triton", **{**kw, "linear_bias": b}),
        x,
        w,
        b,
    )
    ref = _value_and_grads(
        lambda x, w, b: linear_cross_entropy(x, w, y, kernel="torch", **{**kw, "linear_bias": b}),
        x,
        w,
        b,
    )
    assert ours[0].dtype == dtype
    assert all(g.dtype == dtype for g in ours[1])
    torch.testing.assert_close(ours[0].float(), ref[0].float(), rtol=1e-2, atol=1e-2)
    for a, r in zip(ours[1], ref[1], strict=True):
        torch.testing.assert_close(a.float(), r.float(), rtol=2e-2, atol=2e-3)


def test_float16_logit_gradient_is_scaled_into_range_before_it_is_rounded():
    """The kernel writes the logits' gradient into a float16 buffer: with a divisor as large
    as ``num_items_in_batch=10**6`` its entries (``(p - onehot) / 10**6``) fall below
    float16's range unless scaled first (a power of two, undone after the products)."""
    x, w, b, y = _case(64, 8, 128, dtype=torch.float64)
    kw = {"num_items_in_batch": 10**6, "chunk_size": 16}

    def input_grad(dtype, kernel):
        leaf = x.detach().to(dtype).clone().requires_grad_(True)
        loss = linear_cross_entropy(
            leaf, w.detach().to(dtype), y, kernel=kernel, linear_bias=b.detach().to(dtype), **kw
        )
        (loss * 4096.0).backward()
        return leaf.grad.double()

    ref = input_grad(torch.float64, "torch")
    got = input_grad(torch.float16, "triton")
    assert float((got - ref).norm() / ref.norm()) < 2e-3


@pytest.mark.parametrize("case", ["large hidden states", "heavy class weight"])
def test_float16_weight_gradient_of_a_scaled_logit_gradient_stays_finite(case):
    """The logits' gradient, scaled up into float16's range, also feeds the weight's
    product: summed over a chunk of large hidden states (a frequent label), or scaled by a
    heavy class weight, a float16 product would overflow; it is formed in float32."""
    g = torch.Generator().manual_seed(14)
    if case == "large hidden states":
        n, d, v = 2048, 8, 16
        x = torch.randn(n, d, generator=g, dtype=torch.float64) + 100.0
        w = torch.randn(v, d, generator=g, dtype=torch.float64) / 30
        y = torch.zeros(n, dtype=torch.long)
        y[::2] = 1
        kw = {"chunk_size": n}
    else:
        n, d, v = 32, 8, 64
        x = torch.randn(n, d, generator=g, dtype=torch.float64) * 0.01
        w = torch.randn(v, d, generator=g, dtype=torch.float64) / 3
        y = torch.randint(0, v, (n,), generator=g)
        cw = torch.ones(v, dtype=torch.float64)
        cw[y[0]] = 6.5e4
        kw = {"chunk_size": 8, "weight": cw}

    def grads(dtype, kernel):
        leaves = [t.to(dtype).requires_grad_(True) for t in (x, w)]
        extra = {k: (v.to(dtype) if torch.is_tensor(v) else v) for k, v in kw.items()}
        linear_cross_entropy(*leaves, y, kernel=kernel, **extra).backward()
        return [t.grad.double() for t in leaves]

    for got, want in zip(
        grads(torch.float16, "triton"), grads(torch.float64, "torch"), strict=True
    ):
        assert torch.isfinite(got).all()
        assert float((got - want).norm() / want.norm()) < 3e-3


def test_all_ignored_batch_and_no_grad():
    x, w, b, y = _case(4, 3, 50)
    y = torch.full_like(y, -100)
    assert math.isnan(float(linear_cross_entropy(x, w, y, kernel="triton")))
    assert float(linear_cross_entropy(x, w, y, kernel="triton", empty_mean=0.0)) == 0.0
    x, w, b, y = _case(4, 3, 50)
    with torch.no_grad():
        out = linear_cross_entropy(x, w, y, linear_bias=b, kernel="triton")
    torch.testing.assert_close(out, ce.cross_entropy(x @ w.T + b, y), rtol=1e-5, atol=1e-6)


def test_kernel_argument_is_checked():
    x, w, _, y = _case(3, 2, 4)
    with pytest.raises(ValueError, match="kernel"):
        linear_cross_entropy(x, w, y, kernel="cuda")
    with pytest.raises(TypeError, match="float64"):
        linear_cross_entropy(x.double(), w.double(), y, kernel="triton")


def test_auto_uses_torch_ops_off_cuda():
    x, w, b, y = _case(5, 4, 30)
    if DEVICE == "cuda":
        pytest.skip("on CUDA 'auto' takes the kernel; checked by test_kernel_matches_the_core")
    auto = linear_cross_entropy(x, w, y, linear_bias=b)
    assert torch.equal(auto, linear_cross_entropy(x, w, y, linear_bias=b, kernel="torch"))


def _pairwise(k: int) -> list[tuple[bool, ...]]:
    """Settings of ``k`` <= 10 on/off options in which every two options take all four of
    their joint values (each column a distinct length-6 vector starting with off and with
    three of its other five entries on, as Kleitman and Spencer build it), and all on."""
    columns = [(0, *v) for v in itertools.product((0, 1), repeat=5) if sum(v) == 3][:k]
    rows = [tuple(bool(col[r]) for col in columns) for r in range(6)]
    return [*rows, (True,) * k]


def test_pairwise_settings_cover_every_pair():
    for k in (5, 6):
        rows = _pairwise(k)
        for i, j in itertools.combinations(range(k), 2):
            assert {(r[i], r[j]) for r in rows} == {(a, b) for a in (0, 1) for b in (0, 1)}


def test_kernel_compiles_for_an_h100():
    """Lower the kernel to PTX and a cubin for sm_90 for every dtype the wrapper launches it
    with, under settings of its options that hold every two of them on and off together:
    proves it is valid Triton for the GPU, not only for the interpreter."""
    stats, grads = _pairwise(6), _pairwise(5)
    script = textwrap.dedent(
        f"""
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
        from crossentropy.fused._triton import _row_grad, _row_stats
        target = GPUTarget("cuda", 90, 32)
        for dt in ("*bf16", "*fp16", "*fp32"):
            common = {{"z_ptr": dt, "stride": "i64", "y_ptr": "*i64", "cw_ptr": "*fp32",
                      "V": "i32", "cap": "fp32", "inv_t": "fp32", "HAS_CAP": "constexpr",
                      "HAS_TEMP": "constexpr", "HAS_CW": "constexpr", "BLOCK": "constexpr"}}
            for cap, temp, cw, smooth, ent, hits in {stats!r}:
                consts = {{"HAS_CAP": cap, "HAS_TEMP": temp, "HAS_CW": cw, "BLOCK": 1024}}
                sig = {{**common, "lse_ptr": "*fp32", "uy_ptr": "*fp32", "sm_ptr": "*fp32",
                       "ent_ptr": "*fp32", "hit_ptr": "*i8", "SMOOTH": "constexpr",
                       "ENT": "constexpr", "HITS": "constexpr"}}
                c = {{**consts, "SMOOTH": smooth, "ENT": ent, "HITS": hits}}
                k = triton.compile(ASTSource(fn=_row_stats, signature=sig, constexprs=c),
                                   target=target)
                assert k.asm["cubin"], ("stats", dt, cap, temp, cw, smooth, ent, hits)
            for cap, temp, cw, sm, ent in {grads!r}:
                consts = {{"HAS_CAP": cap, "HAS_TEMP": temp, "HAS_CW": cw, "BLOCK": 1024}}
                sig = {{**common, "lse_ptr": "*fp32", "ent_ptr": "*fp32", "c_lse_ptr": "*fp32",
                       "c_uy_ptr": "*fp32", "c_sm_ptr": "*fp32", "c_ent_ptr": "*fp32",
                       "HAS_SM": "constexpr", "HAS_ENT": "constexpr"}}
                c = {{**consts, "HAS_SM": sm, "HAS_ENT": ent}}
                k = triton.compile(ASTSource(fn=_row_grad, signature=sig, constexprs=c),
                                   target=target)
                assert k.asm["cubin"], ("grad", dt, cap, temp, cw, sm, ent)
        print("compiled")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_DEFAULT_FP_FUSION"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "compiled" in done.stdout


def test_kernel_with_a_masked_first_block():
    """The first 1024-logit block of every row is -inf (masked classes): the online
    log-sum-exp must not turn -inf - -inf into NaN."""
    x, w, b, y = _case(3, 4, 1100)
    b = b.clone()
    b[:1024] = -math.inf
    y = torch.tensor([1030, 1050, 1099], device=DEVICE)
    ours = _value_and_grads(
        lambda x, w, b: linear_cross_entropy(x, w, y, linear_bias=b, kernel="triton"), x, w, b
    )
    ref = _value_and_grads(lambda x, w, b: ce.cross_entropy(x @ w.T + b, y), x, w, b)
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-5, atol=1e-5)
    for a, r in zip(ours[1], ref[1], strict=True):
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cap", [0.5, 30.0, 1e3, 1e5])
def test_kernel_softcap_is_accurate_for_any_cap(cap):
    x, w, b, y = _case(5, 4, 40)
    x = 3 * x
    ours = linear_cross_entropy(
        x, w, y, linear_bias=b, softcap=cap, kernel="triton", reduction="none"
    )
    ref = ce.cross_entropy(
        (x @ w.T + b).double(), y, softcap=cap, reduction="none", mean_divisor="count"
    )
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=2e-6)


def test_kernel_triton_off_cuda_without_the_interpreter_is_a_clear_error():
    script = textwrap.dedent(
        """
        import torch
        from crossentropy.fused import linear_cross_entropy
        try:
            linear_cross_entropy(torch.zeros(2, 3), torch.zeros(4, 3), torch.zeros(2).long(),
                                 kernel="triton")
        except ValueError as exc:
            print("ValueError:", exc)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert "ValueError: kernel='triton' needs CUDA tensors" in done.stdout, done.stderr[-2000:]


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"label_smoothing": 0.2, "z_loss": 1e-2, "softcap": 2.0, "temperature": 1.3},
    ],
    ids=["plain", "all"],
)
def test_kernels_give_the_per_token_outputs_class_weights_and_their_gradients(options, reduction):
    """Entropy (online sum of p u), log-probability, log-sum-exp, argmax hits and class weights
    in the kernels, and the gradient of an RL objective through them, against the torch path."""
    x, w, b, y = _case(7, 5, 1500)
    y[3] = int((x[3] @ w.T + b).argmax())  # one hit at least
    cw = torch.linspace(0.5, 2.0, 1500, device=DEVICE)
    advantage = torch.linspace(-1.0, 2.0, 7, device=DEVICE)

    def run(kernel):
        leaves = [t.detach().clone().requires_grad_(True) for t in (x, w, b)]
        out = linear_cross_entropy(
            leaves[0],
            leaves[1],
            y,
            linear_bias=leaves[2],
            weight=cw,
            reduction=reduction,
            return_aux=True,
            chunk_size=3,
            kernel=kernel,
            **options,
        )
        objective = (
            out.loss.sum() - (advantage * out.logp).sum() - 0.1 * out.entropy.sum() + out.lse.mean()
        )
        return out, torch.autograd.grad(objective, leaves)

    (ours, ours_g), (ref, ref_g) = run("triton"), run("torch")
    for name in ("loss", "logp", "entropy", "lse"):
        torch.testing.assert_close(getattr(ours, name), getattr(ref, name), rtol=1e-5, atol=1e-5)
    assert int(ours.correct) == int(ref.correct)
    assert int(ours.correct) >= 1
    for a, r in zip(ours_g, ref_g, strict=True):
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-5)
