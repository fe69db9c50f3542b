"""Hypothesis properties of the information functions and losses, on NumPy."""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import crossentropy as ce
from crossentropy import information

# Derandomized: the same examples on every run, so the suite stays deterministic.
SETTINGS = settings(max_examples=75, deadline=None, derandomize=True)

UNIT = st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=False)
POSITIVE = st.floats(1e-3, 1.0, allow_nan=False)
LOGIT = st.floats(-50.0, 50.0, allow_nan=False, allow_subnormal=False)
SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6)


def _normalise(raw: np.ndarray, axis: int) -> np.ndarray:
    """Divide by the sum along ``axis``; an all-zero distribution becomes uniform."""
    raw = np.where(raw.sum(axis=axis, keepdims=True) > 0, raw, 1.0)
    return raw / raw.sum(axis=axis, keepdims=True)


@st.composite
def dist_pairs(draw, *, q_positive: bool = True):
    """``(p, q, axis)``: two distributions along ``axis``; ``p`` has zeros, ``q`` none."""
    shape = draw(SHAPES)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    p = _normalise(draw(hnp.arrays(np.float64, shape, elements=UNIT)), axis)
    q_elements = POSITIVE if q_positive else UNIT
    q = _normalise(draw(hnp.arrays(np.float64, shape, elements=q_elements)), axis)
    return p, q, axis


@st.composite
def classification(draw, *, soft: bool):
    """``(logits, target)`` of shape ``(N, C)`` or ``(N, C, d)``, classes on axis 1."""
    n = draw(st.integers(1, 6))
    c = draw(st.integers(1, 7))
    extra = draw(st.sampled_from([(), (3,)]))
    x = draw(hnp.arrays(np.float64, (n, c, *extra), elements=LOGIT))
    if soft:
        t = _normalise(draw(hnp.arrays(np.float64, (n, c, *extra), elements=UNIT)), 1)
    else:
        t = draw(hnp.arrays(np.int64, (n, *extra), elements=st.integers(0, c - 1)))
    return x, t


# ---------------------------------------------------------------------------------------------
# Cross-entropy, entropy and KL divergence.
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(dist_pairs())
def test_cross_entropy_is_entropy_plus_kl(pair):
    p, q, axis = pair
    h_pq = information.cross_entropy(p, q, axis=axis)
    h_p = ce.entropy(p, axis=axis)
    kl = ce.kl_divergence(p, q, axis=axis)
    np.testing.assert_allclose(h_pq, h_p + kl, rtol=1e-9, atol=1e-9)


@SETTINGS
@given(dist_pairs(q_positive=False))
def test_cross_entropy_is_entropy_plus_kl_with_zeros_in_q(pair):
    # Where q vanishes on p's support both sides are +inf.
    p, q, axis = pair
    h_pq = information.cross_entropy(p, q, axis=axis)
    kl = ce.kl_divergence(p, q, axis=axis)
    np.testing.assert_array_equal(np.isinf(h_pq), np.isinf(kl))
    np.testing.assert_allclose(h_pq, ce.entropy(p, axis=axis) + kl, rtol=1e-9, atol=1e-9)


@SETTINGS
@given(dist_pairs(q_positive=False))
def test_kl_nonnegative_and_pinsker(pair):
    p, q, axis = pair
    kl = np.asarray(ce.kl_divergence(p, q, axis=axis))
    assert (kl >= -1e-12).all()
    # Pinsker: KL(p||q) >= 2 TV(p, q)^2 (nats), so KL > 0 whenever p and q differ.
    tv = 0.5 * np.abs(p - q).sum(axis=axis)
    assert (kl >= 2 * tv**2 - 1e-12).all()
    assert (kl[tv > 1e-4] > 0).all()


@SETTINGS
@given(dist_pairs())
def test_kl_of_a_distribution_with_itself_is_zero(pair):
    p, _, axis = pair
    np.testing.assert_array_equal(ce.kl_divergence(p, p, axis=axis), 0.0)
    np.testing.assert_array_equal(ce.js_divergence(p, p, axis=axis), 0.0)
    np.testing.assert_allclose(
        information.cross_entropy(p, p, axis=axis), ce.entropy(p, axis=axis), rtol=1e-12
    )


@SETTINGS
@given(dist_pairs(q_positive=False))
def test_js_symmetric_and_bounded(pair):
    p, q, axis = pair
    js = np.asarray(ce.js_divergence(p, q, axis=axis, base=2))
    np.testing.assert_allclose(js, ce.js_divergence(q, p, axis=axis, base=2), atol=1e-12)
    assert (js >= -1e-12).all()
    assert (js <= 1 + 1e-12).all()


# ---------------------------------------------------------------------------------------------
# Invariance of the softmax cross-entropy to a constant added to the logits.
# ---------------------------------------------------------------------------------------------


def _shifted(x, data):
    """``x`` plus a constant per sample (broadcast along the class axis 1)."""
    shape = (x.shape[0], 1, *x.shape[2:])
    shift = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-100.0, 100.0)))
    return x + shift


@SETTINGS
@given(
    classification(soft=False),
    st.data(),
    st.sampled_from([0.0, 0.1, 1.0]),
    st.booleans(),
)
def test_ce_class_indices_invariant_to_logit_shift(xt, data, eps, weighted):
    x, t = xt
    w = np.linspace(0.5, 2.0, x.shape[1]) if weighted else None
    kwargs = {"weight": w, "label_smoothing": eps}
    a = ce.cross_entropy(x, t, reduction="none", **kwargs)
    b = ce.cross_entropy(_shifted(x, data), t, reduction="none", **kwargs)
    np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        ce.cross_entropy(_shifted(x, data), t, **kwargs),
        ce.cross_entropy(x, t, **kwargs),
        rtol=1e-9,
        atol=1e-9,
    )


