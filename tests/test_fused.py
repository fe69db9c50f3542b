"""crossentropy.fused.linear_cross_entropy against the functional core on the full logits."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import crossentropy as ce  # noqa: E402
from crossentropy.fused import linear_cross_entropy  # noqa: E402

OPTIONS = [
    {},
    {"label_smoothing": 0.1},
    {"z_loss": 1e-3},
    {"softcap": 3.0},
    {"label_smoothing": 0.2, "z_loss": 1e-2, "softcap": 2.0},
    {"temperature": 0.7},
    {"temperature": 1.5, "label_smoothing": 0.2, "z_loss": 1e-2, "softcap": 2.0},
]


def _case(n, d, v, dtype=torch.float64, seed=0, ignore=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    w = torch.randn(v, d, generator=g, dtype=dtype) / math.sqrt(d)
    b = torch.randn(v, generator=g, dtype=dtype)
    y = torch.randint(0, v, (n,), generator=g)
    if ignore and n > 2:
        y[1] = -100
    return x, w, b, y


def _grads(fn, x, w, b):
    leaves = [t.detach().clone().requires_grad_(True) for t in (x, w, b)]
    out = fn(*leaves)
    cot = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).reshape(out.shape)
    grads = torch.autograd.grad((out * cot).sum(), leaves)
    return out.detach(), grads


@pytest.mark.parametrize(
    ("shape", "chunk", "options", "reduction"),
    list(
        itertools.product(
            [(1, 4, 7), (5, 3, 11), (13, 6, 9)],
            [1, 4, None],
            OPTIONS,
            ["mean", "sum", "none"],
        )
    ),
)
def test_matches_cross_entropy_of_the_full_logits(shape, chunk, options, reduction):
    x, w, b, y = _case(*shape)
    kw = {**options, "reduction": reduction}
    ours = _grads(
        lambda x, w, b: linear_cross_entropy(x, w, y, linear_bias=b, chunk_size=chunk, **kw),
        x,
        w,
        b,
    )
    dense = {k: v for k, v in kw.items() if k != "temperature"}
    t = kw.get("temperature", 1.0)
    ref = _grads(
        lambda x, w, b: ce.cross_entropy((x @ w.T + b) / t, y, mean_divisor="count", **dense),
        x,
        w,
        b,
    )
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-12, atol=1e-12)
    for a, r in zip(ours[1], ref[1], strict=True):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)


def test_without_bias_and_with_batch_dimensions():
    x, w, _, y = _case(12, 4, 6)
    x3, y3 = x.reshape(3, 4, 4), y.reshape(3, 4)
    out = linear_cross_entropy(x3, w, y3, reduction="none", chunk_size=5)
    assert out.shape == (3, 4)
    ref = ce.cross_entropy(x @ w.T, y, reduction="none")
    torch.testing.assert_close(out.reshape(-1), ref)


def test_weight_tied_to_an_embedding_gets_both_gradients():
    x, w, _, y = _case(6, 4, 9, ignore=False)
    tokens = torch.tensor([1, 3, 5])
    w1 = w.clone().requires_grad_(True)
    h = x + w1[tokens].sum(0)  # the embedding lookup uses the same weight
    linear_cross_entropy(h, w1, y, chunk_size=2).backward()
    w2 = w.clone().requires_grad_(True)
    h2 = x + w2[tokens].sum(0)
    ce.cross_entropy(h2 @ w2.T, y).backward()
    torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-10, atol=1e-12)


def test_all_ignored_batch_follows_the_core_convention():
    x, w, b, _ = _case(4, 3, 5)
    y = torch.full((4,), -100)
    assert math.isnan(float(linear_cross_entropy(x, w, y, linear_bias=b)))
    wl = w.clone().requires_grad_(True)
    out = linear_cross_entropy(x, wl, y, linear_bias=b, empty_mean=0.0)
    out.backward()
    assert float(out.detach()) == 0.0
    assert not wl.grad.any()
    # the recomputing paths ("none", per-token outputs) give the input zeros too, not None
    for kw in ({"reduction": "none"}, {"return_aux": ["logp", "entropy"], "empty_mean": 0.0}):
        xl = x.clone().requires_grad_(True)
        out = linear_cross_entropy(xl * 1.0, w, y, linear_bias=b, **kw)
        total = out.sum() if isinstance(out, torch.Tensor) else out.loss + out.logp.sum()
        total.backward()
        assert xl.grad is not None
        assert not xl.grad.any()


@pytest.mark.parametrize("path", ["plain", "aux", "chunked"])
def test_counted_rows_of_zero_class_weight_follow_empty_mean(path: str):
    """Counted tokens whose class weights sum to 0: the weighted mean is ``empty_mean`` with
    no gradient (plus the z-loss's mean), as ``cross_entropy`` gives; NaN with NaN gradients
    when ``empty_mean`` is NaN, as PyTorch's 0 / 0 (the fused op gave NaN with any
    ``empty_mean``). Per sequence: a sequence of no weight has the mean ``empty_mean``."""
    x0, w, _, _ = _case(6, 4, 5)
    y = torch.tensor([0, 0, 1, -100, 0, 1])
    cw = torch.tensor([0.0, 0.0, 1.0, 2.0, 1.0], dtype=x0.dtype)
    kw: dict[str, Any] = {"return_aux": ["logp"]} if path == "aux" else {}
    if path == "chunked":
        kw = {"chunk_size": 2}

    def fused(x: torch.Tensor, **opts: Any) -> torch.Tensor:
        out = linear_cross_entropy(x, w, y, weight=cw, **kw, **opts)
        return out.loss if path == "aux" else out

    for em in (0.0, 2.5):
        for opts in ({}, {"z_loss": 0.1, "label_smoothing": 0.2}):
            xf, xd = (x0.clone().requires_grad_(True) for _ in range(2))
            got = fused(xf, empty_mean=em, **opts)
            want = ce.cross_entropy(xd @ w.T, y, cw, empty_mean=em, **opts)
            got.backward()
            want.backward()
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(xf.grad, xd.grad, rtol=1e-12, atol=1e-12)
        assert float(fused(x0, empty_mean=em)) == em
    xf = x0.clone().requires_grad_(True)
    nan = fused(xf, label_smoothing=0.2)
    assert math.isnan(
        float(torch.nn.functional.cross_entropy(x0 @ w.T, y, cw, label_smoothing=0.2))
    )
    assert math.isnan(float(nan.detach()))
    nan.backward()
    assert torch.isnan(xf.grad[y != -100]).all()
    # per sequence: sequence 0 (class weights 0, 0) has no weight, sequence 1 has some
    seq, ys = torch.tensor([0, 0, 1, 1, 1, 1]), torch.tensor([0, 0, 2, -100, 4, 1])
    for em in (0.0, 2.5):
        xf = x0.clone().requires_grad_(True)
        got = linear_cross_entropy(xf, w, ys, weight=cw, sequence_ids=seq, empty_mean=em)
        second = ce.cross_entropy(x0[2:] @ w.T, ys[2:], cw)
        assert float(got) == pytest.approx((em + float(second)) / 2, rel=1e-12)
        got.backward()
        assert torch.isfinite(xf.grad).all()
        assert not xf.grad[:2].any()
    got = linear_cross_entropy(x0, w, ys, weight=cw, sequence_ids=seq)
    assert math.isnan(float(got))
    # negative class weights divide by their (negative) sum, as PyTorch; a finite empty_mean
    # leaves that alone
    for em in (math.nan, 0.0):
        neg = linear_cross_entropy(x0, w, y, weight=-torch.ones(5, dtype=x0.dtype), empty_mean=em)
        want = torch.nn.functional.cross_entropy(x0 @ w.T, y, -torch.ones(5, dtype=x0.dtype))
        torch.testing.assert_close(neg, want, rtol=1e-12, atol=1e-12)


def test_zero_class_weight_mean_in_bfloat16_is_rounded_once():
    """The weighted mean of no weight (empty_mean) plus the z-loss's mean, in bfloat16: the
    float32 sum rounded once, as the vocabulary-parallel op gives (the fill was added after
    the loss was rounded to bfloat16, a second rounding)."""
    g = torch.Generator().manual_seed(3)
    x, w = torch.randn(6, 8, generator=g), torch.randn(5, 8, generator=g)
    y, cw = torch.tensor([0, 0, 1, -100, 0, 1]), torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0])
    for em in torch.rand(20, generator=g).tolist():
        kw = {"weight": cw, "empty_mean": em, "z_loss": 0.1}
        got = linear_cross_entropy(x.bfloat16(), w.bfloat16(), y, **kw)
        assert got.dtype == torch.bfloat16
        want = linear_cross_entropy(x.bfloat16().float(), w.bfloat16().float(), y, **kw)
        assert float(got) == float(want.bfloat16()), em


def test_bfloat16_matches_float32_to_bfloat16_rounding():
    x, w, b, y = _case(16, 8, 13, dtype=torch.float32)
    xs, ws, bs = (t.to(torch.bfloat16) for t in (x, w, b))
    ours = _grads(
        lambda x, w, b: linear_cross_entropy(x, w, y, linear_bias=b, chunk_size=5), xs, ws, bs
    )
    ref = _grads(
        lambda x, w, b: ce.cross_entropy((x @ w.T + b).float(), y),
        xs.float(),
        ws.float(),
        bs.float(),
    )
    assert ours[0].dtype == torch.bfloat16
    assert all(g.dtype == torch.bfloat16 for g in ours[1])
    torch.testing.assert_close(ours[0].float(), ref[0], rtol=2e-2, atol=2e-2)
    for a, r in zip(ours[1], ref[1], strict=True):
        torch.testing.assert_close(a.float(), r, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("options", [{}, {"num_items_in_batch": 10**6}, {"label_smoothing": 0.1}])
def test_float16_input_gradient_formed_early_survives_loss_scaling(options):
    """A mean's input gradient, formed in the forward pass with its ``1 / N`` (or
    ``num_items_in_batch``) before the loss scale multiplies it, is held in float32 until the
    scale has (and the logits' gradient scaled into float16's range where it is rounded to
    it): as close to the float64 gradient as ``"none"``'s recomputation, whose upstream
    gradient comes first (stored in float16 it lost its small entries: 1.7x the error, and
    18x with ``num_items_in_batch``)."""
    g = torch.Generator().manual_seed(12)
    n, d, v = 8192, 16, 512
    x = torch.randn(n, d, generator=g)
    w = torch.randn(v, d, generator=g) * 0.3
    y = torch.randint(0, v, (n,), generator=g)
    scale = 1024.0
    count = options.get("num_items_in_batch", n)

    def input_grad(dtype, reduction):
        leaf = x.to(dtype).requires_grad_(True)
        # "none" is divided here by the count num_items_in_batch gives
        kw = {k: v for k, v in options.items() if k != "num_items_in_batch" or reduction == "mean"}
        loss = linear_cross_entropy(leaf, w.to(dtype), y, reduction=reduction, **kw)
        if reduction == "none":
            loss = loss.float().sum() / count
        (loss * scale).backward()
        return leaf.grad

    ref = input_grad(torch.float64, "mean").float()
    early, late = input_grad(torch.float16, "mean"), input_grad(torch.float16, "none")
    assert early.dtype == torch.float16

    def rel(a):
        return float((a.float() - ref).norm() / ref.norm())

    assert rel(early) <= 1.2 * rel(late)
    assert rel(late) < 1e-3


def test_weight_gradient_accumulates_in_float32_over_many_chunks():
    """1024 one-token chunks add same-signed terms into each weight-gradient row: a bfloat16
    running sum would stall once it is ~256 times a term (8-bit mantissa); float32 does not."""
    g = torch.Generator().manual_seed(3)
    x = (1 + torch.rand(1024, 4, generator=g)).to(torch.bfloat16)
    w = (0.1 * torch.randn(3, 4, generator=g)).to(torch.bfloat16)
    y = torch.zeros(1024, dtype=torch.long)
    wl = w.clone().requires_grad_(True)
    linear_cross_entropy(x, wl, y, reduction="sum", chunk_size=1).backward()
    wr = w.float().requires_grad_(True)
    ce.cross_entropy(x.float() @ wr.T, y, reduction="sum").backward()
    torch.testing.assert_close(wl.grad.float(), wr.grad, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_empty_batch(reduction):
    x, w, _, _ = _case(3, 4, 5)
    x0 = x[:0].clone().requires_grad_(True)
    out = linear_cross_entropy(x0.reshape(2, 0, 4), w, torch.zeros(2, 0, dtype=torch.long))
    ref = ce.cross_entropy(x0 @ w.T, torch.zeros(0, dtype=torch.long))
    torch.testing.assert_close(out, ref, equal_nan=True)
    out = linear_cross_entropy(x0, w, torch.zeros(0, dtype=torch.long), reduction=reduction)
    assert out.shape == ((0,) if reduction == "none" else ())
    if reduction == "sum":
        assert float(out) == 0.0
        out.backward()
        assert x0.grad.shape == (0, 4)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_second_backward_with_retain_graph(reduction):
    x, w, b, y = _case(7, 3, 6)
    leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
    out = linear_cross_entropy(
        *leaves[:2], y, linear_bias=leaves[2], reduction=reduction, chunk_size=3
    )
    out.sum().backward(retain_graph=True)
    first = [t.grad.clone() for t in leaves]
    out.sum().backward()  # accumulates a second, equal gradient
    for t, g in zip(leaves, first, strict=True):
        torch.testing.assert_close(t.grad, 2 * g, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("dtype", "native_half"),
    [(torch.float64, False), (torch.bfloat16, False), (torch.bfloat16, True)],
)
def test_none_reuses_the_forward_passs_last_chunk_of_logits(monkeypatch, dtype, native_half):
    """A per-token loss keeps the forward sweep's last chunk of logits (their statistics taken
    in blocks of rows, or in the float32 buffer where half-precision products have one); the
    backward sweep starts with that chunk without its product. The gradients still equal the
    dense computation's for uneven upstream gradients, with every per-row term, and a second
    backward (retain_graph) recomputes all of it."""
    from crossentropy.fused import _chunked, _ops

    if native_half:  # half-precision products, as on a CPU with native bf16 (or CUDA)
        monkeypatch.setattr(_ops, "product_dtype", lambda x: x.dtype)
    calls = []
    real = _ops.sweep

    def spy(*args, **kwargs):
        calls.append((kwargs.get("hold", False), kwargs.get("held") is not None))
        return real(*args, **kwargs)

    monkeypatch.setattr(_ops, "sweep", spy)
    x, w, b, y = _case(300, 5, 23, dtype=dtype)  # chunks of 160 and 140 rows (3 blocks of rows)
    cw = torch.linspace(0.5, 2.0, 23, dtype=torch.float64)
    kw = {"label_smoothing": 0.1, "z_loss": 1e-3, "softcap": 4.0, "temperature": 0.8}
    advantage = torch.linspace(-1.0, 2.0, 300, dtype=torch.float64)

    def run(fn, *, twice=False):
        leaves = [t.detach().clone().requires_grad_(True) for t in (x, w, b)]
        out = fn(*leaves)
        objective = _rl_objective(*(o.double() for o in out[:4]), advantage)
        if not twice:
            return [o.detach().double() for o in out[:4]], torch.autograd.grad(objective, leaves)
        first = torch.autograd.grad(objective, leaves, retain_graph=True)
        return first, torch.autograd.grad(objective, leaves)

    def ours(x, w, b):
        return linear_cross_entropy(
            x,
            w,
            y,
            linear_bias=b,
            weight=cw.to(x.dtype),
            reduction="none",
            return_aux=True,
            chunk_size=160,
            **kw,
        )

    got, got_g = run(ours)
    assert calls == [(True, False), (False, True)]
    if dtype == torch.float64:
        kw_dense = {**kw, "weight": cw}
        ref, ref_g = run(lambda x, w, b: _dense_outputs(x, w, b, y, kw_dense, "none"))
        for a, r in zip(got, ref, strict=True):
            torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)
        for a, r in zip(got_g, ref_g, strict=True):
            torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)
    else:  # against the same op recomputing every chunk (nothing kept)
        with monkeypatch.context() as m:
            m.setattr(_chunked._Plan, "holds", lambda self: False)
            ref, ref_g = run(ours)
        for a, r in zip(got, ref, strict=True):
            torch.testing.assert_close(a, r, rtol=0, atol=0)
        for a, r in zip(got_g, ref_g, strict=True):
            torch.testing.assert_close(a.double(), r.double(), rtol=2e-2, atol=1e-3)
    calls.clear()
    first, second = run(ours, twice=True)
    assert calls == [(True, False), (False, True), (False, False)]
    calls.clear()
    with torch.autograd.graph.save_on_cpu():  # saved-tensor hooks: nothing kept beside them
        _, hooked_g = run(ours)
    assert calls == [(False, False), (False, False)]
    for a, r in zip(hooked_g, got_g, strict=True):
        torch.testing.assert_close(a, r, rtol=1e-12 if dtype == torch.float64 else 2e-2, atol=0)
    for a, r in zip(first, second, strict=True):
        torch.testing.assert_close(a, r, rtol=1e-6 if dtype == torch.bfloat16 else 1e-12, atol=0)


def test_double_backward_is_refused():
    x, w, _, y = _case(5, 3, 4)
    x = x.requires_grad_(True)
    loss = linear_cross_entropy(x, w.requires_grad_(True), y)
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(loss, x, create_graph=True)


@pytest.mark.parametrize("wanted", ["x", "w", "b", "xb"])
def test_only_some_inputs_require_grad(wanted):
    x, w, b, y = _case(6, 3, 5)
    leaves = {
        k: t.clone().requires_grad_(k in wanted) for k, t in zip("xwb", (x, w, b), strict=True)
    }
    ours = linear_cross_entropy(leaves["x"], leaves["w"], y, linear_bias=leaves["b"], chunk_size=4)
    ours.backward()
    ref_leaves = {
        k: t.clone().requires_grad_(k in wanted) for k, t in zip("xwb", (x, w, b), strict=True)
    }
    ref = ce.cross_entropy(ref_leaves["x"] @ ref_leaves["w"].T + ref_leaves["b"], y)
    ref.backward()
    for k in "xwb":
        if k in wanted:
            torch.testing.assert_close(leaves[k].grad, ref_leaves[k].grad)
        else:
            assert leaves[k].grad is None


def test_masked_classes_and_large_logits():
    x, w, b, y = _case(6, 3, 9, ignore=False)
    y = y % 5
    b = b.clone()
    b[5:] = -math.inf  # classes 5..8 masked out
    for scale in (1.0, 1e4):
        ours = _grads(lambda x, w, b: linear_cross_entropy(x, w, y, linear_bias=b), scale * x, w, b)
        ref = _grads(lambda x, w, b: ce.cross_entropy(x @ w.T + b, y), scale * x, w, b)
        torch.testing.assert_close(ours[0], ref[0])
        for a, r in zip(ours[1], ref[1], strict=True):
            torch.testing.assert_close(a, r)
            assert torch.isfinite(a).all()


def test_gradients_with_batch_dimensions():
    x, w, b, y = _case(12, 4, 6)
    ours = _grads(
        lambda x, w, b: linear_cross_entropy(x.reshape(3, 4, 4), w, y.reshape(3, 4), linear_bias=b),
        x,
        w,
        b,
    )
    ref = _grads(lambda x, w, b: ce.cross_entropy(x @ w.T + b, y), x, w, b)
    for a, r in zip(ours[1], ref[1], strict=True):
        torch.testing.assert_close(a, r)


def test_autocast_and_mixed_dtypes():
    x, w, _, y = _case(8, 4, 6, dtype=torch.float32)
    wl = w.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = linear_cross_entropy(x.to(torch.bfloat16), wl, y)
    assert out.dtype == torch.float32  # a loss under autocast is float32, as PyTorch's
    out.backward()
    assert wl.grad.dtype == torch.float32  # the fp32 master weight gets an fp32 gradient
    ref = ce.cross_entropy(x @ w.T, y)
    torch.testing.assert_close(out, ref, rtol=3e-2, atol=3e-2)
    with pytest.raises(TypeError, match="weight must have input's dtype"):
        linear_cross_entropy(x.to(torch.bfloat16), w, y)


def _dense_objective(z, y, upstream, options):
    """The fused op's objective written out over float32 logits ``z`` (the autocast reference):
    temperature, softcap, label smoothing, z-loss, ignored targets, the reduction, and with
    ``return_aux`` the loss plus ``upstream``-weighted log-probabilities and the mean entropy."""
    u = z / options.get("temperature", 1.0)
    if "softcap" in options:
        u = options["softcap"] * torch.tanh(u / options["softcap"])
    keep = y != -100
    logp = torch.log_softmax(u, dim=-1)
    logp_y = logp.gather(1, y.clamp(min=0)[:, None])[:, 0]
    eps = options.get("label_smoothing", 0.0)
    per = (1 - eps) * -logp_y + eps * -logp.mean(-1)
    per = per + options.get("z_loss", 0.0) * torch.logsumexp(u, -1) ** 2
    per = per * keep
    reduction = options.get("reduction", "mean")
    if reduction == "none":
        return (per * upstream).sum()
    loss = per.sum() if reduction == "sum" else per.sum() / keep.sum()
    if options.get("return_aux"):
        entropy = -(logp.exp() * logp).sum(-1) * keep
        loss = loss + (upstream * logp_y * keep).sum() + entropy.mean()
    return loss


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"reduction": "sum"},
        {"reduction": "none"},
        {"label_smoothing": 0.1, "temperature": 1.5},
        {"softcap": 5.0, "z_loss": 1e-3},
        {"return_aux": ("logp", "entropy")},
    ],
    ids=lambda o: ",".join(o) or "mean",
)
def test_autocast_gradients_of_float32_leaves(dtype, options):
    """Float32 input, weight and bias under CPU autocast: every gradient is that of the
    autocast dense computation (``F.linear`` in the autocast dtype, the loss in float32), to
    half precision. The sweep's own float32 products must not be autocast (they were, and the
    input's gradient came back uninitialised)."""
    torch.manual_seed(3)
    x = torch.randn(40, 16, requires_grad=True)
    w = (torch.randn(300, 16) * 0.3).requires_grad_(True)
    b = (torch.randn(300) * 0.1).requires_grad_(True)
    y = torch.randint(0, 300, (40,))
    y[3] = -100
    upstream = torch.rand(40)
    with torch.autocast("cpu", dtype=dtype):
        out = linear_cross_entropy(x, w, y, linear_bias=b, **options)
    if options.get("return_aux"):
        objective = out.loss + (upstream * out.logp).sum() + out.entropy.mean()
    else:
        objective = (out * upstream).sum() if options.get("reduction") == "none" else out
    objective.backward()
    ours = [t.grad.clone() for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    with torch.autocast("cpu", dtype=dtype):
        z = torch.nn.functional.linear(x, w, b).float()
    _dense_objective(z, y, upstream, options).backward()
    for name, a, t in zip(("input", "weight", "bias"), ours, (x, w, b), strict=True):
        assert a.dtype == torch.float32, name
        assert bool(torch.isfinite(a).all()), name
        assert float((a - t.grad).norm() / t.grad.norm()) < 3e-2, name


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"weight": torch.zeros(5, 2)}, ValueError, "weight"),
        ({"target": torch.zeros(3, dtype=torch.long)}, ValueError, "target"),
        ({"target": torch.zeros(4)}, TypeError, "target"),
        ({"target": torch.tensor([0, 1, 9, 2])}, ValueError, "label 9"),
        ({"linear_bias": torch.zeros(4)}, ValueError, "linear_bias"),
        ({"weight": torch.zeros(4)}, ValueError, "weight must have shape"),
        ({"weight": torch.zeros(5, dtype=torch.long)}, TypeError, "weight must be a floating"),
        ({"return_aux": "logp"}, TypeError, "return_aux"),
        ({"return_aux": ("logits",)}, ValueError, "return_aux"),
        ({"num_items_in_batch": 0}, ValueError, "num_items_in_batch"),
        ({"num_items_in_batch": 3, "reduction": "sum"}, ValueError, "reduction='mean'"),
        ({"cu_seqlens": torch.tensor([0, 2, 3])}, ValueError, "cu_seqlens must start at 0"),
        ({"cu_seqlens": torch.tensor([0, 3, 2, 4])}, ValueError, "non-decreasing"),
        ({"cu_seqlens": torch.tensor([0.0, 4.0])}, TypeError, "cu_seqlens must hold integers"),
        ({"sequence_ids": torch.tensor([0, 0, 1])}, ValueError, "sequence_ids must have"),
        ({"sequence_ids": torch.tensor([0, 0, 1, 4])}, ValueError, r"sequence_ids must lie"),
        (
            {"sequence_ids": torch.zeros(4, dtype=torch.long), "cu_seqlens": torch.tensor([0, 4])},
            ValueError,
            "not both",
        ),
        ({"reduction": "batchmean"}, ValueError, "reduction"),
        ({"reduction": "avg"}, ValueError, r"one of 'none', 'mean', 'sum'; got 'avg'"),
        ({"chunk_size": 0}, ValueError, "chunk_size"),
        ({"linear_weight": torch.zeros(0, 3)}, ValueError, r"at least one row .*shape \(0, 3\)"),
        ({"label_smoothing": 1.5}, ValueError, "label_smoothing"),
        ({"input": torch.zeros(4, 3, dtype=torch.long)}, TypeError, "input must be a floating"),
        (
            {"linear_weight": torch.zeros(5, 3, dtype=torch.int32)},
            TypeError,
            "linear_weight must be a floating",
        ),
        ({"linear_bias": torch.zeros(5, dtype=torch.long)}, TypeError, "linear_bias must be a"),
        ({"input": torch.zeros(4, 3, dtype=torch.complex64)}, TypeError, "input"),
        ({"input": torch.tensor(1.0)}, ValueError, "input must have at least one dimension"),
        ({"temperature": 0.0}, ValueError, "temperature"),
        ({"temperature": -1.0}, ValueError, "temperature"),
        ({"temperature": torch.tensor(1.0)}, TypeError, "temperature"),
        ({"temperature": True}, TypeError, "temperature"),
        ({"num_items_in_batch": torch.tensor([4.0, 1.0])}, ValueError, "must be one count"),
        ({"num_items_in_batch": torch.tensor(True)}, TypeError, "got a tensor of torch.bool"),
        ({"num_items_in_batch": torch.tensor(4 + 0j)}, TypeError, "count; got a tensor of torch.c"),
        ({"linear_weight": torch.zeros(5, 3, device="meta")}, ValueError, "input's device cpu"),
        ({"target": torch.zeros(4, dtype=torch.long, device="meta")}, ValueError, "target must"),
        ({"weight": torch.ones(5, device="meta")}, ValueError, "weight must be on input's"),
        (
            {"cu_seqlens": torch.tensor([0, 4], device="meta")},
            ValueError,
            "cu_seqlens must be on input's device cpu; got meta",
        ),
        (
            {"sequence_ids": torch.zeros(4, dtype=torch.long, device="meta")},
            ValueError,
            "sequence_ids must be on input's device",
        ),
        (
            {"num_items_in_batch": torch.tensor(4, device="meta")},
            ValueError,
            "num_items_in_batch is on the meta device",
        ),
        (
            {"target": torch.full((4, 5), 0.2)},
            TypeError,
            "target must hold class indices: probability targets",
        ),
        ({"options": "bogus"}, TypeError, "options must be None or a torch.nn.LinearCross"),
    ],
)
def test_bad_inputs(kwargs, error, match):
    args = {
        "input": torch.zeros(4, 3),
        "linear_weight": torch.zeros(5, 3),
        "target": torch.zeros(4, dtype=torch.long),
    }
    args.update({k: v for k, v in kwargs.items() if k in args})
    rest = {k: v for k, v in kwargs.items() if k not in args}
    with pytest.raises(error, match=match):
        linear_cross_entropy(args["input"], args["linear_weight"], args["target"], **rest)


