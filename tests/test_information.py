"""``crossentropy.information``: entropy, KL and JS divergence, cross-entropy, perplexity,
binary entropy and self-information against SciPy, on every array backend; float32 and half
precision kept by them and by the special functions; their bad arguments, and their gradients
(``torch.autograd.gradcheck``, finite gradients at zero probabilities, JAX against torch). The
special functions themselves are in test_special.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.special
import scipy.stats

import crossentropy as ce
from _helpers import (
    check_values,
    gradcheck_float64,
    jax_grads,
    keyed_rng,
    lib_probs,
    lib_scalar,
    native_values,
    torch_grads,
    uniform_probs,
)
from crossentropy import information

BASES = [math.e, 2, 10, 3.7]
SHAPE = (3, 4, 5)
AXES = [-1, 0, 1]


def _dist(shape, axis, seed, *, zeros=True, total=1.0):
    """Random distributions along ``axis``, with some exact zeros, summing to ``total``."""
    rng = np.random.default_rng(seed)
    p = rng.random(shape) + 0.05
    if zeros:
        p[rng.random(shape) < 0.25] = 0.0
    np.moveaxis(p, axis, -1)[..., 0] = 0.5  # no all-zero distribution
    return total * p / p.sum(axis=axis, keepdims=True)


# ---------------------------------------------------------------------------------------------
# Entropy, KL, JS, cross-entropy, perplexity.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("axis", AXES)
def test_entropy_matches_scipy(backend, axis, base):
    p = _dist(SHAPE, axis, 0)
    out = ce.entropy(backend.asarray(p), axis=axis, base=base)
    check_values(out, backend, np.float64, scipy.stats.entropy(p, axis=axis, base=base))


@pytest.mark.parametrize("axis", AXES)
def test_entropy_normalize_subunit_weights(backend, axis):
    # Non-negative weights in [0, 1] that do not sum to one.
    p = _dist(SHAPE, axis, 1, total=0.3)
    out = ce.entropy(backend.asarray(p), axis=axis, base=2, normalize=True)
    check_values(out, backend, np.float64, scipy.stats.entropy(p, axis=axis, base=2))


@pytest.mark.parametrize("axis", [-1, 0])
def test_entropy_normalize_counts(backend, axis):
    # scipy.stats.entropy normalises counts; the docs promise the same with normalize=True.
    counts = np.random.default_rng(2).integers(0, 10, size=SHAPE).astype(np.float64)
    np.moveaxis(counts, axis, -1)[..., 0] = 3.0
    out = ce.entropy(backend.asarray(counts), axis=axis, base=2, normalize=True)
    check_values(out, backend, np.float64, scipy.stats.entropy(counts, axis=axis, base=2))


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("axis", AXES)
def test_kl_divergence_matches_scipy(backend, axis, base):
    p = _dist(SHAPE, axis, 3)
    q = _dist(SHAPE, axis, 4, zeros=False)
    out = ce.kl_divergence(backend.asarray(p), backend.asarray(q), axis=axis, base=base)
    check_values(out, backend, np.float64, scipy.stats.entropy(p, q, axis=axis, base=base))
    rel = scipy.special.rel_entr(p, q).sum(axis=axis) / math.log(base)
    check_values(out, backend, np.float64, rel)


@pytest.mark.parametrize("axis", AXES)
def test_kl_divergence_normalize_matches_scipy(backend, axis):
    # Weights in [0, 1] that do not sum to one.
    p = _dist(SHAPE, axis, 5, total=0.5)
    q = _dist(SHAPE, axis, 6, zeros=False, total=0.8)
    out = ce.kl_divergence(backend.asarray(p), backend.asarray(q), axis=axis, normalize=True)
    check_values(out, backend, np.float64, scipy.stats.entropy(p, q, axis=axis))


def test_kl_divergence_inf_where_q_vanishes(backend):
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.0, 0.5, 0.5]])
    q = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5], [0.5, 0.5, 0.0]])
    out = ce.kl_divergence(backend.asarray(p), backend.asarray(q))
    expected = scipy.stats.entropy(p, q, axis=-1)
    assert np.isinf(expected[[0, 2]]).all()
    check_values(out, backend, np.float64, expected)
    np.testing.assert_array_equal(backend.to_numpy(out), [np.inf, 0.0, np.inf])


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("axis", AXES)
def test_js_divergence_matches_scipy(backend, axis, base):
    p = _dist(SHAPE, axis, 7)
    q = _dist(SHAPE, axis, 8)
    out = ce.js_divergence(backend.asarray(p), backend.asarray(q), axis=axis, base=base)
    expected = scipy.spatial.distance.jensenshannon(p, q, base=base, axis=axis) ** 2
    check_values(out, backend, np.float64, expected, rtol=1e-9)


def test_js_divergence_bounded_by_one_bit(backend):
    p = backend.asarray([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    q = backend.asarray([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    out = ce.js_divergence(p, q, base=2)
    check_values(out, backend, np.float64, [1.0, 1.0, 0.0])


def test_js_divergence_of_subnormal_probabilities_is_finite(backend):
    """A probability at float32's smallest subnormal against 0: their mean rounds to 0, the
    divergence is about 5e-46 (0 in float32), not an infinite log of 0."""
    tiny = float(np.finfo(np.float32).smallest_subnormal)
    p = np.array([[1.0, tiny], [0.5, 0.5]], dtype=np.float32)
    q = np.array([[1.0, 0.0], [0.5, 0.5]], dtype=np.float32)
    out = backend.to_numpy(ce.js_divergence(backend.asarray(p), backend.asarray(q)))
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert float(out[0]) <= 1e-44


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("axis", AXES)
def test_cross_entropy_is_entropy_plus_kl(backend, axis, base):
    p = _dist(SHAPE, axis, 9)
    q = _dist(SHAPE, axis, 10, zeros=False)
    bp, bq = backend.asarray(p), backend.asarray(q)
    out = information.cross_entropy(bp, bq, axis=axis, base=base)
    h = backend.to_numpy(ce.entropy(bp, axis=axis, base=base))
    kl = backend.to_numpy(ce.kl_divergence(bp, bq, axis=axis, base=base))
    check_values(out, backend, np.float64, h + kl)
    direct = -(scipy.special.xlogy(p, q)).sum(axis=axis) / math.log(base)
    check_values(out, backend, np.float64, direct)


@pytest.mark.parametrize("axis", AXES)
def test_perplexity(backend, axis):
    p = _dist(SHAPE, axis, 11)
    q = _dist(SHAPE, axis, 12, zeros=False)
    bp, bq = backend.asarray(p), backend.asarray(q)
    check_values(
        ce.perplexity(bp, axis=axis), backend, np.float64, np.exp(scipy.stats.entropy(p, axis=axis))
    )
    expected = np.exp(-(scipy.special.xlogy(p, q)).sum(axis=axis))
    check_values(ce.perplexity(bp, bq, axis=axis), backend, np.float64, expected)
    ce_pq = backend.to_numpy(information.cross_entropy(bp, bq, axis=axis))
    check_values(ce.perplexity(bp, bq, axis=axis), backend, np.float64, np.exp(ce_pq))


def test_perplexity_of_uniform_is_number_of_outcomes(backend):
    out = ce.perplexity(backend.asarray(np.full((2, 7), 1 / 7)))
    check_values(out, backend, np.float64, [7.0, 7.0])


@pytest.mark.parametrize("base", BASES)
def test_binary_entropy_matches_scipy(backend, base):
    p = np.array([[0.0, 0.1, 0.25], [0.5, 0.9, 1.0]])
    out = ce.binary_entropy(backend.asarray(p), base=base)
    expected = scipy.stats.entropy(np.stack([p, 1 - p]), axis=0, base=base)
    check_values(out, backend, np.float64, expected)


def test_binary_entropy_keeps_its_digits_for_tiny_p(backend):
    """log(1 - p) as log1p(-p): where 1 - p rounds to 1, the second term is still p (scipy's
    entropy of [p, 1 - p] drops it: 3.9144e-16 at 1e-17, 2.5 % low)."""
    p = np.array([1e-17, 4.24835e-18, 1e-10, 1e-300, 1 - 1e-9])
    expected = [-x * math.log(x) - (1 - x) * math.log1p(-x) for x in p.tolist()]
    out = ce.binary_entropy(backend.asarray(p))
    check_values(out, backend, np.float64, expected, rtol=1e-15)


def _exact_divergences(p: np.ndarray, q: np.ndarray) -> tuple[float, float]:
    """KL(p || q) and JS(p, q) of float64 distributions in 50-digit arithmetic."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(50):
        kl = js = mpmath.mpf(0)
        for a, b in zip(map(mpmath.mpf, p.tolist()), map(mpmath.mpf, q.tolist()), strict=True):
            m = (a + b) / 2
            kl += a * mpmath.log(a / b) if a else 0
            js += (a * mpmath.log(a / m) if a else 0) + (b * mpmath.log(b / m) if b else 0)
        return float(kl), float(js / 2)


