"""Every public function on every backend: same library, dtype and device out as in, and the
same numbers as NumPy in float64."""

from __future__ import annotations

import array_api_compat as compat
import numpy as np
import pytest

import crossentropy as ce
from _helpers import check_on_backend
from registry import CASES, NOT_COMPUTATIONS, covered_functions


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_library_dtype_device_and_numbers(backend, name, dtype):
    case = CASES[name]
    check_on_backend(backend, case.call, case.arrays, dtype)
    inputs = [backend.asarray(a) for a in case.arrays]
    assert compat.device(case.call(*inputs)) == compat.device(inputs[0])


def test_every_public_function_is_covered():
    # class_weights returns the default floating dtype (tests/test_weights.py covers it); the
    # validation settings take no arrays.
    functions = {n for n in ce.__all__ if callable(getattr(ce, n))}
    assert functions - NOT_COMPUTATIONS <= covered_functions()