# ----------------------------------------------------------------------------------------------
# The module: crossentropy.nn.LinearCrossEntropyLoss


def _module_pair(bias, **kw):
    from crossentropy.nn import LinearCrossEntropyLoss

    torch.manual_seed(0)
    ref = torch.nn.LinearCrossEntropyLoss(6, 11, bias=bias, dtype=torch.float64, **kw)
    ours = LinearCrossEntropyLoss(6, 11, bias=bias, dtype=torch.float64, **kw)
    ours.load_state_dict(ref.state_dict())  # the same parameter names as PyTorch's module
    return ours, ref


def _module_value_and_grads(module, x, y):
    x = x.detach().clone().requires_grad_(True)
    out = module(x, y)
    leaves = [x, *module.parameters()]
    return out.detach(), torch.autograd.grad(out, leaves)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"reduction": "sum"},
        {"label_smoothing": 0.1},
        {"ignore_index": None},
        {"ignore_index": 3},
        {"weight": torch.linspace(0.5, 2.0, 11, dtype=torch.float64)},
        {
            "weight": torch.linspace(0.5, 2.0, 11, dtype=torch.float64),
            "label_smoothing": 0.2,
            "reduction": "sum",
        },
        {"options": torch.nn.LinearCrossEntropyOptions()},
    ],
    ids=["mean", "sum", "smoothing", "ignore-none", "ignore-3", "weight", "weight-smooth", "opts"],
)
def test_module_matches_torch_linear_cross_entropy_loss(bias, kw):
    """PyTorch's module, and its ignore_index=None meaning -100 for class indices."""
    ours, ref = _module_pair(bias, **kw)
    x = torch.randn(9, 6, dtype=torch.float64)
    y = torch.randint(0, 11, (9,))
    y[2] = kw.get("ignore_index") or -100
    y[5] = 3
    a, b = _module_value_and_grads(ours, x, y), _module_value_and_grads(ref, x, y)
    torch.testing.assert_close(a[0], b[0], rtol=1e-12, atol=1e-12)
    for ga, gb in zip(a[1], b[1], strict=True):
        torch.testing.assert_close(ga, gb, rtol=1e-10, atol=1e-12)