@SETTINGS
@given(classification(soft=True), st.data(), st.sampled_from([0.0, 0.2]))
def test_ce_soft_targets_invariant_to_logit_shift(xt, data, eps):
    x, t = xt
    a = ce.cross_entropy(x, t, reduction="none", label_smoothing=eps)
    b = ce.cross_entropy(_shifted(x, data), t, reduction="none", label_smoothing=eps)
    np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        ce.cross_entropy(_shifted(x, data), t), ce.cross_entropy(x, t), rtol=1e-9, atol=1e-9
    )


@SETTINGS
@given(classification(soft=False))
def test_ce_class_indices_equals_soft_one_hot(xt):
    x, t = xt
    one_hot = np.moveaxis(np.eye(x.shape[1])[t], -1, 1)
    np.testing.assert_allclose(
        ce.cross_entropy(x, one_hot, reduction="none"),
        ce.cross_entropy(x, t, reduction="none"),
        rtol=1e-9,
        atol=1e-9,
    )


# ---------------------------------------------------------------------------------------------
# Bits = nats / ln 2 (and any base b: nats / ln b).
# ---------------------------------------------------------------------------------------------

BASED = {
    "entropy": lambda p, q, axis, base: ce.entropy(p, axis=axis, base=base),
    "kl_divergence": lambda p, q, axis, base: ce.kl_divergence(p, q, axis=axis, base=base),
    "js_divergence": lambda p, q, axis, base: ce.js_divergence(p, q, axis=axis, base=base),
    "cross_entropy": lambda p, q, axis, base: information.cross_entropy(p, q, axis=axis, base=base),
    "binary_entropy": lambda p, q, axis, base: ce.binary_entropy(p, base=base),
    "self_information": lambda p, q, axis, base: ce.self_information(q, base=base),
}


@SETTINGS
@given(dist_pairs(q_positive=False), st.sampled_from(sorted(BASED)))
def test_bits_are_nats_over_ln2(pair, name):
    p, q, axis = pair
    fn = BASED[name]
    nats = np.asarray(fn(p, q, axis, math.e))
    bits = np.asarray(fn(p, q, axis, 2))
    np.testing.assert_allclose(bits, nats / math.log(2), rtol=1e-12, atol=0)


@SETTINGS
@given(
    dist_pairs(q_positive=False),
    st.sampled_from(sorted(BASED)),
    st.floats(1.001, 1000.0),
)
def test_any_base_is_nats_over_ln_base(pair, name, base):
    p, q, axis = pair
    fn = BASED[name]
    nats = np.asarray(fn(p, q, axis, math.e))
    np.testing.assert_allclose(fn(p, q, axis, base), nats / math.log(base), rtol=1e-12, atol=0)


@SETTINGS
@given(dist_pairs())
def test_perplexity_is_base_free(pair):
    p, q, axis = pair
    bits = np.asarray(ce.entropy(p, axis=axis, base=2))
    np.testing.assert_allclose(ce.perplexity(p, axis=axis), 2.0**bits, rtol=1e-9)
    h_pq = np.asarray(information.cross_entropy(p, q, axis=axis, base=2))
    np.testing.assert_allclose(ce.perplexity(p, q, axis=axis), 2.0**h_pq, rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# Softmax, log-softmax, logsumexp.
# ---------------------------------------------------------------------------------------------

WIDE = st.floats(-1e4, 1e4, allow_nan=False, allow_subnormal=False)
MASKED = st.one_of(WIDE, st.just(-np.inf))


@st.composite
def logits(draw, elements=WIDE):
    x = draw(hnp.arrays(np.float64, SHAPES, elements=elements))
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    return x, axis


@SETTINGS
@given(logits())
def test_softmax_sums_to_one(xa):
    x, axis = xa
    s = np.asarray(ce.softmax(x, axis=axis))
    assert (s >= 0).all()
    assert (s <= 1).all()
    np.testing.assert_allclose(s.sum(axis=axis), 1.0, rtol=0, atol=1e-12 * x.shape[axis])


@SETTINGS
@given(logits(MASKED))
def test_log_softmax_nonpositive(xa):
    x, axis = xa
    ls = np.asarray(ce.log_softmax(x, axis=axis))
    finite_row = np.isfinite(x).any(axis=axis, keepdims=True)
    finite_row = np.broadcast_to(finite_row, x.shape)
    assert (ls[finite_row] <= 0).all()
    # exp(log_softmax) is the softmax.
    s = np.asarray(ce.softmax(x, axis=axis))
    np.testing.assert_allclose(np.exp(ls[finite_row]), s[finite_row], rtol=1e-9, atol=1e-300)


@SETTINGS
@given(logits(MASKED), st.booleans())
def test_logsumexp_at_least_max(xa, keepdims):
    x, axis = xa
    lse = np.asarray(ce.logsumexp(x, axis=axis, keepdims=keepdims))
    m = x.max(axis=axis, keepdims=keepdims)
    assert lse.shape == m.shape
    assert (lse >= m).all()
    finite = np.isfinite(m)
    bound = m[finite] + math.log(x.shape[axis]) + 1e-9 * np.abs(m[finite])
    assert (lse[finite] <= bound).all()
    np.testing.assert_array_equal(lse[~finite], -np.inf)
