"""``crossentropy._lib.axes``: the ``axis`` argument of the special functions, the information
functions and the losses. An axis out of range raises ``ValueError`` and an axis that is not an
integer ``TypeError``, both naming ``axis``."""

from __future__ import annotations

import pytest

import crossentropy as ce
from _helpers import lib_labels, lib_logits, lib_probs


@pytest.mark.parametrize("axis", [2, -3, 10])
def test_axis_out_of_range(lib, axis):
    x = lib_logits(lib)
    for fn in (ce.softmax, ce.log_softmax, ce.logsumexp):
        with pytest.raises(ValueError, match="axis"):
            fn(x, axis=axis)
    for fn in (ce.entropy, ce.perplexity):
        with pytest.raises(ValueError, match="axis"):
            fn(lib_probs(lib), axis=axis)
    with pytest.raises(ValueError, match="axis"):
        ce.kl_divergence(lib_probs(lib), lib_probs(lib), axis=axis)
    with pytest.raises(ValueError, match="axis"):
        ce.cross_entropy(x, lib_labels(lib), axis=axis)


@pytest.mark.parametrize("axis", [1.0, "1", None])
def test_axis_wrong_type(lib, axis):
    with pytest.raises(TypeError, match="axis"):
        ce.softmax(lib_logits(lib), axis=axis)
    with pytest.raises(TypeError, match="axis"):
        ce.logsumexp(lib_logits(lib), axis=axis)
    if axis is not None:  # entropy(axis=None) is the entropy of the whole array
        with pytest.raises(TypeError, match="axis"):
            ce.entropy(lib_probs(lib), axis=axis)