def test_module_extras_pickle_move_and_repr():
    import copy
    import pickle

    from crossentropy.nn import LinearCrossEntropyLoss

    module = LinearCrossEntropyLoss(4, 7, bias=True, z_loss=1e-3, softcap=5.0, chunk_size=2)
    x, y = torch.randn(5, 4), torch.randint(0, 7, (5,))
    expected = ce.cross_entropy(module.linear(x), y, z_loss=1e-3, softcap=5.0, mean_divisor="count")
    torch.testing.assert_close(module(x, y), expected)
    for clone in (pickle.loads(pickle.dumps(module)), copy.deepcopy(module)):
        torch.testing.assert_close(clone(x, y), module(x, y))
    moved = module.to(torch.float64)
    assert moved.linear.weight.dtype == torch.float64
    assert moved(x.double(), y).dtype == torch.float64
    assert "z_loss=0.001" in repr(module)
    assert "softcap=5.0" in repr(module)


def test_module_weight_tied_to_an_embedding():
    from crossentropy.nn import LinearCrossEntropyLoss

    embedding = torch.nn.Embedding(9, 4)
    module = LinearCrossEntropyLoss(4, 9)
    module.linear.weight = embedding.weight
    tokens = torch.tensor([1, 4, 4, 8])
    out = module(embedding(tokens), torch.tensor([4, 4, 8, 0]))
    out.backward()
    assert embedding.weight.grad is not None
    assert embedding.weight.grad[1].abs().sum() > 0


