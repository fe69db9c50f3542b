"""Hostile inputs for every public function (driven by the registry): empty dimensions, every
dtype, NaN and inf, labels out of range, mismatched shapes, non-contiguous views, ``meta``
tensors and Python lists. Each call either raises a ``ValueError`` / ``TypeError`` whose message
names one of the function's arguments, or returns the documented result (NaN propagated, the
same numbers for views and lists, a shape-only result for ``meta``); never a foreign exception,
never a NumPy warning, never a finite number computed from invalid values."""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import crossentropy as ce
from crossentropy import information
from registry import CASES

torch = pytest.importorskip("torch")

LIBS = ["numpy", "torch"]


def _function(name: str) -> Callable[..., Any]:
    return information.cross_entropy if name == "information.cross_entropy" else getattr(ce, name)


def _names(case: Any) -> set[str]:
    """Words an error about this call may name: the function's parameters, and the words the
    checks use for what they check."""
    params = set(inspect.signature(_function(case.function)).parameters)
    return params | {"label", "labels", "probabilities"}


def _convert(arrays: list[Any], lib: str) -> list[Any]:
    if lib == "numpy":
        return arrays
    return [
        torch.as_tensor(a) if isinstance(a, np.ndarray) and a.dtype != object else a for a in arrays
    ]


