"""``crossentropy._lib.namespace``: the array library, device and dtype policy of every call
(through the public functions): half precision (NumPy's ``ml_dtypes`` included) computed in
float32 and returned in the input's dtype, integers in the default floating dtype, Python
numbers that never promote, and a clear error for arrays of two libraries."""

from __future__ import annotations

import numpy as np
import pytest

import crossentropy as ce
from registry import CASES

ml_dtypes = pytest.importorskip("ml_dtypes")

HALF = {"bfloat16": ml_dtypes.bfloat16, "float16": np.float16}


@pytest.mark.parametrize("half", list(HALF))
@pytest.mark.parametrize("name", list(CASES))
def test_numpy_half_precision_is_computed_in_float32_and_returned_as_given(name, half):
    case = CASES[name]
    dtype = HALF[half]
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