@pytest.mark.parametrize("backend", ["eager", "inductor"])
def test_module_under_torch_compile(backend):
    from crossentropy.nn import LinearCrossEntropyLoss

    torch._dynamo.reset()
    module = LinearCrossEntropyLoss(5, 13, bias=True, label_smoothing=0.1, chunk_size=3)
    x, y = torch.randn(7, 5), torch.randint(0, 13, (7,))
    compiled = torch.compile(module, backend=backend, fullgraph=backend == "eager")
    a, b = _module_value_and_grads(compiled, x, y), _module_value_and_grads(module, x, y)
    torch.testing.assert_close(a[0], b[0])
    for ga, gb in zip(a[1], b[1], strict=True):
        torch.testing.assert_close(ga, gb)


# ---------------------------------------------------------------------------------------------
# torch.func: grad, jacrev, vmap (per-sample gradients), functional_call.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_torch_func_transforms_equal_the_core(reduction, temperature):
    from torch.func import grad, jacrev, vmap

    x, w, b, y = _case(6, 4, 5)
    t = temperature
    kw = {"reduction": reduction, "chunk_size": 2, "temperature": t}

    def fused(x, w, b):
        return linear_cross_entropy(x, w, y, linear_bias=b, **kw)

    def dense(x, w, b):
        return ce.cross_entropy((x @ w.T + b) / t, y, reduction=reduction)

    for argnums in (0, 1, 2):
        got = grad(lambda *a: fused(*a).sum(), argnums=argnums)(x, w, b)
        expected = grad(lambda *a: dense(*a).sum(), argnums=argnums)(x, w, b)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        jacrev(fused, argnums=1)(x, w, b),
        jacrev(dense, argnums=1)(x, w, b),
        rtol=1e-12,
        atol=1e-12,
    )
    labels = y.clamp(min=0)

    def one(xi, yi, w):
        return linear_cross_entropy(xi[None], w, yi[None], linear_bias=b, **kw).sum()

    per_sample = vmap(grad(one, argnums=2), in_dims=(0, 0, None))(x, labels, w)
    loop = torch.stack(
        [
            grad(
                lambda w, i=i: ce.cross_entropy(
                    (x[i : i + 1] @ w.T + b) / t, labels[i : i + 1]
                ).sum()
            )(w)
            for i in range(x.shape[0])
        ]
    )
    torch.testing.assert_close(per_sample, loop, rtol=1e-12, atol=1e-12)


def test_module_parameters_under_functional_call():
    from torch.func import functional_call, grad

    from crossentropy.nn import LinearCrossEntropyLoss

    x, _, _, y = _case(6, 4, 5)
    module = LinearCrossEntropyLoss(4, 5, bias=True, dtype=torch.float64, chunk_size=4)
    params = dict(module.named_parameters())
    got = grad(lambda p: functional_call(module, p, (x, y)))(params)
    expected = grad(lambda p: ce.cross_entropy(x @ p["linear.weight"].T + p["linear.bias"], y))(
        params
    )
    for name in params:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-12, atol=1e-12)


def test_grad_of_grad_is_refused_not_silently_zero():
    from torch.func import grad

    x, w, _, y = _case(4, 3, 5)
    with pytest.raises(RuntimeError, match="grad of a grad"):
        grad(lambda v: grad(lambda u: linear_cross_entropy(u, w, y))(v).sum())(x)