def test_divergences_of_nearly_equal_distributions_keep_their_digits(backend):
    """KL and JS of distributions 1e-6 apart (about 1e-13): each log as log1p of an exact
    relative difference, not a difference of logs (which kept 4 of KL's digits, and none of
    JS's in float32, where both came out negative or 0)."""
    rng = np.random.default_rng(7)
    for _ in range(5):
        p = rng.dirichlet(np.ones(6))
        q = p * (1 + 1e-6 * rng.standard_normal(6))
        q /= q.sum()
        kl, js = _exact_divergences(p, q)
        got_kl = ce.kl_divergence(backend.asarray(p), backend.asarray(q))
        got_js = ce.js_divergence(backend.asarray(p), backend.asarray(q))
        # the sum of signed terms of about 1e-6 cancels to 1e-13: 1e-8 relative is its rounding
        check_values(got_kl, backend, np.float64, kl, rtol=1e-8, atol=0)
        check_values(got_js, backend, np.float64, js, rtol=1e-8, atol=0)
    # far apart, a probability far below the other's, and subnormal ones: as exact
    for p, q in (
        ([0.1, 0.2, 0.7], [0.5, 0.25, 0.25]),
        ([1e-30, 1 - 1e-30], [0.5, 0.5]),
        ([1e-200, 1.0], [1.0, 1e-200]),
    ):
        kl, js = _exact_divergences(np.array(p), np.array(q))
        args = backend.asarray(np.array(p)), backend.asarray(np.array(q))
        check_values(ce.kl_divergence(*args), backend, np.float64, kl, rtol=1e-14, atol=0)
        check_values(ce.js_divergence(*args), backend, np.float64, js, rtol=1e-14, atol=0)


