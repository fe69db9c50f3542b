r"""PyTorch ``nn.Module`` drop-ins for every loss of the functional API.

``CrossEntropyLoss``, ``NLLLoss``, ``BCELoss``, ``BCEWithLogitsLoss``, ``KLDivLoss``,
``MSELoss``, ``L1Loss``, ``HuberLoss`` and ``SmoothL1Loss`` take PyTorch's constructor arguments
(including the deprecated ``size_average`` / ``reduce``, with PyTorch's warning) and give
PyTorch's values and gradients. When no extra keyword is used the functional core delegates to
ATen, so in float32 and float64 they are identical bit for bit (``CrossEntropyLoss`` with
probability targets where their values are read, eagerly, and found finite); the exceptions are
``KLDivLoss`` and, under transforms or with a ``-inf`` logit, ``CrossEntropyLoss`` with
probability targets, which run the generic path (they keep the ``0 log 0 = 0`` convention where
PyTorch gives NaN), and float16 and bfloat16 inputs outside autocast, which are computed in
float32 and rounded once (PyTorch rounds along the way): these agree with PyTorch to rounding
(about one ulp of the result's dtype), and the half-precision ones are the closer to the exact
value. Keyword-only extras of the functional API (z-loss, softcap, ``empty_mean``, ...) are
constructor keywords here. Modules for the losses PyTorch lacks: ``FocalLoss``,
``SigmoidFocalLoss``, ``DiceLoss``, ``JaccardLoss``, ``TverskyLoss``; and
``LinearCrossEntropyLoss``, the output projection and its cross-entropy fused so the logits
never exist at once.

Each module builds its loss family's options object once, at construction, from exactly the keywords
its functional counterpart takes: an unknown keyword is a ``TypeError`` naming it (with the closest
keyword), a bad value a ``ValueError`` or ``TypeError`` naming it. Per-call array keywords
(``where``) are not constructor keywords: passing one is a ``TypeError`` that points to the
functional form. The options stay readable and assignable as attributes (``loss.reduction = "sum"``
validates again). Under ``torch.autocast`` every module computes and returns float32, as PyTorch's
do; each works under ``torch.func`` (``functional_call``, ``vmap``, ``grad``) and ``torch.compile``.

Class weights, ``pos_weight`` and a per-class ``alpha`` are registered buffers: they move with
``.to(device)``, are saved in ``state_dict`` and pickle with the module. Importing this package
imports torch.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from crossentropy._lib.extras import reraise_missing

try:
    import torch
except ModuleNotFoundError as exc:
    reraise_missing("crossentropy.nn", exc)
from torch import Tensor, nn

from crossentropy import losses
from crossentropy._lib.checks import check_bool, check_int
from crossentropy.fused._chunked import (
    FusedOptions,
    check_parallel,
    check_torch_options,
    linear_cross_entropy,
    linear_loss,
)
from crossentropy.losses.binary import binary_loss
from crossentropy.losses.classification import softmax_loss
from crossentropy.losses.divergence import divergence_loss, warn_mean
from crossentropy.losses.focal import split_alpha
from crossentropy.losses.options import (
    BinaryOptions,
    DivergenceOptions,
    LossOptions,
    OverlapOptions,
    RegressionOptions,
    SoftmaxOptions,
    bind,
)
from crossentropy.losses.overlap import overlap_loss
from crossentropy.losses.regression import regression_loss

if TYPE_CHECKING:
    from crossentropy._lib.policy import Validate
    from crossentropy.losses.options import Clip, Hyper

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "DiceLoss",
    "FocalLoss",
    "HuberLoss",
    "JaccardLoss",
    "KLDivLoss",
    "L1Loss",
    "LinearCrossEntropyLoss",
    "MSELoss",
    "NLLLoss",
    "SigmoidFocalLoss",
    "SmoothL1Loss",
    "TverskyLoss",
]


def _option_property(name: str) -> property:
    def get(self: _Loss) -> Any:
        return getattr(self._options, name)

    def set_(self: _Loss, value: Any) -> None:
        self._options = self._options.replace(**{name: value})

    return property(get, set_, doc=f"The ``{name}`` option (assigning it validates it).")


class _Loss(nn.Module):
    """A loss module over one options object, built at construction from the keywords of
    ``_function`` (see :func:`crossentropy.losses.options.bind`)."""

    _function: ClassVar[Callable[..., Any]]
    _options_type: ClassVar[type[LossOptions]]
    _fixed: ClassVar[dict[str, Any]] = {}
    _shown: ClassVar[tuple[str, ...]] = ()  # shown in repr even at their defaults
    _options: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_function" not in cls.__dict__:
            return
        keywords = inspect.signature(cls._function).parameters  # the module's settings
        options_type: Any = cls._options_type
        for f in dataclasses.fields(options_type):
            if (
                f.init
                and f.name in keywords
                and f.name not in cls._fixed
                and not any(f.name in vars(base) for base in cls.__mro__)
            ):
                setattr(cls, f.name, _option_property(f.name))

    def _configure(self, keywords: dict[str, Any], *, arrays: tuple[str, ...] = ()) -> None:
        owner = f"{type(self).__name__}()"
        for legacy in ("size_average", "reduce"):  # PyTorch's; not every function has them
            if keywords.get(legacy, 0) is None:
                del keywords[legacy]
        options, found = bind(
            type(self)._function,
            type(self)._options_type,
            keywords,
            owner=owner,
            arrays=arrays,
            fixed=type(self)._fixed,
        )
        for name, value in found.items():
            if value is not None:
                where = (  # a call's argument of the module's forward, or the function's
                    "to each call (forward)"
                    if name in inspect.signature(type(self).forward).parameters
                    else f"to the functional {type(self)._function.__name__} instead"
                )
                raise TypeError(f"{owner} got an array keyword {name!r}; pass it {where}")
        self._options = options

    @property
    def extras(self) -> dict[str, Any]:
        """The options set beyond the defaults, other than ``reduction``."""
        changed = self._options.changed()
        return {
            k: v
            for k, v in changed.items()
            if k != "reduction" and k not in type(self)._fixed and k not in self._shown
        }

    def extra_repr(self) -> str:
        shown = {"reduction": self._options.reduction}
        shown.update({k: getattr(self, k) for k in self._shown})  # the module's view
        shown.update(self.extras)
        return ", ".join(f"{k}={v!r}" for k, v in shown.items())


# ---------------------------------------------------------------------------------------------
# The softmax family.
# ---------------------------------------------------------------------------------------------


class CrossEntropyLoss(_Loss):
    r"""Drop-in for :class:`torch.nn.CrossEntropyLoss`; see :func:`crossentropy.cross_entropy`.

    .. math::

        \ell_n = -w_{y_n} \log \operatorname{softmax}(x_n)_{y_n}

    Extras (keyword-only): any keyword of :func:`crossentropy.cross_entropy` (``axis``,
    ``z_loss``, ``softcap``, ``empty_mean``, ``mean_divisor``, ``weight_mode``,
    ``from_logits``, ``clip``, ``validate``).

    Parameters
    ----------
    weight : Tensor, optional
        Class weights ``(C,)`` (a buffer).
    size_average : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    ignore_index : int, default -100
        Target value left out of the loss and of the mean.
    reduce : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    reduction : str, default "mean"
        How the losses are combined, as :func:`crossentropy.cross_entropy`'s ``reduction``.
    label_smoothing : float, default 0.0
        Probability mass spread uniformly over the classes, in [0, 1].
    **extras
        Any other non-array keyword of :func:`crossentropy.cross_entropy` (keyword-only).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import CrossEntropyLoss
    >>> loss = CrossEntropyLoss(z_loss=1e-4)
    >>> round(float(loss(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
    ...                  torch.tensor([1, 2]))), 4)
    0.9102
    """

    _function = staticmethod(losses.cross_entropy)
    _options_type = SoftmaxOptions
    _shown = ("ignore_index", "label_smoothing")

    if TYPE_CHECKING:  # the options (properties set by _Loss.__init_subclass__)
        ignore_index: int
        reduction: str
        label_smoothing: Hyper
        axis: int | tuple[int, ...] | None
        from_logits: bool
        z_loss: Hyper
        softcap: Hyper | None
        clip: Clip
        empty_mean: float
        mean_divisor: str
        weight_mode: str
        validate: Validate | None
    weight: Tensor | None

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
        **extras: Any,
    ) -> None:
        super().__init__()
        self._configure(
            dict(
                size_average=size_average,
                ignore_index=ignore_index,
                reduce=reduce,
                reduction=reduction,
                label_smoothing=label_smoothing,
                **extras,
            ),
            arrays=("where",),
        )
        self.register_buffer("weight", weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return softmax_loss(input, target, self.weight, self._options)  # type: ignore[no-any-return]


class NLLLoss(_Loss):
    r"""Drop-in for :class:`torch.nn.NLLLoss`; see :func:`crossentropy.nll_loss`.

    .. math::

        \ell_n = -w_{y_n} x_{n, y_n}

    Parameters
    ----------
    weight : Tensor, optional
        Class weights ``(C,)`` (a buffer).
    size_average : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    ignore_index : int, default -100
        Target value left out of the loss and of the mean.
    reduce : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    reduction : str, default "mean"
        How the losses are combined, as :func:`crossentropy.nll_loss`'s ``reduction``.
    **extras
        Any other non-array keyword of :func:`crossentropy.nll_loss` (keyword-only).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import NLLLoss
    >>> x = torch.log_softmax(torch.tensor([[1.0, 2.0, 3.0]]), dim=1)
    >>> round(float(NLLLoss()(x, torch.tensor([2]))), 4)
    0.4076
    """

    _function = staticmethod(losses.nll_loss)
    _options_type = SoftmaxOptions
    _fixed: ClassVar[dict[str, Any]] = {"log_probs": True}
    _shown = ("ignore_index",)

    if TYPE_CHECKING:  # the options (properties set by _Loss.__init_subclass__)
        ignore_index: int
        reduction: str
        axis: int | tuple[int, ...] | None
        empty_mean: float
        mean_divisor: str
        validate: Validate | None
    weight: Tensor | None

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
        **extras: Any,
    ) -> None:
        super().__init__()
        self._configure(
            dict(
                size_average=size_average,
                ignore_index=ignore_index,
                reduce=reduce,
                reduction=reduction,
                **extras,
            ),
            arrays=("where",),
        )
        self.register_buffer("weight", weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return softmax_loss(input, target, self.weight, self._options)  # type: ignore[no-any-return]


class FocalLoss(_Loss):
    r"""Multi-class (softmax) focal loss module; see :func:`crossentropy.focal_loss`.

    .. math::

        \ell_n = -w_{y_n}\, \alpha_{y_n} (1 - p_{n,y_n})^\gamma \log p_{n,y_n}

    ``weight`` and a per-class ``alpha`` are buffers (``alpha_weight``); a scalar ``alpha`` is
    an option.

    Parameters
    ----------
    weight : Tensor, optional
        Class weights ``(C,)`` (a buffer).
    alpha : float or Tensor, optional
        Class balance: one weight per class ``(C,)``, or one number for every class.
    gamma : float, default 2.0
        Focusing exponent, >= 0 (0: the cross-entropy).
    ignore_index : int, default -100
        Target value left out of the loss and of the mean.
    reduction : str, default "mean"
        How the losses are combined, as :func:`crossentropy.focal_loss`'s ``reduction``.
    label_smoothing : float, default 0.0
        Probability mass spread uniformly over the classes, in [0, 1].
    **extras
        Any other non-array keyword of :func:`crossentropy.focal_loss` (keyword-only).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import FocalLoss
    >>> loss = FocalLoss(gamma=0.0)  # gamma = 0: cross-entropy
    >>> round(float(loss(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([2]))), 4)
    0.4076
    """

    _function = staticmethod(losses.focal_loss)
    _fixed: ClassVar[dict[str, Any]] = {"focal": True}
    _options_type = SoftmaxOptions
    _shown = ("ignore_index", "label_smoothing", "alpha", "gamma")

    if TYPE_CHECKING:  # the options (properties set by _Loss.__init_subclass__)
        ignore_index: int
        reduction: str
        label_smoothing: Hyper
        axis: int | tuple[int, ...] | None
        from_logits: bool
        clip: Clip
        empty_mean: float
        mean_divisor: str
        weight_mode: str
        gamma: Hyper | None
        validate: Validate | None
    weight: Tensor | None
    alpha_weight: Tensor | None

    def __init__(
        self,
        weight: Tensor | None = None,
        *,
        alpha: float | Tensor | None = None,
        gamma: float = 2.0,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
        **extras: Any,
    ) -> None:
        super().__init__()
        scalar, vector = split_alpha(alpha)
        if vector is not None and not isinstance(vector, Tensor):
            vector = torch.as_tensor(vector)
        self._configure(
            dict(
                alpha=scalar,
                gamma=gamma,
                ignore_index=ignore_index,
                reduction=reduction,
                label_smoothing=label_smoothing,
                **extras,
            ),
            arrays=("weight", "where"),
        )
        self.register_buffer("weight", weight)
        self.register_buffer("alpha_weight", vector)

    @property
    def alpha(self) -> float | Tensor | None:
        """Class balance: the per-class tensor (the ``alpha_weight`` buffer), or the number
        (an option); assigning either replaces the other (the number is checked)."""
        return self.alpha_weight if self.alpha_weight is not None else self._options.alpha

    @alpha.setter
    def alpha(self, value: float | Tensor | None) -> None:
        scalar, vector = split_alpha(value)
        if vector is not None and not isinstance(vector, Tensor):
            vector = torch.as_tensor(vector)
        self._options = self._options.replace(alpha=scalar)
        self.alpha_weight = vector

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return softmax_loss(  # type: ignore[no-any-return]
            input, target, self.weight, self._options, alpha=self.alpha_weight
        )


# ---------------------------------------------------------------------------------------------
# The sigmoid family and KL.
# ---------------------------------------------------------------------------------------------


class BCELoss(_Loss):
    r"""Drop-in for :class:`torch.nn.BCELoss`; see :func:`crossentropy.binary_cross_entropy`.

    .. math::

        \ell = -w \bigl(t \log p + (1 - t) \log (1 - p)\bigr)

    Parameters
    ----------
    weight : Tensor, optional
        Element weights, broadcast to the input (a buffer).
    size_average : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    reduce : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    reduction : str, default "mean"
        How the losses are combined, as :func:`crossentropy.binary_cross_entropy`'s ``reduction``.
    **extras
        Any other non-array keyword of :func:`crossentropy.binary_cross_entropy` (keyword-only).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import BCELoss
    >>> round(float(BCELoss()(torch.tensor([0.9, 0.2]), torch.tensor([1.0, 0.0]))), 6)
    0.164252
    """

    _function = staticmethod(losses.binary_cross_entropy)
    _options_type = BinaryOptions
    _fixed: ClassVar[dict[str, Any]] = {"from_logits": False}

    if TYPE_CHECKING:  # the options (properties set by _Loss.__init_subclass__)
        reduction: str
        clip: Clip
        label_smoothing: Hyper
        smoothing_mode: str
        empty_mean: float
        mean_divisor: str
        validate: Validate | None
    weight: Tensor | None

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        **extras: Any,
    ) -> None:
        super().__init__()
        self._configure(
            dict(size_average=size_average, reduce=reduce, reduction=reduction, **extras)
        )
        self.register_buffer("weight", weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return binary_loss(input, target, self.weight, self._options)  # type: ignore[no-any-return]


class BCEWithLogitsLoss(_Loss):
    r"""Drop-in for :class:`torch.nn.BCEWithLogitsLoss`; see
    :func:`crossentropy.binary_cross_entropy_with_logits`.

    .. math::

        \ell = -w \bigl(p_w\, t \log \sigma(x) + (1 - t) \log \sigma(-x)\bigr)

    Parameters
    ----------
    weight : Tensor, optional
        Element weights, broadcast to the input (a buffer).
    size_average : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    reduce : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    reduction : str, default "mean"
        How the losses are combined: ``reduction`` of
        :func:`crossentropy.binary_cross_entropy_with_logits`.
    pos_weight : Tensor, optional
        Weight of the positive term, per class (a buffer), as PyTorch's.
    **extras
        Any other non-array keyword of :func:`crossentropy.binary_cross_entropy_with_logits`
        (keyword-only).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import BCEWithLogitsLoss
    >>> loss = BCEWithLogitsLoss(label_smoothing=0.1)  # Keras' binary smoothing
    >>> round(float(loss(torch.tensor([0.5, -1.0, 2.0]), torch.tensor([1.0, 0.0, 1.0]))), 6)
    0.363089
    """

    _function = staticmethod(losses.binary_cross_entropy_with_logits)
    _options_type = BinaryOptions
    _fixed: ClassVar[dict[str, Any]] = {"from_logits": True, "clip": None}

    if TYPE_CHECKING:  # the options (properties set by _Loss.__init_subclass__)
        reduction: str
        label_smoothing: Hyper
        smoothing_mode: str
        empty_mean: float
        mean_divisor: str
        validate: Validate | None
    weight: Tensor | None
    pos_weight: Tensor | None

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        pos_weight: Tensor | None = None,
        **extras: Any,
    ) -> None:
        super().__init__()
        self._configure(
            dict(size_average=size_average, reduce=reduce, reduction=reduction, **extras)
        )
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return binary_loss(  # type: ignore[no-any-return]
            input, target, self.weight, self._options, pos_weight=self.pos_weight
        )


class SigmoidFocalLoss(_Loss):
    r"""Binary / multi-label focal loss module (torchvision's numbers); see
    :func:`crossentropy.sigmoid_focal_loss`.

    .. math::

        \ell = -\alpha_t (1 - p_t)^\gamma \log p_t

    Unlike the functional form (torchvision's ``"none"``), the module averages by default, as
    every PyTorch loss module does.

    Parameters
    ----------
    weight : Tensor, optional
        Element weights, broadcast to the input (a buffer).
    alpha : float or None, default 0.25
        Weight of the positive term (``1 - alpha`` of the negative); None for none.
    gamma : float, default 2.0
        Focusing exponent, >= 0 (0: the binary cross-entropy).
    reduction : str, default "mean"
        How the losses are combined, as :func:`crossentropy.sigmoid_focal_loss`'s ``reduction``.
    **extras
        Any other non-array keyword of :func:`crossentropy.sigmoid_focal_loss` (keyword-only).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import SigmoidFocalLoss
    >>> loss = SigmoidFocalLoss(alpha=None)
    >>> round(float(loss(torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1.0, 1.0, 0.0]))), 6)
    0.360361
    """

    _function = staticmethod(losses.sigmoid_focal_loss)
    _options_type = BinaryOptions
    _fixed: ClassVar[dict[str, Any]] = {"focal": True}
    _shown = ("alpha", "gamma")

    if TYPE_CHECKING:  # the options (properties set by _Loss.__init_subclass__)
        from_logits: bool
        reduction: str
        clip: Clip
        label_smoothing: Hyper
        smoothing_mode: str
        empty_mean: float
        mean_divisor: str
        gamma: Hyper | None
        alpha: Hyper | None
        apply_class_balancing: bool
        validate: Validate | None
    weight: Tensor | None

    def __init__(
        self,
        weight: Tensor | None = None,
        *,
        alpha: float | None = 0.25,
        gamma: float = 2.0,
        reduction: str = "mean",
        **extras: Any,
    ) -> None:
        super().__init__()
        self._configure(
            dict(alpha=alpha, gamma=gamma, reduction=reduction, **extras), arrays=("weight",)
        )
        self.register_buffer("weight", weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return binary_loss(input, target, self.weight, self._options)  # type: ignore[no-any-return]


class KLDivLoss(_Loss):
    r"""Drop-in for :class:`torch.nn.KLDivLoss`; see :func:`crossentropy.kl_div`.

    .. math::

        \ell = t (\log t - x)

    Parameters
    ----------
    size_average : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    reduce : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    reduction : str, default "mean"
        How the losses are combined, as :func:`crossentropy.kl_div`'s ``reduction``.
    log_target : bool, default False
        Whether the target holds log-probabilities.
    **extras
        Any other non-array keyword of :func:`crossentropy.kl_div` (keyword-only).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import KLDivLoss
    >>> x = torch.log(torch.tensor([[0.5, 0.5]]))
    >>> float(KLDivLoss(reduction="batchmean")(x, torch.tensor([[0.5, 0.5]])))
    0.0
    """

    _function = staticmethod(losses.kl_div)
    _options_type = DivergenceOptions
    _shown = ("log_target",)

    if TYPE_CHECKING:  # the options (properties set by _Loss.__init_subclass__)
        log_target: bool
        empty_mean: float
        validate: Validate | None

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        log_target: bool = False,
        **extras: Any,
    ) -> None:
        super().__init__()
        self._configure(
            dict(
                size_average=size_average,
                reduce=reduce,
                reduction=reduction,
                log_target=log_target,
                **extras,
            )
        )
        # the reduction as PyTorch's module holds it (its "mean" warning reads that spelling:
        # not for the deprecated "elementwise_mean"), whatever set it
        legacy = size_average is not None or reduce is not None
        self._spelled = self._options.reduction if legacy else reduction

    @property
    def reduction(self) -> str:
        """The ``reduction`` option as given (assigning it validates it): PyTorch's deprecated
        ``"elementwise_mean"`` stays so spelled, as in PyTorch's module, and computes
        ``"mean"``."""
        return self._spelled

    @reduction.setter
    def reduction(self, value: str) -> None:
        self._options = self._options.replace(reduction=value)
        self._spelled = value

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        warn_mean(self._spelled)  # as PyTorch's module
        return divergence_loss(input, target, self._options)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# Regression.
# ---------------------------------------------------------------------------------------------


class _RegressionLoss(_Loss):
    """Element-wise regression losses; ``forward`` also takes element weights (PyTorch 2.13's
    functional ``weight=``)."""

    _options_type = RegressionOptions

    if TYPE_CHECKING:  # the subclasses' options (properties set by _Loss.__init_subclass__)
        reduction: str
        mean_divisor: str
        empty_mean: float

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        **extras: Any,
    ) -> None:
        super().__init__()
        self._configure(
            dict(size_average=size_average, reduce=reduce, reduction=reduction, **extras),
            arrays=("weight",),
        )

    def forward(self, input: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        return regression_loss(input, target, weight, self._options)  # type: ignore[no-any-return]


class MSELoss(_RegressionLoss):
    r"""Drop-in for :class:`torch.nn.MSELoss`; see :func:`crossentropy.mse_loss`.

    .. math::

        \ell = w (x - y)^2

    Parameters
    ----------
    size_average : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    reduce : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    reduction : str, default "mean"
        How the losses are combined, as :func:`crossentropy.mse_loss`'s ``reduction``.
    **extras
        Any other non-array keyword of :func:`crossentropy.mse_loss` (keyword-only).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import MSELoss
    >>> float(MSELoss()(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0])))
    5.0
    """

    _function = staticmethod(losses.mse_loss)
    _fixed: ClassVar[dict[str, Any]] = {"loss": "mse"}


class L1Loss(_RegressionLoss):
    r"""Drop-in for :class:`torch.nn.L1Loss`; see :func:`crossentropy.l1_loss`.

    .. math::

        \ell = w |x - y|

    Parameters
    ----------
    size_average : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    reduce : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    reduction : str, default "mean"
        How the losses are combined, as :func:`crossentropy.l1_loss`'s ``reduction``.
    **extras
        Any other non-array keyword of :func:`crossentropy.l1_loss` (keyword-only).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import L1Loss
    >>> float(L1Loss()(torch.tensor([1.0, -3.0]), torch.tensor([0.0, 0.0])))
    2.0
    """

    _function = staticmethod(losses.l1_loss)
    _fixed: ClassVar[dict[str, Any]] = {"loss": "l1"}


class HuberLoss(_RegressionLoss):
    r"""Drop-in for :class:`torch.nn.HuberLoss`; see :func:`crossentropy.huber_loss`.

    .. math::

        \ell = \begin{cases} \tfrac12 e^2 & |e| \le \delta \\
        \delta (|e| - \tfrac12 \delta) & \text{otherwise} \end{cases}

    Parameters
    ----------
    reduction : str, default "mean"
        How the losses are combined, as :func:`crossentropy.huber_loss`'s ``reduction``.
    delta : float, default 1.0
        Where the quadratic part meets the linear one, > 0 (+inf: half the squared error).
    **extras
        Any other non-array keyword of :func:`crossentropy.huber_loss` (keyword-only).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import HuberLoss
    >>> float(HuberLoss(delta=1.0)(torch.tensor([0.5, 3.0]), torch.tensor([0.0, 0.0])))
    1.3125
    """

    _function = staticmethod(losses.huber_loss)
    _fixed: ClassVar[dict[str, Any]] = {"loss": "huber"}
    _shown = ("delta",)

    if TYPE_CHECKING:  # its own options (properties set by _Loss.__init_subclass__)
        delta: Hyper

    def __init__(self, reduction: str = "mean", delta: float = 1.0, **extras: Any) -> None:
        super().__init__(reduction=reduction, delta=delta, **extras)


class SmoothL1Loss(_RegressionLoss):
    r"""Drop-in for :class:`torch.nn.SmoothL1Loss`; see :func:`crossentropy.smooth_l1_loss`.

    .. math::

        \ell = \begin{cases} \tfrac12 e^2 / \beta & |e| < \beta \\
        |e| - \tfrac12 \beta & \text{otherwise} \end{cases}

    Parameters
    ----------
    size_average : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    reduce : bool, optional
        Deprecated (PyTorch's legacy argument): use ``reduction``.
    reduction : str, default "mean"
        How the losses are combined, as :func:`crossentropy.smooth_l1_loss`'s ``reduction``.
    beta : float, default 1.0
        Where the quadratic part meets the linear one, >= 0 (0: the L1 loss; +inf: 0).
    **extras
        Any other non-array keyword of :func:`crossentropy.smooth_l1_loss` (keyword-only).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import SmoothL1Loss
    >>> float(SmoothL1Loss(beta=2.0)(torch.tensor([1.0]), torch.tensor([0.0])))
    0.25
    """

    _function = staticmethod(losses.smooth_l1_loss)
    _fixed: ClassVar[dict[str, Any]] = {"loss": "smooth_l1"}
    _shown = ("beta",)

    if TYPE_CHECKING:  # its own options (properties set by _Loss.__init_subclass__)
        beta: Hyper

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        beta: float = 1.0,
        **extras: Any,
    ) -> None:
        super().__init__(size_average, reduce, reduction, beta=beta, **extras)


# ---------------------------------------------------------------------------------------------
# Overlap losses.
# ---------------------------------------------------------------------------------------------


class _OverlapLoss(_Loss):
    _options_type = OverlapOptions
    _shown = ("mode",)

    if TYPE_CHECKING:  # the subclasses' options (properties set by _Loss.__init_subclass__)
        mode: str
        from_logits: bool
        smooth: Hyper
        eps: float
        aggregate: str
        absent: str
        ignore_index: int | None
        classes: tuple[int, ...] | None
        intersection: str
        log_loss: bool
        reduction: str
        axis: int | None
        empty_mean: float
        validate: Validate | None

    def __init__(self, mode: str, reduction: str, extras: dict[str, Any]) -> None:
        super().__init__()
        self._configure(dict(mode=mode, reduction=reduction, **extras))

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return overlap_loss(input, target, self._options)  # type: ignore[no-any-return]


class DiceLoss(_OverlapLoss):
    r"""Soft Dice loss module; see :func:`crossentropy.dice_loss`.

    .. math::

        \ell = 1 - \frac{2I + 2s}{P + T + 2s}

    Parameters
    ----------
    mode : {"binary", "multiclass", "multilabel"}, default "binary"
        Sigmoid for one class, softmax over classes, or a sigmoid per class.
    reduction : str, default "mean"
        How the losses are combined, as :func:`crossentropy.dice_loss`'s ``reduction``.
    **extras
        Any other non-array keyword of :func:`crossentropy.dice_loss` (keyword-only).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import DiceLoss
    >>> p, g = torch.tensor([0.9, 0.2, 0.6, 0.1]), torch.tensor([1.0, 0.0, 1.0, 0.0])
    >>> round(float(DiceLoss(from_logits=False)(p, g)), 6)
    0.210526
    """

    _function = staticmethod(losses.dice_loss)
    _fixed: ClassVar[dict[str, Any]] = {"alpha": 0.5, "beta": 0.5, "gamma": 1.0}

    def __init__(self, mode: str = "binary", reduction: str = "mean", **extras: Any) -> None:
        super().__init__(mode, reduction, extras)


class JaccardLoss(_OverlapLoss):
    r"""Soft Jaccard (IoU) loss module; see :func:`crossentropy.jaccard_loss`.

    .. math::

        \ell = 1 - \frac{I + s}{P + T - I + s}

    Parameters
    ----------
    mode : {"binary", "multiclass", "multilabel"}, default "binary"
        Sigmoid for one class, softmax over classes, or a sigmoid per class.
    reduction : str, default "mean"
        How the losses are combined, as :func:`crossentropy.jaccard_loss`'s ``reduction``.
    **extras
        Any other non-array keyword of :func:`crossentropy.jaccard_loss` (keyword-only).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import JaccardLoss
    >>> p, g = torch.tensor([0.9, 0.2, 0.6, 0.1]), torch.tensor([1.0, 0.0, 1.0, 0.0])
    >>> round(float(JaccardLoss(from_logits=False)(p, g)), 6)
    0.347826
    """

    _function = staticmethod(losses.jaccard_loss)
    _fixed: ClassVar[dict[str, Any]] = {"alpha": 1.0, "beta": 1.0, "gamma": 1.0}

    def __init__(self, mode: str = "binary", reduction: str = "mean", **extras: Any) -> None:
        super().__init__(mode, reduction, extras)


class TverskyLoss(_OverlapLoss):
    r"""Tversky / focal-Tversky loss module; see :func:`crossentropy.tversky_loss`.

    .. math::

        \ell = \left(1 - \frac{I + s}{I + \alpha\,\mathrm{FP} + \beta\,\mathrm{FN} + s}
        \right)^{\gamma}

    Parameters
    ----------
    mode : {"binary", "multiclass", "multilabel"}, default "binary"
        Sigmoid for one class, softmax over classes, or a sigmoid per class.
    alpha : float, default 0.5
        Weight of the false positives.
    beta : float, default 0.5
        Weight of the false negatives.
    gamma : float, default 1.0
        Exponent of the loss (the focal Tversky loss above 1).
    reduction : str, default "mean"
        How the losses are combined, as :func:`crossentropy.tversky_loss`'s ``reduction``.
    **extras
        Any other non-array keyword of :func:`crossentropy.tversky_loss` (keyword-only).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import TverskyLoss
    >>> p, g = torch.tensor([0.9, 0.2, 0.6, 0.1]), torch.tensor([1.0, 0.0, 1.0, 0.0])
    >>> round(float(TverskyLoss(alpha=0.3, beta=0.7, from_logits=False)(p, g)), 6)
    0.226804
    """

    _function = staticmethod(losses.tversky_loss)

    if TYPE_CHECKING:  # its own options (properties set by _Loss.__init_subclass__)
        alpha: Hyper
        beta: Hyper
        gamma: Hyper

    def __init__(
        self,
        mode: str = "binary",
        alpha: float = 0.5,
        beta: float = 0.5,
        gamma: float = 1.0,
        reduction: str = "mean",
        **extras: Any,
    ) -> None:
        super().__init__(mode, reduction, {"alpha": alpha, "beta": beta, "gamma": gamma, **extras})


# ---------------------------------------------------------------------------------------------
# Fused linear + cross-entropy.
# ---------------------------------------------------------------------------------------------


class LinearCrossEntropyLoss(_Loss):
    r"""A linear layer and its cross-entropy in one: the loss of ``self.linear(input)`` against
    class indices, computed by :func:`crossentropy.fused.linear_cross_entropy` (the
    ``[tokens, classes]`` logits never exist at once).

    .. math::

        \ell_n = -w_{y_n} \log \operatorname{softmax}(W x_n + b)_{y_n}

    Takes the arguments of ``torch.nn.LinearCrossEntropyLoss`` (``in_features``,
    ``num_classes``, ``bias``, ``device``, ``dtype``, ``reduction``, class ``weight``,
    ``ignore_index`` with PyTorch's ``None`` meaning -100, ``label_smoothing``, ``options``)
    and keeps its parameters in ``self.linear`` as PyTorch does, so a ``state_dict`` loads into
    either; ``out_features`` may only be PyTorch's default ``()`` (the ``(V, d1, ..., D)``
    weights of K-dimensional targets are not supported), the targets are class indices (not
    PyTorch's probability targets), and there is no double backward (``create_graph=True``),
    as in :func:`crossentropy.fused.linear_cross_entropy`. The class weights are a buffer. The
    keyword-only extras of the fused function (``z_loss``, ``softcap``, ``temperature``,
    ``return_aux``, ``chunk_size``, ``empty_mean``, ``kernel``) are constructor keywords; the
    per-call ``num_items_in_batch``, ``sequence_ids`` and ``cu_seqlens`` are keywords of
    :meth:`forward`. To tie the weight to an embedding, assign it:
    ``loss.linear.weight = embedding.weight``. Under FSDP2 the module may be sharded with
    ``fully_shard`` like any other; with a ``process_group`` it holds this rank's rows of the
    vocabulary (``num_classes`` of them) and computes the loss of the whole vocabulary.

    Parameters
    ----------
    in_features : int
        Size ``D`` of each input vector.
    num_classes : int
        Number of classes ``V`` (rows of ``self.linear.weight``).
    out_features : tuple of int, default ()
        PyTorch's extra output dimensions of K-dimensional targets: only ``()`` is taken.
    bias : bool, default False
        Whether ``self.linear`` has a bias.
    device : torch.device or str, optional
        Where ``self.linear``'s parameters are created.
    dtype : torch.dtype, optional
        Their dtype.
    reduction : str, default "mean"
        How the losses are combined: ``reduction`` of
        :func:`crossentropy.fused.linear_cross_entropy`.
    weight : Tensor, optional
        Class weights ``(C,)`` (a buffer).
    ignore_index : int or None, default -100
        Target value left out of the loss and of the mean (None: -100, as PyTorch).
    label_smoothing : float, default 0.0
        Probability mass spread uniformly over the classes, in [0, 1].
    options : object, optional
        PyTorch's chunking configuration, accepted and unused: the fused op always chunks.
    process_group : ProcessGroup, optional
        Vocabulary parallelism: ``process_group`` of
        :func:`crossentropy.fused.linear_cross_entropy`; ``self.linear`` holds this rank's
        rows and ``weight`` this rank's class weights.
    sequence_parallel : bool, default False
        With ``process_group``: each rank passes its own tokens (``sequence_parallel`` of
        :func:`crossentropy.fused.linear_cross_entropy`).
    **extras
        Any other non-array keyword of :func:`crossentropy.fused.linear_cross_entropy`
        (keyword-only).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import LinearCrossEntropyLoss
    >>> loss = LinearCrossEntropyLoss(2, 3)
    >>> with torch.no_grad():
    ...     _ = loss.linear.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    ...     value = loss(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([1, 2]))
    >>> round(float(value), 4)
    1.1429
    """

    _function = staticmethod(linear_cross_entropy)
    _options_type = FusedOptions
    _shown = ("ignore_index", "label_smoothing")

    if TYPE_CHECKING:  # the options (properties set by _Loss.__init_subclass__)
        ignore_index: int | None
        reduction: str
        label_smoothing: Hyper
        z_loss: Hyper
        softcap: Hyper | None
        empty_mean: float
        validate: Validate | None
        temperature: float
        return_aux: Any
        chunk_size: int | None
        kernel: str
    weight: Tensor | None

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        out_features: tuple[int, ...] = (),
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        reduction: str = "mean",
        weight: Tensor | None = None,
        ignore_index: int | None = -100,
        label_smoothing: float = 0.0,
        options: object | None = None,
        process_group: Any = None,
        sequence_parallel: bool = False,
        **extras: Any,
    ) -> None:
        super().__init__()
        check_torch_options(options)  # PyTorch's chunking configuration: the op always chunks
        if not isinstance(out_features, (tuple, list)):
            raise TypeError(
                f"out_features must be a tuple (or a list); got {type(out_features).__name__}"
            )
        if out_features:
            raise ValueError(
                f"out_features must be () (the weights of K-dimensional targets are not "
                f"supported); got {out_features!r}"
            )
        for name in ("linear_weight", "linear_bias"):
            if name in extras:  # the functional's head, given to the module that owns one
                raise TypeError(
                    f"LinearCrossEntropyLoss() got {name!r}: the module holds its own head, "
                    "self.linear (assign its weight to tie it; bias=True gives it a bias); "
                    "for a head held elsewhere call crossentropy.fused.linear_cross_entropy"
                )
        self._configure(
            dict(
                reduction=reduction,
                ignore_index=ignore_index,
                label_smoothing=label_smoothing,
                **extras,
            ),
            arrays=("weight", "num_items_in_batch", "sequence_ids", "cu_seqlens"),
        )
        in_features, num_classes = (
            check_int(in_features, "in_features"),
            check_int(num_classes, "num_classes"),
        )
        if in_features < 0 or num_classes < 1:
            raise ValueError(
                f"in_features must be >= 0 and num_classes >= 1; got {in_features} and "
                f"{num_classes}"
            )
        bias = check_bool(bias, "bias")  # ("a" made a bias, as nn.Linear's truth test)
        if weight is not None and not isinstance(weight, Tensor):
            raise TypeError(f"weight must be a tensor, one weight per class; got {weight!r}")
        if weight is not None and process_group is None and weight.shape != (num_classes,):
            raise ValueError(  # when built, as PyTorch's module refuses it (was: the first call)
                f"weight must have shape ({num_classes},); got {tuple(weight.shape)}"
            )
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating-point torch.dtype; got {dtype!r}")
        try:
            device = None if device is None else torch.device(device)
        except (RuntimeError, TypeError) as exc:  # (an unknown device type)
            raise ValueError(f"device {device!r} is not a device torch can use: {exc}") from None
        self.linear = nn.Linear(in_features, num_classes, bias=bias, device=device, dtype=dtype)
        self.num_classes, self.out_features = num_classes, ()
        self.options = options  # PyTorch's chunking configuration, kept as PyTorch keeps it
        self.register_buffer("weight", weight)
        check_parallel(process_group, sequence_parallel)
        self.process_group = process_group
        self.sequence_parallel = sequence_parallel

    def forward(
        self,
        input: Tensor,
        target: Tensor,
        *,
        num_items_in_batch: int | float | Tensor | None = None,
        sequence_ids: Tensor | None = None,
        cu_seqlens: Tensor | None = None,
    ) -> Any:
        return linear_loss(
            input,
            self.linear.weight,
            target,
            self.linear.bias,
            self._options,
            weight=self.weight,
            num_items_in_batch=num_items_in_batch,
            sequence_ids=sequence_ids,
            cu_seqlens=cu_seqlens,
            process_group=self.process_group,
            sequence_parallel=self.sequence_parallel,
        )
