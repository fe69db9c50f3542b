"""``crossentropy._lib.namespace``: the array library, device and dtype policy of every call
(through the public functions): half precision (NumPy's ``ml_dtypes``, PyTorch's and JAX's
included) computed in float32 and returned in the input's dtype, integers in the default floating
dtype, Python numbers that never promote, a clear error for input that is no array (``None``, an
object, strings) or of a complex dtype, and for arrays of two libraries."""

from __future__ import annotations

import numpy as np
import pytest

import crossentropy as ce
from _helpers import lib_labels, lib_probs
from conftest import BACKENDS
from crossentropy import information
from registry import CASES

HALF = ("bfloat16", "float16")

X = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
Y = [1, 2]


def _numpy_half(name):
    """NumPy's float16, or ml_dtypes' bfloat16 (skipped where ml_dtypes is missing)."""
    module = np if name == "float16" else pytest.importorskip("ml_dtypes")
    return getattr(module, name)


@pytest.mark.parametrize("half", list(HALF))
@pytest.mark.parametrize("name", list(CASES))
def test_numpy_half_precision_is_computed_in_float32_and_returned_as_given(name, half):
    case = CASES[name]
    dtype = _numpy_half(half)
    arrays = [a.astype(dtype) if a.dtype.kind == "f" else a for a in case.arrays]
    out = np.asarray(case.call(*arrays))
    assert out.dtype == np.dtype(dtype), out.dtype
    as_float32 = [
        a.astype(np.float32) if a.dtype.kind != "i" and a.dtype != bool else a for a in arrays
    ]
    expected = np.asarray(case.call(*as_float32), dtype=np.float32).astype(dtype)
    np.testing.assert_array_equal(out.astype(np.float32), expected.astype(np.float32))


def test_integer_input_runs_in_the_default_floating_dtype():
    out = ce.cross_entropy(np.asarray([[1, 2, 3]]), np.asarray([2]))
    assert out.dtype == np.float64
    torch = pytest.importorskip("torch")
    assert ce.cross_entropy(torch.tensor([[1, 2, 3]]), torch.tensor([2])).dtype == torch.float32


def test_python_numbers_take_the_arrays_dtype():
    torch = pytest.importorskip("torch")
    x = torch.tensor([0.5, 2.0])
    assert ce.xlogy(x, 3.3).dtype == torch.float32
    assert ce.xlogy(3.3, x).dtype == torch.float32
    assert ce.xlogy(np.float32([0.5]), 3.3).dtype == np.float32
    torch.testing.assert_close(ce.xlogy(x, 3.3), torch.xlogy(x, 3.3))


def test_arrays_of_two_libraries_are_refused_naming_both():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"same array library.*input.*target"):
        ce.mse_loss(torch.zeros(2), np.zeros(2))


# ---------------------------------------------------------------------------------------------
# Half precision in PyTorch and JAX too: computed in float32, returned in the input's dtype.
# ---------------------------------------------------------------------------------------------


HALF_CASES = {
    "numpy-float16": ("numpy", "float16", 2e-3),
    "torch-float16": ("torch", "float16", 2e-3),
    "torch-bfloat16": ("torch", "bfloat16", 1e-2),
    "jax-bfloat16": ("jax", "bfloat16", 1e-2),
}
_HALF_MODULES = {"numpy": "numpy", "torch": "torch", "jax": "jax.numpy"}


def _half_case(kind):
    """(library, dtype, tolerance) of a case of HALF_CASES; the library is imported on use."""
    lib, dtype, tol = HALF_CASES[kind]
    return lib, getattr(pytest.importorskip(_HALF_MODULES[lib]), dtype), tol


def _half(kind, a):
    lib, dtype, _ = _half_case(kind)
    if lib == "numpy":
        return np.asarray(a).astype(dtype)
    if lib == "torch":
        return pytest.importorskip("torch").tensor(np.asarray(a), dtype=dtype)
    return pytest.importorskip("jax.numpy").asarray(np.asarray(a), dtype=dtype)