@pytest.mark.parametrize("base", BASES)
def test_self_information(backend, base):
    p = np.array([[0.0, 1e-300, 0.1], [0.5, 0.9, 1.0]])
    out = ce.self_information(backend.asarray(p), base=base)
    with np.errstate(divide="ignore"):
        expected = -np.log(p) / math.log(base)
    check_values(out, backend, np.float64, expected)


# ---------------------------------------------------------------------------------------------
# Dtypes: float32 keeps float32 everywhere; half precision comes back in its own dtype.
# ---------------------------------------------------------------------------------------------


def _all_functions(x, p, q):
    """Every public information / special function, on prepared arrays."""
    return {
        "entropy": lambda: ce.entropy(p),
        "entropy_bits": lambda: ce.entropy(p, base=2),
        "kl_divergence": lambda: ce.kl_divergence(p, q),
        "js_divergence": lambda: ce.js_divergence(p, q, base=2),
        "cross_entropy": lambda: information.cross_entropy(p, q),
        "perplexity": lambda: ce.perplexity(p),
        "perplexity_pq": lambda: ce.perplexity(p, q),
        "binary_entropy": lambda: ce.binary_entropy(q),
        "self_information": lambda: ce.self_information(q, base=2),
        "logsumexp": lambda: ce.logsumexp(x),
        "softmax": lambda: ce.softmax(x, axis=0),
        "log_softmax": lambda: ce.log_softmax(x),
        "sigmoid": lambda: ce.sigmoid(x),
        "log_sigmoid": lambda: ce.log_sigmoid(x),
        "softplus": lambda: ce.softplus(x),
        "xlogy": lambda: ce.xlogy(p, q),
    }


