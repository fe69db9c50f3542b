"""Every public function on every backend: same library, dtype and device out as in, and the
same numbers as NumPy in float64; on Dask, no function computes its graph."""

from __future__ import annotations

import array_api_compat as compat
import numpy as np
import pytest

import crossentropy as ce
from _helpers import check_on_backend, lazy_calls, lazy_inputs
from registry import CASES, NOT_COMPUTATIONS, covered_functions


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_library_dtype_device_and_numbers(backend, name, dtype):
    case = CASES[name]
    check_on_backend(backend, case.call, case.arrays, dtype)
    inputs = [backend.asarray(a) for a in case.arrays]
    assert compat.device(case.call(*inputs)) == compat.device(inputs[0])


@pytest.mark.parametrize("name", list(CASES))
def test_numpy_results_of_no_dimensions_are_numpy_scalars(name):
    """As NumPy's reductions and ufuncs: ``np.float64(...)``, never a 0-d ``ndarray`` (some
    functions gave one, others a scalar, by the operation that made the result)."""
    case = CASES[name]
    out = case.call(*[np.asarray(a) for a in case.arrays])
    outs = out if isinstance(out, tuple) else (out,)
    for value in outs:
        assert not (type(value) is np.ndarray and value.ndim == 0), (name, repr(value))


def test_results_that_were_0_d_arrays_are_numpy_scalars():
    scalar = {
        "logsumexp": ce.logsumexp([1.0, 2.0]),
        "sigmoid": ce.sigmoid(0.0),
        "softplus": ce.softplus(0.0),
        "js_divergence": ce.js_divergence([1.0, 0.0], [0.0, 1.0]),
        "empty_mean": ce.cross_entropy([[1.0, 2.0]], [-100], empty_mean=0.0),
    }
    for key, value in scalar.items():
        assert type(value) is np.float64, (key, repr(value))


def test_every_public_function_is_covered():
    # class_weights returns the default floating dtype (tests/test_weights.py covers it); the
    # validation settings take no arrays.
    functions = {n for n in ce.__all__ if callable(getattr(ce, n))}
    assert functions - NOT_COMPUTATIONS <= covered_functions()


# ---------------------------------------------------------------------------------------------
# Dask stays lazy: no function computes its graph.
# ---------------------------------------------------------------------------------------------


def _compute_counter():
    """A Dask callback that counts the graphs computed while it is active."""
    callback = pytest.importorskip("dask.callbacks").Callback

    class ComputeCounter(callback):
        def __init__(self):
            super().__init__()
            self.computes = 0

        def _start(self, dsk):
            self.computes += 1

    return ComputeCounter()


@pytest.mark.parametrize("name", list(lazy_calls(*[None] * 5)))
def test_dask_results_stay_lazy(name):
    da = pytest.importorskip("dask.array")
    arrays = lazy_inputs()
    lazy = [da.from_array(a, chunks=(3, *a.shape[1:])) for a in arrays]
    with _compute_counter() as counter:
        out = lazy_calls(*lazy)[name]()
    assert isinstance(out, da.Array)
    assert counter.computes == 0
    expected = lazy_calls(*arrays)[name]()
    np.testing.assert_allclose(out.compute(), expected, rtol=1e-12)


@pytest.mark.parametrize(
    "call",
    [
        lambda x, t: ce.mse_loss(x, t),
        lambda x, t: ce.binary_cross_entropy_with_logits(x, t),
        lambda x, t: ce.cross_entropy(x, t, axis=-1),  # (rows summing to 1 or not)
        lambda x, t: ce.kl_div(x, t, reduction="batchmean"),
    ],
    ids=["mse_loss", "bce_with_logits", "cross_entropy", "kl_div"],
)
def test_a_float64_target_promotes_a_float32_input(backend, call):
    """As NumPy, JAX, Dask and PyTorch promote (conventions §17): the loss in float64."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3))
    t = rng.uniform(0.1, 1.0, (4, 3))
    out = call(backend.asarray(x.astype(np.float32)), backend.asarray(t))
    assert backend.is_native(out)
    got = backend.to_numpy(out)
    assert got.dtype == np.float64
    exact = backend.to_numpy(
        call(backend.asarray(x.astype(np.float32).astype(np.float64)), backend.asarray(t))
    )
    np.testing.assert_allclose(got, exact, rtol=1e-14)


def test_a_python_number_or_list_target_keeps_the_inputs_dtype(backend):
    """A Python number or a list is weak, as NumPy and JAX treat it: the loss stays in a
    float32 input's dtype; a NumPy float64 scalar promotes, as in NumPy 2 (and PyTorch, for a
    float64 tensor broadcast to the input)."""
    import warnings

    x = backend.asarray(np.ones((2, 3), dtype=np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a target broadcast to the input
        assert backend.to_numpy(ce.mse_loss(x, np.float64(0.5))).dtype == np.float64
        for target in (0.5, [[0.5, 0.5, 0.5]] * 2):
            got = backend.to_numpy(ce.mse_loss(x, target))
            assert got.dtype == np.float32, type(target)
            got = backend.to_numpy(ce.kl_div(x, target, reduction="batchmean"))
            assert got.dtype == np.float32, type(target)
        listed = [[0.5, 0.5, 0.5]] * 2
        got = backend.to_numpy(ce.binary_cross_entropy_with_logits(x, listed))
        assert got.dtype == np.float32