def _to_float64(x):
    torch = pytest.importorskip("torch")
    if isinstance(x, torch.Tensor):
        return x.double().numpy()
    return np.asarray(x).astype(np.float64)


def _half_inputs():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(6, 5))
    probs = rng.uniform(0.02, 0.98, size=(6, 5))
    soft = rng.random((6, 5))
    soft /= soft.sum(axis=1, keepdims=True)
    labels = np.array([0, 4, 2, -100, 1, 3])
    weight = np.array([0.5, 1.0, 2.0, 1.5, 0.25])
    return logits, probs, soft, labels, weight


HALF_FUNCTIONS = {
    "cross_entropy": lambda x, p, s, y, w: ce.cross_entropy(x, y),
    "cross_entropy_weight_smooth": lambda x, p, s, y, w: ce.cross_entropy(
        x, y, w, label_smoothing=0.1
    ),
    "cross_entropy_none": lambda x, p, s, y, w: ce.cross_entropy(x, y, reduction="none"),
    "cross_entropy_soft": lambda x, p, s, y, w: ce.cross_entropy(x, s),
    "cross_entropy_z_loss": lambda x, p, s, y, w: ce.cross_entropy(x, y, z_loss=1e-3),
    "nll_loss": lambda x, p, s, y, w: ce.nll_loss(ce.log_softmax(x, axis=1), y, w),
    "binary_cross_entropy": lambda x, p, s, y, w: ce.binary_cross_entropy(p, s),
    "bce_with_logits": lambda x, p, s, y, w: ce.binary_cross_entropy_with_logits(x, s),
    "kl_div": lambda x, p, s, y, w: ce.kl_div(ce.log_softmax(x), s, reduction="batchmean"),
    "logsumexp": lambda x, p, s, y, w: ce.logsumexp(x),
    "softmax": lambda x, p, s, y, w: ce.softmax(x),
    "log_softmax": lambda x, p, s, y, w: ce.log_softmax(x),
    "entropy": lambda x, p, s, y, w: ce.entropy(s),
    "information_cross_entropy": lambda x, p, s, y, w: information.cross_entropy(s, p),
}


@pytest.mark.parametrize("name", list(HALF_FUNCTIONS))
@pytest.mark.parametrize("kind", list(HALF_CASES))
def test_half_precision_dtype_and_value(kind, name):
    torch = pytest.importorskip("torch")
    jnp = pytest.importorskip("jax.numpy")
    logits, probs, soft, labels, weight = _half_inputs()
    lib, dtype, tol = _half_case(kind)
    floats = [_half(kind, a) for a in (logits, probs, soft)]
    y = {"numpy": np.asarray, "torch": torch.from_numpy, "jax": jnp.asarray}[lib](labels)
    w = _half(kind, weight)
    out = HALF_FUNCTIONS[name](*floats, y, w)
    assert out.dtype == dtype
    assert type(out).__module__.split(".")[0] == type(floats[0]).__module__.split(".")[0]
    # The float32 computation on the same (rounded) values.
    f32 = [_to_float64(a).astype(np.float32) for a in (*floats, w)]
    ref = HALF_FUNCTIONS[name](f32[0], f32[1], f32[2], labels, f32[3])
    assert ref.dtype == np.float32
    np.testing.assert_allclose(_to_float64(out), ref, rtol=tol, atol=tol * 1e-2)


# ---------------------------------------------------------------------------------------------
# Input that is no array of a floating dtype.
# ---------------------------------------------------------------------------------------------


def _complex(lib):
    z = np.array([[1 + 1j, 0.5, 0.0], [0.0, 1.0, 2.0]], dtype=np.complex128)
    return pytest.importorskip("torch").from_numpy(z) if lib.name == "torch" else z


