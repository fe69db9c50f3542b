r"""The cross-entropy family of classification losses, with PyTorch's names and numbers.

``cross_entropy``, ``nll_loss``, ``binary_cross_entropy``, ``binary_cross_entropy_with_logits``
and ``kl_div`` take PyTorch's argument names, order and defaults and give PyTorch's numbers;
keyword-only extras reproduce the other libraries' conventions (docs/conventions.md) and never
change the default result.

On PyTorch tensors, when no extra is in use, the work is delegated to ATen's kernels (the same
semantics, faster); the generic array-API path below is the reference that tests hold the
delegation against.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal

from crossentropy._lib import (
    Array,
    Namespace,
    as_float,
    check_empty_mean,
    check_reduction,
    device_of,
    divide,
    is_concrete,
    is_torch,
    namespace,
    reduce,
    restore_dtype,
)
from crossentropy._lib._reduction import MEAN_DIVISORS, Reduction
from crossentropy._lib._validation import (
    check_choice,
    check_finite_number,
    check_in_unit_interval,
    check_int,
    check_nonnegative,
    element_weight,
    first_index,
    shape_str,
)
from crossentropy._special import (
    _axis,
    kl_terms,
    log1mexp,
    log_sigmoid_,
    lse_parts,
    mul_log,
    safe_log,
)

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "kl_div",
    "nll_loss",
]

Clip = Literal["torch", "sklearn", "keras"] | float | None

_WEIGHT_MODES = ("per_class", "per_sample")
_SMOOTHING_MODES = ("uniform", "flip")
_CLIP_NAMES = ("torch", "sklearn", "keras")
_KERAS_EPSILON = 1e-7
_TORCH_LOG_FLOOR = -100.0


# ---------------------------------------------------------------------------------------------
# Shared pieces.
# ---------------------------------------------------------------------------------------------


def _class_axis(ndim: int, axis: int | None) -> int:
    if ndim == 0:
        raise ValueError("input must have at least one dimension (the classes); got a 0-d array")
    if axis is None:
        return 0 if ndim == 1 else 1
    return _axis(axis, ndim)


def _gather(xp: Namespace, x: Array, idx: Array) -> Array:
    """``x[..., idx]`` along the last axis: ``take_along_axis`` where the backend has it,
    otherwise a comparison with ``arange(C)`` (Dask)."""
    if hasattr(xp, "take_along_axis") and not _is_dask(x):
        picked = xp.take_along_axis(x, xp.expand_dims(idx, axis=-1), axis=-1)
        return xp.squeeze(picked, axis=-1)
    classes = xp.arange(x.shape[-1], dtype=idx.dtype, device=device_of(x))
    hit = xp.expand_dims(idx, axis=-1) == classes
    return xp.sum(xp.where(hit, x, xp.zeros_like(x)), axis=-1)


def _namespace_of(x: Array) -> Namespace:
    import array_api_compat as compat

    return compat.array_namespace(x)


def _is_dask(x: Array) -> bool:
    import array_api_compat as compat

    return bool(compat.is_dask_array(x))


def _take(xp: Namespace, w: Array, idx: Array) -> Array:
    """``w[idx]`` for a 1-D ``w`` and an index array of any shape."""
    flat = xp.take(w, xp.reshape(idx, (-1,)), axis=0)
    return xp.reshape(flat, idx.shape)


def _per_class(
    xp: Namespace, a: Array, name: str, n_classes: int, dtype: Any, what: str = ""
) -> Array:
    """A 1-D, non-negative array of one value per class, in ``dtype``."""
    if a.ndim != 1 or a.shape[0] != n_classes:
        raise ValueError(
            f"{name} must be {what}a 1-D array of one value per class ({n_classes},); "
            f"got shape {shape_str(a.shape)}"
        )
    af, _ = as_float(xp, a, name)
    check_nonnegative(xp, af, name)
    return xp.astype(af, dtype) if af.dtype != dtype else af


def _class_weight(xp: Namespace, weight: Array | None, n_classes: int, dtype: Any) -> Array | None:
    return None if weight is None else _per_class(xp, weight, "weight", n_classes, dtype)


def _index_targets(
    xp: Namespace, target: Array, n_classes: int, ignore_index: int | None
) -> tuple[Array, Array, Array | None]:
    """Validity mask, labels safe to gather with (default integer dtype), and (lazy arrays
    only) the mask of labels out of range.

    Works for every integer dtype: an ``ignore_index`` (or class count) that the dtype cannot
    hold is never compared against it (no wrap-around, no overflow errors on strict backends).
    """
    info = xp.iinfo(target.dtype)
    if ignore_index is None or not info.min <= ignore_index <= info.max:
        valid = xp.ones(target.shape, dtype=xp.bool, device=device_of(target))
    else:
        valid = target != ignore_index
    too_big = target >= n_classes if n_classes <= info.max else xp.zeros_like(valid)
    too_small = target < 0 if info.min < 0 else xp.zeros_like(valid)
    out_of_range = valid & (too_small | too_big)
    bad: Array | None = None
    if is_concrete(out_of_range):
        idx = first_index(xp, out_of_range)
        if idx is not None:
            value = int(target[idx]) if idx else int(target)
            allowed = "" if ignore_index is None else f" or equal ignore_index={ignore_index}"
            raise ValueError(
                f"target holds label {value} at index {idx}; class labels must lie in "
                f"[0, {n_classes}){allowed}"
            )
    else:
        bad = out_of_range
    index_dtype = xp.__array_namespace_info__().default_dtypes(device=device_of(target))[
        "integral"
    ]  # int64 where the library has it (torch's gathers need it)
    labels = xp.astype(target, index_dtype) if target.dtype != index_dtype else target
    safe = xp.where(valid & ~out_of_range, labels, xp.zeros_like(labels))
    return valid, safe, bad


def _torch_batchmean(fn: Any, reduction: str, batch: int, *args: Any, **kwargs: Any) -> Array:
    """Call a torch loss, turning ``batchmean`` into ``sum / batch``."""
    if reduction == "batchmean":
        return fn(*args, reduction="sum", **kwargs) / batch
    return fn(*args, reduction=reduction, **kwargs)


def _batch_size(shape: tuple[int, ...]) -> int:
    return int(shape[0]) if len(shape) else 1


def _prob_log(xp: Namespace, p: Array, clip: Clip, eps_dtype: Any) -> Array:
    """``log(p)`` under a clipping convention (see ``binary_cross_entropy``)."""
    if clip is None:
        return safe_log(xp, p)
    if clip == "torch":
        return safe_log(xp, p, floor=_TORCH_LOG_FLOOR)
    if clip == "sklearn":
        eps = float(xp.finfo(eps_dtype).eps)
    elif clip == "keras":
        eps = _KERAS_EPSILON
    else:
        eps = float(clip)
    return xp.log(xp.clip(p, eps, 1 - eps))


def _check_clip(clip: object) -> Clip:
    if clip is None or clip in _CLIP_NAMES:
        return clip  # type: ignore[return-value]
    if isinstance(clip, int | float) and not isinstance(clip, bool):
        check_finite_number(clip, "clip", low=0.0, high=0.5, low_open=True, high_open=True)
        return float(clip)
    raise ValueError(
        f"clip must be one of 'torch', 'sklearn', 'keras', None or a number in (0, 0.5); "
        f"got {clip!r}"
    )


def _is_vector(a: object) -> bool:
    return a is not None and not isinstance(a, int | float)


def focal_factor(xp: Namespace, logp: Array, gamma: float, alpha: Array | float | None) -> Array:
    """The focal modulation ``alpha (1 - p)^gamma`` from ``log p``, stable as ``p -> 1``.

    ``(1 - p)^gamma = exp(gamma * log1mexp(log p))``, so the factor and its gradient stay finite
    for ``p`` within rounding of 1 (logits of ``±1e4``).
    """
    factor = xp.exp(gamma * log1mexp(xp, logp)) if gamma else xp.ones_like(logp)
    return factor if alpha is None else factor * alpha


def _focal_alpha(xp: Namespace, alpha: object, n_classes: int, like: Array) -> Array | float | None:
    """Validate the focal ``alpha``: None, a non-negative number, or one value per class (an
    array of ``like``'s library)."""
    if alpha is None:
        return None
    if isinstance(alpha, numbers.Real) and not isinstance(alpha, bool):
        return check_finite_number(alpha, "alpha", low=0.0)
    _, (_, a) = namespace(like, alpha, names=["input", "alpha"])
    return _per_class(xp, a, "alpha", n_classes, like.dtype, "a number or ")


def _check_dtype_integral(xp: Namespace, t: Array, name: str) -> None:
    if not xp.isdtype(t.dtype, "integral"):
        raise TypeError(f"{name} must hold integer class labels; got dtype {t.dtype}")


# ---------------------------------------------------------------------------------------------
# Cross-entropy and NLL.
# ---------------------------------------------------------------------------------------------


def _ce_core(
    xp: Namespace,
    x: Array,
    target: Array,
    weight: Array | None,
    *,
    kind: Literal["logits", "probs", "log_probs"],
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    z_loss: float,
    clip: Clip,
    eps_dtype: Any,
    empty_mean: float,
    mean_divisor: str,
    weight_mode: str,
    focal: tuple[float, Array | float | None] | None = None,
    parts: dict[str, Any] | None = None,
) -> Array:
    """Cross-entropy with the classes on the last axis of ``x``.

    ``kind`` says what ``x`` holds; ``target`` is either class indices of shape ``x.shape[:-1]``
    or probabilities of shape ``x.shape``. ``focal = (gamma, alpha)`` multiplies each class term
    ``-t_c log p_c`` by ``alpha_c (1 - p_c)^gamma`` (the softmax focal loss). A ``parts`` dict
    receives the intermediates that ``crossentropy.grad`` turns into the gradient.
    """
    n_classes = x.shape[-1]
    soft = xp.isdtype(target.dtype, "real floating")
    # The log-sum-exp in two parts (row max and log-sum of the shifted exponentials): the log
    # probabilities are (x - m) - log_sum, exact even for large logits.
    shift = lse_parts(xp, x, -1) if kind == "logits" else None
    logz = xp.squeeze(shift[0] + shift[1], axis=-1) if shift is not None else None

    def log_probs() -> Array:
        if shift is not None:
            return (x - shift[0]) - shift[1]
        if kind == "probs":
            return _prob_log(xp, x, clip, eps_dtype)
        return x

    w = weight
    bad = None
    if soft:
        ignored = xp.all(target == ignore_index, axis=-1)
        valid = ~ignored
        check_in_unit_interval(
            xp,
            target,
            "target",
            skip=xp.broadcast_to(xp.expand_dims(ignored, axis=-1), target.shape),
        )
        t = xp.where(xp.expand_dims(valid, axis=-1), target, xp.zeros_like(target))
        w_t = xp.sum(t * w, axis=-1) if w is not None else None  # expected weight, unsmoothed
        if label_smoothing:
            t = (1 - label_smoothing) * t + label_smoothing / n_classes
        lp = log_probs()
        terms = mul_log(xp, t, lp)
        if focal is not None:
            terms = terms * focal_factor(xp, lp, focal[0], focal[1])
        if w is not None and weight_mode == "per_class":
            per = -xp.sum(terms * w, axis=-1)
        elif w_t is not None:
            per = -w_t * xp.sum(terms, axis=-1)
        else:
            per = -xp.sum(terms, axis=-1)
        w_y = w_t
    else:
        valid, safe, bad = _index_targets(xp, target, n_classes, ignore_index)
        nll = (
            (xp.squeeze(shift[0], axis=-1) - _gather(xp, x, safe)) + xp.squeeze(shift[1], axis=-1)
            if shift is not None
            else -_gather(xp, log_probs(), safe)
        )
        w_y = _take(xp, w, safe) if w is not None else None
        if focal is not None:
            gamma, alpha = focal
            alpha_y = _take(xp, alpha, safe) if _is_vector(alpha) else alpha
            nll = nll * focal_factor(xp, -nll, gamma, alpha_y)
        smooth = None
        if label_smoothing:
            lp = log_probs()
            if focal is not None:
                lp = lp * focal_factor(xp, lp, focal[0], focal[1])
            smooth = -xp.sum(
                lp * w if (w is not None and weight_mode == "per_class") else lp, axis=-1
            )
        if weight_mode == "per_class" and w_y is not None:
            nll = w_y * nll
        per = (
            nll
            if smooth is None
            else (1 - label_smoothing) * nll + (label_smoothing / n_classes) * smooth
        )
        if weight_mode == "per_sample" and w_y is not None:
            per = w_y * per
    zero = xp.zeros_like(per)
    per = xp.where(valid, per, zero)
    if bad is not None:
        per = xp.where(bad, xp.full_like(per, math.nan), per)
    zterm = None
    if z_loss and logz is not None:
        zterm = xp.where(valid, z_loss * logz * logz, zero)
    count = den = None
    if parts is not None or reduction == "mean":
        count = xp.sum(xp.astype(valid, per.dtype))
        use_weight = mean_divisor == "weight" or (mean_divisor == "auto" and not soft)
        den = xp.sum(xp.where(valid, w_y, zero)) if use_weight and w_y is not None else count
    if parts is not None:
        parts.update(
            logz=logz,
            shift=shift,
            valid=valid,
            bad=bad,
            soft=soft,
            w_y=w_y,
            den=den,
            count=count,
            target=t if soft else safe,
            batch=_batch_size(per.shape),
        )

    if reduction == "none":
        return per if zterm is None else per + zterm
    if reduction in ("sum", "batchmean"):
        total = per if zterm is None else per + zterm
        return reduce(
            xp, total, reduction, batch_size=_batch_size(per.shape), empty_mean=empty_mean
        )
    out = divide(xp, xp.sum(per), den, empty_mean)
    if zterm is not None:
        out = out + divide(xp, xp.sum(zterm), count, empty_mean)
    return out


def _prepare_classes(
    input: Array, target: Array, weight: Array | None, axis: int | None
) -> tuple[Namespace, Array, Array, Array | None, Any, int, bool]:
    """Namespace; float input; target; weight; output dtype; class axis; soft targets?"""
    xp, (x, t, w) = namespace(input, target, weight, names=["input", "target", "weight"])
    xf, out_dtype = as_float(xp, x, "input")
    ax = _class_axis(xf.ndim, axis)
    if xf.shape[ax] == 0:
        raise ValueError(f"input must have at least one class on axis {ax}; got 0 classes")
    soft = xp.isdtype(t.dtype, "real floating")
    if soft:
        if tuple(t.shape) != tuple(xf.shape):
            raise ValueError(
                f"target of probabilities must have the shape of input {shape_str(xf.shape)}; "
                f"got {shape_str(t.shape)}"
            )
        t = xp.astype(t, xf.dtype) if t.dtype != xf.dtype else t
    else:
        _check_dtype_integral(xp, t, "target")
        expected = tuple(s for i, s in enumerate(xf.shape) if i != ax)
        if tuple(t.shape) != expected:
            raise ValueError(
                f"target of class indices must have shape {shape_str(expected)} for input of "
                f"shape {shape_str(xf.shape)} with classes on axis {ax}; got {shape_str(t.shape)}"
            )
    return xp, xf, t, w, out_dtype, ax, soft


def cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None = None,
    *,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
    axis: int | None = None,
    from_logits: bool = True,
    z_loss: float = 0.0,
    softcap: float | None = None,
    clip: Clip = None,
    empty_mean: float = math.nan,
    mean_divisor: Literal["auto", "weight", "count"] = "auto",
    weight_mode: Literal["per_class", "per_sample"] = "per_class",
) -> Array:
    r"""Cross-entropy loss between logits and class indices or class probabilities.

    With class indices :math:`y_n` and class weights :math:`w`, the per-element loss is

    .. math::

        \ell_n = -w_{y_n} \log \operatorname{softmax}(x_n)_{y_n}
               = w_{y_n} \bigl(\operatorname{logsumexp}(x_n) - x_{n, y_n}\bigr)

    and with class probabilities :math:`t_n` it is
    :math:`\ell_n = -\sum_c w_c\, t_{n,c} \log \operatorname{softmax}(x_n)_c`. Label smoothing
    :math:`\varepsilon` mixes the target with the uniform distribution,
    :math:`t \leftarrow (1 - \varepsilon)\, t + \varepsilon / C`.

    Follows :func:`torch.nn.functional.cross_entropy`: input ``(C)``, ``(N, C)`` or
    ``(N, C, d1, ..., dK)`` (classes on axis 1), target of class indices ``()``, ``(N)`` or
    ``(N, d1, ..., dK)`` with ``ignore_index`` entries skipped, or of probabilities with the
    input's shape. ``reduction="mean"`` divides by :math:`\sum_n w_{y_n}` over non-ignored
    elements for class indices, and by the number of elements for probabilities; a mean over
    zero valid targets is NaN. ``"batchmean"`` divides the sum by the batch size ``N`` (Keras'
    ``sum_over_batch_size``).

    Parameters
    ----------
    input : array_like
        Logits (or probabilities with ``from_logits=False``).
    target : array_like
        Integer class indices, or floating class probabilities of the input's shape.
    weight : array_like, optional
        A non-negative weight per class, shape ``(C,)``.
    ignore_index : int, default -100
        Class-index targets equal to it contribute nothing (not even to the mean's divisor).
        With probability targets, a sample whose target entries all equal ``ignore_index`` is
        ignored (pad a probability target with ``-100`` rows); PyTorch refuses this.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        How the per-element losses are combined.
    label_smoothing : float, default 0.0
        :math:`\varepsilon \in [0, 1]`.
    axis : int, optional
        The class axis; default PyTorch's (1, or 0 for 1-D input). ``axis=-1`` for
        channel-last data.
    from_logits : bool, default True
        If False, ``input`` holds probabilities and the loss is the tutorials'
        :math:`-\sum_i y_i \log p_i` (no softmax).
    z_loss : float, default 0.0
        Adds :math:`z \cdot \operatorname{logsumexp}(x_n)^2` per valid element (PaLM's z-loss);
        with ``"mean"`` it is averaged over valid elements, not class-weighted (as Liger).
    softcap : float, optional
        Replace logits by :math:`\mathrm{cap} \cdot \tanh(x / \mathrm{cap})` first (Gemma 2).
    clip : {None, "torch", "sklearn", "keras"} or float, default None
        With ``from_logits=False``: how probabilities are clipped before the log (see
        :func:`binary_cross_entropy`). None takes the plain log, so ``p = 0`` gives ``inf``.
    empty_mean : float, default nan
        Value of a mean over zero valid targets: NaN as PyTorch, 0.0 as Keras and Liger.
    mean_divisor : {"auto", "weight", "count"}, default "auto"
        Divisor of ``"mean"``: the sum of target weights (PyTorch for class indices; for
        probabilities :math:`\sum_n \sum_c w_c t_{n,c}`) or the number of valid elements
        (PyTorch for probabilities; Keras). "auto" is PyTorch's choice.
    weight_mode : {"per_class", "per_sample"}, default "per_class"
        How class weights meet label smoothing and soft targets: each class's term weighted by
        its own weight (PyTorch), or the whole sample's loss weighted by its target's weight
        (Keras ``class_weight`` / sample weights).

    Returns
    -------
    array
        The loss, in the input's namespace, device and floating dtype; shape of the target's
        batch for ``reduction="none"``, else a scalar.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.cross_entropy([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [1, 2])
    np.float64(0.907605964444)
    >>> ce.cross_entropy([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [1, 2], weight=[1.0, 2.0, 3.0])
    np.float64(0.807605964444)
    >>> ce.cross_entropy([[0.7, 0.2, 0.1]], [0], from_logits=False).round(4)
    np.float64(0.3567)
    """
    return _cross_entropy(
        input,
        target,
        weight,
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
        axis=axis,
        from_logits=from_logits,
        z_loss=z_loss,
        softcap=softcap,
        clip=clip,
        empty_mean=empty_mean,
        mean_divisor=mean_divisor,
        weight_mode=weight_mode,
    )


