r"""Class weights for imbalanced data, ready for ``cross_entropy(weight=...)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import array_api_compat as compat
import numpy as np

from crossentropy._lib.checks import check_choice, check_number, plain
from crossentropy._lib.host import to_host
from crossentropy._lib.namespace import Array, default_float, device_of, is_array, is_numpy

__all__ = ["class_weights"]

_METHODS = ("balanced", "inverse", "inverse_sqrt", "effective")


def _host_labels(y: Any, name: str = "y") -> np.ndarray[Any, Any]:
    # Dask computes here: counting labels is preprocessing, not loss code
    host = to_host(y, name) if is_array(y) else np.asarray(y)
    if host.dtype.kind in "Vc":  # records (each counted as a label) and complex numbers
        raise TypeError(f"{name} must hold labels (numbers or text); got dtype {host.dtype}")
    return host


def class_weights(
    y: Array | Sequence[Any],
    method: Literal["balanced", "inverse", "inverse_sqrt", "effective"] = "balanced",
    *,
    classes: Sequence[Any] | Array | None = None,
    beta: float = 0.999,
) -> Array:
    r"""Per-class weights from the label counts :math:`n_c` of ``y`` (:math:`n` labels, :math:`C`
    classes).

    .. math::

        \text{balanced: } w_c = \frac{n}{C\, n_c} \qquad
        \text{inverse: } w_c = \frac{n}{n_c} \qquad
        \text{inverse\_sqrt: } w_c = \sqrt{\frac{n}{n_c}}

    and the effective number of samples (Cui et al. 2019),

    .. math::

        w_c \propto \frac{1 - \beta}{1 - \beta^{n_c}}, \qquad \sum_c w_c = C .

    ``"balanced"`` is :func:`sklearn.utils.class_weight.compute_class_weight` ``("balanced")``.
    With ``"mean"`` reduction the overall scale of the weights cancels; only ratios matter.

    Parameters
    ----------
    y : array_like
        Labels of any type (integers, strings, ...), any array library, of any shape (a
        segmentation mask's pixels), no NaN.
    method : {"balanced", "inverse", "inverse_sqrt", "effective"}, default "balanced"
        The weighting rule.
    classes : sequence, optional
        The classes, in the order of the returned vector (default: the sorted distinct labels
        of ``y``). For integer labels pass ``range(C)`` so that entry ``c`` weighs class ``c``.
        Every class must occur in ``y`` and every label must be a class.
    beta : float, default 0.999
        :math:`\beta \in [0, 1)` of ``"effective"``.

    Returns
    -------
    array
        Weights of shape ``(C,)``: in ``y``'s array library and device (the default floating
        dtype) for numeric arrays, a NumPy float64 array otherwise.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.class_weights([0, 0, 0, 1])
    array([0.66666667, 2.        ])
    >>> ce.class_weights(["cat", "dog", "dog"], "inverse")
    array([3. , 1.5])
    """
    check_choice(method, "method", _METHODS)
    b = check_number(beta, "beta", low=0.0, high=1.0, high_open=True)
    host = _host_labels(y)
    if host.ndim == 0:
        raise TypeError(f"y must be an array or sequence of labels; got {type(y).__name__}")
    labels = host.reshape(-1)  # (a mask of any shape: its pixels' labels)
    if labels.size == 0:
        raise ValueError("y must hold at least one label; got an empty array")
    missing = labels != labels  # NaN, of a float or an object array (None is refused below)
    if bool(np.any(missing)):
        raise ValueError(f"y holds NaN at index {int(np.argmax(missing))}: not a label")
    try:
        present, counts_present = np.unique(labels, return_counts=True)
    except TypeError:  # (None beside text, text beside numbers)
        kinds = sorted({type(v).__name__ for v in labels.tolist()})
        raise TypeError(f"y must hold labels of one kind; got {', '.join(kinds)}") from None
    if classes is None:
        cls, counts = present, counts_present
    else:
        cls = _host_labels(classes, "classes").reshape(-1)
        if cls.size == 0 or np.unique(cls).size != cls.size:
            raise ValueError("classes must be a non-empty sequence of distinct labels")
        unknown = np.setdiff1d(present, cls)
        if unknown.size:
            label = plain(unknown[0])
            raise ValueError(
                f"y holds label {label!r}, which is not among classes (leave out labels to "
                f"ignore first, such as a mask's: y[y != {label!r}])"
            )
        lookup = dict(zip(present.tolist(), counts_present.tolist(), strict=True))
        counts = np.asarray([lookup.get(c, 0) for c in cls.tolist()], dtype=np.int64)
        if (counts == 0).any():
            missing = cls[int(np.argmax(counts == 0))]
            raise ValueError(
                f"class {plain(missing)!r} has no samples in y; its weight would be inf"
            )
    n = float(labels.size)
    c = float(len(cls))
    nc = counts.astype(np.float64)
    if method == "balanced":
        w = n / (c * nc)
    elif method == "inverse":
        w = n / nc
    elif method == "inverse_sqrt":
        w = np.sqrt(n / nc)
    else:
        # 1 - b**n as -expm1(n log b), log b as log1p(b - 1) (b - 1 is exact near 1): no
        # cancellation as b nears 1 (the direct form lost 1e-10 of the weights)
        with np.errstate(divide="ignore"):  # (b below 2**-53: log1p(-1) = -inf, b**n = 0)
            w = (1.0 - b) / -np.expm1(nc * np.log1p(b - 1.0)) if b > 0 else np.ones_like(nc)
        w = w * (c / w.sum())
    if is_array(y) and not is_numpy(y) and labels.dtype.kind in "iubf":
        xp = compat.array_namespace(y)
        return xp.asarray(w, dtype=default_float(xp, y), device=device_of(y))
    return w