NAMES = list(_all_functions(None, None, None))


def _inputs():
    x = np.random.default_rng(30).normal(scale=3.0, size=(4, 6))
    p = _dist((4, 6), -1, 31)
    q = _dist((4, 6), -1, 32, zeros=False)
    return x, p, q


@pytest.mark.parametrize("name", NAMES)
def test_float32_stays_float32(backend, name):
    x, p, q = (a.astype(np.float32) for a in _inputs())
    ref = _all_functions(*(a.astype(np.float64) for a in (x, p, q)))[name]()
    out = _all_functions(*(backend.asarray(a) for a in (x, p, q)))[name]()
    check_values(out, backend, np.float32, ref, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_float16_numpy_returns_float16(name):
    x, p, q = (a.astype(np.float16) for a in _inputs())
    ref = _all_functions(*(a.astype(np.float64) for a in (x, p, q)))[name]()
    out = _all_functions(x, p, q)[name]()
    assert isinstance(out, np.ndarray | np.generic)
    assert out.dtype == np.float16
    np.testing.assert_allclose(out.astype(np.float64), ref, rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_torch_returns_bfloat16(name):
    torch = pytest.importorskip("torch")
    x, p, q = (torch.tensor(a, dtype=torch.bfloat16) for a in _inputs())
    ref = _all_functions(*(a.double().numpy() for a in (x, p, q)))[name]()
    out = _all_functions(x, p, q)[name]()
    assert isinstance(out, torch.Tensor)
    assert out.dtype == torch.bfloat16
    np.testing.assert_allclose(out.double().numpy(), ref, rtol=1e-2, atol=1e-2)


def test_integer_input_gives_default_float(backend):
    # The namespace's default floating dtype: float32 for torch, float64 elsewhere (JAX x64).
    out = ce.logsumexp(backend.asarray(np.array([[1, 2, 3]], dtype=np.int32)))
    dtype = np.float32 if backend.name == "torch" else np.float64
    check_values(out, backend, dtype, [3.40760596444], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Bad arguments.
# ---------------------------------------------------------------------------------------------


def test_distributions_that_do_not_broadcast(lib):
    p = lib.asarray(np.full((2, 3), 1 / 3))
    q = lib.asarray(np.full((2, 4), 1 / 4))
    for fn in (ce.kl_divergence, ce.js_divergence, information.cross_entropy):
        with pytest.raises(ValueError, match=r"p .* q"):
            fn(p, q)


def test_distributions_with_different_outcome_counts_are_refused(lib):
    """A q of one outcome stretched along the distribution axis to p's two would be another
    distribution, scored without a word (KL 0 or a negative KL): refused, naming both sizes.
    The other axes broadcast as before."""
    p = lib.asarray(np.array([0.2, 0.8]))
    for fn in (ce.kl_divergence, ce.js_divergence, ce.perplexity, information.cross_entropy):
        with pytest.raises(ValueError, match=r"same number of outcomes .*got p 2 and q 1"):
            fn(p, lib.asarray(np.array([1.0])))
    with pytest.raises(ValueError, match=r"axis=0\); got p 2 and q 1"):
        ce.kl_divergence(lib.asarray(np.full((2, 1), 0.5)), lib.asarray([[1.0]]), axis=0)
    rows = ce.kl_divergence(lib.asarray(np.full((3, 2), 0.5)), lib.asarray([0.4, 0.6]))
    expected = 0.5 * np.log(0.5 / 0.4) + 0.5 * np.log(0.5 / 0.6)
    np.testing.assert_allclose(lib.to_numpy(rows), [expected] * 3, rtol=1e-12)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_information_probability_out_of_range(lib, bad):
    ok = lib.asarray(np.array([[0.5, 0.5, 0.0]]))
    wrong = lib.asarray(np.array([[0.5, bad, 0.0]]))
    with pytest.raises(ValueError, match=r"\bp\b"):
        ce.entropy(wrong)
    with pytest.raises(ValueError, match=r"\bp\b"):
        ce.kl_divergence(wrong, ok)
    with pytest.raises(ValueError, match=r"\bq\b"):
        ce.kl_divergence(ok, wrong)
    with pytest.raises(ValueError, match=r"\bq\b"):
        information.cross_entropy(ok, wrong)
    with pytest.raises(ValueError, match=r"\bp\b"):
        ce.js_divergence(wrong, ok)
    with pytest.raises(ValueError, match=r"\bp\b"):
        ce.binary_entropy(wrong)
    with pytest.raises(ValueError, match=r"\bp\b"):
        ce.self_information(wrong)
    with pytest.raises(ValueError, match=r"\bp\b"):
        ce.perplexity(wrong)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_unread_probabilities_out_of_range_give_nan(bad):
    """Where values are not read (a Dask array, a JAX trace), an entry outside [0, 1] gives
    NaN for its distribution, as the metrics' unread probabilities do (1.5 gave an entropy of
    -0.608, a perplexity of 0.544 and a finite KL); the other distributions keep their
    values."""
    da = pytest.importorskip("dask.array")
    jax = pytest.importorskip("jax")
    p = np.array([[0.2, 0.3, 0.5], [bad, 0.0, 0.0]])
    q = np.full((2, 3), 1 / 3)
    calls = {
        "entropy": lambda a, b: ce.entropy(a),
        "perplexity": lambda a, b: ce.perplexity(a),
        "kl_divergence": ce.kl_divergence,
        "kl_divergence q": lambda a, b: ce.kl_divergence(b, a),
        "js_divergence": ce.js_divergence,
        "cross_entropy": information.cross_entropy,
        "binary_entropy": lambda a, b: ce.binary_entropy(a)[:, 0],
    }
    for name, call in calls.items():
        want = np.asarray(call(p[:1], q[:1]))[0]
        lazy = np.asarray(call(da.from_array(p, chunks=1), da.from_array(q, chunks=1)).compute())
        traced = np.asarray(jax.jit(call)(p, q))
        for got in (lazy, traced):
            assert got[0] == pytest.approx(want, rel=1e-12), name
            assert np.isnan(got[1]), name
    counts = np.array([[2.0, 3.0, 5.0], [-1.0, 2.0, 0.0]])  # normalize: scores >= 0
    lazy = ce.entropy(da.from_array(counts, chunks=1), normalize=True).compute()
    assert lazy[0] == pytest.approx(float(ce.entropy(counts[0], normalize=True)), rel=1e-12)
    assert np.isnan(lazy[1])


def _sum_warnings(call):
    import warnings

    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        out = call()
    return out, [str(w.message) for w in got if "sums to" in str(w.message)]


@pytest.mark.parametrize(
    ("name", "call", "argument"),
    [
        ("entropy", lambda p, ok: ce.entropy(p), "p"),
        ("kl_p", lambda p, ok: ce.kl_divergence(p, ok), "p"),
        ("kl_q", lambda p, ok: ce.kl_divergence(ok, p), "q"),
        ("js", lambda p, ok: ce.js_divergence(ok, p), "q"),
        ("cross_entropy", lambda p, ok: information.cross_entropy(ok, p), "q"),
        ("perplexity", lambda p, ok: ce.perplexity(p), "p"),
    ],
)
def test_a_distribution_not_summing_to_one_is_warned_of(lib, name, call, argument):
    """A learner's counts or a typo (rows summing to 0.9, 2) give a number that is no
    information measure: warned of, naming the argument and the row; each row summing to 1
    within scikit-learn's tolerance, or holding a NaN, is not."""
    ok = lib.asarray(np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]]))
    wrong = lib.asarray(np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.4]]))
    _, got = _sum_warnings(lambda: call(wrong, ok))
    assert len(got) == 1
    assert got[0].startswith(f"{argument} is not a probability distribution")
    assert "index (1,)" in got[0]
    assert "sums to 0.9," in got[0]
    assert "normalize=True" in got[0]
    _, got = _sum_warnings(lambda: call(ok, ok))
    assert got == []
    nan_row = lib.asarray(np.array([[0.5, 0.5, 0.0], [np.nan, 0.3, 0.4]]))
    _, got = _sum_warnings(lambda: call(nan_row, ok))
    assert got == []


