"""The validation policy (``crossentropy._lib.policy``), through the public API: when array
values are read, per call (``validate=``), per block (``validation``) and per process
(``set_validation``); what happens where they are not."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import crossentropy as ce

X = np.asarray([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
BAD = np.asarray([1, 7])  # label 7 of 3 classes


def test_auto_checks_concrete_arrays():
    assert ce.get_validation() == "auto"
    with pytest.raises(ValueError, match="label 7 at index"):
        ce.cross_entropy(X, BAD)


def test_false_skips_the_checks_and_the_loss_is_nan():
    assert np.isnan(ce.cross_entropy(X, BAD, validate=False))
    out = ce.cross_entropy(X, BAD, reduction="none", validate=False)
    assert np.isfinite(out[0])
    assert np.isnan(out[1])


def test_a_block_and_the_process_default():
    with ce.validation(False):
        assert ce.get_validation() is False
        assert np.isnan(ce.cross_entropy(X, BAD))
        with pytest.raises(ValueError, match="label 7"):
            ce.cross_entropy(X, BAD, validate=True)  # the keyword wins
    assert ce.get_validation() == "auto"
    previous = ce.set_validation(False)
    try:
        assert previous == "auto"
        assert np.isnan(ce.cross_entropy(X, BAD))
    finally:
        ce.set_validation(previous)


def test_a_block_is_per_thread():
    seen = []
    with ce.validation(False):
        thread = threading.Thread(target=lambda: seen.append(ce.get_validation()))
        thread.start()
        thread.join()
    assert seen == ["auto"]


@pytest.mark.parametrize("bad", ["yes", 1, None, "AUTO"])
def test_modes_are_checked(bad):
    with pytest.raises(ValueError, match="validate"):
        ce.cross_entropy(X, [0, 1], validate=bad) if bad is not None else ce.set_validation(bad)
    with pytest.raises(ValueError, match="validate"), ce.validation(bad):
        pass


def test_lazy_arrays_are_read_only_with_true():
    da = pytest.importorskip("dask.array")
    x, y = da.from_array(X), da.from_array(BAD)
    assert np.isnan(ce.cross_entropy(x, y).compute())  # "auto": not read, NaN
    with pytest.raises(ValueError, match="label 7"):
        ce.cross_entropy(x, y, validate=True)


def test_probabilities_follow_the_policy_too():
    p = np.asarray([0.5, 1.5])
    with pytest.raises(ValueError, match="input must hold probabilities"):
        ce.binary_cross_entropy(p, np.asarray([1.0, 0.0]))
    out = ce.binary_cross_entropy(p, np.asarray([1.0, 0.0]), validate=False, reduction="none")
    assert np.isnan(out[1])


def test_jax_tracers_and_torch_transforms_are_never_read():
    jax = pytest.importorskip("jax")
    torch = pytest.importorskip("torch")
    y = jax.numpy.asarray(BAD)
    assert np.isnan(float(jax.jit(lambda x: ce.cross_entropy(x, y))(jax.numpy.asarray(X))))
    # arrays closed over by a jitted function are concrete, but what is computed from them is
    # traced: not read either (a traced hyperparameter, or nothing traced at all)
    xj, good = jax.numpy.asarray(X), jax.numpy.asarray([1, 2])
    smoothed = jax.jit(lambda s: ce.cross_entropy(xj, good, label_smoothing=s))(0.1)
    assert float(smoothed) == pytest.approx(float(ce.cross_entropy(xj, good, label_smoothing=0.1)))
    assert np.isnan(float(jax.jit(lambda: ce.cross_entropy(xj, y))()))
    focal = jax.jit(lambda g: ce.focal_loss(xj, good, gamma=g))(2.0)
    assert float(focal) == pytest.approx(float(ce.focal_loss(xj, good, gamma=2.0)))
    x = torch.tensor(X)
    y = torch.tensor([1, 2])
    got = torch.func.vmap(lambda a, b: ce.cross_entropy(a[None], b[None], validate=True))(x, y)
    torch.testing.assert_close(got, torch.nn.functional.cross_entropy(x, y, reduction="none"))


def _validate_warnings(call):
    import warnings

    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        out = call()
    return out, [str(w.message) for w in got if "validate=True" in str(w.message)]


def test_validate_true_under_jax_jit_says_the_check_is_skipped():
    jax = pytest.importorskip("jax")
    x, y = jax.numpy.zeros((3, 4)), jax.numpy.array([0, 1, 9])
    out, said = _validate_warnings(
        lambda: jax.jit(lambda a, b: ce.cross_entropy(a, b, axis=-1, validate=True))(x, y)
    )
    assert np.isnan(float(out))
    assert len(said) == 1
    assert "JAX" in said[0]
    import warnings

    with warnings.catch_warnings(record=True) as got:  # told at the caller's line
        warnings.simplefilter("always")
        jax.jit(lambda a, b: ce.cross_entropy(a, b, axis=-1, validate=True))(x, y + 0)
    assert [w.filename for w in got if "validate=True" in str(w.message)] == [__file__]
    quiet = jax.jit(lambda a, b: ce.cross_entropy(a, b, axis=-1))
    _, said = _validate_warnings(lambda: quiet(x, y))
    assert said == []  # "auto" skips quietly, as documented
    with pytest.raises(ValueError, match="target"):
        ce.cross_entropy(x, y, axis=-1, validate=True)  # eager: checked


def test_validate_true_under_torch_func_says_the_check_is_skipped_compile_stays_quiet():
    """Under torch.func (vmap, grad) the values are not read: validate=True says so, at the
    caller's line (as under jax.jit); under torch.compile the check is skipped without a
    warning (a warning would break the compiled graph)."""
    import warnings

    torch = pytest.importorskip("torch")
    from torch.func import grad, vmap

    p, half = torch.tensor([0.5, 1.5, 0.2]), torch.full((3,), 0.5)
    out, said = _validate_warnings(
        lambda: vmap(lambda a: ce.binary_cross_entropy(a, half[0], validate=True))(p)
    )
    assert torch.isnan(out[1])  # not checked
    assert len(said) == 1
    assert "torch.func" in said[0]
    with warnings.catch_warnings(record=True) as got:  # told at the caller's line
        warnings.simplefilter("always")
        grad(lambda a: ce.binary_cross_entropy(a, half, validate=True))(p.clamp(max=1))
    assert [w.filename for w in got if "validate=True" in str(w.message)] == [__file__]
    _, said = _validate_warnings(lambda: vmap(lambda a: ce.binary_cross_entropy(a, half[0]))(p))
    assert said == []  # "auto" skips quietly, as documented
    torch._dynamo.reset()
    compiled = torch.compile(
        lambda a: ce.binary_cross_entropy(a, half, validate=True), fullgraph=True, backend="eager"
    )
    _, said = _validate_warnings(lambda: compiled(p.clamp(max=1)))
    assert said == []
    torch._dynamo.reset()