@pytest.mark.parametrize("lib_name", ["numpy", "torch"])
def test_complex_input(lib_name):
    lib = BACKENDS[lib_name]
    z = _complex(lib)
    with pytest.raises(TypeError, match="input"):
        ce.cross_entropy(z, lib_labels(lib))
    with pytest.raises(TypeError, match="input"):
        ce.binary_cross_entropy_with_logits(z, lib_probs(lib))
    with pytest.raises(TypeError, match=r"\bx\b"):
        ce.softmax(z)
    with pytest.raises(TypeError, match=r"\bx\b"):
        ce.logsumexp(z)
    with pytest.raises(TypeError, match=r"\bp\b"):
        ce.entropy(z)


def test_not_an_array():
    with pytest.raises(TypeError, match="input"):
        ce.cross_entropy(object(), [0])
    with pytest.raises(TypeError, match=r"\bx\b"):
        ce.softmax({"a": 1})


@pytest.mark.parametrize(
    "call", [lambda: ce.cross_entropy(None, Y), lambda: ce.cross_entropy(X, None)]
)
def test_none_arrays_raise_type_error_naming_the_argument(call):
    with pytest.raises(TypeError, match=r"(input|target) must be an array"):
        call()


# ---------------------------------------------------------------------------------------------
# Arrays of two libraries.
# ---------------------------------------------------------------------------------------------


def test_mixing_numpy_and_torch():
    torch = pytest.importorskip("torch")
    x_np, x_t = np.zeros((2, 3)), torch.zeros(2, 3, dtype=torch.float64)
    y_np, y_t = np.array([0, 1]), torch.tensor([0, 1])
    with pytest.raises(TypeError, match="input") as info:
        ce.cross_entropy(x_np, y_t)
    assert "target" in str(info.value)
    with pytest.raises(TypeError, match="weight"):
        ce.cross_entropy(x_t, y_t, np.ones(3))
    with pytest.raises(TypeError, match="target"):
        ce.cross_entropy(x_t, y_np)
    with pytest.raises(TypeError, match="target"):
        ce.binary_cross_entropy_with_logits(x_t, np.zeros((2, 3)))
    with pytest.raises(TypeError, match=r"\bq\b"):
        ce.kl_divergence(np.full(3, 1 / 3), torch.full((3,), 1 / 3))
    with pytest.raises(TypeError, match="y"):
        ce.xlogy(x_np, x_t)