def test_rounding_of_a_softmax_is_not_warned_of():
    rng = keyed_rng("softmax-sums")
    for dtype in (np.float64, np.float32, np.float16):
        p = ce.softmax(rng.standard_normal((50, 30)).astype(dtype))
        _, got = _sum_warnings(lambda p=p: ce.entropy(p))
        assert got == [], dtype


def test_normalize_takes_counts_silently_and_an_empty_distribution_gives_nan(backend):
    """On every backend: no warning (neither the sum's nor a 0/0 of NumPy's, which Dask and
    array-api-strict used to show, Dask's when computed)."""
    import warnings

    counts = backend.asarray(np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ce.entropy(counts, normalize=True)
        kl = ce.kl_divergence(counts, counts, normalize=True)
        got, got_kl = backend.to_numpy(out), backend.to_numpy(kl)
    np.testing.assert_allclose(got[0], math.log(2), rtol=1e-15)
    assert math.isnan(got[1])
    assert got_kl[0] == 0.0
    assert math.isnan(got_kl[1])


INFO_CALLS = {
    "entropy": lambda p, **kw: ce.entropy(p, **kw),
    "kl_divergence": lambda p, **kw: ce.kl_divergence(p, p, **kw),
    "js_divergence": lambda p, **kw: ce.js_divergence(p, p, **kw),
    "cross_entropy": lambda p, **kw: information.cross_entropy(p, p, **kw),
    "binary_entropy": lambda p, **kw: ce.binary_entropy(p, **kw),
    "self_information": lambda p, **kw: ce.self_information(p, **kw),
}


@pytest.mark.parametrize("base", [1, 1.0, 0.5, 0, -2, math.inf, math.nan])
@pytest.mark.parametrize("name", list(INFO_CALLS))
def test_bad_base(lib, name, base):
    with pytest.raises(ValueError, match="base"):
        INFO_CALLS[name](lib_probs(lib), base=base)


@pytest.mark.parametrize("base", ["2", None, True])
def test_base_wrong_type(lib, base):
    with pytest.raises(TypeError, match="base"):
        ce.entropy(lib_probs(lib), base=base)


def test_information_needs_a_distribution_axis(lib):
    with pytest.raises(ValueError, match=r"\bp\b"):
        ce.entropy(lib_scalar(lib, 0.5))


def test_self_information_of_a_certain_event_is_plus_zero():
    assert np.signbit(ce.self_information(1.0)) == np.False_


# ---------------------------------------------------------------------------------------------
# Gradients: gradcheck, finite gradients at zero probabilities, JAX against torch.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs", [{}, {"base": 2}, {"axis": 0}, {"normalize": True}], ids=["nats", "bits", "ax0", "n"]
)
@pytest.mark.parametrize(
    "fn",
    [
        information.cross_entropy,
        ce.kl_divergence,
        ce.js_divergence,
    ],
    ids=["cross_entropy", "kl_divergence", "js_divergence"],
)
def test_gradcheck_two_distribution_functions(fn, kwargs):
    rng = keyed_rng("info2", fn.__name__, kwargs)
    gradcheck_float64(
        lambda p, q: fn(p, q, **kwargs), uniform_probs(rng, (3, 4)), uniform_probs(rng, (3, 4))
    )