def _cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None,
    *,
    ignore_index: object,
    reduction: object,
    label_smoothing: object,
    axis: int | None,
    from_logits: object,
    z_loss: object,
    softcap: object,
    clip: object,
    empty_mean: object,
    mean_divisor: object,
    weight_mode: object,
    gamma: float | None = None,
    alpha: object = None,
    parts: dict[str, Any] | None = None,
) -> Array:
    """Validate, then delegate to ATen or run the generic core. ``gamma`` set: focal loss.
    ``parts`` (for ``crossentropy.grad``) receives the core's intermediates."""
    xp, xf, t, w, out_dtype, ax, soft = _prepare_classes(input, target, weight, axis)
    reduction = check_reduction(reduction)
    ignore = check_int(ignore_index, "ignore_index")
    eps = check_finite_number(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    z = check_finite_number(z_loss, "z_loss", low=0.0)
    cap = (
        None if softcap is None else check_finite_number(softcap, "softcap", low=0.0, low_open=True)
    )
    clip = _check_clip(clip)
    empty = check_empty_mean(empty_mean)
    check_choice(mean_divisor, "mean_divisor", MEAN_DIVISORS)
    check_choice(weight_mode, "weight_mode", _WEIGHT_MODES)
    if not isinstance(from_logits, bool):
        raise TypeError(f"from_logits must be a bool; got {type(from_logits).__name__}")
    if not from_logits:
        if z or cap is not None:
            raise ValueError("z_loss and softcap apply to logits; they need from_logits=True")
        check_in_unit_interval(xp, xf, "input")
    elif clip is not None:
        raise ValueError("clip applies to probabilities; it needs from_logits=False")
    n_classes = xf.shape[ax]
    if soft and 0 <= ignore <= 1:
        raise ValueError(
            "with probability targets, ignore_index marks rows filled with it, so it must lie "
            f"outside [0, 1]; got {ignore}"
        )
    wf = _class_weight(xp, w, n_classes, xf.dtype)

    plain = (
        from_logits
        and not z
        and cap is None
        and math.isnan(empty)
        and mean_divisor == "auto"
        and weight_mode == "per_class"
    )
    focal = None
    if gamma is not None:
        focal = (gamma, _focal_alpha(xp, alpha, n_classes, xf))
    if plain and focal is None and parts is None and not soft and is_torch(xf):
        return _torch_nll_family(
            xf, t, wf, ax, ignore, reduction, out_dtype, n_classes, log_probs=False, eps=eps
        )

    x_last = xp.moveaxis(xf, ax, -1)
    t_last = xp.moveaxis(t, ax, -1) if soft else t
    if parts is not None:
        parts.update(
            xp=xp,
            x=x_last,
            axis=ax,
            cap=cap,
            out_dtype=out_dtype,
            weight=wf,
            clip=clip,
            kind="logits" if from_logits else "probs",
            label_smoothing=eps,
            z_loss=z,
            focal=focal,
            reduction=reduction,
            weight_mode=str(weight_mode),
        )
    if cap is not None:
        x_last = cap * xp.tanh(x_last / cap)
    out = _ce_core(
        xp,
        x_last,
        t_last,
        wf,
        kind="logits" if from_logits else "probs",
        ignore_index=ignore,
        reduction=reduction,
        label_smoothing=eps,
        z_loss=z,
        clip=clip,
        eps_dtype=out_dtype,
        empty_mean=empty,
        mean_divisor=str(mean_divisor),
        weight_mode=str(weight_mode),
        focal=focal,
        parts=parts,
    )
    return restore_dtype(xp, out, out_dtype)


def _torch_nll_family(
    x: Array,
    t: Array,
    w: Array | None,
    ax: int,
    ignore: int,
    reduction: str,
    out_dtype: Any,
    n_classes: int,
    *,
    log_probs: bool,
    eps: float,
) -> Array:
    """Delegate to ATen's ``cross_entropy`` / ``nll_loss`` after our own label check."""
    import torch
    import torch.nn.functional as F

    _index_targets(_namespace_of(t), t, n_classes, ignore)  # ValueError for bad labels
    if x.ndim > 1 and ax != 1:
        x = torch.movedim(x, ax, 1)
    t = t if t.dtype == torch.int64 else t.long()
    batch = _batch_size(tuple(t.shape))
    if log_probs:
        out = _torch_batchmean(F.nll_loss, reduction, batch, x, t, weight=w, ignore_index=ignore)
    else:
        out = _torch_batchmean(
            F.cross_entropy,
            reduction,
            batch,
            x,
            t,
            weight=w,
            ignore_index=ignore,
            label_smoothing=eps,
        )
    return out if out.dtype == out_dtype else out.to(out_dtype)


def nll_loss(
    input: Array,
    target: Array,
    weight: Array | None = None,
    *,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    axis: int | None = None,
    empty_mean: float = math.nan,
    mean_divisor: Literal["auto", "weight", "count"] = "auto",
) -> Array:
    r"""Negative log-likelihood loss on log-probabilities and class indices.

    .. math::

        \ell_n = -w_{y_n}\, x_{n, y_n}

    Follows :func:`torch.nn.functional.nll_loss`: ``input`` holds log-probabilities (e.g. from
    :func:`log_softmax`), shapes and ``ignore_index`` as :func:`cross_entropy`;
    ``reduction="mean"`` divides by :math:`\sum_n w_{y_n}` over non-ignored elements.
    ``cross_entropy(x, y) == nll_loss(log_softmax(x), y)``.

    Parameters
    ----------
    input : array_like
        Log-probabilities, classes on ``axis``.
    target : array_like
        Integer class indices.
    weight : array_like, optional
        A non-negative weight per class.
    ignore_index, reduction, axis, empty_mean, mean_divisor
        As in :func:`cross_entropy`.

    Examples
    --------
    >>> import crossentropy as ce
    >>> x = ce.log_softmax([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    >>> ce.nll_loss(x, [1, 2])
    np.float64(0.907605964444)
    """
    xp, xf, t, w, out_dtype, ax, soft = _prepare_classes(input, target, weight, axis)
    if soft:
        raise TypeError(f"target must hold integer class labels; got dtype {t.dtype}")
    reduction = check_reduction(reduction)  # type: ignore[assignment]
    ignore = check_int(ignore_index, "ignore_index")
    empty = check_empty_mean(empty_mean)
    check_choice(mean_divisor, "mean_divisor", MEAN_DIVISORS)
    n_classes = xf.shape[ax]
    wf = _class_weight(xp, w, n_classes, xf.dtype)
    if is_torch(xf) and math.isnan(empty) and mean_divisor == "auto":
        return _torch_nll_family(
            xf, t, wf, ax, ignore, reduction, out_dtype, n_classes, log_probs=True, eps=0.0
        )
    out = _ce_core(
        xp,
        xp.moveaxis(xf, ax, -1),
        t,
        wf,
        kind="log_probs",
        ignore_index=ignore,
        reduction=reduction,
        label_smoothing=0.0,
        z_loss=0.0,
        clip=None,
        eps_dtype=out_dtype,
        empty_mean=empty,
        mean_divisor=mean_divisor,
        weight_mode="per_class",
    )
    return restore_dtype(xp, out, out_dtype)


# ---------------------------------------------------------------------------------------------
# Binary cross-entropy and KL divergence.
# ---------------------------------------------------------------------------------------------


def _prepare_binary(
    input: Array, target: Array, weight: Array | None, pos_weight: Array | None
) -> tuple[Namespace, Array, Array, Array | None, Array | None, Any]:
    xp, (x, t, w, pw) = namespace(
        input, target, weight, pos_weight, names=["input", "target", "weight", "pos_weight"]
    )
    xf, out_dtype = as_float(xp, x, "input")
    if tuple(t.shape) != tuple(xf.shape):
        raise ValueError(
            f"target must have the shape of input {shape_str(xf.shape)}; got {shape_str(t.shape)}"
        )
    tf, _ = as_float(xp, t, "target")
    tf = xp.astype(tf, xf.dtype) if tf.dtype != xf.dtype else tf
    check_in_unit_interval(xp, tf, "target")
    wf = None if w is None else element_weight(xp, w, "weight", xf)
    pwf = None if pw is None else element_weight(xp, pw, "pos_weight", xf)
    return xp, xf, tf, wf, pwf, out_dtype


def _binary_options(
    reduction: object,
    label_smoothing: object,
    smoothing_mode: object,
    empty_mean: object,
    mean_divisor: object,
) -> tuple[str, float, str, float, str]:
    """Validate the options the binary losses share."""
    red = check_reduction(reduction)
    eps = check_finite_number(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    check_choice(smoothing_mode, "smoothing_mode", _SMOOTHING_MODES)
    empty = check_empty_mean(empty_mean)
    check_choice(mean_divisor, "mean_divisor", MEAN_DIVISORS)
    return red, eps, str(smoothing_mode), empty, str(mean_divisor)


def _checked_no_nan(x: Array) -> bool:
    """Whether a torch tensor's values are on the host and hold no NaN."""
    import torch

    return is_concrete(x) and not bool(torch.isnan(x).any())


def _smooth_binary(t: Array, eps: float, mode: str) -> Array:
    if not eps:
        return t
    if mode == "uniform":
        return t * (1 - eps) + eps / 2
    return t * (1 - eps) + (1 - t) * eps


def _bce_terms(xp: Namespace, log_p: Array, log_q: Array, t: Array, pw: Array | None) -> Array:
    """Element-wise ``-(pw t log p + (1 - t) log q)`` with ``0 log 0 = 0``."""
    pos = mul_log(xp, t, log_p)
    if pw is not None:
        pos = pw * pos
    return -(pos + mul_log(xp, 1 - t, log_q))


def _weighted_reduce(
    xp: Namespace,
    per: Array,
    w: Array | None,
    reduction: str,
    empty_mean: float,
    mean_divisor: str,
) -> Array:
    """Multiply by element weights and reduce; ``mean`` divides by the number of elements, or
    by the sum of the weights with ``mean_divisor="weight"`` (scikit-learn's ``sample_weight``).
    """
    den = None
    if w is not None:
        per = per * w
        if mean_divisor == "weight":
            den = xp.sum(xp.broadcast_to(w, per.shape))
    return reduce(xp, per, reduction, denominator=den, empty_mean=empty_mean)


def binary_cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None = None,
    *,
    reduction: Reduction = "mean",
    clip: Clip = "torch",
    label_smoothing: float = 0.0,
    smoothing_mode: Literal["uniform", "flip"] = "uniform",
    empty_mean: float = math.nan,
    mean_divisor: Literal["auto", "weight", "count"] = "auto",
) -> Array:
    r"""Binary cross-entropy between predicted probabilities and targets, element-wise.

    .. math::

        \ell = -w \bigl(t \log p + (1 - t) \log (1 - p)\bigr)

    Follows :func:`torch.nn.functional.binary_cross_entropy`: ``input`` and ``target`` have the
    same shape, ``weight`` broadcasts to it, each log is clamped at -100 so ``p = 0`` or 1 gives a
    finite loss, and ``reduction="mean"`` averages over all elements. For multi-label
    classification as the tutorials define it (sum over classes, mean over the batch) use
    ``reduction="batchmean"``.

    Parameters
    ----------
    input : array_like
        Probabilities in [0, 1].
    target : array_like
        Targets in [0, 1] (hard 0/1 labels or soft).
    weight : array_like, optional
        Non-negative element weights, broadcast to the input.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        ``"batchmean"`` is the sum divided by the size of the first axis.
    clip : {"torch", "sklearn", "keras", None} or float, default "torch"
        How probabilities meet the log. ``"torch"``: ``log`` clamped at -100.
        ``"sklearn"``: ``p`` clipped to ``[eps, 1 - eps]`` with ``eps`` the machine epsilon of
        the input's dtype (:func:`sklearn.metrics.log_loss`). ``"keras"``: clipped to
        ``[1e-7, 1 - 1e-7]``. A float ``c``: clipped to ``[c, 1 - c]``. None: the plain log.
    label_smoothing : float, default 0.0
        :math:`\varepsilon \in [0, 1]`, applied to the target.
    smoothing_mode : {"uniform", "flip"}, default "uniform"
        ``"uniform"``: :math:`t(1 - \varepsilon) + \varepsilon / 2` (Keras). ``"flip"``:
        :math:`t(1 - \varepsilon) + (1 - t)\varepsilon` (segmentation-models-pytorch).
    empty_mean : float, default nan
        The mean of an empty input.
    mean_divisor : {"auto", "weight", "count"}, default "auto"
        Divisor of ``"mean"`` when ``weight`` is given: the number of elements (PyTorch;
        "auto" and "count") or the sum of the weights broadcast to the input ("weight", as
        scikit-learn's ``sample_weight``).

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.binary_cross_entropy([0.9, 0.2], [1.0, 0.0]).round(6)
    np.float64(0.164252)
    >>> ce.binary_cross_entropy([0.0], [1.0])  # torch's clamp: log 0 -> -100
    np.float64(100.0)
    >>> ce.binary_cross_entropy([0.0], [1.0], clip="keras").round(4)
    np.float64(16.1181)
    """
    xp, xf, tf, w, _, out_dtype = _prepare_binary(input, target, weight, None)
    red, eps, mode, empty, divisor = _binary_options(
        reduction, label_smoothing, smoothing_mode, empty_mean, mean_divisor
    )
    clip = _check_clip(clip)
    check_in_unit_interval(xp, xf, "input")
    plain = not eps and math.isnan(empty) and (divisor != "weight" or w is None)
    # ATen refuses NaN probabilities (and asserts on accelerators), so it gets only inputs
    # already checked on the host; everything else takes the generic path, which propagates NaN.
    if is_torch(xf) and clip == "torch" and plain and _checked_no_nan(xf):
        import torch.nn.functional as F

        w_full = None if w is None else w.expand_as(xf)
        out = _torch_batchmean(
            F.binary_cross_entropy, red, _batch_size(tuple(xf.shape)), xf, tf, weight=w_full
        )
        return restore_dtype(xp, out, out_dtype)
    tf = _smooth_binary(tf, eps, mode)
    per = _bce_terms(
        xp, _prob_log(xp, xf, clip, out_dtype), _prob_log(xp, 1 - xf, clip, out_dtype), tf, None
    )
    out = _weighted_reduce(xp, per, w, red, empty, divisor)
    return restore_dtype(xp, out, out_dtype)


def binary_cross_entropy_with_logits(
    input: Array,
    target: Array,
    weight: Array | None = None,
    *,
    reduction: Reduction = "mean",
    pos_weight: Array | None = None,
    label_smoothing: float = 0.0,
    smoothing_mode: Literal["uniform", "flip"] = "uniform",
    empty_mean: float = math.nan,
    mean_divisor: Literal["auto", "weight", "count"] = "auto",
) -> Array:
    r"""Binary cross-entropy on logits, element-wise, computed stably through log-sigmoid.

    .. math::

        \ell = -w \bigl(p_w\, t \log \sigma(x) + (1 - t) \log \sigma(-x)\bigr)

    using :math:`\log(1 - \sigma(x)) = \log \sigma(-x)`, finite for logits of any size.
    Follows :func:`torch.nn.functional.binary_cross_entropy_with_logits`: ``weight`` and
    ``pos_weight`` (:math:`p_w`, broadcast along the last axis: one per class) broadcast to the
    input, ``reduction="mean"`` averages over all elements. Multi-label classification as the
    tutorials define it (sigmoid per class, binary cross-entropy summed over the classes,
    averaged over the batch) is ``reduction="batchmean"``.

    Parameters
    ----------
    input : array_like
        Logits.
    target : array_like
        Targets in [0, 1], the input's shape.
    weight : array_like, optional
        Non-negative element weights.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        How the element losses are combined.
    pos_weight : array_like, optional
        Weight of the positive term, e.g. ``negatives / positives`` per class.
    label_smoothing : float, default 0.0
        :math:`\varepsilon \in [0, 1]`, applied to the target.
    smoothing_mode : {"uniform", "flip"}, default "uniform"
        ``"uniform"``: :math:`t(1 - \varepsilon) + \varepsilon / 2` (Keras). ``"flip"``:
        :math:`t(1 - \varepsilon) + (1 - t)\varepsilon` (segmentation-models-pytorch
        ``SoftBCEWithLogitsLoss``).
    empty_mean : float, default nan
        The mean of an empty input.
    mean_divisor : {"auto", "weight", "count"}, default "auto"
        Divisor of ``"mean"`` when ``weight`` is given: the number of elements (PyTorch;
        "auto" and "count") or the sum of the weights broadcast to the input ("weight", as
        scikit-learn's ``sample_weight``).

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.binary_cross_entropy_with_logits([0.5, -1.0, 2.0], [1.0, 0.0, 1.0])
    np.float64(0.3047555609137673)
    >>> x = [[0.5, -1.0, 2.0], [1.0, 0.0, -2.0]]
    >>> t = [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    >>> ce.binary_cross_entropy_with_logits(x, t, reduction="batchmean")  # multi-label
    np.float64(1.523801780931)
    """
    xp, xf, tf, w, pw, out_dtype = _prepare_binary(input, target, weight, pos_weight)
    red, eps, mode, empty, divisor = _binary_options(
        reduction, label_smoothing, smoothing_mode, empty_mean, mean_divisor
    )
    plain = not eps and math.isnan(empty) and (divisor != "weight" or w is None)
    if is_torch(xf) and plain:
        import torch.nn.functional as F

        out = _torch_batchmean(
            F.binary_cross_entropy_with_logits,
            red,
            _batch_size(tuple(xf.shape)),
            xf,
            tf,
            weight=w,
            pos_weight=pw,
        )
        return restore_dtype(xp, out, out_dtype)
    tf = _smooth_binary(tf, eps, mode)
    per = _bce_terms(xp, log_sigmoid_(xp, xf), log_sigmoid_(xp, -xf), tf, pw)
    out = _weighted_reduce(xp, per, w, red, empty, divisor)
    return restore_dtype(xp, out, out_dtype)


def kl_div(
    input: Array,
    target: Array,
    *,
    reduction: Reduction = "mean",
    log_target: bool = False,
    empty_mean: float = math.nan,
) -> Array:
    r"""Kullback-Leibler divergence loss with PyTorch's argument order ``(log q, p)``.

    .. math::

        \ell = t (\log t - x) \quad\text{or, with } \texttt{log\_target}, \quad
        \ell = e^{t} (t - x)

    element-wise, where ``input`` :math:`x = \log q` holds log-probabilities and ``target``
    :math:`t` the true probabilities (:math:`0 \log 0 = 0`). Follows
    :func:`torch.nn.functional.kl_div`: ``reduction="mean"`` divides by the number of elements;
    ``"batchmean"`` divides the sum by the batch size and is the true KL divergence per sample.
    For :math:`D_{\mathrm{KL}}(p \| q)` on probabilities in ``(p, q)`` order see
    :func:`crossentropy.kl_divergence`.

    Parameters
    ----------
    input : array_like
        Log-probabilities :math:`\log q`.
    target : array_like
        Probabilities :math:`p` (log-probabilities with ``log_target=True``), broadcast with
        the input.
    reduction : {"mean", "sum", "none", "batchmean"}, default "mean"
        How the element losses are combined.
    log_target : bool, default False
        Whether ``target`` holds log-probabilities.
    empty_mean : float, default nan
        The mean of an empty input.

    Examples
    --------
    >>> import crossentropy as ce
    >>> x = ce.log_softmax([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    >>> t = ce.softmax([[3.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
    >>> ce.kl_div(x, t, reduction="batchmean")
    np.float64(0.729707220493)
    """
    xp, (x, t) = namespace(input, target, names=["input", "target"])
    xf, out_dtype = as_float(xp, x, "input")
    tf, _ = as_float(xp, t, "target")
    tf = xp.astype(tf, xf.dtype) if tf.dtype != xf.dtype else tf
    reduction = check_reduction(reduction)  # type: ignore[assignment]
    empty = check_empty_mean(empty_mean)
    if not isinstance(log_target, bool):
        raise TypeError(f"log_target must be a bool; got {type(log_target).__name__}")
    try:
        xf, tf = xp.broadcast_arrays(xf, tf)
    except (ValueError, RuntimeError, TypeError):
        raise ValueError(
            f"input {shape_str(xf.shape)} and target {shape_str(tf.shape)} do not broadcast"
        ) from None
    if log_target:
        per = xp.exp(tf) * (tf - xf)
    else:
        check_in_unit_interval(xp, tf, "target")
        per = kl_terms(xp, tf, safe_log(xp, tf), xf)
    out = reduce(xp, per, reduction, empty_mean=empty)
    return restore_dtype(xp, out, out_dtype)