def test_numpy_arrays_beside_jax_arrays_join_jax():
    """Labels from a NumPy data loader with JAX logits, as optax takes them: the NumPy arrays
    become JAX arrays (also under jit, closed over); JAX beside torch is still refused."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    x = jnp.asarray([[0.1, 0.2, 0.3], [1.0, -1.0, 0.5]])
    y = np.array([0, 2])
    got = ce.cross_entropy(x, y)
    assert isinstance(got, jax.Array)
    assert float(got) == float(ce.cross_entropy(x, jnp.asarray(y)))
    assert float(jax.jit(lambda z: ce.cross_entropy(z, y))(x)) == pytest.approx(float(got))
    w = np.array([1.0, 2.0, 0.5])
    assert float(ce.cross_entropy(x, y, weight=w)) == float(
        ce.cross_entropy(x, jnp.asarray(y), weight=jnp.asarray(w))
    )
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="same array library"):
        ce.cross_entropy(x, torch.tensor([0, 2]))


def test_torch_tensors_on_other_devices_are_named():
    torch = pytest.importorskip("torch")
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="target is on the device meta, input on cpu"):
        ce.cross_entropy(x, torch.zeros(2, dtype=torch.long, device="meta"))
    with pytest.raises(ValueError, match="weight is on the device meta, input on cpu"):
        ce.cross_entropy(x, torch.tensor([0, 1]), weight=torch.ones(3, device="meta"))
    # a 0-d CPU tensor goes with any device, as in PyTorch
    meta = torch.zeros(2, 3, device="meta")
    assert ce.binary_cross_entropy_with_logits(meta, meta, pos_weight=torch.tensor(2.0)).is_meta


def test_dask_arrays_of_unknown_dimensions_are_refused_by_name():
    """After boolean indexing a Dask array's rows are unknown (``nan``): every loss and metric
    names the argument and the call that makes them known."""
    da = pytest.importorskip("dask.array")
    from crossentropy import metrics

    rng = np.random.default_rng(0)
    x = da.from_array(rng.normal(size=(8, 3)), chunks=(4, 3))
    y = da.from_array(np.array([0, 1, 2, 0, 1, 2, 0, 1]), chunks=4)
    keep = da.from_array(np.arange(8) % 2 == 0, chunks=4)
    p = da.from_array(np.full((8, 3), 1 / 3), chunks=(4, 3))
    w = da.ones(16, chunks=8)[da.from_array(np.arange(16) % 2 == 0, chunks=8)]
    for call, name in (
        (lambda: ce.cross_entropy(x[keep], y[keep]), "input"),
        (lambda: ce.binary_cross_entropy_with_logits(x[keep], x[keep] > 0), "input"),
        (lambda: ce.kl_div(x[keep], x[keep]), "input"),
        (lambda: metrics.log_loss(y[keep], p[keep]), "y_proba"),
        (lambda: metrics.log_loss(y, p, sample_weight=w), "sample_weight"),
        (lambda: metrics.brier_score_loss(y > 0, p[:, 1], sample_weight=w), "sample_weight"),
    ):
        with pytest.raises(ValueError, match=rf"^{name} has unknown dimensions .*compute_chunk"):
            call()
    known = ce.cross_entropy(x[keep].compute_chunk_sizes(), y[keep].compute_chunk_sizes())
    assert float(known) == pytest.approx(
        float(ce.cross_entropy(x.compute()[::2], y.compute()[::2])), rel=1e-15
    )


def test_dask_arrays_with_empty_chunks_give_the_numpy_numbers():
    """A filtered Dask DataFrame's arrays have empty row chunks, on which Dask's ``max`` over
    an axis fails ("zero-size array to reduction operation maximum"): the softmax family,
    RMSE and the calibration metrics raised it; they now give NumPy's numbers."""
    da = pytest.importorskip("dask.array")
    from crossentropy import metrics

    rng = np.random.default_rng(1)
    z = rng.normal(size=(200, 3))
    y = rng.integers(0, 3, 200)
    t = rng.normal(size=(200, 3))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    rows = ((0, 100, 0, 100), (3,))
    zd, td, pd_ = (da.from_array(a, chunks=rows) for a in (z, t, p))
    yd = da.from_array(y, chunks=rows[:1])
    for fn, args, lazy in (
        (ce.cross_entropy, (z, y), (zd, yd)),
        (ce.focal_loss, (z, y), (zd, yd)),
        (ce.rmse_loss, (z, t), (zd, td)),
        (ce.logsumexp, (z,), (zd,)),
        (ce.softmax, (z,), (zd,)),
        (metrics.calibration_error, (y, p), (yd, pd_)),
        (metrics.smooth_calibration_error, (y, p), (yd, pd_)),
        (metrics.log_loss, (y, p), (yd, pd_)),
    ):
        out = fn(*lazy)
        got = np.asarray(out.compute() if hasattr(out, "compute") else out)
        np.testing.assert_allclose(got, np.asarray(fn(*args)), rtol=1e-12, err_msg=fn.__name__)


