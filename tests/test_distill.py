"""crossentropy.fused.linear_kl_div against the divergences of the materialised logits."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

import crossentropy as ce  # noqa: E402
from crossentropy.fused import linear_kl_div  # noqa: E402


def _case(n=9, ds=4, dt=6, v=11, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(n, ds, generator=g, dtype=dtype)
    ws = torch.randn(v, ds, generator=g, dtype=dtype)
    bs = torch.randn(v, generator=g, dtype=dtype)
    xt = torch.randn(n, dt, generator=g, dtype=dtype)
    wt = torch.randn(v, dt, generator=g, dtype=dtype)
    bt = torch.randn(v, generator=g, dtype=dtype)
    y = torch.randint(0, v, (n,), generator=g)
    y[[2, 5]] = -100
    return xs, ws, bs, xt, wt, bt, y


def _dense(xs, ws, bs, xt, wt, bt, y, kind, beta, t, reduction):
    log_q = torch.log_softmax((xs @ ws.T + bs) / t, -1)
    log_p = torch.log_softmax((xt @ wt.T + bt) / t, -1)
    p, q = log_p.exp(), log_q.exp()
    if kind == "forward":
        rows = ce.kl_div(log_q, log_p, reduction="none", log_target=True).sum(-1)
    elif kind == "reverse":
        rows = ce.kl_div(log_p, log_q, reduction="none", log_target=True).sum(-1)
    else:
        log_m = torch.log(beta * p + (1 - beta) * q)
        rows = beta * (p * (log_p - log_m)).sum(-1) + (1 - beta) * (q * (log_q - log_m)).sum(-1)
    valid = y != -100
    rows = torch.where(valid, rows, torch.zeros_like(rows))
    if reduction == "none":
        return rows
    if reduction == "batchmean":  # PyTorch's divisor: the first axis, ignored tokens counted
        return rows.sum() / rows.shape[0]
    return rows.sum() / valid.sum() if reduction == "mean" else rows.sum()


@pytest.mark.parametrize("reduction", ["mean", "batchmean", "sum", "none"])
@pytest.mark.parametrize(
    ("kind", "beta", "temperature"),
    [
        ("forward", 0.5, 1.0),
        ("reverse", 0.5, 1.0),
        ("jsd", 0.5, 1.0),
        ("jsd", 0.2, 2.0),
        ("forward", 0.5, 0.7),
    ],
)
def test_values_and_student_gradients_equal_the_dense_formula(kind, beta, temperature, reduction):
    xs, ws, bs, xt, wt, bt, y = _case()
    upstream = torch.linspace(0.5, 3.0, 9, dtype=torch.float64)

    def run(fn):
        leaves = [t.clone().requires_grad_(True) for t in (xs, ws, bs)]
        out = fn(*leaves)
        weighted = (out * upstream).sum() if reduction == "none" else out * 1.7
        return out.detach(), torch.autograd.grad(weighted, leaves)

    kw = {"kind": kind, "beta": beta, "temperature": temperature, "reduction": reduction}
    ours = run(
        lambda a, b, c: linear_kl_div(
            a, b, xt, wt, linear_bias=c, teacher_bias=bt, target=y, chunk_size=4, **kw
        )
    )
    ref = run(lambda a, b, c: _dense(a, b, c, xt, wt, bt, y, kind, beta, temperature, reduction))
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-12, atol=1e-12)
    for a, r in zip(ours[1], ref[1], strict=True):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)


def test_teacher_gets_no_gradient_and_batch_shapes():
    xs, ws, _, xt, wt, _, _ = _case()
    xt, wt = xt.requires_grad_(True), wt.requires_grad_(True)
    ws = ws.requires_grad_(True)
    out = linear_kl_div(xs.reshape(3, 3, 4), ws, xt.reshape(3, 3, 6), wt)
    out.backward()
    assert ws.grad is not None
    assert xt.grad is None
    assert wt.grad is None
    per = linear_kl_div(xs.reshape(3, 3, 4), ws, xt.reshape(3, 3, 6), wt, reduction="none")
    assert per.shape == (3, 3)


def test_mean_is_pytorchs_batchmean_without_ignored_tokens():
    xs, ws, _, xt, wt, _, _ = _case()
    log_q = torch.log_softmax(xs @ ws.T, -1)
    log_p = torch.log_softmax(xt @ wt.T, -1)
    expected = torch.nn.functional.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
    torch.testing.assert_close(linear_kl_div(xs, ws, xt, wt), expected, rtol=1e-12, atol=0)


def test_batchmean_is_pytorchs_kl_div_of_the_materialised_logits():
    xs, ws, _, xt, wt, _, y = _case()
    for shape in [(9,), (3, 3)]:  # divided by the logits' first axis: 9 tokens, 3 sequences
        log_q = torch.log_softmax((xs @ ws.T).reshape(*shape, -1), -1)
        log_p = torch.log_softmax((xt @ wt.T).reshape(*shape, -1), -1)
        expected = torch.nn.functional.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
        got = linear_kl_div(
            xs.reshape(*shape, -1), ws, xt.reshape(*shape, -1), wt, reduction="batchmean"
        )
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)
    # an empty batch is 0 / 0, NaN, with the zero gradients of an empty sum, as PyTorch's
    empty = [torch.zeros(0, 4, dtype=xs.dtype), ws.clone().requires_grad_(True)]
    got = linear_kl_div(empty[0], empty[1], torch.zeros(0, 6, dtype=xs.dtype), wt,
                        reduction="batchmean")  # fmt: skip
    got.backward()
    log_q = torch.log_softmax(empty[0] @ ws.T, -1)
    want = torch.nn.functional.kl_div(log_q, log_q, reduction="batchmean", log_target=True)
    assert math.isnan(float(got))
    assert math.isnan(float(want))
    assert float(empty[1].grad.abs().max()) == 0.0
    # ignored tokens add 0 and still count in the divisor, as a zero row of PyTorch's does
    got = linear_kl_div(xs, ws, xt, wt, target=y, reduction="batchmean")
    total = linear_kl_div(xs, ws, xt, wt, target=y, reduction="sum")
    torch.testing.assert_close(got, total / 9, rtol=1e-12, atol=0)


def test_bfloat16_student_within_rounding():
    xs, ws, _, xt, wt, _, y = _case()
    got = linear_kl_div(xs.bfloat16(), ws.bfloat16(), xt.bfloat16(), wt.bfloat16(), target=y)
    assert got.dtype == torch.bfloat16
    ref = _dense(xs, ws, 0.0, xt, wt, 0.0, y, "forward", 0.5, 1.0, "mean")
    assert abs(float(got) - float(ref)) < 0.05 * float(ref)


def test_float16_student_gradient_survives_loss_scaling():
    """The student's input gradient, formed in the forward pass with the mean's ``1 / N``
    before the loss scale multiplies it, is held in float32 until then (it lost its small
    entries in float16: 3.4x the error)."""
    g = torch.Generator().manual_seed(13)
    n, d, v = 8192, 16, 512
    xs, xt = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    ws, wt = torch.randn(v, d, generator=g) * 0.3, torch.randn(v, d, generator=g) * 0.3

    def input_grad(dtype):
        leaf = xs.to(dtype).requires_grad_(True)
        (1024.0 * linear_kl_div(leaf, ws.to(dtype), xt.to(dtype), wt.to(dtype))).backward()
        return leaf.grad.float()

    ref = input_grad(torch.float64)
    assert float((input_grad(torch.float16) - ref).norm() / ref.norm()) < 7e-4


def test_float16_products_of_large_hidden_states_give_finite_gradients(monkeypatch):
    """With float16 products (as on CUDA: the CPU here forms them in float32, so the test
    makes it form them in float16), the logits' gradient is scaled up into float16's range and
    the weight's product is formed in float32: large hidden states summed over a chunk would
    overflow a float16 product."""
    import crossentropy.fused._distill as distill

    monkeypatch.setattr(distill, "product_dtype", lambda x: x.dtype)
    g = torch.Generator().manual_seed(15)
    n, d, v = 2048, 8, 16
    xs, xt = (torch.randn(n, d, generator=g, dtype=torch.float64) + 100.0 for _ in range(2))
    ws, wt = (torch.randn(v, d, generator=g, dtype=torch.float64) / 30 for _ in range(2))

    def grads(dtype):
        leaves = [t.to(dtype).requires_grad_(True) for t in (xs, ws)]
        linear_kl_div(*leaves, xt.to(dtype), wt.to(dtype), chunk_size=n).backward()
        return [t.grad.double() for t in leaves]

    for got, want in zip(grads(torch.float16), grads(torch.float64), strict=True):
        assert torch.isfinite(got).all()
        assert float((got - want).norm() / want.norm()) < 3e-3


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kind": "kl"}, ValueError, "kind"),
        ({"beta": 0.0}, ValueError, "beta"),
        ({"beta": 1.0}, ValueError, "beta"),
        ({"temperature": 0.0}, ValueError, "temperature"),
        ({"reduction": "batchmeans"}, ValueError, "reduction"),
        ({"chunk_size": 0}, ValueError, "chunk_size"),
        ({"chunk_size": 2.5}, TypeError, "chunk_size"),
        ({"teacher_weight": torch.zeros(5, 3)}, ValueError, "teacher_weight must have shape"),
        (
            {"teacher_weight": torch.zeros(11, 8)},
            ValueError,
            r"\(11, 6\) \(linear_weight's 11 classes, teacher_input's 6 features\); got \(11, 8\)",
        ),
        ({"teacher_input": torch.zeros(3, 6)}, ValueError, "teacher_input"),
        ({"target": torch.zeros(3, dtype=torch.long)}, ValueError, "target"),
        ({"target": [0, 1, 2, 3]}, TypeError, "target must be a torch tensor"),
        ({"target": torch.zeros(4)}, TypeError, "target must hold integer class indices"),
        # a label out of range, as linear_cross_entropy refuses it
        ({"target": torch.tensor([0, 11, 2, 3])}, ValueError, r"label 11 at index \(1,\)"),
        ({"target": torch.tensor([0, -7, 2, 3])}, ValueError, r"label -7 at index \(1,\)"),
        ({"target": torch.zeros(4, dtype=torch.long), "ignore_index": 1.5}, TypeError, "ignore_in"),
        ({"ignore_index": "a"}, TypeError, "ignore_index"),
        ({"linear_bias": torch.zeros(4)}, ValueError, "linear_bias"),
        ({"input": torch.zeros(4, 4, dtype=torch.long)}, TypeError, "input must be a floating"),
        ({"input": None}, TypeError, "input must be a torch tensor; got NoneType"),
        ({"teacher_input": None}, TypeError, "teacher_input must be a torch tensor"),
        ({"teacher_input": torch.zeros(4, 6, device="meta")}, ValueError, "input's device"),
        # the student's side is checked as linear_cross_entropy checks it
        (
            {"target": torch.zeros(4, dtype=torch.long, device="meta")},
            ValueError,
            "target must be on input's device cpu; got meta",
        ),
        (
            {"linear_weight": torch.zeros(0, 4), "teacher_weight": torch.zeros(0, 6)},
            ValueError,
            "linear_weight must have at least one row",
        ),
        ({"linear_weight": torch.zeros(11, 4, dtype=torch.float64)}, TypeError, "input's dtype"),
        ({"linear_bias": torch.zeros(11, dtype=torch.float64)}, TypeError, "linear_bias must have"),
        ({"input": torch.tensor(1.0)}, ValueError, "input must have at least one dimension"),
    ],
)
def test_bad_inputs(kwargs, error, match):
    args = {
        "input": torch.zeros(4, 4),
        "linear_weight": torch.zeros(11, 4),
        "teacher_input": torch.zeros(4, 6),
        "teacher_weight": torch.zeros(11, 6),
    }
    args.update({k: v for k, v in kwargs.items() if k in args})
    rest = {k: v for k, v in kwargs.items() if k not in args}
    with pytest.raises(error, match=match):
        linear_kl_div(*args.values(), **rest)


def test_all_ignored_mean_is_nan_and_sum_is_zero():
    xs, ws, _, xt, wt, _, y = _case()
    default = linear_kl_div(xs, ws, xt, wt, target=y)
    assert float(linear_kl_div(xs, ws, xt, wt, target=y, ignore_index=None)) == float(default)
    y = torch.full((9,), -100)
    assert math.isnan(float(linear_kl_div(xs, ws, xt, wt, target=y)))
    assert float(linear_kl_div(xs, ws, xt, wt, target=y, reduction="sum")) == 0.0


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("where", ["student", "teacher"])
def test_an_ignored_token_with_a_non_finite_hidden_state_gets_no_gradient(reduction, where):
    """Ignored tokens take no part: a NaN or infinite hidden state there (the student's or the
    teacher's) leaves the loss and the student's gradients those of the other tokens."""
    xs, ws, bs, xt, wt, bt, y = _case()
    keep = y != -100
    bad_s, bad_t = xs.clone(), xt.clone()
    bad = bad_s if where == "student" else bad_t
    bad[2], bad[5] = math.nan, math.inf

    def run(xs, xt, target):
        x, w, b = (t.clone().requires_grad_(True) for t in (xs, ws, bs))
        out = linear_kl_div(
            x, w, xt, wt, target=target, linear_bias=b, teacher_bias=bt, reduction=reduction
        )
        # uneven upstream gradients for the per-token losses
        (out * torch.arange(1.0, out.numel() + 1, dtype=out.dtype)).sum().backward()
        return out.detach(), x.grad, w.grad, b.grad

    got = run(bad_s, bad_t, y)
    assert all(bool(torch.isfinite(t).all()) for t in got)
    want = run(xs[keep], xt[keep], y[keep])
    if reduction == "none":
        torch.testing.assert_close(got[0][keep], want[0])
        assert float(got[0][~keep].abs().max()) == 0.0
    else:
        torch.testing.assert_close(got[0], want[0])
    assert float(got[1][~keep].abs().max()) == 0.0
    if reduction != "none":  # the per-token upstream weights differ once rows are dropped
        torch.testing.assert_close(got[1][keep], want[1])
        torch.testing.assert_close(got[2], want[2])
        torch.testing.assert_close(got[3], want[3])


def test_compiled_with_a_temperature_and_beta_schedule():
    """A temperature or beta that changes between calls traces under
    ``torch.compile(fullgraph=True)`` (one compilation per value) and gives the eager numbers."""
    xs, ws, _, xt, wt, _, y = _case()

    def kl(t, beta):
        return linear_kl_div(xs, ws, xt, wt, target=y, kind="jsd", beta=beta, temperature=t)

    torch._dynamo.reset()
    compiled = torch.compile(kl, fullgraph=True, backend="aot_eager")
    for t, beta in [(1.0, 0.5), (2.0, 0.3), (1.5, 0.7)]:
        torch.testing.assert_close(compiled(t, beta), kl(t, beta), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_compiled_none_backward_recomputes_opaquely_at_any_batch_size(dtype):
    """``"none"`` recomputes the chunks in the backward pass through the op's own operator:
    under ``torch.compile(fullgraph=True)`` a bfloat16 student compiles (the products' dtype
    was chosen by a CPU-feature query Dynamo cannot trace), the batch size is not fixed (one
    graph per size until the recompile limit), and the gradients are the eager ones."""
    from torch._dynamo.utils import counters

    g = torch.Generator().manual_seed(3)
    ws = torch.randn(13, 4, generator=g).to(dtype).requires_grad_(True)
    wt = torch.randn(13, 6, generator=g).to(dtype)

    def step(xs, xt):
        return (linear_kl_div(xs, ws, xt, wt, reduction="none") * torch.arange(xs.shape[0])).sum()

    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    for n in range(3, 9):
        xs = torch.randn(n, 4, generator=g).to(dtype)
        xt = torch.randn(n, 6, generator=g).to(dtype)
        got = [xs.clone().requires_grad_(True) for _ in range(2)]
        compiled(got[0], xt).backward()
        eager_w = ws.grad.clone()
        ws.grad = None
        step(got[1], xt).backward()
        torch.testing.assert_close(got[0].grad, got[1].grad)
        torch.testing.assert_close(eager_w, ws.grad)
        ws.grad = None
    assert counters["stats"]["unique_graphs"] <= 2
    torch._dynamo.reset()


def test_torch_func_is_refused_by_name():
    xs, ws, _, xt, wt, _, _ = _case()
    with pytest.raises(RuntimeError, match=r"does not support torch\.func transforms"):
        torch.func.grad(lambda a: linear_kl_div(a, ws, xt, wt))(xs)
    # forward-mode and vmap too, before torch's own error from inside the transform
    with pytest.raises(RuntimeError, match=r"does not support torch\.func transforms"):
        torch.func.jacfwd(lambda a: linear_kl_div(a, ws, xt, wt, reduction="none"))(xs)
    with pytest.raises(RuntimeError, match=r"does not support torch\.func transforms"):
        torch.func.vmap(lambda a: linear_kl_div(a, ws, xt, wt))(xs[None])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_jsd_of_logits_far_apart_is_finite_and_the_float64_value(dtype):
    """Logits about 100 apart (probabilities under float32's smallest normal): the mixture's
    log is formed from the log-probabilities, so that it is not log 0 (an infinite loss and
    non-finite gradients); the values are float64's within the input's precision, at most
    log 2."""
    g = torch.Generator().manual_seed(3)
    xs = torch.randn(16, 8, generator=g, dtype=torch.float64) * 6
    ws = torch.randn(40, 8, generator=g, dtype=torch.float64) * 3
    xt = torch.randn(16, 8, generator=g, dtype=torch.float64) * 6
    wt = torch.randn(40, 8, generator=g, dtype=torch.float64) * 3
    assert float((xs @ ws.T).max() - (xs @ ws.T).min()) > 150
    want = linear_kl_div(xs, ws, xt, wt, kind="jsd", beta=0.3, reduction="none")
    leaves = [t.to(dtype).requires_grad_(True) for t in (xs, ws)]
    got = linear_kl_div(*leaves[:1], leaves[1], xt.to(dtype), wt.to(dtype), kind="jsd", beta=0.3,
                        reduction="none")  # fmt: skip
    got.sum().backward()
    assert bool(torch.isfinite(got).all())
    assert all(bool(torch.isfinite(t.grad).all()) for t in leaves)
    assert float(got.max()) <= math.log(2) + 1e-6
    tol = 1e-5 if dtype == torch.float32 else 0.1
    torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol)


def test_jsd_of_a_distribution_with_itself_is_zero_not_below():
    """Rounding put the divergence of equal rows a hair below 0 (-3e-8 in float32): 0."""
    g = torch.Generator().manual_seed(4)
    x, w = torch.randn(16, 8, generator=g) * 3, torch.randn(50, 8, generator=g)
    for beta in (0.5, 0.2):
        out = linear_kl_div(x, w, x, w, kind="jsd", beta=beta, reduction="none")
        assert float(out.min()) >= 0.0
        assert float(out.max()) < 1e-6


@pytest.mark.parametrize("reduction", ["mean", "batchmean", "sum", "none"])
def test_autocast_leaves_the_heads_gradients_to_later_ops_and_is_float32(reduction):
    """Under autocast the student's tensors are cast as F.linear casts them (tracked by
    autograd) and the sweeps run with autocast off: a later use of the same head in the region
    still reaches its gradient (autocast's cache holds no graph-less copy), and the loss is
    float32."""
    torch.manual_seed(0)
    hidden = torch.randn(8, 16, requires_grad=True)
    head = torch.nn.Linear(16, 32)
    th, tw, labels = torch.randn(8, 16), torch.randn(32, 16), torch.randint(0, 32, (8,))

    def grads(with_kd: bool, with_ce: bool):
        head.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            kd = linear_kl_div(
                hidden, head.weight, th, tw, linear_bias=head.bias, reduction=reduction
            )
            kd = kd.sum()
            assert kd.dtype == torch.float32
            ce_loss = torch.nn.functional.cross_entropy(head(hidden).float(), labels)
        ((kd if with_kd else 0) + (ce_loss if with_ce else 0)).backward()
        return [t.grad.clone() for t in (head.weight, head.bias)]

    both, kd_only, ce_only = grads(True, True), grads(True, False), grads(False, True)
    for b, k, c in zip(both, kd_only, ce_only, strict=True):
        assert c.abs().max() > 0.01
        torch.testing.assert_close(b, k + c, rtol=0, atol=1e-6)


@pytest.mark.parametrize("products", ["as on this machine", "float16 (as on a GPU)"])
def test_float16_autocast_gradients_take_a_loss_scale_and_match_none(products, monkeypatch):
    """Under float16 autocast the per-token gradient, about 1 / (N V), is formed scaled (as a
    float16 student's), in the forward sweep (``"mean"``) and in the recomputing backward
    (``"none"``): with a loss scale the gradients are those of dense autocast, and the two
    reductions give the same ones. (A CPU without float16 arithmetic multiplies in float32;
    the second case multiplies in float16, as a GPU does.)"""
    if products.startswith("float16"):
        from crossentropy.fused import _distill

        monkeypatch.setattr(_distill, "product_dtype", lambda t: t.dtype)
    torch.manual_seed(0)
    n, d, v = 256, 64, 2048
    x = torch.randn(n, d, requires_grad=True)
    w = (torch.randn(v, d) * 0.05).requires_grad_()
    h, wt = torch.randn(n, d), torch.randn(v, d) * 0.05
    ref = torch.nn.functional.kl_div(
        (x @ w.T).log_softmax(-1),
        (h @ wt.T).log_softmax(-1),
        log_target=True,
        reduction="batchmean",
    )
    want = torch.autograd.grad(ref, [x, w])
    s = 2.0**16
    with torch.autocast("cpu", dtype=torch.float16):
        mean = linear_kl_div(x, w, h, wt, reduction="mean")
        none = linear_kl_div(x, w, h, wt, reduction="none").mean()
    got = [[g / s for g in torch.autograd.grad(loss * s, [x, w])] for loss in (mean, none)]
    for g_mean, g_none, g_ref in zip(*got, want, strict=True):
        assert ((g_mean - g_ref).norm() / g_ref.norm()) < 2e-3
        torch.testing.assert_close(g_mean, g_none, rtol=0, atol=1e-9)


def test_a_float64_student_under_autocast_stays_float64():
    """Autocast leaves float64 products alone (as F.linear's): the float64 value, exactly."""
    xs, ws, bs, xt, wt, bt, y = _case()
    want = linear_kl_div(xs, ws, xt, wt, linear_bias=bs, teacher_bias=bt, target=y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = linear_kl_div(xs, ws, xt, wt, linear_bias=bs, teacher_bias=bt, target=y)
        lce = ce.fused.linear_cross_entropy(xs, ws, y, linear_bias=bs)
    assert got.dtype == torch.float64
    assert lce.dtype == torch.float64
    assert got.item() == want.item()
    assert lce.item() == ce.fused.linear_cross_entropy(xs, ws, y, linear_bias=bs).item()


def test_half_precision_logits_that_overflow_give_nan_not_zero() -> None:
    """float16 logits past 65504 are infinite, their softmax NaN: the divergence is NaN, as
    the dense formula's, not a silent 0 (a NaN probability failed a test of p > 0)."""
    h = torch.tensor([[256.0]]).half()
    student, teacher = torch.tensor([[256.0], [0.0]]).half(), torch.tensor([[0.0], [256.0]]).half()
    for kind in ("forward", "reverse", "jsd"):
        assert torch.isnan(linear_kl_div(h, student, h, teacher, kind=kind)), kind
