"""``crossentropy._special``: logsumexp, softmax, log_softmax, sigmoid, log_sigmoid, softplus and
xlogy against SciPy on every array backend. Huge, ``-inf`` and NaN inputs, empty arrays, the
checks of their arguments, and their gradients: ``torch.autograd.gradcheck`` in float64 and exact
derivatives at zero and at saturation, on torch and JAX."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special

import crossentropy as ce
from _helpers import (
    check_values,
    gradcheck_float64,
    jax_grads,
    keyed_rng,
    native_values,
    torch_grads,
)

INF = math.inf
LN2 = math.log(2.0)
SHAPE = (3, 4, 5)


# ---------------------------------------------------------------------------------------------
# Against SciPy.
# ---------------------------------------------------------------------------------------------


def _logits(seed=20, shape=SHAPE, scale=30.0):
    return np.random.default_rng(seed).normal(scale=scale, size=shape)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [-1, 0, 1, 2])
def test_logsumexp_matches_scipy(backend, axis, keepdims):
    x = _logits()
    x[0, 0, 0] = -np.inf
    out = ce.logsumexp(backend.asarray(x), axis=axis, keepdims=keepdims)
    expected = scipy.special.logsumexp(x, axis=axis, keepdims=keepdims)
    assert tuple(out.shape) == expected.shape
    check_values(out, backend, np.float64, expected)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_matches_scipy(backend, axis):
    x = _logits(21)
    out = ce.softmax(backend.asarray(x), axis=axis)
    check_values(out, backend, np.float64, scipy.special.softmax(x, axis=axis))


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_log_softmax_matches_scipy(backend, axis):
    x = _logits(22)
    out = ce.log_softmax(backend.asarray(x), axis=axis)
    check_values(out, backend, np.float64, scipy.special.log_softmax(x, axis=axis))


def test_xlogy_matches_scipy(backend):
    x = np.array([[0.0, 0.0, 0.5, 2.0], [0.0, 1.0, 3.0, 0.0]])
    y = np.array([[0.0, 3.0, 0.25, 7.0], [np.nan, 0.0, 1.0, np.inf]])
    out = ce.xlogy(backend.asarray(x), backend.asarray(y))
    with np.errstate(divide="ignore"):
        expected = scipy.special.xlogy(x, y)
    check_values(out, backend, np.float64, expected)


def test_xlogy_random_matches_scipy(backend):
    rng = np.random.default_rng(23)
    x = rng.random(SHAPE)
    x[x < 0.2] = 0.0
    y = rng.random(SHAPE) * 5
    out = ce.xlogy(backend.asarray(x), backend.asarray(y))
    check_values(out, backend, np.float64, scipy.special.xlogy(x, y))


X_ELEMENTWISE = np.array(
    [[-1e4, -745.0, -40.0, -1.0, -1e-8, 0.0], [1e-8, 0.5, 3.0, 40.0, 745.0, 1e4]]
)


def test_sigmoid_matches_expit(backend):
    out = ce.sigmoid(backend.asarray(X_ELEMENTWISE))
    check_values(out, backend, np.float64, scipy.special.expit(X_ELEMENTWISE), atol=1e-300)


def test_log_sigmoid_matches_log_expit(backend):
    out = ce.log_sigmoid(backend.asarray(X_ELEMENTWISE))
    check_values(out, backend, np.float64, scipy.special.log_expit(X_ELEMENTWISE), atol=1e-300)


def test_softplus_matches_logaddexp(backend):
    out = ce.softplus(backend.asarray(X_ELEMENTWISE))
    check_values(out, backend, np.float64, np.logaddexp(0, X_ELEMENTWISE), atol=1e-300)


def test_special_functions_random_values(backend):
    x = _logits(24, scale=10.0)
    bx = backend.asarray(x)
    check_values(ce.sigmoid(bx), backend, np.float64, scipy.special.expit(x))
    check_values(ce.log_sigmoid(bx), backend, np.float64, scipy.special.log_expit(x))
    check_values(ce.softplus(bx), backend, np.float64, np.logaddexp(0, x))


# ---------------------------------------------------------------------------------------------
# Huge, -inf and NaN inputs.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_log_softmax_and_logsumexp(backend, dtype):
    x = backend.asarray([[0.0, 1e4], [1e4, 1e4], [-1e4, -1e4]], dtype)
    ls = native_values(ce.log_softmax(x), backend)
    assert ls.dtype == dtype
    atol = 1e4 * np.finfo(dtype).eps  # the spacing of the dtype at 1e4
    np.testing.assert_allclose(ls, [[-1e4, 0.0], [-LN2, -LN2], [-LN2, -LN2]], atol=atol)
    lse = native_values(ce.logsumexp(x), backend)
    np.testing.assert_allclose(lse, [1e4, 1e4 + LN2, -1e4 + LN2], rtol=1e-7)
    sm = native_values(ce.softmax(x), backend)
    np.testing.assert_allclose(sm, [[0.0, 1.0], [0.5, 0.5], [0.5, 0.5]], atol=1e-7)


def test_all_minus_inf_row_logsumexp_is_minus_inf(backend):
    x = backend.asarray([[-INF, -INF, -INF], [0.0, -INF, 1.0]])
    lse = native_values(ce.logsumexp(x), backend)
    assert lse[0] == -INF
    np.testing.assert_allclose(lse[1], np.logaddexp(0.0, 1.0))
    lse_keep = native_values(ce.logsumexp(x, keepdims=True), backend)
    assert lse_keep.shape == (2, 1)
    assert lse_keep[0, 0] == -INF


def test_all_minus_inf_row_log_softmax_is_nan_like_torch(backend):
    # Documented: a -inf logit gives -inf when its row has a finite entry; an all -inf row has
    # no distribution and gives NaN, as torch.log_softmax (its logsumexp is -inf, not NaN).
    torch = pytest.importorskip("torch")
    x = np.array([[-INF, -INF, -INF], [0.0, -INF, 1.0]])
    ls = native_values(ce.log_softmax(backend.asarray(x)), backend)
    assert np.isnan(ls[0]).all()
    assert np.isnan(torch.log_softmax(torch.from_numpy(x[0]), 0).numpy()).all()
    np.testing.assert_allclose(ls[1], [-np.logaddexp(0.0, 1.0), -INF, 1 - np.logaddexp(0.0, 1.0)])


def test_all_minus_inf_row_softmax_is_nan(backend):
    # Documented: an all -inf row has no distribution and gives NaN (as torch.softmax).
    torch = pytest.importorskip("torch")
    x = np.array([[-INF, -INF, -INF], [0.0, -INF, 1.0]])
    sm = native_values(ce.softmax(backend.asarray(x)), backend)
    assert np.isnan(sm[0]).all()
    np.testing.assert_allclose(sm[1], torch.softmax(torch.from_numpy(x[1]), 0).numpy())
    assert np.isnan(torch.softmax(torch.from_numpy(x[0]), 0).numpy()).all()


def test_plus_inf_logit_makes_its_row_nan_like_torch_and_jax(backend):
    # A +inf logit has no finite normaliser: torch and jax give NaN for the whole row (not
    # -inf for the row's finite logits); rows without +inf are untouched.
    torch = pytest.importorskip("torch")
    x = np.array([[INF, 1.0, 2.0], [INF, INF, 0.0], [1.0, 2.0, -INF]])
    bx = backend.asarray(x)
    for ours, theirs in ((ce.log_softmax, torch.log_softmax), (ce.softmax, torch.softmax)):
        got = native_values(ours(bx), backend)
        want = theirs(torch.from_numpy(x), -1).numpy()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        assert np.isnan(got[:2]).all()
        np.testing.assert_allclose(got[2], want[2], rtol=1e-12)
    np.testing.assert_array_equal(native_values(ce.logsumexp(bx), backend)[:2], [INF, INF])


def test_no_warnings_for_all_minus_inf_rows_on_numpy(recwarn):
    ce.softmax(np.full((2, 3), -np.inf))
    ce.log_softmax(np.full((2, 3), -np.inf))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_nan_propagates_in_special_and_information(backend):
    x = backend.asarray([[np.nan, 1.0], [0.0, 1.0]])
    for fn in (ce.logsumexp, ce.entropy):
        out = native_values(fn(x), backend)
        assert np.isnan(out[0])
        assert not np.isnan(out[1])
    for fn in (ce.softmax, ce.log_softmax):
        out = native_values(fn(x), backend)
        assert np.isnan(out[0]).all()
        assert not np.isnan(out[1]).any()


def test_xlogy_zero_times_anything_but_nan_is_zero():
    np.testing.assert_array_equal(ce.xlogy([0.0, 0.0, 0.0], [-1.0, np.inf, 0.0]), [0.0, 0.0, 0.0])
    assert np.isnan(ce.xlogy([0.0], [np.nan])[0])


# ---------------------------------------------------------------------------------------------
# Empty arrays.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn", [ce.softmax, ce.log_softmax, ce.sigmoid, ce.log_sigmoid, ce.softplus]
)
def test_special_functions_on_empty_arrays(backend, fn):
    out = native_values(fn(backend.asarray(np.zeros((0, 3)))), backend)
    assert out.shape == (0, 3)
    assert out.dtype == np.float64


def test_logsumexp_and_information_on_empty(backend):
    empty_rows = backend.asarray(np.zeros((0, 3)))
    assert native_values(ce.logsumexp(empty_rows), backend).shape == (0,)
    assert native_values(ce.entropy(empty_rows), backend).shape == (0,)
    assert native_values(ce.kl_divergence(empty_rows, empty_rows), backend).shape == (0,)
    assert native_values(ce.xlogy(empty_rows, empty_rows), backend).shape == (0, 3)
    # logsumexp over an empty axis is the log of an empty sum: -inf (as scipy).
    lse = native_values(ce.logsumexp(backend.asarray(np.zeros((2, 0)))), backend)
    np.testing.assert_array_equal(lse, [-INF, -INF])
    lse_keep = native_values(
        ce.logsumexp(backend.asarray(np.zeros((2, 0))), keepdims=True), backend
    )
    np.testing.assert_array_equal(lse_keep, [[-INF], [-INF]])
    # Entropy of an empty distribution is an empty sum: 0.
    np.testing.assert_array_equal(
        native_values(ce.entropy(backend.asarray(np.zeros((2, 0)))), backend), [0.0, 0.0]
    )


# ---------------------------------------------------------------------------------------------
# Bad arguments.
# ---------------------------------------------------------------------------------------------


def test_xlogy_shapes_that_do_not_broadcast_name_the_arguments():
    with pytest.raises(ValueError, match="x of shape"):
        ce.xlogy(np.ones(2), np.ones(3))


def test_softmax_axis_is_checked_for_scalars():
    with pytest.raises(ValueError, match="axis"):
        ce.softmax(1.0, axis=3)


# ---------------------------------------------------------------------------------------------
# Gradients: gradcheck, and exact derivatives at zero and at saturation.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("axis", "keepdims"), [(0, False), (1, True), (-1, False)])
@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
def test_gradcheck_axis_functions(name, axis, keepdims):
    x = keyed_rng(name, axis).standard_normal((3, 4, 2)) * 3
    if name == "logsumexp":
        gradcheck_float64(lambda a: ce.logsumexp(a, axis=axis, keepdims=keepdims), x)
    else:
        gradcheck_float64(lambda a: getattr(ce, name)(a, axis=axis), x)


@pytest.mark.parametrize("fn", [ce.sigmoid, ce.log_sigmoid, ce.softplus])
def test_gradcheck_elementwise(fn):
    x = keyed_rng(fn.__name__).standard_normal((3, 4)) * 4
    x[0, 0] = 0.0
    gradcheck_float64(fn, x)


def test_gradcheck_xlogy_both_arguments():
    rng = keyed_rng("xlogy")
    gradcheck_float64(ce.xlogy, rng.uniform(0.1, 2.0, (3, 4)), rng.uniform(0.1, 2.0, (3, 4)))
    gradcheck_float64(ce.xlogy, rng.uniform(0.1, 2.0, (3, 1)), rng.uniform(0.1, 2.0, (4,)))


EDGE_X = np.array([0.0, 1e4, -1e4, -0.0])
EDGE_DERIVATIVES = {
    "softplus": np.array([0.5, 1.0, 0.0, 0.5]),
    "log_sigmoid": np.array([0.5, 0.0, 1.0, 0.5]),
    "sigmoid": np.array([0.25, 0.0, 0.0, 0.25]),
}


@pytest.mark.parametrize("lib", ["torch", "jax"])
@pytest.mark.parametrize("name", list(EDGE_DERIVATIVES))
def test_elementwise_derivatives_at_zero_and_saturation(name, lib):
    fn = getattr(ce, name)
    grads = torch_grads if lib == "torch" else jax_grads
    (g,) = grads(fn, [EDGE_X])
    np.testing.assert_array_equal(g, EDGE_DERIVATIVES[name])


@pytest.mark.parametrize("lib", ["torch", "jax"])
def test_xlogy_gradient_finite_at_zero(lib):
    x = np.array([0.0, 0.0, 0.5, 2.0])
    y = np.array([0.0, 0.3, 0.0, 1.5])
    grads = torch_grads if lib == "torch" else jax_grads
    gx, gy = grads(ce.xlogy, [x, y])
    assert np.all(np.isfinite(gx[[0, 1, 3]]))
    assert np.all(np.isfinite(gy[[0, 1, 3]]))
    np.testing.assert_allclose(gy[[1, 3]], x[[1, 3]] / y[[1, 3]], rtol=1e-12)


@pytest.mark.parametrize("lib", ["torch", "jax"])
def test_xlogy_gradient_at_zero_x_matches_torch(lib):
    """d/dx (x log y) = log y, also at x = 0 when y > 0 (as torch.special.xlogy)."""
    torch = pytest.importorskip("torch")
    x = np.array([0.0, 0.0, 2.0])
    y = np.array([0.3, 1.0, 1.5])
    grads = torch_grads if lib == "torch" else jax_grads
    gx, gy = grads(ce.xlogy, [x, y])
    tx, ty = torch_grads(torch.special.xlogy, [x, y])
    np.testing.assert_allclose(tx, np.log(y), rtol=1e-12)
    np.testing.assert_allclose(gx, tx, rtol=1e-12)
    np.testing.assert_allclose(gy, ty, rtol=1e-12)


def test_a_single_outcome_is_probability_one_unless_its_logit_is_not_finite(backend):
    """A 0-d logit is one outcome: softmax 1 and log_softmax +0, NaN for a logit of +-inf or
    NaN, as torch gives (it gave 1 and 0 for those too)."""
    torch = pytest.importorskip("torch")
    for v in (3.0, -3.0, INF, -INF, np.nan):
        x = backend.asarray(np.float64(v))
        want_p = torch.softmax(torch.tensor(v, dtype=torch.float64), 0).item()
        want_lp = torch.log_softmax(torch.tensor(v, dtype=torch.float64), 0).item()
        got_p = float(native_values(ce.softmax(x), backend))
        got_lp = float(native_values(ce.log_softmax(x), backend))
        np.testing.assert_array_equal([got_p, got_lp], [want_p, want_lp])
        assert math.copysign(1.0, got_lp) == math.copysign(1.0, want_lp) or np.isnan(got_lp)
