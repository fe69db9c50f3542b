"""``class_weights``: scikit-learn's "balanced" rule, the inverse-frequency and effective-number
(Cui et al. 2019) rules against their formulas, use as ``cross_entropy(weight=...)``, array
libraries, and bad input.
"""

from __future__ import annotations

import math
import re
import warnings
import zlib

import numpy as np
import pytest

import crossentropy as ce

torch = pytest.importorskip("torch")
F = pytest.importorskip("torch.nn.functional")

WORDS = np.array(["cat", "dog", "emu", "yak", "ant", "bee", "owl", "Cat", "", "zebra"])


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _np(a):
    if isinstance(a, torch.Tensor):
        a = a.detach().numpy()
    return np.asarray(a)


def _labels(rng, kind):
    """Random labels of one kind; every class drawn at least once."""
    n_classes = int(rng.integers(1, 9))
    if kind == "int":
        pool = np.sort(rng.choice(50, size=n_classes, replace=False))
    elif kind == "negative":
        pool = np.sort(rng.choice(np.arange(-20, 5), size=n_classes, replace=False))
    else:
        pool = np.sort(rng.choice(WORDS, size=n_classes, replace=False))
    p = rng.dirichlet(np.full(n_classes, 0.5))
    extra = rng.choice(pool, size=int(rng.integers(0, 200)), p=p)
    y = np.concatenate([pool, extra])
    rng.shuffle(y)
    return y, pool


def _counts(y, classes):
    y = np.asarray(y)
    return np.array([np.sum(y == c) for c in classes], dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# "balanced" is scikit-learn's
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["int", "negative", "str"])
@pytest.mark.parametrize("seed", range(12))
def test_balanced_is_sklearn(kind, seed):
    compute_class_weight = pytest.importorskip("sklearn.utils.class_weight").compute_class_weight
    rng = _rng("balanced", kind, seed)
    y, pool = _labels(rng, kind)
    ref = compute_class_weight("balanced", classes=np.unique(y), y=y)
    got = ce.class_weights(y)
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, ref)
    # same from a Python list, and with method named explicitly
    np.testing.assert_array_equal(ce.class_weights(y.tolist(), "balanced"), ref)
    # explicit classes in a custom order: weights come in that order
    order = rng.permutation(pool)
    ref_order = compute_class_weight("balanced", classes=order, y=y)
    np.testing.assert_array_equal(ce.class_weights(y, classes=order), ref_order)
    np.testing.assert_array_equal(ce.class_weights(y, classes=list(order)), ref_order)


def test_balanced_docstring_example():
    # sklearn 1.9.1: compute_class_weight("balanced", classes=[0, 1], y=[0, 0, 0, 1])
    np.testing.assert_array_equal(ce.class_weights([0, 0, 0, 1]), [2 / 3, 2.0])
    np.testing.assert_array_equal(ce.class_weights([0, 0, 0, 1], classes=[1, 0]), [2.0, 2 / 3])


def test_integer_classes_range_gives_weight_per_index():
    y = np.array([2, 2, 0, 1, 2, 2, 1])
    got = ce.class_weights(y, classes=range(3))
    np.testing.assert_array_equal(got, 7 / (3 * np.array([1.0, 2.0, 4.0])))


# ---------------------------------------------------------------------------------------------
# the other rules against their formulas
# ---------------------------------------------------------------------------------------------


def _inverse(y, classes):
    return len(y) / _counts(y, classes)


