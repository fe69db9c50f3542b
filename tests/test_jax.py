"""`crossentropy.fused.jax.linear_cross_entropy` (fused/jax.py): values and gradients against
the dense computation (the logits materialised, then the core's `cross_entropy`), under the
transforms."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import crossentropy as ce  # noqa: E402
from crossentropy.fused.jax import linear_cross_entropy  # noqa: E402

N, D, V = 37, 5, 11  # V and N not multiples of the chunk, N > chunk


def _data(seed: int = 0, n: int = N, d: int = D, v: int = V, dtype=jnp.float64):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(n, d)), dtype)
    w = jnp.asarray(rng.normal(size=(v, d)), dtype)
    b = jnp.asarray(rng.normal(size=v), dtype)
    y = rng.integers(0, v, n)
    y[:: max(1, n // 5)] = -100
    cw = jnp.asarray(rng.uniform(0.5, 2.0, v), dtype)
    return x, w, b, jnp.asarray(y), cw


def _dense(x, w, b, y, reduction, **kw):
    t = kw.pop("temperature", 1.0)
    logits = x @ w.T + (0.0 if b is None else b)
    return ce.cross_entropy(logits / t, y, axis=-1, reduction=reduction, **kw)


def _max_err(a, b):
    return float(jnp.max(jnp.abs(jnp.asarray(a) - jnp.asarray(b))))


# Each option alone is in the float32 test of every combination below; here the reductions and
# both code paths meet the options that change the gradient's form.
OPTIONS = {
    "plain": {},
    "smoothing": {"label_smoothing": 0.1},
    "weights+smoothing": {"weight": "cw", "label_smoothing": 0.2},
    "everything": {
        "weight": "cw",
        "label_smoothing": 0.2,
        "z_loss": 0.1,
        "softcap": 3.0,
        "temperature": 1.3,
    },
}


@pytest.mark.parametrize("option", list(OPTIONS))
def test_values_and_gradients_equal_the_dense_computation_in_float64(option):
    """Every reduction, with and without per-token outputs (the two code paths), in one
    compiled program per side."""
    x, w, b, y, cw = _data()
    kw = {k: (cw if v == "cw" else v) for k, v in OPTIONS[option].items()}
    cot = jnp.asarray(np.random.default_rng(1).normal(size=N))
    cases = [(r, aux) for r in ("mean", "sum", "none") for aux in (False, True)]

    def fused(x, w, b, reduction, aux):
        out = linear_cross_entropy(
            x, w, y, bias=b, reduction=reduction, chunk_size=8, return_aux=aux, **kw
        )
        return out.loss if aux else out

    def dense(x, w, b, reduction, aux):
        return _dense(x, w, b, y, reduction, **kw)

    def every_case(loss):
        def run(x, w, b):
            outs = []
            for reduction, aux in cases:
                scale = cot if reduction == "none" else 1.0

                def scalar(x, w, b, reduction=reduction, aux=aux, scale=scale):
                    return jnp.sum(scale * loss(x, w, b, reduction, aux))

                outs.append(
                    (loss(x, w, b, reduction, aux), jax.grad(scalar, argnums=(0, 1, 2))(x, w, b))
                )
            return outs

        return jax.jit(run)(x, w, b)

    for case, (got, want) in zip(
        cases, zip(every_case(fused), every_case(dense), strict=True), strict=True
    ):
        assert _max_err(got[0], want[0]) < 1e-12, case
        for g_f, g_d in zip(got[1], want[1], strict=True):
            assert _max_err(g_f, g_d) < 1e-12, case


def _dense_tokens(x, w, b, y, temperature=1.0, softcap=None):
    u = (x @ w.T + b) / temperature
    if softcap is not None:
        u = softcap * jnp.tanh(u / softcap)
    lse = jax.nn.logsumexp(u, axis=1)
    logp_all = u - lse[:, None]
    valid = y != -100
    logp = jnp.take_along_axis(logp_all, jnp.where(valid, y, 0)[:, None], 1)[:, 0]
    ent = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=1)
    hit = jnp.argmax(x @ w.T + b, axis=1) == y
    zero = jnp.zeros_like(lse)
    return (
        jnp.where(valid, logp, zero),
        jnp.where(valid, ent, zero),
        jnp.where(valid, lse, zero),
        jnp.sum(valid & hit),
    )


@pytest.mark.parametrize(("temperature", "softcap"), [(1.0, None), (0.7, 2.5)])
def test_per_token_outputs_carry_exact_gradients_for_rl(temperature, softcap):
    """loss = -(advantage * logp).sum() - beta * entropy.mean(): through the op, no logits."""
    x, w, b, y, _ = _data(2)
    adv = jnp.asarray(np.random.default_rng(3).normal(size=N))
    kw = {"temperature": temperature, "softcap": softcap}

    def rl(x, w, b):
        out = linear_cross_entropy(x, w, y, bias=b, return_aux=True, chunk_size=4, **kw)
        return -(adv * out.logp).sum() - 0.1 * out.entropy.mean() + 0.01 * out.lse.sum()

    def rl_dense(x, w, b):
        logp, ent, lse, _ = _dense_tokens(x, w, b, y, temperature, softcap)
        return -(adv * logp).sum() - 0.1 * ent.mean() + 0.01 * lse.sum()

    def both(x, w, b):
        out = linear_cross_entropy(x, w, y, bias=b, return_aux=True, chunk_size=4, **kw)
        grads = jax.grad(rl, argnums=(0, 1, 2))(x, w, b)
        dense = _dense_tokens(x, w, b, y, temperature, softcap)
        return out, grads, dense, jax.grad(rl_dense, argnums=(0, 1, 2))(x, w, b)

    out, grads, (logp, ent, lse, correct), dense_grads = jax.jit(both)(x, w, b)
    assert _max_err(out.logp, logp) < 1e-12
    assert _max_err(out.entropy, ent) < 1e-12
    assert _max_err(out.lse, lse) < 1e-12
    assert int(out.correct) == int(correct)
    assert float(jnp.abs(out.logp[y == -100]).max()) == 0.0  # ignored tokens give 0
    for got, want in zip(grads, dense_grads, strict=True):
        assert _max_err(got, want) < 1e-12
    assert float(jnp.abs(grads[0][y == -100]).max()) == 0.0  # and no gradient


def test_aux_selection_and_bad_names():
    x, w, _, y, _ = _data()
    out = linear_cross_entropy(x, w, y, return_aux=("lse",))
    assert out.lse is not None
    assert out.logp is None
    assert out.entropy is None
    assert out.correct is None
    with pytest.raises(ValueError, match="return_aux must be one of"):
        linear_cross_entropy(x, w, y, return_aux=("logits",))
    with pytest.raises(TypeError, match="return_aux must be"):
        linear_cross_entropy(x, w, y, return_aux="lse")


def test_jit_with_traced_hyperparameters():
    x, w, _, y, _ = _data()

    def both(x, t, eps, z, cap):
        kw = {"temperature": t, "label_smoothing": eps, "z_loss": z, "softcap": cap}
        return (
            jax.value_and_grad(lambda x: linear_cross_entropy(x, w, y, chunk_size=5, **kw))(x),
            jax.value_and_grad(lambda x: _dense(x, w, None, y, "mean", **kw))(x),
        )

    f = jax.jit(both)
    for t, eps, z, cap in [(0.8, 0.1, 0.01, 4.0), (1.3, 0.0, 0.0, 2.0)]:
        (got, g), (want, r) = f(x, t, eps, z, cap)  # one program for both sets of values
        assert abs(float(got) - float(want)) < 1e-12
        assert _max_err(g, r) < 1e-12
    assert f._cache_size() == 1


def test_traced_label_smoothing_of_0_with_a_minus_inf_bias_is_the_unsmoothed_loss():
    # masked vocabulary entries (a -inf bias): the smoothing term is +inf (NaN where their class
    # weight is 0, a padded vocabulary); a traced epsilon of 0 takes none of it, as a Python
    # 0.0 does (it gave NaN), and epsilon > 0 gives inf
    x, w, b, y, _ = _data()
    b = b.at[7:].set(-jnp.inf)
    y = jnp.where(y >= 7, 1, y)
    cw = jnp.where(jnp.arange(V) >= 7, 0.0, 1.5)

    @jax.jit  # one program for every value of epsilon
    def traced(x, e):
        def loss(x, weight=None):
            kw = {"bias": b, "weight": weight, "label_smoothing": e, "chunk_size": 5}
            return linear_cross_entropy(x, w, y, **kw)

        return jax.value_and_grad(loss)(x), loss(x, cw)

    (got, g), weighted = traced(x, 0.0)
    want = _dense(x, w, b, y, "mean")
    assert float(got) == pytest.approx(float(want), rel=1e-12)
    assert _max_err(g, jax.grad(lambda x: _dense(x, w, b, y, "mean"))(x)) < 1e-12
    want_weighted = _dense(x, w, b, y, "mean", weight=cw)
    assert np.isfinite(float(want_weighted))
    assert float(weighted) == pytest.approx(float(want_weighted), rel=1e-12)
    assert float(traced(x, 0.1)[0][0]) == math.inf


def test_eager_calls_compile_once(caplog):
    # called outside jit, the op is one compiled program per shapes and options: a second
    # call, with another label smoothing and temperature, compiles nothing (the sweep's scan
    # was compiled again at every eager call)
    x, w, b, y, _ = _data()

    def call(eps, t):
        kw = {"label_smoothing": eps, "temperature": t, "empty_mean": float("nan")}  # a new NaN
        out = linear_cross_entropy(x, w, y, bias=b, **kw)
        grads = jax.grad(lambda x: linear_cross_entropy(x, w, y, bias=b, **kw))(x)
        return float(out), grads

    call(0.1, 1.0)
    with jax.log_compiles(), caplog.at_level("WARNING"):
        caplog.clear()
        second, grads = call(0.2, 1.5)
    compiled = [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()]
    assert compiled == []
    want = _dense(x, w, b, y, "mean", label_smoothing=0.2, temperature=1.5)
    assert second == pytest.approx(float(want), rel=1e-12)
    ref = jax.grad(lambda x: _dense(x, w, b, y, "mean", label_smoothing=0.2, temperature=1.5))(x)
    assert _max_err(grads, ref) < 1e-12


def test_vmap_over_a_batch_axis_and_its_gradient():
    x, w, _, y, _ = _data()
    xb, yb = jnp.stack([x, 2 * x, -x]), jnp.stack([y, y[::-1], y])

    def batched(w):
        return jax.vmap(lambda xx, yy: linear_cross_entropy(xx, w, yy, chunk_size=4))(xb, yb)

    def dense(w):
        return jnp.stack([_dense(xx, w, None, yy, "mean") for xx, yy in zip(xb, yb, strict=True)])

    (got, g), (want, r) = jax.jit(
        lambda w: (
            jax.value_and_grad(lambda w: batched(w).sum())(w),
            jax.value_and_grad(lambda w: dense(w).sum())(w),
        )
    )(w)
    assert _max_err(got, want) < 1e-12
    assert _max_err(g, r) < 1e-12
    assert _max_err(batched(w), dense(w)) < 1e-12
    per_token = jax.vmap(
        lambda xx, yy: linear_cross_entropy(xx, w, yy, reduction="none", chunk_size=4)
    )(xb, yb)
    assert per_token.shape == (3, N)


def test_checkpoint_and_value_and_grad():
    x, w, _, y, _ = _data()
    f = jax.checkpoint(lambda x, w: linear_cross_entropy(x, w, y, chunk_size=4))
    value, (gx, gw) = jax.value_and_grad(f, argnums=(0, 1))(x, w)
    dense_value, (dx, dw) = jax.value_and_grad(
        lambda x, w: _dense(x, w, None, y, "mean"), argnums=(0, 1)
    )(x, w)
    assert abs(float(value) - float(dense_value)) < 1e-12
    assert _max_err(gx, dx) < 1e-12
    assert _max_err(gw, dw) < 1e-12


def test_weight_layout_dv_is_the_transpose():
    x, w, b, y, _ = _data()
    vd = linear_cross_entropy(x, w, y, bias=b)
    dv = linear_cross_entropy(x, w.T, y, bias=b, weight_layout="dv")
    assert abs(float(vd) - float(dv)) < 1e-13
    g_vd = jax.grad(lambda w: linear_cross_entropy(x, w, y, bias=b))(w)
    g_dv = jax.grad(lambda wt: linear_cross_entropy(x, wt, y, bias=b, weight_layout="dv"))(w.T)
    assert _max_err(g_vd, g_dv.T) < 1e-13
    g_none = jax.grad(
        lambda wt: linear_cross_entropy(x, wt, y, weight_layout="dv", reduction="none").sum()
    )(w.T)
    assert _max_err(g_none.T, jax.grad(lambda w: _dense(x, w, None, y, "sum"))(w)) < 1e-12


def test_odd_shapes():
    """N = 1, N below the chunk, N a multiple of it, one more, a single chunk."""
    for n, chunk in [(1, None), (1, 4), (3, 8), (8, 8), (9, 8), (37, 37)]:
        x, w, b, y, _ = _data(4, n=n)
        y = jnp.where(y == -100, 1, y)

        def both(w, x=x, b=b, y=y, chunk=chunk):
            fused = jax.value_and_grad(
                lambda w: linear_cross_entropy(x, w, y, bias=b, chunk_size=chunk)
            )(w)
            return fused, jax.value_and_grad(lambda w: _dense(x, w, b, y, "mean"))(w)

        (got, g), (want, r) = jax.jit(both)(w)
        assert abs(float(got) - float(want)) < 1e-12, (n, chunk)
        assert _max_err(g, r) < 1e-12, (n, chunk)


def test_leading_axes_where_and_all_ignored():
    x, w, _, y, _ = _data()
    x3, y3 = x[:36].reshape(4, 9, D), y[:36].reshape(4, 9)
    per_token = linear_cross_entropy(x3, w, y3, reduction="none")
    assert per_token.shape == (4, 9)
    assert _max_err(per_token.reshape(-1), _dense(x[:36], w, None, y[:36], "none")) < 1e-12
    mask = jnp.asarray(np.random.default_rng(5).uniform(size=N) > 0.3)
    got = linear_cross_entropy(x, w, y, where=mask)
    want = _dense(x, w, None, jnp.where(mask, y, -100), "mean")
    assert abs(float(got) - float(want)) < 1e-12
    ignored = jnp.full(N, -100)

    def empty_means(x):
        return (
            linear_cross_entropy(x, w, ignored),
            linear_cross_entropy(x, w, ignored, empty_mean=0.0),
            linear_cross_entropy(x, w, ignored, reduction="sum"),
            jax.grad(lambda x: linear_cross_entropy(x, w, ignored, empty_mean=0.0))(x),
        )

    nan, zero, total, g = jax.jit(empty_means)(x)
    assert math.isnan(float(nan))
    assert float(zero) == 0.0
    assert float(total) == 0.0
    assert float(jnp.abs(g).max()) == 0.0
    empty = linear_cross_entropy(jnp.zeros((0, D)), w, jnp.zeros((0,), jnp.int32), reduction="none")
    assert empty.shape == (0,)


def test_counted_rows_of_zero_class_weight_follow_empty_mean():
    """Counted tokens whose class weights sum to 0: the weighted mean is ``empty_mean`` with
    no gradient (plus the z-loss's mean), as ``cross_entropy`` gives, under jit and with the
    per-token outputs; NaN with ``empty_mean`` NaN (it was NaN with any ``empty_mean``)."""
    x, w = (
        jnp.asarray([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]),
        jnp.asarray([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]),
    )
    y, cw = jnp.asarray([0, 0, -100]), jnp.asarray([0.0, 1.0, 1.0])
    smoothed = {"z_loss": 0.1, "label_smoothing": 0.2}
    for em, opts, aux in ((0.0, {}, ()), (2.5, smoothed, ("logp",))):

        def fused(x, em=em, opts=opts, aux=aux):
            out = linear_cross_entropy(x, w, y, weight=cw, empty_mean=em, return_aux=aux, **opts)
            return out.loss if aux else out

        def dense(x, em=em, opts=opts):
            return ce.cross_entropy(x @ w.T, y, cw, axis=-1, empty_mean=em, **opts)

        got, g = jax.jit(jax.value_and_grad(fused))(x)
        want, gd = jax.value_and_grad(dense)(x)
        assert abs(float(got) - float(want)) < 1e-6, (em, opts, aux)
        assert _max_err(g, gd) < 1e-6, (em, opts, aux)
    for em in (0.0, 2.5):
        assert float(linear_cross_entropy(x, w, y, weight=cw, empty_mean=em)) == em
    assert math.isnan(float(linear_cross_entropy(x, w, y, weight=cw)))
    # negative class weights divide by their (negative) sum, as PyTorch and cross_entropy
    neg = -jnp.ones(3)
    for em in (math.nan, 0.0):
        got = linear_cross_entropy(x, w, y, weight=neg, empty_mean=em)
        want = ce.cross_entropy(x @ w.T, y, neg, axis=-1)
        assert abs(float(got) - float(want)) < 1e-6


def test_d_zero_gives_log_v():
    got = linear_cross_entropy(jnp.zeros((3, 0)), jnp.zeros((V, 0)), jnp.array([0, 1, 2]))
    assert float(got) == pytest.approx(math.log(V), rel=1e-15)


def test_float32_and_bfloat16_accumulate_in_float32():
    x, w, b, y, cw = _data(6, dtype=jnp.float32)
    xh, wh = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)

    def run(x, w, b, cw, xh, wh):
        got = linear_cross_entropy(x, w, y, bias=b, weight=cw, label_smoothing=0.1, chunk_size=8)
        want = _dense(x, w, b, y, "mean", weight=cw, label_smoothing=0.1)
        half, (gx, gw) = jax.value_and_grad(
            lambda x, w: linear_cross_entropy(x, w, y, chunk_size=8), (0, 1)
        )(xh, wh)
        ref, (rx, rw) = jax.value_and_grad(lambda x, w: _dense(x, w, None, y, "mean"), (0, 1))(
            xh.astype(jnp.float32), wh.astype(jnp.float32)
        )
        logp = linear_cross_entropy(xh, wh, y, return_aux=True).logp
        return got, want, half, gx, gw, ref, rx, rw, logp

    got, want, half, gx, gw, ref, rx, rw, logp = jax.jit(run)(x, w, b, cw, xh, wh)
    assert got.dtype == jnp.float32
    assert float(got) == pytest.approx(float(want), rel=1e-5)
    assert half.dtype == jnp.bfloat16  # the loss in the input's dtype, computed in float32
    assert float(half) == pytest.approx(float(ref), rel=1e-2)
    assert gx.dtype == jnp.bfloat16
    assert gw.dtype == jnp.bfloat16
    assert _max_err(gw.astype(jnp.float32), rw) < 2e-2 * float(jnp.abs(rw).max())
    assert _max_err(gx.astype(jnp.float32), rx) < 2e-2 * float(jnp.abs(rx).max())
    assert logp.dtype == jnp.float32


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"reduction": "batchmean"}, ValueError, "reduction must be one of"),
        ({"weight_layout": "vdd"}, ValueError, "weight_layout"),
        ({"label_smoothing": 1.5}, ValueError, "label_smoothing must be <= 1"),
        ({"temperature": 0.0}, ValueError, "temperature must be > 0"),
        ({"z_loss": -1.0}, ValueError, "z_loss must be >= 0"),
        ({"softcap": -2.0}, ValueError, "softcap must be > 0"),
        ({"label_smoothing": "traced-1.5"}, ValueError, "label_smoothing must be <= 1"),
        ({"temperature": "np-negative"}, ValueError, "temperature must be > 0"),
        ({"ignore_index": 1.5}, TypeError, "ignore_index must be an integer"),
        ({"empty_mean": "zero"}, TypeError, "empty_mean must be a number"),
        # the dense losses' rule (inf was taken, and gave inf)
        ({"empty_mean": float("inf")}, ValueError, "empty_mean must be nan or a finite number"),
        ({"chunk_size": 0}, ValueError, "chunk_size must be >= 1; got 0"),
        ({"chunk_size": 4.0}, TypeError, "chunk_size must be an integer"),
        ({"bias": "short"}, ValueError, "bias must have shape"),
        ({"weight": "short"}, ValueError, "weight must have shape"),
        ({"where": "ints"}, TypeError, "where must be a boolean mask; got dtype int32"),
        ({"where": "short-mask"}, ValueError, "where must be a boolean array of labels' shape"),
        # outside shard_map: was JAX's NameError "unbound axis name"
        ({"axis_name": "tp"}, ValueError, "axis_name 'tp' is not an axis of an enclosing"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, message):
    x, w, _, y, _ = _data()
    replace = {
        "short": jnp.ones(V - 1),
        "ints": jnp.ones(N, jnp.int32),
        "short-mask": jnp.ones(N - 1, bool),
        "traced-1.5": jnp.asarray(1.5),  # a concrete array: its value is checked too
        "np-negative": np.float32(-1.0),
    }
    kwargs = {
        k: replace.get(v, v)
        if isinstance(v, str) and k not in ("reduction", "weight_layout", "axis_name")
        else v
        for k, v in kwargs.items()
    }
    with pytest.raises(error, match=message):
        linear_cross_entropy(x, w, y, **kwargs)


def test_numpy_integers_are_integers():
    """chunk_size (as ignore_index) may be a NumPy integer, as the torch op takes it."""
    x, w, _, y, _ = _data()
    want = linear_cross_entropy(x, w, y, chunk_size=4)
    got = linear_cross_entropy(x, w, y, chunk_size=np.int64(4), ignore_index=np.int32(-100))
    assert float(got) == float(want)


def test_export_with_a_symbolic_token_count_is_refused_by_name():
    """The chunks are planned from the sizes: a symbolic one (jax.export's shape polymorphism)
    gave JAX's "Symbolic dimension comparison ... is inconclusive"; fixed sizes export."""
    (n,) = jax.export.symbolic_shape("n")
    spec = jax.ShapeDtypeStruct

    def step(x, w, y):
        return linear_cross_entropy(x, w, y)

    with pytest.raises(TypeError, match=r"needs concrete sizes to plan its chunks; .* dimension n"):
        jax.export.export(jax.jit(step))(
            spec((n, 4), jnp.float32), spec((5, 4), jnp.float32), spec((n,), jnp.int32)
        )
    fixed = jax.export.export(jax.jit(step))(
        spec((6, 4), jnp.float32), spec((5, 4), jnp.float32), spec((6,), jnp.int32)
    )
    args = jnp.ones((6, 4), jnp.float32), jnp.ones((5, 4), jnp.float32), jnp.zeros(6, jnp.int32)
    assert float(fixed.call(*args)) == pytest.approx(float(step(*args)), rel=1e-6)


def test_bad_arrays_are_named():
    x, w, _, y, _ = _data()
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        linear_cross_entropy(jnp.ones((2, 2), jnp.int32), jnp.ones((3, 2), jnp.int32), y[:2])
    with pytest.raises(TypeError, match="labels must be integer class indices"):
        linear_cross_entropy(x, w, y.astype(jnp.float64))
    with pytest.raises(ValueError, match="x's last axis must be D = 5"):
        linear_cross_entropy(x[:, :4], w, y)
    with pytest.raises(ValueError, match="labels must have x's shape"):
        linear_cross_entropy(x, w, y[:-1])
    with pytest.raises(ValueError, match=r"labels hold label 11 at index \(1,\); class labels"):
        linear_cross_entropy(x, w, y.at[1].set(V))
    with pytest.raises(ValueError, match=r"label 11 at index \(0, 1\); .* ignore_index=-100"):
        linear_cross_entropy(x[:36].reshape(2, 18, -1), w, y[:36].at[1].set(V).reshape(2, 18))
    with pytest.raises(ValueError, match="w must be 2-D"):
        linear_cross_entropy(x, w[None], y)
    # not arrays: named, as the torch op names them (were JAX's errors naming no argument)
    with pytest.raises(TypeError, match=r"^x must be an array; got NoneType"):
        linear_cross_entropy(None, w, y)
    with pytest.raises(TypeError, match=r"^x must be an array; got str"):
        linear_cross_entropy("a", w, y)
    with pytest.raises(TypeError, match=r"^w must be an array of numbers; got list"):
        linear_cross_entropy(x, [[1.0, 2.0], [3.0]], y)
    with pytest.raises(TypeError, match=r"^labels must be an array; got NoneType"):
        linear_cross_entropy(x, w, None)
    # NumPy masked arrays as the core reads them: their values where none is masked
    xs = np.asarray(x)
    same = linear_cross_entropy(np.ma.masked_array(xs, mask=False), w, y)
    assert float(same) == float(linear_cross_entropy(xs, w, y))
    with pytest.raises(ValueError, match=r"^x is a masked array with 1 masked value"):
        linear_cross_entropy(np.ma.masked_array(xs, mask=xs == xs[0, 0]), w, y)
    with pytest.raises(TypeError, match=r"^axis_name must be a mesh axis's name"):
        linear_cross_entropy(x, w, y, axis_name=1)
    with pytest.raises(ValueError, match="is not an axis of an enclosing shard_map"):
        linear_cross_entropy(x, w, y, axis_name=("a", "b"))  # a tuple of names is one
    # the validation policy per call, as the torch op takes it
    bad = y.at[1].set(V)
    assert math.isnan(float(linear_cross_entropy(x, w, bad, validate=False)))
    with ce.validation(False), pytest.raises(ValueError, match="labels hold label 11"):
        linear_cross_entropy(x, w, bad, validate="auto")
    with pytest.raises(ValueError, match="validate must be"):
        linear_cross_entropy(x, w, y, validate="sometimes")


def test_compiled_memory_is_a_fraction_of_the_dense_program():
    """XLA's own accounting of the compiled programs' temporaries (nothing runs)."""
    n, d, v = 2048, 64, 32000
    spec = (
        jax.ShapeDtypeStruct((n, d), jnp.float32),
        jax.ShapeDtypeStruct((v, d), jnp.float32),
        jax.ShapeDtypeStruct((n,), jnp.int32),
    )

    def temp(fn):
        step = jax.jit(jax.value_and_grad(fn, argnums=(0, 1)))
        return step.lower(*spec).compile().memory_analysis().temp_size_in_bytes

    fused = temp(lambda x, w, y: linear_cross_entropy(x, w, y, chunk_size=256))
    dense = temp(lambda x, w, y: ce.cross_entropy(x @ w.T, y, axis=-1))
    assert fused < dense / 8


def test_importing_the_jax_op_imports_no_torch():
    code = (
        "import sys; import crossentropy.fused.jax; import crossentropy.fused; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "False"


def test_every_option_combination_in_float32_against_dense():
    """All 2^5 on/off combinations of smoothing, z-loss, softcap, temperature and class
    weights, with ignored tokens, in float32; the hyperparameters traced, so one program
    serves each structure (softcap on or off, weights or none)."""
    x, w, b, y, cw = _data(7, dtype=jnp.float32)

    def make(fn, cap, weighted):
        def loss(w, eps, z, t, c):
            kw = {"softcap": c if cap else None, "weight": cw if weighted else None}
            return fn(w, label_smoothing=eps, z_loss=z, temperature=t, **kw)

        return jax.jit(jax.value_and_grad(loss))

    def fused(w, **kw):
        return linear_cross_entropy(x, w, y, bias=b, chunk_size=16, **kw)

    def dense(w, **kw):
        return _dense(x, w, b, y, "mean", **kw)

    for cap, weighted in itertools.product([False, True], repeat=2):
        ours, ref = make(fused, cap, weighted), make(dense, cap, weighted)
        for s, z, t in itertools.product([0, 1], repeat=3):
            args = (w, jnp.float32(0.1 * s), jnp.float32(0.01 * z), jnp.float32(0.8 if t else 1))
            (got, g), (want, r) = ours(*args, jnp.float32(3.0)), ref(*args, jnp.float32(3.0))
            case = (cap, weighted, s, z, t)
            assert float(got) == pytest.approx(float(want), rel=2e-6), case
            assert _max_err(g, r) < 1e-5 * float(jnp.abs(r).max()) + 1e-7, case


def test_unchecked_out_of_range_labels_give_nan_not_another_class():
    """Under jit the labels are traced and cannot be checked: -1 or V is NaN, as in the core."""
    x, w, _, y, _ = _data()
    bad = y.at[1].set(-1).at[5].set(V)
    f = jax.jit(
        lambda x, y: (
            linear_cross_entropy(x, w, y),
            linear_cross_entropy(x, w, y, reduction="sum"),
            linear_cross_entropy(x, w, y, reduction="none"),
            linear_cross_entropy(x, w, y, return_aux=("logp",)).logp,
        )
    )
    mean, total, per_token, logp = f(x, bad)
    assert math.isnan(float(mean))
    assert math.isnan(float(total))
    for values in (per_token, logp):
        assert bool(jnp.isnan(values[1]))
        assert bool(jnp.isnan(values[5]))
        assert bool(jnp.all(jnp.isfinite(jnp.delete(values, jnp.array([1, 5])))))
    # the NaN loss keeps the other tokens' gradients, as the dense loss gives them (a zero
    # gradient would pass a guard on the gradients, and drop the whole batch)
    for reduction in ("mean", "sum"):
        for aux in ((), ("logp",)):

            def fused(x, w, y, reduction=reduction, aux=aux):
                out = linear_cross_entropy(x, w, y, reduction=reduction, return_aux=aux or False)
                return out.loss if aux else out

            def dense(x, w, y, reduction=reduction):
                return ce.cross_entropy(x @ w.T, y, axis=-1, reduction=reduction)

            got = jax.jit(jax.grad(fused, argnums=(0, 1)))(x, w, bad)
            want = jax.jit(jax.grad(dense, argnums=(0, 1)))(x, w, bad)
            assert float(jnp.abs(want[1]).max()) > 0
            for g, r in zip(got, want, strict=True):
                assert _max_err(g, r) < 1e-5 * float(jnp.abs(r).max()), (reduction, aux)


@pytest.mark.parametrize(
    "hyper",
    [
        {"temperature": -1.0},
        {"temperature": 0.0},
        {"softcap": 0.0},
        {"label_smoothing": 1.5},
        {"label_smoothing": -0.1},
        {"z_loss": -1.0},
    ],
)
def test_traced_hyperparameters_out_of_range_give_nan(hyper):
    """A hyperparameter that cannot be checked (traced) and lies out of range is NaN in every
    output, as an unchecked label is; the same number given as a Python float is refused."""
    x, w, _, y, _ = _data()
    ((name, value),) = hyper.items()

    def f(h):
        out = linear_cross_entropy(x, w, y, return_aux=("logp",), **{name: h})
        per = linear_cross_entropy(x, w, y, reduction="none", **{name: h})
        return out.loss, out.logp, per

    loss, logp, per = jax.jit(f)(jnp.float32(value))
    assert math.isnan(float(loss))
    assert bool(jnp.all(jnp.isnan(logp)))
    assert bool(jnp.all(jnp.isnan(per)))
    with pytest.raises(ValueError, match=name):
        linear_cross_entropy(x, w, y, **hyper)


@pytest.mark.parametrize(
    ("dtype", "v"), [("uint8", 256), ("int8", 128), ("uint16", 300), ("int16", 300)]
)
def test_narrow_label_dtypes_are_compared_as_their_values(dtype: str, v: int):
    """Token ids of uint8 or int16 (byte-level vocabularies): V and ignore_index are compared
    with the labels' values, not wrapped into their type (uint8(256) is 0, uint8(-100) is
    156), eagerly and under jit; an ignore_index no label can hold ignores none."""
    x, w, _, _, _ = _data(3, n=6, v=v)
    labels = np.array([0, 1, min(156, v - 1), v - 1, 5, 100])
    y = jnp.asarray(labels.astype(dtype))
    want = _dense(x, w, None, jnp.asarray(labels), "none")
    for f in (linear_cross_entropy, jax.jit(linear_cross_entropy, static_argnames="reduction")):
        got = f(x, w, y, reduction="none")
        assert _max_err(got, want) < 1e-12
        assert _max_err(f(x, w, y, reduction="mean"), jnp.mean(want)) < 1e-12
    wrapped = 5 + (1 << jnp.iinfo(y.dtype).bits)  # 5 in the labels' type
    kept = linear_cross_entropy(x, w, y, ignore_index=wrapped, reduction="none")
    assert _max_err(kept, want) < 1e-12
    huge = linear_cross_entropy(x, w, jnp.asarray(labels), ignore_index=2**40)
    assert _max_err(huge, jnp.mean(want)) < 1e-12


def test_no_features_give_log_v_and_zero_gradients():
    """D = 0: every logit is the bias (0), the loss log V, the gradients empty or zero."""
    y = jnp.asarray([0, 1, 2])
    loss, (gx, gw) = jax.value_and_grad(lambda x, w: linear_cross_entropy(x, w, y), argnums=(0, 1))(
        jnp.zeros((3, 0)), jnp.zeros((5, 0))
    )
    assert abs(float(loss) - math.log(5)) < 1e-12
    assert (gx.shape, gw.shape) == ((3, 0), (5, 0))


def test_non_finite_hidden_states_of_ignored_tokens_do_not_leak():
    """Padding rows may hold NaN (fully masked attention): ignored, they change nothing."""
    x, w, b, y, _ = _data()
    x_nan = x.at[0].set(jnp.nan)  # y[0] is -100
    assert int(y[0]) == -100

    def every_path(x):
        return [
            jax.value_and_grad(lambda x, r=r, a=a: _scalar(x, r, a), argnums=0)(x)
            for r in ("mean", "sum", "none")
            for a in (False, True)
        ]

    def _scalar(x, reduction, aux):
        out = linear_cross_entropy(x, w, y, bias=b, reduction=reduction, return_aux=aux)
        loss = out.loss if aux else out
        return jnp.sum(loss) + (jnp.sum(out.logp) if aux else 0.0)

    for (got, g), (want, r) in zip(jax.jit(every_path)(x_nan), jax.jit(every_path)(x), strict=True):
        assert float(got) == pytest.approx(float(want), rel=1e-12)
        assert bool(jnp.all(jnp.isfinite(g)))
        assert _max_err(g[1:], r[1:]) < 1e-12


def test_hyperparameters_and_class_weights_get_no_gradient():
    x, w, _, y, cw = _data()

    def loss(params, reduction, aux):
        t, eps, z, c, weight = params
        out = linear_cross_entropy(
            x,
            w,
            y,
            weight=weight,
            temperature=t,
            label_smoothing=eps,
            z_loss=z,
            softcap=c,
            reduction=reduction,
            return_aux=aux,
        )
        return jnp.sum(out.loss if aux else out)

    params = (jnp.asarray(0.8), jnp.asarray(0.1), jnp.asarray(0.01), jnp.asarray(3.0), cw)
    for reduction in ("mean", "none"):
        for aux in (False, True):
            grads = jax.grad(loss)(params, reduction, aux)
            for g in grads:
                assert float(jnp.abs(g).max()) == 0.0, (reduction, aux)


def test_float16_gradients_are_scaled_before_they_are_rounded():
    """Loss scaling: the gradient of ``scale * loss`` in float16 keeps what an unscaled
    float16 gradient would flush to zero."""
    rng = np.random.default_rng(8)
    n, d, v = 256, 8, 100
    x = jnp.asarray(rng.normal(size=(n, d)) * 0.01, jnp.float16)
    w = jnp.asarray(rng.normal(size=(v, d)), jnp.float16)
    y = jnp.asarray(rng.integers(0, v, n))
    ref = jax.grad(lambda w: linear_cross_entropy(x.astype(jnp.float32), w, y))(
        w.astype(jnp.float32)
    )
    scaled = jax.grad(lambda w: 1024.0 * linear_cross_entropy(x, w, y))(w)
    assert scaled.dtype == jnp.float16
    err = jnp.abs(scaled.astype(jnp.float32) / 1024.0 - ref).max() / jnp.abs(ref).max()
    assert float(err) < 1e-2


def test_float16_input_gradient_of_a_mean_keeps_small_probabilities():
    """A mean's logit gradient ``(p - onehot) / N``, formed in the forward sweep, is scaled
    into float16's range before it is rounded for the input's product (it was rounded as it
    was, below float16's range at this size: 10 % error, where the other reductions give
    0.03 %)."""
    rng = np.random.default_rng(9)
    n, d, v = 8192, 16, 1024
    x = jnp.asarray(rng.normal(size=(n, d)), jnp.float16)
    w = jnp.asarray(rng.normal(size=(v, d)) * 0.1, jnp.float16)
    y = jnp.asarray(rng.integers(0, v, n))
    scale = 1024.0
    ref = jax.grad(lambda a: scale * linear_cross_entropy(a, w.astype(jnp.float32), y))(
        x.astype(jnp.float32)
    )

    def rel(g):
        return float(jnp.linalg.norm(g.astype(jnp.float32) - ref) / jnp.linalg.norm(ref))

    mean = rel(jax.grad(lambda a: scale * linear_cross_entropy(a, w, y))(x))
    summed = rel(jax.grad(lambda a: scale / n * linear_cross_entropy(a, w, y, reduction="sum"))(x))
    assert summed < 1e-3
    assert mean < 2 * summed


SHARDED = r"""
import os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
from jax.sharding import Mesh, PartitionSpec as P
from crossentropy.fused.jax import linear_cross_entropy

mesh = Mesh(np.array(jax.devices()), ("tp",))
rng = np.random.default_rng(0)
n, d, v = 13, 5, 12  # 3 classes on each of the 4 devices
x = jnp.asarray(rng.normal(size=(n, d)))
w = jnp.asarray(rng.normal(size=(v, d)))
b = jnp.asarray(rng.normal(size=v))
cw = jnp.asarray(rng.uniform(0.5, 2.0, v))
y = jnp.asarray(rng.integers(0, v, n)).at[::4].set(-100)
cot = jnp.linspace(-1.0, 1.0, n)
options = [
    {},
    {"label_smoothing": 0.2, "z_loss": 0.05, "softcap": 3.0, "temperature": 1.3, "weight": cw},
]
worst = 0.0
cases = [(options[0], "mean", False), (options[1], "mean", False), (options[1], "none", True)]
specs = (P(), P("tp", None), P("tp"), P("tp"))
grad_specs = (P(), P("tp", None), P("tp"))
# each case and each way of taking the gradient at least once (each pair compiles anew)
ways = [(False, True), (True, True), (True, False)]
for (kw, reduction, aux), (check_vma, inside) in [
    (cases[0], ways[2]), (cases[1], ways[0]), (cases[2], ways[1]), (cases[2], ways[2])
]:
    def scalar(x, w, b, cw, axis_name=None, kw=kw, reduction=reduction, aux=aux):
        kw = dict(kw, weight=cw if "weight" in kw else None)
        out = linear_cross_entropy(x, w, y, bias=b, reduction=reduction, chunk_size=4,
                                   return_aux=aux, axis_name=axis_name, **kw)
        loss = out.loss if aux else out
        total = jnp.sum(cot * loss) if reduction == "none" else loss
        if aux:
            total = total + jnp.sum(cot * out.logp) + 0.1 * jnp.sum(out.entropy)
            total = total + 0.01 * jnp.sum(out.lse) + 0.0 * out.correct
        return total

    if inside:  # the gradient taken inside shard_map (with check_vma=False: only there)
        sharded = jax.jit(jax.shard_map(
            lambda x, w, b, cw: jax.value_and_grad(
                lambda x, w, b: scalar(x, w, b, cw, "tp"), argnums=(0, 1, 2))(x, w, b),
            mesh=mesh, in_specs=specs, out_specs=(P(), grad_specs), check_vma=check_vma,
        ))
    else:  # jax.grad of the shard_map'd loss
        sharded = jax.jit(jax.value_and_grad(jax.shard_map(
            lambda x, w, b, cw: scalar(x, w, b, cw, "tp"),
            mesh=mesh, in_specs=specs, out_specs=P(), check_vma=check_vma,
        ), argnums=(0, 1, 2)))
    got, grads = sharded(x, w, b, cw)
    want, ref = jax.value_and_grad(scalar, argnums=(0, 1, 2))(x, w, b, cw)
    errs = [abs(float(got) - float(want))]
    errs += [float(jnp.max(jnp.abs(g - r))) for g, r in zip(grads, ref)]
    assert max(errs) < 1e-12, (kw.keys(), reduction, aux, check_vma, inside, errs)
    worst = max(worst, max(errs))

# a 2 x 2 mesh: tokens split over "dp", classes over "tp" (check_vma=True): the weight's
# gradient is summed over the data shards, inside shard_map and outside
mesh2 = Mesh(np.array(jax.devices()).reshape(2, 2), ("dp", "tp"))
y2 = y.at[::4].set(3)[:12]
x2 = x[:12]
for reduction, aux in (("mean", False), ("none", True)):
    def local(x, w, b, y, axis_name=None, reduction=reduction, aux=aux):
        out = linear_cross_entropy(x, w, y, bias=b, reduction=reduction, return_aux=aux,
                                   chunk_size=4, label_smoothing=0.1, axis_name=axis_name)
        loss = out.loss.mean() if aux else out
        return loss + 0.1 * jnp.sum(out.lse) if aux else loss

    def whole(x, w, b):
        return (local(x[:6], w, b, y2[:6]) + local(x[6:], w, b, y2[6:])) / 2

    def split(x, w, b, y):
        return jax.lax.pmean(local(x, w, b, y, "tp"), "dp")

    specs2 = (P("dp", None), P("tp", None), P("tp"), P("dp"))
    grads2 = (P("dp", None), P("tp", None), P("tp"))
    want, ref = jax.value_and_grad(whole, argnums=(0, 1, 2))(x2, w, b)
    inner = jax.shard_map(
        lambda x, w, b, y: jax.value_and_grad(
            lambda x, w, b: split(x, w, b, y), argnums=(0, 1, 2))(x, w, b),
        mesh=mesh2, in_specs=specs2, out_specs=(P(), grads2),
    )
    outer = jax.value_and_grad(
        jax.shard_map(split, mesh=mesh2, in_specs=specs2, out_specs=P()), argnums=(0, 1, 2)
    )
    for fn in (inner, outer):
        got, grads = jax.jit(fn)(x2, w, b, y2)
        errs = [abs(float(got) - float(want))]
        errs += [float(jnp.max(jnp.abs(g - r))) for g, r in zip(grads, ref)]
        assert max(errs) < 1e-12, ("2 x 2", reduction, aux, errs)
        worst = max(worst, max(errs))

# "correct" with tied maxima: argmax's first index over the whole vocabulary, as unsplit
rows = np.zeros((7, v))
rows[3:5, [2, 7]] = 1.0  # tied on two devices
rows[5:, [9, 10]] = 1.0  # tied on the last device
tied_x = jnp.asarray(rows)
tied_y = jnp.asarray([0, 1, 11, 2, 7, 9, 10])  # the hits: 0, 2 and 9
for check_vma in (False, True):
    count = jax.jit(jax.shard_map(
        lambda a, w: linear_cross_entropy(a, w, tied_y, return_aux=("correct",),
                                          axis_name="tp").correct,
        mesh=mesh, in_specs=(P(), P("tp", None)), out_specs=P(), check_vma=check_vma,
    ))(tied_x, jnp.eye(v))
    alone = linear_cross_entropy(tied_x, jnp.eye(v), tied_y, return_aux=("correct",)).correct
    assert int(count) == int(alone) == 3, (check_vma, int(count), int(alone))

# a weight replicated over the axis (in_specs P()) under check_vma=True: refused, where every
# device's copy counted as more classes (the loss came out log 4 higher)
try:
    jax.shard_map(
        lambda a, w: linear_cross_entropy(a, w, y, axis_name="tp"),
        mesh=mesh, in_specs=(P(), P()), out_specs=P(),
    )(x, w)
except ValueError as exc:
    assert "w is the same on every device along 'tp'" in str(exc), exc
else:
    raise AssertionError("a replicated weight was taken as the vocabulary's shards")
print("ok", worst)
"""


def test_vocabulary_split_over_four_devices_with_shard_map():
    """shard_map over 4 host devices, the classes split on the mesh axis: the loss, the
    per-token outputs and the gradients of x, the weight shard and the bias shard equal the
    unsharded op's, on both code paths (the gradients formed in the forward sweep; the
    per-token statistics), every option at once; with check_vma=True (the default) the
    gradients taken inside shard_map and outside it, and on a 2 x 2 mesh whose other axis
    splits the tokens; with check_vma=False inside; "correct" with tied maxima follows
    argmax's first index (a subprocess: the device count is fixed when JAX starts)."""
    out = subprocess.run(
        [sys.executable, "-c", SHARDED], capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("ok")


EXPLICIT = r"""
import os, warnings
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
from crossentropy.fused.jax import linear_cross_entropy

mesh = jax.make_mesh((4,), ("data",), axis_types=(AxisType.Explicit,))
rng = np.random.default_rng(0)
n, d, v = 64, 8, 32
x = jnp.asarray(rng.normal(size=(n, d)), jnp.float32)
w = jnp.asarray(rng.normal(size=(v, d)), jnp.float32)
y = jnp.asarray(rng.integers(0, v, n)).at[::5].set(-100)


def step(W, a, t, s):
    return linear_cross_entropy(a, W, t, label_smoothing=s, z_loss=1e-3, chunk_size=8)


want = jax.value_and_grad(step, argnums=(0, 1))(w, x, y, 0.1)
rows = NamedSharding(mesh, P("data", None))
xs, ys = jax.device_put(x, rows), jax.device_put(y, NamedSharding(mesh, P("data")))
wv = jax.device_put(w, rows)  # the classes split over the axis
grad = jax.jit(jax.value_and_grad(step, argnums=(0, 1)))
for context in (False, True):  # arrays of a mesh given to jit, or a mesh set around it
    with jax.set_mesh(mesh) if context else open(os.devnull):
        for W, a, t in ((w, xs, ys), (wv, x, y), (wv, xs, ys)):
            loss, (dw, dx) = grad(W, a, t, jnp.asarray(0.1))
            np.testing.assert_allclose(loss, want[0], rtol=1e-6)
            np.testing.assert_allclose(dw, want[1][0], rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(dx, want[1][1], rtol=1e-5, atol=1e-7)
            assert jax.typeof(dx).sharding.spec == jax.typeof(a).sharding.spec
        per = jax.jit(lambda W, a, t: linear_cross_entropy(a, W, t, reduction="none"))(w, xs, ys)
        assert jax.typeof(per).sharding.spec == P("data")
        np.testing.assert_allclose(per, linear_cross_entropy(x, w, y, reduction="none"), rtol=1e-6)
        out = linear_cross_entropy(xs, w, ys, return_aux=("logp", "correct"))
        ref = linear_cross_entropy(x, w, y, return_aux=("logp", "correct"))
        np.testing.assert_allclose(out.logp, ref.logp, rtol=1e-6)
        assert int(out.correct) == int(ref.correct)
        # labels as a list; a label out of range named (eagerly), with no warning of the shapes'
        # pass that finds the outputs' shardings
        listed = linear_cross_entropy(xs, w, y.tolist())
        np.testing.assert_allclose(listed, linear_cross_entropy(x, w, y), rtol=1e-6)
        bad = jax.device_put(y.at[3].set(99), NamedSharding(mesh, P("data")))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for validate in (None, True):
                try:
                    linear_cross_entropy(xs, w, bad, validate=validate)
                    raise AssertionError("a label out of range was taken")
                except ValueError as exc:
                    assert "label 99 at index (3,)" in str(exc), exc
print("ok")
"""


def test_explicit_sharding_of_recent_jax_meshes():
    """``jax.make_mesh``'s default ``Explicit`` axes (sharding in types): tokens split over
    the axis, classes split, or both, under ``jit(value_and_grad)`` with and without a mesh
    set, equal the unsharded op (the chunked program raised JAX's sharding errors); per-token
    outputs keep the tokens' sharding, and the input's gradient the input's."""
    out = subprocess.run(
        [sys.executable, "-c", EXPLICIT], capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("ok")


@pytest.mark.parametrize("temperature", [1e-3, 1e-2, 0.1, 0.7])
def test_entropy_with_a_temperature_is_never_negative_and_exact(temperature):
    """Under jit, the entropy of rows sharpened by a low temperature is at least 0 and the
    float64 value to float32's rounding (it was formed as lse - m: -0.23 at T = 1e-3 on
    scaled rows, 9.5e-6 for 4.5e-16)."""
    rng = np.random.default_rng(2)
    z = rng.standard_normal((40, 64)) * 3
    fn = jax.jit(
        lambda a: (
            linear_cross_entropy(
                a,
                jnp.eye(64, dtype=jnp.float32),
                jnp.zeros(40, jnp.int32),
                reduction="none",
                return_aux=("entropy",),
                temperature=temperature,
            ).entropy
        )
    )
    got = np.asarray(fn(jnp.asarray(z, jnp.float32)), np.float64)
    u = z / temperature
    logp = u - u.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    want = -(np.exp(logp) * logp).sum(1)
    assert (got >= 0).all()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