def test_integer_tensors_are_refused_not_truncated():
    # the call: an integer loss (tensor(1)) where the float64 value is 1.6495
    x, w, y = (
        torch.tensor([[1, 2], [3, -1]]),
        torch.tensor([[1, 0], [0, 1], [2, 1]]),
        torch.tensor([0, 2]),
    )
    with pytest.raises(TypeError, match=r"input must be a floating tensor; got torch\.int64"):
        linear_cross_entropy(x, w, y)
    value = linear_cross_entropy(x.double(), w.double(), y)
    torch.testing.assert_close(
        value, torch.nn.functional.cross_entropy(x.double() @ w.double().T, y)
    )
    assert float(value) == pytest.approx(1.6495, abs=5e-5)


def test_class_weights_that_require_grad_are_refused_as_pytorch_does():
    # PyTorch's op raises; silently giving them no gradient would train nothing
    x, w, _, y = _case(4, 3, 5)
    cw = torch.rand(5, dtype=x.dtype, requires_grad=True)
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        torch.nn.functional.linear_cross_entropy(x, w, y, weight=cw)
    with pytest.raises(ValueError, match=r"weight \(the class weights\) must not require grad"):
        linear_cross_entropy(x, w, y, weight=cw)
    with torch.no_grad():  # nothing to differentiate: taken
        value = linear_cross_entropy(x, w, y, weight=cw)
    torch.testing.assert_close(value, linear_cross_entropy(x, w, y, weight=cw.detach()))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_zero_features_give_log_v_as_pytorch(reduction):
    x = torch.zeros(3, 0, dtype=torch.float64, requires_grad=True)
    w = torch.zeros(5, 0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.0, 1.0, 0.0, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 4])
    ours = linear_cross_entropy(x, w, y, linear_bias=b, reduction=reduction)
    theirs = torch.nn.functional.cross_entropy(x @ w.T + b, y, reduction=reduction)
    torch.testing.assert_close(ours, theirs)
    (gb,) = torch.autograd.grad(ours.sum(), b)
    (tb,) = torch.autograd.grad(theirs.sum(), b)
    torch.testing.assert_close(gb, tb)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_meta_tensors_propagate_shapes(reduction):
    x = torch.empty(2, 3, 4, device="meta")
    w = torch.empty(7, 4, device="meta")
    y = torch.empty(2, 3, dtype=torch.long, device="meta")
    out = linear_cross_entropy(x, w, y, reduction=reduction)
    assert out.device.type == "meta"
    assert tuple(out.shape) == ((2, 3) if reduction == "none" else ())
    assert out.dtype == torch.float32


def test_backward_allocates_no_weight_sized_tensor():
    # The gradients formed in the forward pass are scaled in place and handed to autograd;
    # the op's non-differentiable outputs get no zero-filled upstream gradients. Measured as
    # the process's peak RSS, in a fresh process.
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import resource, torch
        from crossentropy.fused import linear_cross_entropy
        x = torch.randn(1024, 512).div_(32).requires_grad_()
        w = torch.randn(32000, 512).div_(32).requires_grad_()
        y = torch.randint(0, 32000, (1024,))
        peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        loss = linear_cross_entropy(x, w, y, chunk_size=64)  # a small logits buffer
        after_forward = peak()
        loss.backward()
        print(peak() - after_forward)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    weight_mib = 32000 * 512 * 4 / 2**20  # 62.5 MiB
    assert float(done.stdout) < weight_mib / 4


# ---------------------------------------------------------------------------------------------
# Per-token outputs (RL), class weights, PyTorch's signature, normalisation.
# ---------------------------------------------------------------------------------------------

# every combination of the options (ignored tokens are in every case)
_AUX_ONE = {
    "label_smoothing": 0.2,
    "z_loss": 1e-2,
    "softcap": 2.5,
    "temperature": 1.3,
    "weight": "cw",
}
AUX_OPTIONS = [
    {k: v for k, v, on in zip(_AUX_ONE, _AUX_ONE.values(), mask, strict=True) if on}
    for mask in itertools.product((False, True), repeat=len(_AUX_ONE))
]


def _dense_outputs(x, w, b, y, kw, reduction, ignore_index=-100):
    """Everything the fused op returns, from the materialised logits."""
    t, cap = kw.get("temperature", 1.0), kw.get("softcap")
    z = (x @ w.T + b) / t
    core = {k: v for k, v in kw.items() if k in ("label_smoothing", "z_loss", "weight")}
    loss = ce.cross_entropy(
        z, y, reduction=reduction, softcap=cap, ignore_index=ignore_index, **core
    )
    if cap is not None:
        z = cap * torch.tanh(z / cap)
    valid = y != ignore_index
    lse = torch.logsumexp(z, dim=-1)
    logp = z.gather(1, torch.where(valid, y, 0)[:, None])[:, 0] - lse
    entropy = -(torch.softmax(z, -1) * torch.log_softmax(z, -1)).sum(-1)
    zero = torch.zeros_like(lse)
    correct = ((x @ w.T + b).argmax(-1) == y).sum()
    return (
        loss,
        torch.where(valid, logp, zero),
        torch.where(valid, entropy, zero),
        torch.where(valid, lse, zero),
        correct,
    )


def _rl_objective(loss, logp, entropy, lse, advantage):
    return 0.3 * loss.sum() - (advantage * logp).sum() - 0.1 * entropy.mean() + 0.05 * lse.sum()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", AUX_OPTIONS, ids=lambda o: "-".join(o) or "plain")
def test_per_token_outputs_and_gradients_equal_the_dense_computation(options, reduction):
    x, w, b, y = _case(9, 4, 11)
    y[4] = -100
    y[6] = int((x[6] @ w.T + b).argmax())  # at least one argmax hit
    cw = torch.linspace(0.5, 2.0, 11, dtype=torch.float64)
    kw = {k: (cw if v == "cw" else v) for k, v in options.items()}
    advantage = torch.linspace(-1.0, 2.0, 9, dtype=torch.float64)

    def run(fn):
        leaves = [t.detach().clone().requires_grad_(True) for t in (x, w, b)]
        out = fn(*leaves)
        grads = torch.autograd.grad(_rl_objective(*out[:4], advantage), leaves)
        return [o.detach() for o in out], grads

    ours, ours_g = run(
        lambda x, w, b: linear_cross_entropy(
            x, w, y, linear_bias=b, reduction=reduction, return_aux=True, chunk_size=4, **kw
        )
    )
    ref, ref_g = run(lambda x, w, b: _dense_outputs(x, w, b, y, kw, reduction))
    for a, r in zip(ours[:4], ref[:4], strict=True):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)
    assert ours[4].dtype == torch.int64
    assert int(ours[4]) == int(ref[4])
    assert int(ours[4]) >= 1
    for a, r in zip(ours_g, ref_g, strict=True):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)


def test_return_aux_names_only_what_is_asked():
    x, w, _, y = _case(5, 3, 7)
    out = linear_cross_entropy(x, w, y, return_aux=["entropy", "logp"])
    assert out.lse is None
    assert out.correct is None
    assert out.logp.shape == out.entropy.shape == (5,)
    assert torch.equal(out.loss, linear_cross_entropy(x, w, y))
    batched = linear_cross_entropy(x.reshape(1, 5, 3), w, y.reshape(1, 5), return_aux=True)
    assert batched.logp.shape == (1, 5)
    torch.testing.assert_close(batched.logp[0], out.logp)


def test_per_token_outputs_of_half_precision_are_float32():
    x, w, _, y = _case(6, 8, 13, dtype=torch.bfloat16)
    out = linear_cross_entropy(x, w, y, return_aux=True)
    assert out.loss.dtype == torch.bfloat16
    assert out.logp.dtype == out.entropy.dtype == out.lse.dtype == torch.float32
    # the logits are formed in bfloat16, as F.linear would; all after it in float32
    logits = (x @ w.T).double()
    ref = _dense_outputs(logits, torch.eye(13, dtype=torch.float64), 0.0, y, {}, "mean")
    torch.testing.assert_close(out.logp.double(), ref[1], rtol=0, atol=1e-5)
    torch.testing.assert_close(out.entropy.double(), ref[2], rtol=0, atol=1e-5)


def test_none_reduction_is_exact_for_uneven_upstream_gradients_with_ignored_tokens():
    """Liger-Kernel #968: a per-token upstream gradient that is not uniform, with ignored tokens
    among the rows, must reach each row with its own weight."""
    x, w, b, y = _case(8, 5, 9)
    y[[0, 3, 7]] = -100
    upstream = torch.tensor([3.0, -1.0, 0.5, 7.0, 2.0, -4.0, 0.25, 9.0], dtype=torch.float64)
    ours = _grads(
        lambda x, w, b: linear_cross_entropy(x, w, y, linear_bias=b, reduction="none") * upstream,
        x,
        w,
        b,
    )
    ref = _grads(
        lambda x, w, b: ce.cross_entropy(x @ w.T + b, y, reduction="none") * upstream, x, w, b
    )
    for a, r in zip(ours[1], ref[1], strict=True):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kw", [{}, {"label_smoothing": 0.1, "z_loss": 1e-2, "softcap": 2.0}])