def _call(case: Any, arrays: list[Any]) -> Any:
    """The call's outcome: its result, or the ``ValueError``/``TypeError`` it raised (which
    must name an argument). Any other exception, or a NumPy ``RuntimeWarning``, fails."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = case.call(*arrays)
        except (ValueError, TypeError) as exc:
            error: Exception = exc
        else:
            error = None  # type: ignore[assignment]
    if error is not None:
        message = str(error)
        named = [n for n in _names(case) if re.search(rf"\b{re.escape(n)}\b", message)]
        assert named, f"{type(error).__name__} names no argument: {message}"
        return error
    leaked = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not leaked, [str(w.message) for w in leaked]
    return out


def _values(out: Any) -> np.ndarray:
    if isinstance(out, torch.Tensor):
        return out.detach().double().numpy()
    return np.asarray(out, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# The hostile variants: each maps a case's arrays to bad ones (None: does not apply).
# ---------------------------------------------------------------------------------------------


def _empty(arrays):
    return [a[:0] if a.ndim and a.shape[0] == arrays[0].shape[0] else a for a in arrays]


def _dtype(dtype):
    def make(arrays, index):
        a = arrays[index]
        if dtype == "object":
            bad = a.astype(object)
        elif dtype == "str":
            bad = a.astype(str)
        else:
            bad = a.astype(dtype)
        return [bad if i == index else b for i, b in enumerate(arrays)]

    return make


def _shape(arrays, index):
    a = arrays[index]
    if a.ndim == 0:
        return None
    bad = a[..., :-1] if a.shape[-1] > 1 else np.concatenate([a, a], axis=-1)
    return [bad if i == index else b for i, b in enumerate(arrays)]


def _nan(value):
    def make(arrays, index):
        a = arrays[index]
        if a.dtype.kind != "f" or a.ndim == 0:
            return None
        bad = a.copy()
        bad[(1,) * a.ndim] = value  # an element every case counts (never ignored or masked)
        return [bad if i == index else b for i, b in enumerate(arrays)]

    return make


def _labels_out_of_range(arrays, index):
    a = arrays[index]
    if a.dtype.kind not in "iu" or a.ndim == 0:
        return None
    bad = a.copy()
    bad[(1,) * a.ndim] = 99
    return [bad if i == index else b for i, b in enumerate(arrays)]


PER_ARGUMENT = {
    "bool": _dtype(np.bool_),
    "int8": _dtype(np.int8),
    "uint8": _dtype(np.uint8),
    "int64": _dtype(np.int64),
    "float16": _dtype(np.float16),
    "complex64": _dtype(np.complex64),
    "object": _dtype("object"),
    "str": _dtype("str"),
    "shape": _shape,
    "nan": _nan(np.nan),
    "inf": _nan(np.inf),
    "-inf": _nan(-np.inf),
    "label-out-of-range": _labels_out_of_range,
}

HOSTILE = [
    (name, kind, index)
    for name, case in CASES.items()
    for kind in PER_ARGUMENT
    for index in range(len(case.arrays))
]


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize(
    ("name", "kind", "index"), HOSTILE, ids=[f"{n}-{k}-arg{i}" for n, k, i in HOSTILE]
)
def test_hostile_argument(name, kind, index, lib):
    case = CASES[name]
    arrays = PER_ARGUMENT[kind](list(case.arrays), index)
    if arrays is None or (lib == "torch" and kind in ("object", "str")):
        return  # PyTorch has no object or string tensors
    out = _call(case, _convert(arrays, lib))
    if isinstance(out, Exception):
        return
    values = _values(out)
    if kind == "nan":
        # A NaN in a counted element shows in the result (or was refused); infinities are
        # values (a -inf logit is a mask) and give what the formula gives.
        assert not np.all(np.isfinite(values)), f"{name}: a NaN input gave {values}"
    elif kind in ("object", "str", "complex64"):
        pytest.fail(f"{name} computed {values} from a {kind} argument")
    elif kind == "label-out-of-range":
        pytest.fail(f"{name} computed {values} from a label out of range")


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("name", list(CASES))
def test_empty_batch(name, lib):
    case = CASES[name]
    out = _call(case, _convert(_empty(list(case.arrays)), lib))
    if not isinstance(out, Exception):
        assert _values(out).size >= 0  # a result: NaN for a mean over nothing, 0 for a sum


@pytest.mark.parametrize("name", list(CASES))
def test_non_contiguous_views_give_the_same_numbers(name):
    case = CASES[name]
    expected = _values(case.call(*case.arrays))
    for lib in LIBS:
        views = []
        for a in _convert(list(case.arrays), lib):
            if a.ndim >= 2:
                twice = np.stack([a, a], axis=-1) if lib == "numpy" else torch.stack([a, a], -1)
                a = twice[..., 0]  # same values, strided
                assert not (a.flags.c_contiguous if lib == "numpy" else a.is_contiguous())
            views.append(a)
        np.testing.assert_allclose(_values(case.call(*views)), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(CASES))
def test_python_lists_give_the_numpy_numbers(name):
    case = CASES[name]
    expected = _values(case.call(*case.arrays))
    got = _values(case.call(*(a.tolist() for a in case.arrays)))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(CASES))
def test_meta_tensors_give_a_shape_only_result(name):
    case = CASES[name]
    meta = [torch.as_tensor(a).to("meta") for a in case.arrays]
    out = _call(case, meta)
    if isinstance(out, Exception):
        return
    expected = case.call(*(torch.as_tensor(a) for a in case.arrays))
    assert out.device.type == "meta"
    assert tuple(out.shape) == tuple(expected.shape)
    assert out.dtype == expected.dtype


def test_an_infinite_logit_leaks_no_numpy_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ce.cross_entropy(np.asarray([[np.inf, 0.0, 1.0]]), [0], reduction="none")
    assert np.isnan(out[0])


@pytest.mark.parametrize("name", list(CASES))
def test_masked_arrays_are_their_values_or_refused_naming_the_argument(name):
    """A NumPy masked array with nothing masked gives its values' numbers; one masked value is
    a ``ValueError`` naming the argument (NumPy's reductions skip it: a mean would count it in
    its divisor but not in its sum)."""
    case = CASES[name]
    expected = _values(case.call(*case.arrays))
    whole = [np.ma.masked_array(a) for a in case.arrays]
    np.testing.assert_allclose(_values(case.call(*whole)), expected, rtol=1e-12, atol=1e-14)
    params = list(inspect.signature(_function(case.function)).parameters)
    for index, a in enumerate(case.arrays):
        if a.ndim == 0:
            continue
        mask = np.zeros(a.shape, dtype=bool)
        mask[(1,) * a.ndim] = True
        arrays = [
            np.ma.masked_array(a, mask=mask) if i == index else b for i, b in enumerate(whole)
        ]
        with pytest.raises(ValueError, match="is a masked array with 1 masked value") as info:
            case.call(*arrays)
        assert str(info.value).split()[0] in params, str(info.value)


def test_masked_dask_arrays_are_refused_naming_the_argument():
    """A Dask masked array's mask is not known without computing it: refused (it was
    ignored, the masked values scored)."""
    da = pytest.importorskip("dask.array")
    p = da.ma.masked_array(da.from_array(np.array([0.2, 0.7, 0.4])), mask=[True, False, False])
    with pytest.raises(ValueError, match=r"^y_proba is a masked Dask array"):
        ce.metrics.log_loss(np.array([0, 1, 1]), p)
    with pytest.raises(ValueError, match=r"^input is a masked Dask array"):
        ce.cross_entropy(da.ma.masked_array(da.from_array(np.zeros((3, 2)))), [0, 1, 1])