def test_dask_means_over_nothing_are_numpys_without_a_warning():
    """A mean over zero valid elements on Dask divides at compute time, past the NumPy path's
    silenced 0 / 0: it warned "invalid value encountered in scalar divide". NaN (and inf for
    a nonzero sum over a zero weight) as on NumPy, silently."""
    import warnings

    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, 3))
    ignored, y = np.full(6, -100), np.array([0, 1, 0, 1, 0, 1])
    w = np.array([0.0, 0.0, 1.0])
    cases = [
        ((z, ignored), {}),
        ((z[:0], ignored[:0]), {}),
        ((z, y), {"weight": w}),
        ((z, y), {"weight": w, "label_smoothing": 0.1}),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for args, kw in cases:
            lazy = [da.from_array(a, chunks=3) for a in args]
            lazy_kw = {k: da.from_array(v) if k == "weight" else v for k, v in kw.items()}
            got = float(ce.cross_entropy(*lazy, **lazy_kw).compute())
            want = float(ce.cross_entropy(*args, **kw))
            assert got == want or (np.isnan(got) and np.isnan(want)), (kw, got, want)


@pytest.mark.parametrize(
    ("call", "keyword", "value"),
    [
        ("cross_entropy", "weight", [1.0, 2.0, 0.5]),
        ("cross_entropy", "weight", (1.0, 2.0, 0.5)),
        ("focal_loss", "alpha", [0.2, 0.3, 0.5]),
        ("binary_cross_entropy_with_logits", "pos_weight", [2.0, 1.0, 0.5]),
    ],
)
def test_lists_of_numbers_beside_tensors_compile_in_one_graph(call, keyword, value):
    """A list of Python numbers beside a tensor becomes a tensor without a NumPy detour, which
    ``torch.compile(fullgraph=True)`` could not trace ("Unsupported ndarray attribute access")."""
    torch = pytest.importorskip("torch")
    x = torch.randn(4, 3, dtype=torch.float64)
    y = (
        torch.tensor([0, 2, 1, 1])
        if call != "binary_cross_entropy_with_logits"
        else torch.rand(4, 3)
    )
    fn = getattr(ce, call)
    torch._dynamo.reset()
    compiled = torch.compile(
        lambda a: fn(a, y, **{keyword: value}), fullgraph=True, backend="eager"
    )
    eager = fn(x, y, **{keyword: torch.tensor(value, dtype=torch.float64)})
    torch.testing.assert_close(compiled(x), eager, rtol=0, atol=0)


def test_lists_of_numbers_beside_tensors_keep_numpy_dtypes():
    """The list's dtype is NumPy's for the same numbers, on the tensor's device; a number
    beyond int64 is refused by name, as before."""
    torch = pytest.importorskip("torch")
    from crossentropy._lib.namespace import namespace

    names = ["input", "a", "b", "c", "d"]
    x = torch.zeros(2, device="meta")
    _, out = namespace(x, [1.0, 2], [True, 2], [True, False], (3, 4), names=names)
    want = [torch.float64, torch.int64, torch.bool, torch.int64]
    assert [t.dtype for t in out[1:]] == want
    assert all(t.device.type == "meta" for t in out[1:])
    with pytest.raises(TypeError, match="target must hold numbers"):
        ce.cross_entropy(torch.randn(2, 3), [2**70, 0])


def test_numpy_matrix_reads_as_a_plain_array():
    """A ``np.matrix`` multiplies by ``*`` as a matrix product: its losses were other numbers
    (mean squared error 13.5 for 7.5) and its reductions kept two dimensions."""
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    p = np.array([[0.5, 0.5], [0.9, 0.1]])
    assert ce.mse_loss(np.asmatrix(a), np.zeros((2, 2))) == ce.mse_loss(a, np.zeros((2, 2)))
    np.testing.assert_array_equal(ce.entropy(np.asmatrix(p)), ce.entropy(p))
    assert ce.binary_cross_entropy(p, np.asmatrix(p)) == ce.binary_cross_entropy(p, p)
    got = ce.cross_entropy(np.asmatrix(np.ones((2, 3))), [0, 1], reduction="none")
    assert type(got) is np.ndarray
    assert got.shape == (2,)