@pytest.mark.parametrize("kwargs", [{}, {"base": 2}, {"normalize": True}], ids=["e", "2", "n"])
def test_gradcheck_entropy(kwargs):
    gradcheck_float64(
        lambda p: ce.entropy(p, **kwargs), uniform_probs(keyed_rng("entropy", kwargs), (3, 5))
    )


def test_gradcheck_perplexity():
    rng = keyed_rng("perplexity")
    gradcheck_float64(ce.perplexity, uniform_probs(rng, (3, 4)))
    gradcheck_float64(ce.perplexity, uniform_probs(rng, (3, 4)), uniform_probs(rng, (3, 4)))
    gradcheck_float64(
        lambda p, q: ce.perplexity(p, q, normalize=True),
        uniform_probs(rng, (4,)),
        uniform_probs(rng, (4,)),
    )


@pytest.mark.parametrize("base", [np.e, 2])
def test_gradcheck_elementwise_information(base):
    rng = keyed_rng("elementwise-info", base)
    gradcheck_float64(lambda p: ce.self_information(p, base=base), uniform_probs(rng, (3, 4)))
    gradcheck_float64(lambda p: ce.binary_entropy(p, base=base), uniform_probs(rng, (3, 4)))


@pytest.mark.parametrize("lib", ["torch", "jax"])
def test_entropy_gradient_finite_at_zero_probability(lib):
    p = np.array([[0.0, 0.3, 0.7], [1.0, 0.0, 0.0]])
    grads = torch_grads if lib == "torch" else jax_grads
    (g,) = grads(ce.entropy, [p])
    assert np.all(np.isfinite(g))
    nz = p > 0
    np.testing.assert_allclose(g[nz], -(np.log(p[nz]) + 1), rtol=1e-12)
    (g,) = grads(ce.binary_entropy, [np.array([0.0, 1.0, 0.5, 0.25])])
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g[2:], [0.0, np.log(3.0)], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("lib", ["torch", "jax"])
def test_kl_and_js_gradients_finite_at_zero_probability(lib):
    p = np.array([[0.0, 0.4, 0.6], [1.0, 0.0, 0.0]])
    q = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    grads = torch_grads if lib == "torch" else jax_grads
    gp, gq = grads(ce.kl_divergence, [p, q])
    assert np.all(np.isfinite(gp))
    assert np.all(np.isfinite(gq))
    nz = p > 0
    np.testing.assert_allclose(gp[nz], np.log(p[nz] / q[nz]) + 1, rtol=1e-12)
    np.testing.assert_allclose(gq, -p / q, rtol=1e-12)
    gp, gq = grads(ce.js_divergence, [p, q])
    assert np.all(np.isfinite(gp))
    assert np.all(np.isfinite(gq))
    gp, gq = grads(information.cross_entropy, [p, q])
    assert np.all(np.isfinite(gp))
    np.testing.assert_allclose(gq, -p / q, rtol=1e-12)