def test_class_weights_match_pytorch_linear_cross_entropy(reduction, kw):
    """PyTorch 2.13's own call runs unchanged (its keyword names) and gives its numbers."""
    x, w, b, y = _case(10, 4, 7)
    cw = torch.linspace(0.2, 3.0, 7, dtype=torch.float64)
    torch_kw = {k: v for k, v in kw.items() if k == "label_smoothing"}
    extras = {k: v for k, v in kw.items() if k != "label_smoothing"}
    ours = _grads(
        lambda x, w, b: linear_cross_entropy(
            x, w, y, linear_bias=b, weight=cw, reduction=reduction, **kw
        ),
        x,
        w,
        b,
    )
    if extras:
        ref = _grads(
            lambda x, w, b: ce.cross_entropy(x @ w.T + b, y, weight=cw, reduction=reduction, **kw),
            x,
            w,
            b,
        )
    else:
        ref = _grads(
            lambda x, w, b: torch.nn.functional.linear_cross_entropy(
                x, w, y, linear_bias=b, weight=cw, reduction=reduction, **torch_kw
            ),
            x,
            w,
            b,
        )
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-12, atol=1e-12)
    for a, r in zip(ours[1], ref[1], strict=True):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)


def test_num_items_in_batch_makes_gradient_accumulation_exact():
    """Two micro-batches, each divided by the step's token count, sum to the whole batch's
    mean, loss and gradients (Hugging Face's num_items_in_batch)."""
    x, w, b, y = _case(12, 4, 9)
    y[[1, 2, 3, 9]] = -100  # uneven: 1 ignored in the second half, 3 in the first
    items = int((y != -100).sum())
    full = [t.detach().clone().requires_grad_(True) for t in (x, w, b)]
    whole_loss = linear_cross_entropy(full[0], full[1], y, linear_bias=full[2])
    whole = (whole_loss.detach(), torch.autograd.grad(whole_loss, full))
    leaves = [t.detach().clone().requires_grad_(True) for t in (x, w, b)]
    total = 0.0
    for part in (slice(0, 6), slice(6, 12)):
        loss = linear_cross_entropy(
            leaves[0][part],
            leaves[1],
            y[part],
            linear_bias=leaves[2],
            num_items_in_batch=torch.tensor(items),
        )
        loss.backward()
        total = total + loss.detach()
    torch.testing.assert_close(total, whole[0], rtol=1e-12, atol=1e-12)
    for a, r in zip([t.grad for t in leaves], whole[1], strict=True):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)
    empty = linear_cross_entropy(x[:2], w, torch.tensor([-100, -100]), num_items_in_batch=5)
    assert float(empty) == 0.0


def test_per_sequence_mean_for_packed_sequences():
    x, w, b, y = _case(9, 4, 8)
    y[[1, 7, 8]] = -100  # the third sequence is all ignored
    bounds = [0, 4, 7, 9]
    cw = torch.linspace(0.5, 1.5, 8, dtype=torch.float64)
    for weight in (None, cw):
        kw = {"linear_bias": b, "weight": weight, "z_loss": 1e-2}
        per_seq = [
            linear_cross_entropy(x[lo:hi], w, y[lo:hi], **kw)
            for lo, hi in itertools.pairwise(bounds)
            if bool((y[lo:hi] != -100).any())
        ]
        expected = torch.stack(per_seq).mean()
        by_bounds = linear_cross_entropy(x, w, y, cu_seqlens=torch.tensor(bounds), **kw)
        ids = torch.tensor([5, 5, 5, 5, 0, 0, 0, 2, 2])  # any labels in [0, N)
        by_ids = linear_cross_entropy(x, w, y, sequence_ids=ids, **kw)
        torch.testing.assert_close(by_bounds, expected, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(by_ids, expected, rtol=1e-12, atol=1e-12)
    got = _grads(
        lambda x, w, b: linear_cross_entropy(
            x, w, y, linear_bias=b, cu_seqlens=torch.tensor(bounds)
        ),
        x,
        w,
        b,
    )
    ref = _grads(
        lambda x, w, b: (
            (ce.cross_entropy(x[:4] @ w.T + b, y[:4]) + ce.cross_entropy(x[4:7] @ w.T + b, y[4:7]))
            / 2
        ),
        x,
        w,
        b,
    )
    for a, r in zip(got[1], ref[1], strict=True):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)
    nothing = linear_cross_entropy(
        x[:2], w, torch.tensor([-100, -100]), cu_seqlens=torch.tensor([0, 2])
    )
    assert math.isnan(float(nothing))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_forward_mode_jvp_and_jacfwd_equal_the_dense_computation(reduction):
    from torch.func import jacfwd, jvp

    x, w, b, y = _case(6, 3, 7)
    kw = {
        "reduction": reduction,
        "label_smoothing": 0.1,
        "z_loss": 1e-2,
        "softcap": 2.0,
        "temperature": 0.8,
        "weight": torch.linspace(0.5, 1.5, 7, dtype=torch.float64),
    }

    def fused(x, w, b):
        out = linear_cross_entropy(x, w, y, linear_bias=b, chunk_size=4, return_aux=True, **kw)
        return out.loss, out.logp, out.entropy, out.lse

    def dense(x, w, b):
        return _dense_outputs(x, w, b, y, kw, reduction)[:4]

    tangents = tuple(torch.randn_like(t) for t in (x, w, b))
    got = jvp(fused, (x, w, b), tangents)
    expected = jvp(dense, (x, w, b), tangents)
    for a, r in zip(got[1], expected[1], strict=True):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)
    for argnums in (0, 1, 2):
        torch.testing.assert_close(
            jacfwd(lambda *a: fused(*a)[0], argnums=argnums)(x, w, b),
            jacfwd(lambda *a: dense(*a)[0], argnums=argnums)(x, w, b),
            rtol=1e-10,
            atol=1e-12,
        )


@pytest.mark.parametrize("aux", [False, True], ids=["sft", "rl"])
def test_whole_training_step_compiles_in_one_graph_without_warnings(aux):
    """``torch.compile(fullgraph=True)`` over a model's forward and the fused loss (SFT, or an RL
    objective over the per-token outputs): one graph, no break, no warning, the eager numbers
    and gradients; the backward goes through the op's custom operators."""
    import warnings

    from crossentropy.nn import LinearCrossEntropyLoss

    torch.manual_seed(0)
    embed = torch.nn.Embedding(31, 8)
    body = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh())
    head = LinearCrossEntropyLoss(
        8, 31, bias=True, label_smoothing=0.1, z_loss=1e-3, chunk_size=5, return_aux=aux
    )
    tokens = torch.randint(0, 31, (2, 9))
    labels = torch.cat([tokens[:, 1:], torch.full((2, 1), -100)], dim=1)
    advantage = torch.linspace(-1.0, 1.0, 18).reshape(2, 9)

    def step(tokens, labels):
        out = head(body(embed(tokens)), labels)
        if not aux:
            return out
        return out.loss - (advantage * out.logp).mean() - 0.01 * out.entropy.mean()

    params = [*embed.parameters(), *body.parameters(), *head.parameters()]

    def run(fn):
        loss = fn(tokens, labels)
        return loss.detach(), torch.autograd.grad(loss, params)

    torch.compile(lambda t: t + 1, backend="inductor")(torch.zeros(1))  # torch's own imports
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # an unclosed file or socket of an earlier test, collected here, is not this call's
        warnings.simplefilter("ignore", ResourceWarning)
        compiled = run(torch.compile(step, fullgraph=True, backend="inductor"))
    assert [str(w.message) for w in caught] == []
    assert sum(torch._dynamo.utils.counters["graph_break"].values()) == 0
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    eager = run(step)
    torch.testing.assert_close(compiled[0], eager[0], rtol=1e-5, atol=1e-6)
    for a, r in zip(compiled[1], eager[1], strict=True):
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-6)