def _effective(y, classes, beta):
    """Cui et al.'s weights in 50-digit decimals of the float beta (the float formula loses
    digits to 1 - beta**n as beta nears 1)."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = 50
        b = Decimal(beta)
        w = [(1 - b) / (1 - b ** int(n)) for n in _counts(y, classes)]
        return np.array([float(v * len(classes) / sum(w)) for v in w])


@pytest.mark.parametrize("kind", ["int", "negative", "str"])
@pytest.mark.parametrize("seed", range(6))
def test_inverse_and_inverse_sqrt(kind, seed):
    rng = _rng("inverse", kind, seed)
    y, pool = _labels(rng, kind)
    for classes in (None, rng.permutation(pool)):
        cls = pool if classes is None else classes
        inv = _inverse(y, cls)
        np.testing.assert_allclose(ce.class_weights(y, "inverse", classes=classes), inv, rtol=1e-15)
        np.testing.assert_allclose(
            ce.class_weights(y, "inverse_sqrt", classes=classes), np.sqrt(inv), rtol=1e-15
        )
        # balanced = inverse / C
        np.testing.assert_allclose(
            ce.class_weights(y, "balanced", classes=classes), inv / len(cls), rtol=1e-15
        )


@pytest.mark.parametrize("kind", ["int", "negative", "str"])
@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99, 0.999, 0.9999])
@pytest.mark.parametrize("seed", range(3))
def test_effective_number(kind, beta, seed):
    rng = _rng("effective", kind, beta, seed)
    y, pool = _labels(rng, kind)
    got = ce.class_weights(y, "effective", beta=beta)
    np.testing.assert_allclose(got, _effective(y, pool, beta), rtol=1e-13)
    assert got.sum() == pytest.approx(len(pool), rel=1e-14)
    order = rng.permutation(pool)
    np.testing.assert_allclose(
        ce.class_weights(y, "effective", classes=order, beta=beta),
        _effective(y, order, beta),
        rtol=1e-13,
    )


@pytest.mark.parametrize("beta", [0.999999999, 1 - 2**-52, 0.9999, 1e-3, 1e-300])
def test_effective_number_stays_exact_as_beta_nears_1(beta):
    """Against 50-digit decimals of the same float beta: 1 - beta**n cancelled near 1 (2.5e-10
    to 7.5e-10 off at beta = 0.999999999)."""
    y = np.repeat([0, 1, 2], [10**6, 1, 3])
    want = _effective(y, [0, 1, 2], beta)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (log1p(-1) of a beta below 2**-53: no warning)
        got = ce.class_weights(y, "effective", beta=beta)
    np.testing.assert_allclose(got, want, rtol=4e-16)


def test_effective_default_beta_is_0_999():
    y = [0] * 5 + [1] * 50 + [2] * 500
    np.testing.assert_allclose(
        ce.class_weights(y, "effective"), _effective(y, [0, 1, 2], 0.999), rtol=1e-13
    )


def test_effective_small_beta_tends_to_equal_weights():
    y = [0] * 3 + [1] * 40 + [2] * 700 + [3]
    deviations = []
    for beta in (1e-2, 1e-4, 1e-8, 1e-300):
        w = ce.class_weights(y, "effective", beta=beta)
        assert w.sum() == pytest.approx(4.0, rel=1e-14)
        deviations.append(np.max(np.abs(w - 1.0)))
        assert deviations[-1] <= 2 * beta
    assert deviations == sorted(deviations, reverse=True)
    assert deviations[0] > 0  # not equal before the limit
    np.testing.assert_array_equal(ce.class_weights(y, "effective", beta=0.0), np.ones(4))
    np.testing.assert_array_equal(ce.class_weights(y, "effective", beta=0), np.ones(4))


def test_effective_beta_near_one_tends_to_inverse_frequency():
    y = [0] * 3 + [1] * 40 + [2] * 700
    inv = _inverse(y, [0, 1, 2])
    inv = inv * 3 / inv.sum()
    w = ce.class_weights(y, "effective", beta=1 - 1e-9)
    np.testing.assert_allclose(w, inv, rtol=1e-5)


def test_single_class():
    for method in ("balanced", "inverse", "inverse_sqrt", "effective"):
        np.testing.assert_allclose(ce.class_weights(["a"] * 7, method), [1.0], rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# use in cross_entropy
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["balanced", "inverse", "inverse_sqrt", "effective"])
@pytest.mark.parametrize("seed", range(3))
def test_as_cross_entropy_weight(method, seed):
    rng = _rng("ce", method, seed)
    c = int(rng.integers(2, 7))
    n = int(rng.integers(c, 40))
    y = np.concatenate([np.arange(c), rng.integers(0, c, size=n - c)])
    rng.shuffle(y)
    x = rng.standard_normal((n, c)) * 2
    w = ce.class_weights(y, method, classes=range(c))
    assert w.shape == (c,)
    got = ce.cross_entropy(x, y, weight=w)
    m = x.max(axis=1)
    lse = m + np.log(np.exp(x - m[:, None]).sum(axis=1))
    per = lse - x[np.arange(n), y]
    manual = np.sum(w[y] * per) / np.sum(w[y])
    np.testing.assert_allclose(got, manual, rtol=1e-12)
    # and with torch labels the weights are a torch tensor that F.cross_entropy accepts
    yt = torch.from_numpy(y)
    wt = ce.class_weights(yt, method, classes=range(c))
    assert isinstance(wt, torch.Tensor)
    assert wt.shape == (c,)
    ref = F.cross_entropy(torch.from_numpy(x), yt, weight=wt.double())
    np.testing.assert_allclose(_np(ref), manual, rtol=1e-6)
    np.testing.assert_allclose(
        _np(ce.cross_entropy(torch.from_numpy(x), yt, weight=wt.double())), _np(ref), rtol=1e-12
    )


def test_mean_cancels_the_scale_of_the_weights():
    rng = _rng("scale")
    y = rng.integers(0, 4, size=30)
    y[:4] = np.arange(4)
    x = rng.standard_normal((30, 4))
    bal = ce.cross_entropy(x, y, weight=ce.class_weights(y, "balanced", classes=range(4)))
    inv = ce.cross_entropy(x, y, weight=ce.class_weights(y, "inverse", classes=range(4)))
    np.testing.assert_allclose(bal, inv, rtol=1e-13)
    plain = ce.cross_entropy(x, y)
    assert not np.isclose(bal, plain)


# ---------------------------------------------------------------------------------------------
# array libraries
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["balanced", "inverse", "inverse_sqrt", "effective"])
@pytest.mark.parametrize("label_dtype", [np.int64, np.int32])
def test_backends_numeric_labels(backend, method, label_dtype):
    rng = _rng("backend", method)
    y = np.concatenate([np.arange(5), rng.integers(0, 5, size=40)])
    ref = ce.class_weights(y, method)
    got = ce.class_weights(backend.asarray(y, label_dtype), method)
    assert backend.is_native(got), type(got)
    out = backend.to_numpy(got)
    # the library's default floating dtype: float32 for torch, float64 elsewhere (jax x64)
    expected = np.float32 if backend.name == "torch" else np.float64
    assert out.dtype == expected
    assert out.shape == (5,)
    np.testing.assert_allclose(out, ref, rtol=1e-6 if expected == np.float32 else 1e-15)
    # explicit classes, given in the same library, in a custom order
    order = np.array([3, 0, 4, 1, 2])
    got = ce.class_weights(backend.asarray(y, label_dtype), method, classes=backend.asarray(order))
    assert backend.is_native(got)
    np.testing.assert_allclose(
        backend.to_numpy(got),
        ce.class_weights(y, method, classes=order),
        rtol=1e-6 if expected == np.float32 else 1e-15,
    )


def test_torch_result_follows_default_dtype():
    y = torch.tensor([0, 1, 1, 2])
    previous = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        got = ce.class_weights(y)
    finally:
        torch.set_default_dtype(previous)
    assert got.dtype == torch.float64
    np.testing.assert_array_equal(got.numpy(), ce.class_weights([0, 1, 1, 2]))


def test_bool_labels_come_back_in_their_library():
    y = torch.tensor([True, False, False, False])
    got = ce.class_weights(y)
    assert isinstance(got, torch.Tensor)
    np.testing.assert_allclose(got.numpy(), [2 / 3, 2.0], rtol=1e-6)  # [False, True]


def test_float_labels_come_back_in_their_library():
    # Docstring: "in y's array library and device ... for numeric arrays"; float labels
    # (e.g. 0./1. targets of a binary task) are numeric.
    y = torch.tensor([0.0, 1.0, 1.0, 1.0])
    got = ce.class_weights(y)
    assert isinstance(got, torch.Tensor), type(got)
    np.testing.assert_allclose(_np(got), [2.0, 2 / 3], rtol=1e-6)


@pytest.mark.parametrize(
    "y",
    [
        ["cat", "dog", "dog"],
        ("cat", "dog", "dog"),
        np.array(["cat", "dog", "dog"]),
        np.array(["cat", "dog", "dog"], dtype=object),
        [0, 1, 1],
        np.array([0, 1, 1]),
        [True, False, False],
    ],
    ids=["str-list", "str-tuple", "str-array", "object-array", "int-list", "int-array", "bool"],
)
def test_strings_and_lists_give_numpy(y):
    got = ce.class_weights(y, "inverse")
    assert type(got) is np.ndarray
    assert got.dtype == np.float64
    expected = [3.0, 1.5] if not isinstance(y[0], bool | np.bool_) else [1.5, 3.0]
    np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

Y = [0, 1, 1, 2]


@pytest.mark.parametrize("method", ["Balanced", "inverse-sqrt", "", None, 1, "effective_number"])
def test_unknown_method(method):
    with pytest.raises(ValueError, match="method"):
        ce.class_weights(Y, method)


@pytest.mark.parametrize(
    "y",
    [[], np.array([], dtype=np.int64), np.zeros((0, 3), dtype=np.int64), torch.empty(0)],
    ids=["list", "array", "array-0x3", "torch"],
)
def test_empty_y(y):
    with pytest.raises(ValueError, match=r"\by\b"):
        ce.class_weights(y)


@pytest.mark.parametrize("method", ["balanced", "inverse", "inverse_sqrt", "effective"])
def test_class_without_samples(method):
    with pytest.raises(ValueError, match=r"3.*\by\b"):
        ce.class_weights(Y, method, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"'emu'.*\by\b"):
        ce.class_weights(["cat", "dog"], method, classes=["dog", "emu", "cat"])
    with pytest.raises(ValueError, match=r"3.*\by\b"):
        ce.class_weights(torch.tensor(Y), method, classes=range(4))


@pytest.mark.parametrize("method", ["balanced", "inverse", "inverse_sqrt", "effective"])
def test_label_not_in_classes(method):
    with pytest.raises(ValueError, match=r"2.*classes"):
        ce.class_weights(Y, method, classes=[0, 1])
    with pytest.raises(ValueError, match=r"'emu'.*classes"):
        ce.class_weights(["cat", "emu"], method, classes=["cat", "dog"])
    with pytest.raises(ValueError, match=r"-1.*classes"):
        ce.class_weights(torch.tensor([-1, 0, 1]), method, classes=range(2))


@pytest.mark.parametrize(
    ("y", "classes"),
    [
        (Y, [0, 1, 2, 1]),
        (["a", "b"], ["a", "b", "a"]),
        (Y, np.array([2, 2, 0, 1])),
        (torch.tensor(Y), torch.tensor([0, 1, 2, 0])),
        (Y, []),
    ],
    ids=["int", "str", "array", "torch", "empty"],
)
def test_bad_classes(y, classes):
    with pytest.raises(ValueError, match="classes"):
        ce.class_weights(y, classes=classes)


@pytest.mark.parametrize(
    ("beta", "exc"),
    [
        (1.0, ValueError),
        (1, ValueError),
        (1.5, ValueError),
        (-0.1, ValueError),
        (-1e-300, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        ("0.9", TypeError),
        (None, TypeError),
        (True, TypeError),
    ],
)
def test_bad_beta(beta, exc):
    with pytest.raises(exc, match="beta"):
        ce.class_weights(Y, "effective", beta=beta)


@pytest.mark.parametrize("bad", [None, 3, {"a": 1}])
def test_class_weights_need_a_sequence_of_labels(bad):
    with pytest.raises(TypeError, match="y must be"):
        ce.class_weights(bad)


def test_a_class_without_samples_is_named_plainly():
    with pytest.raises(ValueError, match=r"class 2 has no samples in y"):
        ce.class_weights(np.array([0, 1, 1]), "balanced", classes=[0, 1, 2])


def test_class_weights_of_traced_labels_say_what_to_do():
    jax = pytest.importorskip("jax")
    y = jax.numpy.array([0, 1, 2, 1])
    with pytest.raises(TypeError, match=r"^y is traced by JAX"):
        jax.jit(lambda a: ce.class_weights(a, "balanced", classes=[0, 1, 2]))(y)
    np.testing.assert_allclose(ce.class_weights(y, "balanced"), [4 / 3, 2 / 3, 4 / 3], rtol=1e-6)


def test_nan_labels_are_refused_and_masks_are_their_pixels():
    """NaN was counted as a class (of a float or an object array); labels of any shape (a
    segmentation mask) are their elements, as scikit-learn's of the flattened array."""
    sk = pytest.importorskip("sklearn.utils.class_weight")
    for y in (np.array([0.0, 1, np.nan, np.nan]), np.array([0, 1, np.nan, np.nan], dtype=object)):
        with pytest.raises(ValueError, match="y holds NaN at index 2: not a label"):
            ce.class_weights(y)
    with pytest.raises(TypeError, match="y must hold labels of one kind; got NoneType, str"):
        ce.class_weights(np.array(["a", None], dtype=object))
    mask = np.random.default_rng(0).integers(0, 3, (2, 4, 4))
    want = sk.compute_class_weight("balanced", classes=np.arange(3), y=mask.reshape(-1))
    np.testing.assert_allclose(ce.class_weights(mask), want, rtol=1e-15)