@pytest.mark.parametrize("base", [np.e, 2])
def test_jax_matches_torch_entropy_and_kl_divergence(base):
    rng = keyed_rng("jax-info", base)
    p = rng.dirichlet(np.ones(5), size=3)
    q = rng.dirichlet(np.ones(5), size=3)
    p[0, 1] = 0.0  # the 0 log 0 convention, on both backends
    cot = rng.standard_normal(3)

    def entropy(a):
        return ce.entropy(a, base=base)

    def kl(a, b):
        return ce.kl_divergence(a, b, base=base)

    for fn, arrays in ((entropy, [p]), (kl, [p, q])):
        jg, tg = jax_grads(fn, arrays, cot), torch_grads(fn, arrays, cot)
        for a, b in zip(jg, tg, strict=True):
            assert np.all(np.isfinite(b))
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("lib", ["numpy", "torch", "jax"])
def test_js_divergence_of_nearly_equal_distributions_is_not_negative(lib: str):
    """float32 rounding put JS below 0 for nearly equal distributions (-7.5e-8), a NaN under
    the square root scipy's jensenshannon takes; it is 0 there."""
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(6), 400).astype(np.float32)
    q = (p * (1 + 1e-6 * rng.standard_normal(p.shape))).astype(np.float32)
    q /= q.sum(axis=1, keepdims=True)
    a, b = p, q
    if lib == "torch":
        torch = pytest.importorskip("torch")
        a, b = torch.from_numpy(p), torch.from_numpy(q)
    elif lib == "jax":
        jnp = pytest.importorskip("jax.numpy")
        a, b = jnp.asarray(p), jnp.asarray(q)
    js = np.asarray(ce.js_divergence(a, b))
    assert js.dtype == np.float32
    assert (js >= 0).all()
    assert js.max() < 1e-6  # float32 rounding of a JS of about 1e-13
    assert (np.asarray(ce.js_divergence(a, a)) == 0).all()