def test_compiled_step_takes_schedules_of_float_options_and_dynamic_shapes():
    """A float option that changes between calls (a temperature or smoothing schedule) is a
    symbolic float to Dynamo until the custom operator fixes it (one compilation per value), and
    ``dynamic=True`` makes the sizes symbolic (one compilation): both trace with
    ``fullgraph=True`` and give the eager numbers and gradients."""
    torch.manual_seed(0)
    w = torch.randn(23, 6, dtype=torch.float64, requires_grad=True)
    x = torch.randn(10, 6, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 23, (10,))

    def loss(x, y, t, s, cap):
        return linear_cross_entropy(x, w, y, temperature=t, label_smoothing=s, softcap=cap)

    def check(got, want):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
        grads = torch.autograd.grad(got, (x, w)), torch.autograd.grad(want, (x, w))
        for a, b in zip(*grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)

    torch._dynamo.reset()
    scheduled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    for t, s, cap in [(1.0, 0.0, 30.0), (0.7, 0.1, 20.0), (0.9, 0.2, 10.0)]:
        check(scheduled(x, y, t, s, cap), loss(x, y, t, s, cap))
    torch._dynamo.reset()
    dynamic = torch.compile(
        lambda x, y: linear_cross_entropy(x, w, y),
        fullgraph=True,
        dynamic=True,
        backend="aot_eager",
    )
    for n in (10, 7):
        check(dynamic(x[:n], y[:n]), linear_cross_entropy(x[:n], w, y[:n]))


@pytest.mark.parametrize(
    ("reduction", "weighted", "dtype"),
    [
        ("sum", True, torch.float32),
        ("none", True, torch.float32),
        ("sum", False, torch.float64),
        ("none", True, torch.float64),
    ],
)
def test_compiled_sum_and_none_with_class_weights_or_float64(reduction, weighted, dtype):
    """``reduction="sum"``/``"none"`` with class weights, or in float64 (the accumulation
    dtype), trace with ``fullgraph=True`` and give the eager loss and gradients."""
    torch.manual_seed(0)
    x = torch.randn(8, 4, dtype=dtype, requires_grad=True)
    w = torch.randn(10, 4, dtype=dtype, requires_grad=True)
    y = torch.randint(0, 10, (8,))
    if reduction == "none":
        y[3] = -100
    cw = torch.rand(10, dtype=dtype) if weighted else None

    def loss(x, w):
        out = linear_cross_entropy(x, w, y, weight=cw, reduction=reduction)
        return out if reduction == "sum" else (out * torch.arange(8, dtype=dtype)).sum()

    torch._dynamo.reset()
    got = torch.compile(loss, fullgraph=True, backend="aot_eager")(x, w)
    want = loss(x, w)
    torch.testing.assert_close(got, want)
    grads = torch.autograd.grad(got, (x, w)), torch.autograd.grad(want, (x, w))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_meta_tensors_propagate_the_per_token_outputs():
    x = torch.empty(2, 3, 4, device="meta", dtype=torch.bfloat16)
    w = torch.empty(7, 4, device="meta", dtype=torch.bfloat16)
    y = torch.empty(2, 3, dtype=torch.long, device="meta")
    out = linear_cross_entropy(x, w, y, return_aux=True, weight=torch.empty(7, device="meta"))
    assert out.loss.device.type == "meta"
    assert out.loss.shape == ()
    for t in (out.logp, out.entropy, out.lse):
        assert t.device.type == "meta"
        assert tuple(t.shape) == (2, 3)
        assert t.dtype == torch.float32
    assert out.correct.shape == ()
    assert out.correct.dtype == torch.int64
    # class weights on the CPU are moved to the meta device (never the other way)
    moved = linear_cross_entropy(x, w, y, weight=torch.ones(7))
    assert moved.device.type == "meta"


@pytest.mark.parametrize("dtype", [torch.uint8, torch.uint16, torch.int16, torch.int32])
def test_targets_of_any_integer_dtype(dtype):
    """Token ids as stored (uint16 in a nanoGPT-style file, say) are class indices as int64
    ones are; one out of range is named at its index in the target's shape."""
    x, w, b, y = _case(6, 4, 9, ignore=False)
    want = linear_cross_entropy(x, w, y, linear_bias=b)
    got = linear_cross_entropy(x.reshape(2, 3, 4), w, y.reshape(2, 3).to(dtype), linear_bias=b)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    bad = y.reshape(2, 3).clone()
    bad[1, 2] = 9
    with pytest.raises(ValueError, match=r"label 9 at index \(1, 2\)"):
        linear_cross_entropy(x.reshape(2, 3, 4), w, bad.to(dtype), linear_bias=b)


def test_the_custom_operators_pass_pytorchs_op_checks():
    """``torch.library.opcheck``: schema, fake (meta) implementation, and dispatch."""
    from crossentropy.fused import _ops

    x, w, b, y = _case(5, 3, 7, dtype=torch.float32)
    y = y.clamp(min=0)
    a = torch.full((5,), 0.2)
    cw = torch.linspace(0.5, 1.5, 7)
    forward = (
        x,
        w,
        b,
        y,
        cw,
        cw[y],
        a,
        a,
        0.1,
        1e-3,
        2.0,
        0.8,
        2,
        [True, True, True, False, True, True, True, False],
    )
    checks = ("test_schema", "test_faketensor")
    torch.library.opcheck(_ops.forward_op, forward, test_utils=checks)
    # statistics only, keeping the last chunk's logits for the backward sweep
    holding = (*forward[:6], None, None, *forward[8:13], [False] * 7 + [True])
    torch.library.opcheck(_ops.forward_op, holding, test_utils=checks)
    held = _ops.forward_op(*holding)[-1]
    assert held.shape == (2, 7)
    backward = (x, w, b, y, cw, a, -a, a * 0.1, a, 2.0, 0.8, 2, [False, True, True, True])
    torch.library.opcheck(_ops.backward_op, (*backward, None), test_utils=checks)
    torch.library.opcheck(_ops.backward_op, (*backward, held), test_utils=checks)


def test_ignored_tokens_are_never_projected_on_the_cpu(monkeypatch):
    """On CPU tensors the ignored rows are left out before the sweep (a prompt mask costs
    nothing); the per-token outputs and gradients still cover every token."""
    from crossentropy.fused import _chunked

    seen = []
    real = _chunked.forward_op

    def spy(x, *args):
        seen.append(x.shape[0])
        return real(x, *args)

    monkeypatch.setattr(_chunked, "forward_op", spy)
    x, w, b, y = _case(10, 4, 9)
    y[[0, 1, 2, 7]] = -100
    out = linear_cross_entropy(x, w, y, linear_bias=b, reduction="none", return_aux=True)
    assert seen == [6]
    ref = _dense_outputs(x, w, b, y, {}, "none")
    for a, r in zip(out[:4], ref[:4], strict=True):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)
    assert float(out.loss[[0, 1, 2, 7]].abs().sum()) == 0.0


def test_a_sampler_that_caps_then_divides_is_softcap_over_temperature():
    """The docstring's claim: ``c tanh(z / c) / T`` (a sampler soft-capping, then dividing by
    the temperature) is the op with ``softcap=c / T`` and ``temperature=T``."""
    torch.manual_seed(0)
    x = torch.randn(12, 5, dtype=torch.float64)
    w = torch.randn(17, 5, dtype=torch.float64) * 3
    y = torch.randint(0, 17, (12,))
    c, t = 3.0, 0.7
    logits = c * torch.tanh((x @ w.T) / c) / t
    want = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    got = linear_cross_entropy(x, w, y, softcap=c / t, temperature=t, reduction="none")
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["eager", "torch.func", "compile"])
def test_an_ignored_token_with_a_non_finite_hidden_state_gets_no_gradient(mode):
    """Ignored tokens take no part: a NaN or infinite hidden state there leaves the loss and
    every gradient finite, in eager mode (the rows are left out), under torch.func and
    torch.compile (the rows stay, zeroed)."""
    x, w, _, y = _case(6, 4, 9, dtype=torch.float32, ignore=False)
    y = y.clone()
    y[0], y[4] = -100, -100
    bad = x.detach().clone()
    bad[0], bad[4] = float("nan"), float("inf")

    def loss(x, w):
        return linear_cross_entropy(x, w, y)

    if mode == "torch.func":
        got = torch.func.grad(loss, argnums=(0, 1))(bad, w.detach())
    else:
        fn = torch.compile(loss, fullgraph=True, backend="aot_eager") if mode == "compile" else loss
        xb, wb = bad.requires_grad_(True), w.detach().clone().requires_grad_(True)
        fn(xb, wb).backward()
        got = (xb.grad, wb.grad)
    keep = torch.tensor([1, 2, 3, 5])
    xr, wr = x.detach()[keep].clone().requires_grad_(True), w.detach().clone().requires_grad_(True)
    linear_cross_entropy(xr, wr, y[keep]).backward()
    assert bool(torch.isfinite(got[0]).all())
    assert float(got[0][0].abs().max()) == 0.0
    torch.testing.assert_close(got[0][keep], xr.grad)
    torch.testing.assert_close(got[1], wr.grad)


