r"""The Kullback-Leibler divergence loss with PyTorch's argument order ``(log q, p)``."""

from __future__ import annotations

import math
import warnings

from crossentropy import _formulas as fm
from crossentropy._lib.checks import check_log_probabilities, check_unit_interval, shape_str
from crossentropy._lib.namespace import (
    Array,
    as_loss_float,
    namespace,
    quiet,
    restore_dtype,
    with_target,
)
from crossentropy._lib.policy import Validate, reads, torch_compiling
from crossentropy._lib.reduction import Reduction, reduce
from crossentropy.losses.options import DivergenceOptions

__all__ = ["MEAN_WARNING", "divergence_loss", "kl_div", "warn_mean"]

#: The warning of ``reduction="mean"`` (PyTorch's ``kl_div`` warns of the same pitfall).
MEAN_WARNING = (
    "kl_div with reduction='mean' divides the summed loss by the number of elements (batch "
    "size times support size), which is not the KL divergence; reduction='batchmean' divides "
    "by the batch size only and gives the KL divergence per sample"
)


def kl_div(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    log_target: bool = False,
    *,
    empty_mean: float = math.nan,
    validate: Validate | None = None,
) -> Array:
    r"""Kullback-Leibler divergence loss with PyTorch's argument order ``(log q, p)``.

    .. math::

        \ell = t (\log t - x) \quad\text{or, with } \texttt{log\_target}, \quad
        \ell = e^{t} (t - x)

    element-wise, where ``input`` :math:`x = \log q` holds log-probabilities and ``target``
    :math:`t` the true probabilities (:math:`0 \log 0 = 0`, with ``log_target`` too: a
    log-target of ``-inf`` contributes 0 where PyTorch gives NaN). Follows
    :func:`torch.nn.functional.kl_div` (same positional parameters and numbers):
    ``reduction="mean"`` divides by the number of elements; ``"batchmean"`` divides the sum by
    the batch size and is the true KL divergence per sample. For
    :math:`D_{\mathrm{KL}}(p \| q)` on probabilities in ``(p, q)`` order see
    :func:`crossentropy.kl_divergence`. As PyTorch's, ``reduction="mean"`` (the default)
    warns (a ``UserWarning``, except while ``torch.compile`` traces) that it is not the
    divergence per sample.

    Parameters
    ----------
    input : array_like
        Log-probabilities :math:`\log q`.
    target : array_like
        Probabilities :math:`p` (log-probabilities with ``log_target=True``), broadcast with
        the input.
    size_average, reduce : bool, optional
        Deprecated (PyTorch's legacy arguments): use ``reduction``.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        How the element losses are combined.
    log_target : bool, default False
        Whether ``target`` holds log-probabilities.
    empty_mean : float, default nan
        The mean of an empty input.
    validate : {None, "auto", True, False}
        When target probabilities (in [0, 1]) or log-targets (<= 0) are checked (None: the
        mode in force; see :func:`crossentropy.validation`).

    Examples
    --------
    >>> import crossentropy as ce
    >>> x = ce.log_softmax([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    >>> t = ce.softmax([[3.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
    >>> ce.kl_div(x, t, reduction="batchmean").round(6)
    np.float64(0.729707)
    """
    options = DivergenceOptions.from_arguments(locals())
    if size_average is None and reduce is None:  # as PyTorch: not with the legacy arguments
        warn_mean(reduction)  # as spelled: not for the deprecated "elementwise_mean"
    return divergence_loss(input, target, options)


def warn_mean(reduction: str) -> None:
    """:data:`MEAN_WARNING` for ``reduction="mean"`` (not while ``torch.compile`` traces,
    where a warning would break the graph)."""
    if reduction == "mean" and not torch_compiling():
        warnings.warn(MEAN_WARNING, UserWarning, stacklevel=3)


def divergence_loss(input: Array, target: Array, o: DivergenceOptions) -> Array:
    """The engine of :func:`kl_div`: element-wise ``t (log t - x)`` (or ``e^t (t - x)``),
    reduced."""
    xp, (x, t) = namespace(input, target, names=["input", "target"])
    xf, out_dtype = as_loss_float(xp, x, "input")
    xf, tf, out_dtype = with_target(xp, xf, out_dtype, t, target)
    batch = xf.shape[0] if xf.ndim else 1  # PyTorch's batchmean: the input's first axis
    try:
        xf, tf = xp.broadcast_arrays(xf, tf)
    except (ValueError, RuntimeError, TypeError):
        raise ValueError(
            f"input {shape_str(xf.shape)} and target {shape_str(tf.shape)} do not broadcast"
        ) from None
    with quiet(xf):
        if o.log_target:  # e^t (t - x); a log-target of -inf is a probability of 0 (0 log 0)
            if reads(o.validate, tf):
                check_log_probabilities(xp, tf, "target")
            per = fm.kl_terms(xp, xp.exp(tf), tf, xf)
        else:
            if reads(o.validate, tf):
                check_unit_interval(xp, tf, "target")
            per = fm.kl_terms(xp, tf, fm.safe_log(xp, tf), xf)
        out = reduce(xp, per, o.reduction, batch_size=batch, empty_mean=o.empty_mean)
    return restore_dtype(xp, out, out_dtype)