def test_js_divergence_hessian_at_equal_distributions():
    """The clamp at 0 keeps the derivatives at p = q, where JS is 0: the Hessian in p is
    diag(1 / (4 p)) (a maximum with 0 halved it)."""
    torch = pytest.importorskip("torch")
    p = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    h = torch.func.hessian(lambda a: ce.js_divergence(a, p))(p.clone())
    torch.testing.assert_close(torch.diagonal(h), 1 / (4 * p), rtol=1e-12, atol=1e-12)


def test_a_nan_distribution_entry_propagates_where_the_other_is_zero(backend):
    """KL with p = 0 and a NaN in q is NaN, as scipy's rel_entr(0, nan) (not 0: a NaN's
    stand-in must not hide it)."""
    p, q = backend.asarray(np.array([0.0, 1.0])), backend.asarray(np.array([np.nan, 1.0]))
    assert np.isnan(float(native_values(ce.kl_divergence(p, q), backend)))
    assert np.isnan(float(native_values(ce.js_divergence(p, q), backend)))


@pytest.mark.parametrize("normalize", ["no", 2, np.array([True, False]), None])
def test_normalize_must_be_a_bool(normalize):
    """A truthy value that is not a bool was taken as True (the entropy of [.2, .2] came out
    normalised, log 2, for normalize="no")."""
    p, q = np.array([0.2, 0.2]), np.array([0.5, 0.5])
    with pytest.raises(TypeError, match="normalize must be a bool"):
        ce.entropy(p, normalize=normalize)
    with pytest.raises(TypeError, match="normalize must be a bool"):
        ce.kl_divergence(p, q, normalize=normalize)
    assert float(ce.entropy(p, normalize=np.True_)) == pytest.approx(math.log(2), rel=1e-15)


def test_axis_none_is_refused_by_the_distribution_measures():
    """``axis=None`` names no distribution axis: a ``TypeError`` (it skipped ``normalize``
    and every check, giving an entropy of -3.3 and a negative KL divergence)."""
    for call in (
        lambda: information.entropy([1.0, 3.0], axis=None, normalize=True),
        lambda: information.kl_divergence([0.5, 0.5], [1.0], axis=None),
        lambda: information.cross_entropy([0.5, 0.5], [0.2, 0.8], axis=None),
        lambda: information.js_divergence([0.5, 0.5], [0.2, 0.8], axis=None),
    ):
        with pytest.raises(TypeError, match="axis must be an integer"):
            call()