@pytest.mark.parametrize(
    "kw", [{}, {"reduction": "none"}, {"label_smoothing": 0.1, "z_loss": 1e-3}]
)
def test_compiled_torch_func_grad_and_jacrev_have_no_graph_break(kw):
    """``torch.compile(fullgraph=True)`` over ``torch.func.grad`` and ``jacrev`` of the op: the
    eager numbers (the recomputing sweep runs per sample under the compiled vmap)."""
    torch.manual_seed(0)
    x, w = torch.randn(8, 4, dtype=torch.float64), torch.randn(10, 4, dtype=torch.float64)
    b = torch.randn(10, dtype=torch.float64)
    y = torch.randint(0, 10, (8,))
    y[2] = -100

    def f(x, w, b):
        return linear_cross_entropy(x, w, y, linear_bias=b, **kw).sum()

    want = torch.func.grad(f, argnums=(0, 1, 2))(x, w, b)
    assert all(g.abs().max() > 0.01 for g in want)
    for transform in (torch.func.grad, torch.func.jacrev):
        torch._dynamo.reset()
        transformed = transform(f, argnums=(0, 1, 2))
        compiled = torch.compile(transformed, fullgraph=True, backend="aot_eager")
        for got, expected in zip(compiled(x, w, b), want, strict=True):
            torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)


def test_compiled_forward_mode_and_nested_transforms_are_refused_not_zero():
    """Dynamo calls no custom ``jvp`` and differentiates no backward again: ``jvp``, a grad of
    a grad and ``vmap`` of ``grad`` under ``torch.compile(fullgraph=True)`` gave zeros. They
    are refused (the distillation op too); without ``fullgraph`` the call runs eagerly, with
    eager's numbers (grad of grad: eager's own refusal)."""
    torch.manual_seed(0)
    x, w = torch.randn(5, 4, dtype=torch.float64), torch.randn(9, 4, dtype=torch.float64)
    y, t, v = torch.randint(0, 9, (5,)), torch.ones(5, 4, dtype=torch.float64), torch.randn(5, 4)
    v = v.double()

    def f(x):
        return linear_cross_entropy(x, w, y)

    def tangent(x):
        return torch.func.jvp(f, (x,), (t,))[1]

    cases = {
        "jvp": tangent,
        "grad of grad": lambda x: torch.func.grad(lambda x: (torch.func.grad(f)(x) * v).sum())(x),
        "vmap of grad": lambda x: torch.func.vmap(torch.func.grad(f))(x[None]),
        "distillation jvp": lambda x: torch.func.jvp(
            lambda x: ce.fused.linear_kl_div(x, w, x, w), (x,), (t,)
        )[1],
    }
    for name, fn in cases.items():
        torch._dynamo.reset()
        with pytest.raises(RuntimeError) as info:
            torch.compile(fn, fullgraph=True, backend="aot_eager")(x)
        said = (
            "does not support torch.func" if "distillation" in name else "torch.func's reverse mode"
        )
        assert said in str(info.value), (name, str(info.value)[:300])
    torch._dynamo.reset()
    assert float(tangent(x)) != 0.0
    compiled = torch.compile(tangent, backend="aot_eager")(x)
    torch.testing.assert_close(compiled, tangent(x), rtol=1e-12, atol=0)


def test_an_undefined_upstream_gradient_of_the_loss_is_zero():
    """A ``None`` gradient for the loss (a custom backward that passes none to it) adds
    nothing: the gradients formed in the forward sweep were added as if it were 1."""

    class SecondOnly(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            return None, g

    torch.manual_seed(0)
    w, y = torch.randn(5, 4), torch.randint(0, 5, (6,))
    for reduction in ("mean", "sum"):
        x = torch.randn(6, 4, requires_grad=True)
        SecondOnly.apply(linear_cross_entropy(x, w, y, reduction=reduction), x.sum()).backward()
        torch.testing.assert_close(x.grad, torch.ones_like(x), rtol=0, atol=0)


def test_vmap_over_labels_with_per_sequence_means():
    """Per-sequence means under ``vmap`` with batched labels (per-sequence sums out of place),
    values and per-sample gradients equal to a loop over the samples."""
    torch.manual_seed(0)
    x, w = torch.randn(2, 12, 8, dtype=torch.float64), torch.randn(20, 8, dtype=torch.float64)
    y = torch.randint(0, 20, (2, 12))
    y[0, 5] = -100
    for seq in (
        {"cu_seqlens": torch.tensor([0, 4, 12])},
        {"sequence_ids": torch.tensor([0] * 4 + [1] * 8)},
    ):

        def f(x, y, seq=seq):
            return linear_cross_entropy(x, w, y, **seq)

        loop = torch.stack([f(x[i], y[i]) for i in range(2)])
        torch.testing.assert_close(torch.func.vmap(f)(x, y), loop, rtol=1e-14, atol=0)
        grads = torch.func.vmap(torch.func.grad(f))(x, y)
        each = torch.stack([torch.func.grad(f)(x[i], y[i]) for i in range(2)])
        torch.testing.assert_close(grads, each, rtol=1e-14, atol=1e-16)


def test_entropy_of_large_logits_keeps_its_digits() -> None:
    """The entropy is log(sum e^(u - m)) - sum p (u - m), the first term formed as it is, not
    as lse - m (which, at float32 logits near 1e4, keeps one digit of 3e-3: 8 % off)."""
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(3, 32, dtype=torch.float64, generator=gen)
    z[:, 5] = 12.0
    dense = torch.special.entr(torch.softmax(z, 1)).sum(1)  # the float64 reference
    out = linear_cross_entropy(
        (z + 1e4).float(), torch.eye(32), torch.tensor([5, 5, 5]), return_aux=("entropy",)
    )
    torch.testing.assert_close(out.entropy.double(), dense, rtol=2e-3, atol=0)


def test_a_missing_target_is_named():
    """``target=None`` was an AttributeError from a reshape deep inside."""
    from crossentropy.nn import LinearCrossEntropyLoss

    x, w = torch.randn(4, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    with pytest.raises(TypeError, match="target must be a torch tensor; got NoneType"):
        linear_cross_entropy(x, w, None)
    with pytest.raises(TypeError, match="target must be a torch tensor; got NoneType"):
        LinearCrossEntropyLoss(3, 5, dtype=torch.float64)(x, None)


def test_a_process_group_that_is_not_one_is_a_type_error_before_initialisation():
    """Without torch.distributed initialised, ``process_group="a"`` is the argument's
    ``TypeError`` (was "process_group needs torch.distributed to be initialised")."""
    x, w, y = torch.randn(3, 4), torch.randn(5, 4), torch.tensor([0, 1, 2])
    with pytest.raises(TypeError, match=r"^process_group must be a torch.distributed ProcessGroup"):
        linear_cross_entropy(x, w, y, process_group="a")


def test_torch_jit_trace_is_refused_by_the_fused_ops():
    """A trace would keep the tracing call's choice of gradients (an input that did not
    require one then gets none, silently): refused, by the module and the functions."""
    import warnings

    from crossentropy.nn import LinearCrossEntropyLoss

    x, y = torch.randn(6, 7), torch.randint(0, 13, (6,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (TracerWarnings of the module's own checks)
        with pytest.raises(RuntimeError, match=r"cannot be recorded by torch\.jit\.trace"):
            torch.jit.trace(LinearCrossEntropyLoss(7, 13), (x, y))
        with pytest.raises(RuntimeError, match=r"cannot be recorded by torch\.jit\.trace"):
            torch.jit.trace(
                lambda x, w: ce.fused.linear_kl_div(x, w, x, w), (x, torch.randn(13, 7))
            )


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_batched_upstream_gradients_as_pytorch(reduction):
    """``autograd.grad(is_grads_batched=True)`` and ``jacobian(vectorize=True)`` run the
    backward under a vmap of autograd's own: the numbers of PyTorch's op (they failed on an
    in-place scale and on the recomputing operator's missing batching rule)."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    w, y = torch.randn(5, 4, dtype=torch.float64), torch.randint(0, 5, (6,))
    y[1] = -100
    ours = linear_cross_entropy(x, w, y, reduction=reduction)
    theirs = F.linear_cross_entropy(x, w, y, reduction=reduction)
    seeds = torch.randn(3, *ours.shape, dtype=torch.float64)
    (got,) = torch.autograd.grad(ours, x, seeds, is_grads_batched=True)
    (want,) = torch.autograd.grad(theirs, x, seeds, is_grads_batched=True)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    jac = torch.autograd.functional.jacobian(
        lambda x: linear_cross_entropy(x, w, y, reduction=reduction), x, vectorize=True
    )
    ref = torch.autograd.functional.jacobian(
        lambda x: F.linear_cross_entropy(x, w, y, reduction=reduction), x, vectorize=True
    )
    torch.testing.assert_close(jac, ref, rtol=1e-12, atol=1e-14)
    if reduction == "mean":  # a graph of the batched gradient: refused, as a double backward
        with pytest.raises(RuntimeError, match="does not support double backward"):
            torch.autograd.grad(
                linear_cross_entropy(x, w, y), x, seeds, is_grads_batched=True, create_graph=True
            )