def test_a_label_outside_classes_is_named_as_a_number():
    """A segmentation mask's ignored label (255) outside ``classes`` is named as the number it
    is (was NumPy's ``np.int64(255)``), with how to leave it out."""
    mask = np.array([[0, 1, 255], [2, 2, 255]], dtype=np.uint8)
    with pytest.raises(
        ValueError, match=re.escape("y holds label 255, which is not among classes (leave out ")
    ) as info:
        ce.class_weights(mask, "balanced", classes=range(3))
    assert str(info.value).endswith("such as a mask's: y[y != 255])")
    with pytest.raises(ValueError, match=re.escape("y[y != 'eel']")):
        ce.class_weights(np.array(["cat", "dog", "eel"]), "balanced", classes=["cat", "dog"])
    np.testing.assert_allclose(
        ce.class_weights(mask[mask != 255], "balanced", classes=range(3)), [4 / 3, 4 / 3, 2 / 3]
    )


def test_records_and_complex_numbers_are_no_labels():
    """A structured array's records were counted as labels, complex numbers as classes."""
    records = np.array([(0, 1.0), (1, 2.0), (0, 1.0)], dtype=[("a", "i8"), ("b", "f8")])
    with pytest.raises(TypeError, match=r"^y must hold labels \(numbers or text\); got dtype"):
        ce.class_weights(records)
    with pytest.raises(TypeError, match=r"^y must hold labels .*complex128"):
        ce.class_weights(np.array([1 + 2j, 3j]))
    with pytest.raises(TypeError, match=r"^classes must hold labels"):
        ce.class_weights([0, 1], classes=np.array([0j, 1j]))
