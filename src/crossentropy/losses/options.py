"""The options objects: one frozen, validated object per loss family (a documented internal
module).

Each public loss builds its family's object from its keyword arguments; the closed-form
gradients (:mod:`crossentropy.grad`), the ``torch.nn`` modules (:mod:`crossentropy.nn`, at
construction) and the fused path build the same object the same way, so every option is
validated once, in one place, with one message. Scalar hyperparameters (label smoothing, z-loss,
softcap, focal ``gamma`` and ``alpha``, Huber's ``delta``, ...) may also be 0-d arrays, such as
traced JAX values under ``jax.jit``: they are kept as arrays and their values are checked where
they can be read.

:func:`bind` maps a call's keywords onto a public function's signature, with that function's
own defaults, and refuses an unknown keyword with a ``TypeError`` that names it and suggests
the closest one: the ``nn`` modules and ``grad`` use it, so their keywords are exactly the
function's.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, TypeVar

from crossentropy._lib.checks import (
    check_bool,
    check_choice,
    check_clip,
    check_hyper,
    check_ignore_index,
    check_int,
    check_keywords,
    check_number,
)
from crossentropy._lib.namespace import Array, is_array
from crossentropy._lib.policy import Validate, check_validate, torch_compiling
from crossentropy._lib.reduction import (
    MEAN_DIVISORS,
    check_empty_mean,
    check_reduction,
    legacy_reduction,
)

__all__ = [
    "BinaryOptions",
    "Clip",
    "DivergenceOptions",
    "Hyper",
    "LossOptions",
    "OverlapOptions",
    "RegressionOptions",
    "SoftmaxOptions",
    "bind",
    "is_off",
    "is_on",
]

#: A scalar hyperparameter: a float, or a 0-d array (traced under ``jax.jit``).
Hyper = float | Array
Clip = Literal["torch", "sklearn", "keras"] | float | None
_CLIP_NAMES = ("torch", "sklearn", "keras")
_WEIGHT_MODES = ("per_class", "per_sample")
_SMOOTHING_MODES = ("uniform", "flip")

Opts = TypeVar("Opts", bound="LossOptions")


def is_off(value: Any) -> bool:
    """Whether a hyperparameter is statically off: None or the float 0 (an array is on)."""
    return value is None or (isinstance(value, float) and value == 0.0)


def is_on(value: Any) -> bool:
    """Not :func:`is_off`."""
    return not is_off(value)


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _check_clip(clip: object) -> Clip:
    if clip is None or (isinstance(clip, str) and clip in _CLIP_NAMES):
        return clip  # type: ignore[return-value]
    if isinstance(clip, (int, float)) and not isinstance(clip, bool):
        return check_clip(clip)
    raise ValueError(
        f"clip must be one of 'torch', 'sklearn', 'keras', None or a number in (0, 0.5); "
        f"got {clip!r}"
    )


def _check_axis(axis: object) -> int | tuple[int, ...] | None:
    if axis is None:
        return None
    if isinstance(axis, (tuple, list)):
        return tuple(check_int(a, "axis") for a in axis)
    return check_int(axis, "axis")


class LossOptions:
    """What every options object shares: building from a call's arguments, replacing fields,
    and listing the fields that differ from the defaults."""

    @classmethod
    def from_arguments(cls: type[Opts], arguments: Mapping[str, Any], **fixed: Any) -> Opts:
        """The options of a call from its arguments (``locals()`` of a public function): the
        fields found there, PyTorch's legacy ``size_average`` / ``reduce`` folded into
        ``reduction``, then ``fixed`` (the function's constants)."""
        names = cls.__dataclass_fields__  # type: ignore[attr-defined]
        values = {name: arguments[name] for name in names if name in arguments}
        if "size_average" in arguments or "reduce" in arguments:
            values["reduction"] = legacy_reduction(
                arguments.get("size_average"), arguments.get("reduce"), values["reduction"]
            )
        values.update(fixed)
        return cls(**values)

    def replace(self: Opts, **changes: Any) -> Opts:
        """A copy with ``changes``, validated again."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def changed(self) -> dict[str, Any]:
        """The fields whose values differ from the defaults (for a ``repr``)."""
        out = {}
        for f in fields(self):  # type: ignore[arg-type]
            if not f.init:
                continue
            value = getattr(self, f.name)
            default = f.default
            same = value is default or (
                not is_array(value)
                and not is_array(default)
                and (
                    value == default
                    or (
                        isinstance(value, float)
                        and isinstance(default, float)
                        and math.isnan(value)
                        and math.isnan(default)
                    )
                )
            )
            if not same:
                out[f.name] = value
        return out


@dataclass(frozen=True)
class SoftmaxOptions(LossOptions):
    """Options of the softmax family: :func:`~crossentropy.cross_entropy`,
    :func:`~crossentropy.nll_loss`, :func:`~crossentropy.focal_loss` and the fused
    :func:`~crossentropy.fused.linear_cross_entropy`. ``gamma`` set makes the focal loss
    (``focal``: the focal loss's own calls, where ``gamma`` must be set); ``log_probs`` is
    ``nll_loss``'s input (log-probabilities)."""

    ignore_index: int = -100
    reduction: str = "mean"
    label_smoothing: Hyper = 0.0
    axis: int | tuple[int, ...] | None = None
    from_logits: bool = True
    log_probs: bool = False
    z_loss: Hyper = 0.0
    softcap: Hyper | None = None
    clip: Clip = None
    empty_mean: float = math.nan
    mean_divisor: str = "auto"
    weight_mode: str = "per_class"
    gamma: Hyper | None = None
    alpha: Hyper | None = None
    focal: bool = False
    validate: Validate | None = None
    #: Derived: PyTorch's own call (ATen's ``cross_entropy`` / ``nll_loss`` give this loss).
    torch_call: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set(self, "ignore_index", check_ignore_index(self.ignore_index))
        _set(self, "reduction", check_reduction(self.reduction))
        _set(
            self,
            "label_smoothing",
            check_hyper(self.label_smoothing, "label_smoothing", low=0.0, high=1.0),
        )
        _set(self, "axis", _check_axis(self.axis))
        _set(self, "from_logits", check_bool(self.from_logits, "from_logits"))
        _set(self, "z_loss", check_hyper(self.z_loss, "z_loss", low=0.0))
        if self.softcap is not None:
            _set(self, "softcap", check_hyper(self.softcap, "softcap", low=0.0, low_open=True))
        _set(self, "clip", _check_clip(self.clip))
        _set(self, "empty_mean", check_empty_mean(self.empty_mean))
        check_choice(self.mean_divisor, "mean_divisor", MEAN_DIVISORS)
        check_choice(self.weight_mode, "weight_mode", _WEIGHT_MODES)
        if self.gamma is not None:
            _set(self, "gamma", check_hyper(self.gamma, "gamma", low=0.0))
        elif self.focal:
            raise TypeError("gamma must be a real number; got None")
        if self.alpha is not None:
            _set(self, "alpha", check_hyper(self.alpha, "alpha", low=0.0))
        if self.validate is not None:
            _set(self, "validate", check_validate(self.validate))
        if (not self.from_logits or self.log_probs) and (
            is_on(self.z_loss) or self.softcap is not None
        ):
            raise ValueError("z_loss and softcap apply to logits; they need from_logits=True")
        if self.from_logits and self.clip is not None:
            raise ValueError("clip applies to probabilities; it needs from_logits=False")
        _set(
            self,
            "torch_call",
            self.kind != "probs"
            and self.gamma is None
            and is_off(self.z_loss)
            and self.softcap is None
            and self.axis is None
            and self.reduction != "batchmean"
            and math.isnan(self.empty_mean)
            and self.divisor_rule(soft=False) == "weight"
            and self.weight_mode == "per_class"
            and isinstance(self.label_smoothing, float),
        )

    @property
    def kind(self) -> Literal["logits", "probs", "log_probs"]:
        """What the input holds."""
        if self.log_probs:
            return "log_probs"
        return "logits" if self.from_logits else "probs"

    def divisor_rule(self, soft: bool) -> str:
        """``"weight"`` or ``"count"``: the divisor of a ``"mean"`` (the counted rows' target
        weights, or their number), ``"auto"`` resolved to PyTorch's choice: the weights for
        class indices, the count for probability targets."""
        if self.mean_divisor != "auto":
            return self.mean_divisor
        return "count" if soft else "weight"


@dataclass(frozen=True)
class BinaryOptions(LossOptions):
    """Options of the sigmoid family: :func:`~crossentropy.binary_cross_entropy`,
    :func:`~crossentropy.binary_cross_entropy_with_logits` and
    :func:`~crossentropy.sigmoid_focal_loss` (``gamma`` set; ``focal``: its own calls, where
    ``gamma`` must be set)."""

    from_logits: bool = True
    reduction: str = "mean"
    clip: Clip = "torch"
    label_smoothing: Hyper = 0.0
    smoothing_mode: str = "uniform"
    empty_mean: float = math.nan
    mean_divisor: str = "auto"
    gamma: Hyper | None = None
    alpha: Hyper | None = None
    apply_class_balancing: bool = True
    focal: bool = False
    validate: Validate | None = None

    def __post_init__(self) -> None:
        _set(self, "from_logits", check_bool(self.from_logits, "from_logits"))
        _set(self, "reduction", check_reduction(self.reduction))
        _set(self, "clip", _check_clip(self.clip))
        _set(
            self,
            "label_smoothing",
            check_hyper(self.label_smoothing, "label_smoothing", low=0.0, high=1.0),
        )
        check_choice(self.smoothing_mode, "smoothing_mode", _SMOOTHING_MODES)
        _set(self, "empty_mean", check_empty_mean(self.empty_mean))
        check_choice(self.mean_divisor, "mean_divisor", MEAN_DIVISORS)
        if self.gamma is not None:
            _set(self, "gamma", check_hyper(self.gamma, "gamma", low=0.0))
        elif self.focal:  # the focal loss's own calls: gamma=0 is the plain loss, None no number
            raise TypeError("gamma must be a real number; got None")
        if self.alpha is not None:
            _set(self, "alpha", check_hyper(self.alpha, "alpha", high=1.0))
        _set(
            self,
            "apply_class_balancing",
            check_bool(self.apply_class_balancing, "apply_class_balancing"),
        )
        if self.validate is not None:
            _set(self, "validate", check_validate(self.validate))

    @property
    def balance(self) -> Hyper | None:
        """The focal ``alpha`` in effect: None when off (None, negative, or
        ``apply_class_balancing=False``)."""
        a = self.alpha
        if a is None or not self.apply_class_balancing:
            return None
        if isinstance(a, float) and a < 0:
            return None
        return a


@dataclass(frozen=True)
class DivergenceOptions(LossOptions):
    """Options of :func:`~crossentropy.kl_div`."""

    reduction: str = "mean"
    log_target: bool = False
    empty_mean: float = math.nan
    validate: Validate | None = None

    def __post_init__(self) -> None:
        _set(self, "reduction", check_reduction(self.reduction))
        _set(self, "log_target", check_bool(self.log_target, "log_target"))
        _set(self, "empty_mean", check_empty_mean(self.empty_mean))
        if self.validate is not None:
            _set(self, "validate", check_validate(self.validate))


#: PyTorch 2.13's divisor of a weighted "mean": the sum of the weights or the element count.
WEIGHTED_MEAN = {
    "mse": "weight",
    "l1": "weight",
    "huber": "count",
    "smooth_l1": "count",
    "log_cosh": "weight",
    "rmse": "weight",
}
_REGRESSION = tuple(WEIGHTED_MEAN)


@dataclass(frozen=True)
class RegressionOptions(LossOptions):
    """Options of the regression losses; ``loss`` names the function of the error."""

    loss: str = "mse"
    reduction: str = "mean"
    delta: Hyper = 1.0
    beta: Hyper = 1.0
    mean_divisor: str = "auto"
    empty_mean: float = math.nan
    axis: int | tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        check_choice(self.loss, "loss", _REGRESSION)
        _set(self, "reduction", check_reduction(self.reduction))
        # +inf as PyTorch takes it: the quadratic everywhere (Huber), the loss 0 (smooth L1)
        _set(self, "delta", check_hyper(self.delta, "delta", low=0.0, low_open=True, infinite=True))
        _set(self, "beta", check_hyper(self.beta, "beta", low=0.0, infinite=True))
        check_choice(self.mean_divisor, "mean_divisor", MEAN_DIVISORS)
        _set(self, "empty_mean", check_empty_mean(self.empty_mean))
        _set(self, "axis", _check_axis(self.axis))

    @property
    def divisor_rule(self) -> str:
        """``"weight"`` or ``"count"``: the divisor of a weighted mean, ``"auto"`` resolved to
        PyTorch's choice for this loss."""
        return WEIGHTED_MEAN[self.loss] if self.mean_divisor == "auto" else self.mean_divisor


_MODES = ("binary", "multiclass", "multilabel")
_AGGREGATES = ("batch", "sample", "global")
_ABSENT = ("zero", "skip", "keep")
_INTERSECTIONS = ("product", "min")


@dataclass(frozen=True)
class OverlapOptions(LossOptions):
    """Options of the overlap losses (:func:`~crossentropy.tversky_loss`,
    :func:`~crossentropy.dice_loss`, :func:`~crossentropy.jaccard_loss`)."""

    alpha: Hyper = 0.5
    beta: Hyper = 0.5
    gamma: Hyper = 1.0
    mode: str = "binary"
    from_logits: bool = True
    smooth: Hyper = 0.0
    eps: float = 1e-7
    aggregate: str = "batch"
    absent: str = "zero"
    ignore_index: int | None = None
    classes: tuple[int, ...] | None = None
    intersection: str = "product"
    log_loss: bool = False
    reduction: str = "mean"
    axis: int | None = None
    empty_mean: float = math.nan
    validate: Validate | None = None

    def __post_init__(self) -> None:
        _set(self, "alpha", check_hyper(self.alpha, "alpha", low=0.0))
        _set(self, "beta", check_hyper(self.beta, "beta", low=0.0))
        _set(self, "gamma", check_hyper(self.gamma, "gamma", low=0.0, low_open=True))
        check_choice(self.mode, "mode", _MODES)
        _set(self, "from_logits", check_bool(self.from_logits, "from_logits"))
        _set(self, "smooth", check_hyper(self.smooth, "smooth", low=0.0))
        _set(self, "eps", check_number(self.eps, "eps", low=0.0))
        check_choice(self.aggregate, "aggregate", _AGGREGATES)
        check_choice(self.absent, "absent", _ABSENT)
        if self.ignore_index is not None:
            _set(self, "ignore_index", check_ignore_index(self.ignore_index))
        if self.classes is not None:
            if isinstance(self.classes, str) or not hasattr(self.classes, "__iter__"):
                raise TypeError(
                    f"classes must be a sequence of class indices; got {self.classes!r}"
                )
            _set(self, "classes", tuple(check_int(c, "classes") for c in self.classes))
            twice = next((c for i, c in enumerate(self.classes) if c in self.classes[:i]), None)
            if twice is not None:  # (it would count twice in the mean)
                raise ValueError(f"classes must be distinct class indices; got {twice} twice")
            if self.aggregate == "global":
                raise ValueError(
                    "classes needs per-class scores; it cannot go with aggregate='global'"
                )
        check_choice(self.intersection, "intersection", _INTERSECTIONS)
        _set(self, "log_loss", check_bool(self.log_loss, "log_loss"))
        _set(self, "reduction", check_reduction(self.reduction, ("none", "mean", "sum")))
        if self.axis is not None:
            _set(self, "axis", check_int(self.axis, "axis"))
            if self.mode == "binary":  # (it was ignored there, whatever its value)
                raise ValueError(
                    "axis is the class axis of the multiclass and multilabel modes; binary mode "
                    f"has none; got axis={self.axis}"
                )
        _set(self, "empty_mean", check_empty_mean(self.empty_mean))
        if self.validate is not None:
            _set(self, "validate", check_validate(self.validate))


# ---------------------------------------------------------------------------------------------
# Binding keywords to a public function's signature.
# ---------------------------------------------------------------------------------------------


#: The parameters of the functions :func:`bind` has seen (a dict of this module's, not an
#: attribute of each function: ``torch.compile`` refuses a write to a function's
#: ``__dict__``).
_PARAMETERS: dict[Callable[..., Any], Mapping[str, inspect.Parameter]] = {}


def _parameters(fn: Callable[..., Any]) -> Mapping[str, inspect.Parameter]:
    if torch_compiling():  # a module built inside compiled code: the signature read, the cache
        # left alone (a graph that read the cache would be guarded on it, and compiled again
        # whenever another function is bound)
        return inspect.signature(fn).parameters
    cached = _PARAMETERS.get(fn)
    if cached is None:
        cached = _PARAMETERS[fn] = inspect.signature(fn).parameters
    return cached


def bind(
    fn: Callable[..., Any],
    options: type[Opts],
    keywords: Mapping[str, Any],
    *,
    owner: str,
    arrays: tuple[str, ...] = (),
    fixed: Mapping[str, Any] | None = None,
) -> tuple[Opts, dict[str, Any]]:
    """Options and array arguments of a call to ``fn`` with ``keywords``.

    ``keywords`` may be any keyword ``fn`` takes except its leading positional arrays; missing
    ones take ``fn``'s defaults (so nothing restates them). An unknown keyword is a
    ``TypeError`` naming ``owner`` and the closest keyword. ``arrays`` names the array
    keywords (returned apart, e.g. ``weight``, ``where``); ``fixed`` the function's constants.
    """
    params = _parameters(fn)
    allowed = [n for n, p in params.items() if p.default is not inspect.Parameter.empty]
    check_keywords(keywords, allowed, owner)
    values = {n: p.default for n, p in params.items() if p.default is not inspect.Parameter.empty}
    values.update(keywords)
    found = {n: values.get(n) for n in arrays}
    return options.from_arguments(values, **dict(fixed or {})), found
