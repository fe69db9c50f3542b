r"""PyTorch ``nn.Module`` drop-ins for every loss of the functional API.

``CrossEntropyLoss``, ``NLLLoss``, ``BCELoss``, ``BCEWithLogitsLoss``, ``KLDivLoss``,
``MSELoss``, ``L1Loss``, ``HuberLoss`` and ``SmoothL1Loss`` take PyTorch's constructor
arguments (including the deprecated ``size_average`` / ``reduce``) and give PyTorch's values and
gradients. When no extra keyword is used the functional core delegates to ATen, so they are
identical bit for bit; the two exceptions are ``KLDivLoss`` and ``CrossEntropyLoss`` with
probability targets, which run the generic path (they keep the ``0 log 0 = 0`` convention
where PyTorch gives NaN) and agree with PyTorch to rounding (about one ulp). Keyword-only
extras of the functional API (z-loss, softcap, ``empty_mean``, ...) are constructor keywords
here. Modules for the losses PyTorch lacks: ``FocalLoss``, ``SigmoidFocalLoss``, ``DiceLoss``,
``JaccardLoss``, ``TverskyLoss``; and ``LinearCrossEntropyLoss``, the output projection and
its cross-entropy fused so the logits never exist at once.

Class weights and ``pos_weight`` are registered buffers: they move with ``.to(device)``, are
saved in ``state_dict`` and pickle with the module. Importing this package imports torch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

import crossentropy as ce
from crossentropy.fused import linear_cross_entropy

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


def _legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """PyTorch's mapping of the deprecated ``size_average`` / ``reduce`` to ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


class _Loss(nn.Module):
    """A loss module: the reduction, the optional buffers and the functional keywords."""

    def __init__(self, reduction: str, extras: dict[str, Any]) -> None:
        super().__init__()
        self.reduction: Any = reduction
        self.extras = dict(extras)

    def extra_repr(self) -> str:
        named = ("ignore_index", "label_smoothing", "log_target", "alpha", "gamma")
        shown = {"reduction": self.reduction}
        shown.update({k: getattr(self, k) for k in named if hasattr(self, k)})
        shown.update(self.extras)
        return ", ".join(f"{k}={v!r}" for k, v in shown.items())


class CrossEntropyLoss(_Loss):
    r"""Drop-in for :class:`torch.nn.CrossEntropyLoss`; see :func:`crossentropy.cross_entropy`.

    .. math::

        \ell_n = -w_{y_n} \log \operatorname{softmax}(x_n)_{y_n}

    Extras (keyword-only): ``axis``, ``z_loss``, ``softcap``, ``empty_mean``,
    ``mean_divisor``, ``weight_mode``, ``from_logits``, ``clip``.

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import CrossEntropyLoss
    >>> loss = CrossEntropyLoss(z_loss=1e-4)
    >>> round(float(loss(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
    ...                  torch.tensor([1, 2]))), 4)
    0.9102
    """

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
        super().__init__(_legacy_reduction(size_average, reduce, reduction), extras)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return ce.cross_entropy(  # type: ignore[no-any-return]
            input,
            target,
            self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
            **self.extras,
        )


class NLLLoss(_Loss):
    r"""Drop-in for :class:`torch.nn.NLLLoss`; see :func:`crossentropy.nll_loss`.

    .. math::

        \ell_n = -w_{y_n} x_{n, y_n}

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import NLLLoss
    >>> x = torch.log_softmax(torch.tensor([[1.0, 2.0, 3.0]]), dim=1)
    >>> round(float(NLLLoss()(x, torch.tensor([2]))), 4)
    0.4076
    """

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
        super().__init__(_legacy_reduction(size_average, reduce, reduction), extras)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return ce.nll_loss(  # type: ignore[no-any-return]
            input,
            target,
            self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            **self.extras,
        )


class BCELoss(_Loss):
    r"""Drop-in for :class:`torch.nn.BCELoss`; see :func:`crossentropy.binary_cross_entropy`.

    .. math::

        \ell = -w \bigl(t \log p + (1 - t) \log (1 - p)\bigr)

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import BCELoss
    >>> round(float(BCELoss()(torch.tensor([0.9, 0.2]), torch.tensor([1.0, 0.0]))), 6)
    0.164252
    """

    weight: Tensor | None

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        **extras: Any,
    ) -> None:
        super().__init__(_legacy_reduction(size_average, reduce, reduction), extras)
        self.register_buffer("weight", weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return ce.binary_cross_entropy(  # type: ignore[no-any-return]
            input,
            target,
            self.weight,
            reduction=self.reduction,
            **self.extras,
        )


class BCEWithLogitsLoss(_Loss):
    r"""Drop-in for :class:`torch.nn.BCEWithLogitsLoss`; see
    :func:`crossentropy.binary_cross_entropy_with_logits`.

    .. math::

        \ell = -w \bigl(p_w\, t \log \sigma(x) + (1 - t) \log \sigma(-x)\bigr)

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import BCEWithLogitsLoss
    >>> loss = BCEWithLogitsLoss(label_smoothing=0.1)  # Keras' binary smoothing
    >>> round(float(loss(torch.tensor([0.5, -1.0, 2.0]), torch.tensor([1.0, 0.0, 1.0]))), 6)
    0.363089
    """

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
        super().__init__(_legacy_reduction(size_average, reduce, reduction), extras)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return ce.binary_cross_entropy_with_logits(  # type: ignore[no-any-return]
            input,
            target,
            self.weight,
            reduction=self.reduction,
            pos_weight=self.pos_weight,
            **self.extras,
        )


class KLDivLoss(_Loss):
    r"""Drop-in for :class:`torch.nn.KLDivLoss`; see :func:`crossentropy.kl_div`.

    .. math::

        \ell = t (\log t - x)

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import KLDivLoss
    >>> x = torch.log(torch.tensor([[0.5, 0.5]]))
    >>> float(KLDivLoss(reduction="batchmean")(x, torch.tensor([[0.5, 0.5]])))
    0.0
    """

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        log_target: bool = False,
        **extras: Any,
    ) -> None:
        super().__init__(_legacy_reduction(size_average, reduce, reduction), extras)
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return ce.kl_div(  # type: ignore[no-any-return]
            input,
            target,
            reduction=self.reduction,
            log_target=self.log_target,
            **self.extras,
        )


class _RegressionLoss(_Loss):
    """Element-wise regression losses; ``forward`` also takes element weights (PyTorch 2.13's
    functional ``weight=``)."""

    _fn: Any

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        **extras: Any,
    ) -> None:
        super().__init__(_legacy_reduction(size_average, reduce, reduction), extras)

    def forward(self, input: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        return type(self)._fn(  # type: ignore[no-any-return]
            input, target, reduction=self.reduction, weight=weight, **self.extras
        )


class MSELoss(_RegressionLoss):
    r"""Drop-in for :class:`torch.nn.MSELoss`; see :func:`crossentropy.mse_loss`.

    .. math::

        \ell = w (x - y)^2

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import MSELoss
    >>> float(MSELoss()(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0])))
    5.0
    """

    _fn = staticmethod(ce.mse_loss)


class L1Loss(_RegressionLoss):
    r"""Drop-in for :class:`torch.nn.L1Loss`; see :func:`crossentropy.l1_loss`.

    .. math::

        \ell = w |x - y|

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import L1Loss
    >>> float(L1Loss()(torch.tensor([1.0, -3.0]), torch.tensor([0.0, 0.0])))
    2.0
    """

    _fn = staticmethod(ce.l1_loss)


class HuberLoss(_RegressionLoss):
    r"""Drop-in for :class:`torch.nn.HuberLoss`; see :func:`crossentropy.huber_loss`.

    .. math::

        \ell = \begin{cases} \tfrac12 e^2 & |e| \le \delta \\
        \delta (|e| - \tfrac12 \delta) & \text{otherwise} \end{cases}

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import HuberLoss
    >>> float(HuberLoss(delta=1.0)(torch.tensor([0.5, 3.0]), torch.tensor([0.0, 0.0])))
    1.3125
    """

    _fn = staticmethod(ce.huber_loss)

    def __init__(self, reduction: str = "mean", delta: float = 1.0, **extras: Any) -> None:
        super().__init__(reduction=reduction, delta=delta, **extras)
        self.delta = delta


class SmoothL1Loss(_RegressionLoss):
    r"""Drop-in for :class:`torch.nn.SmoothL1Loss`; see :func:`crossentropy.smooth_l1_loss`.

    .. math::

        \ell = \begin{cases} \tfrac12 e^2 / \beta & |e| < \beta \\
        |e| - \tfrac12 \beta & \text{otherwise} \end{cases}

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import SmoothL1Loss
    >>> float(SmoothL1Loss(beta=2.0)(torch.tensor([1.0]), torch.tensor([0.0])))
    0.25
    """

    _fn = staticmethod(ce.smooth_l1_loss)

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        beta: float = 1.0,
        **extras: Any,
    ) -> None:
        super().__init__(size_average, reduce, reduction, beta=beta, **extras)
        self.beta = beta


class FocalLoss(_Loss):
    r"""Multi-class (softmax) focal loss module; see :func:`crossentropy.focal_loss`.

    .. math::

        \ell_n = -w_{y_n}\, \alpha_{y_n} (1 - p_{n,y_n})^\gamma \log p_{n,y_n}

    ``weight`` and a per-class ``alpha`` are buffers.

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import FocalLoss
    >>> loss = FocalLoss(gamma=0.0)  # gamma = 0: cross-entropy
    >>> round(float(loss(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([2]))), 4)
    0.4076
    """

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
        super().__init__(reduction, extras)
        self.register_buffer("weight", weight)
        self.register_buffer("alpha_weight", alpha if isinstance(alpha, Tensor) else None)
        self.alpha = None if isinstance(alpha, Tensor) else alpha
        self.gamma = gamma
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        alpha = self.alpha_weight if self.alpha_weight is not None else self.alpha
        return ce.focal_loss(  # type: ignore[no-any-return]
            input,
            target,
            weight=self.weight,
            alpha=alpha,
            gamma=self.gamma,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
            **self.extras,
        )


class SigmoidFocalLoss(_Loss):
    r"""Binary / multi-label focal loss module (torchvision's numbers); see
    :func:`crossentropy.sigmoid_focal_loss`.

    .. math::

        \ell = -\alpha_t (1 - p_t)^\gamma \log p_t

    Unlike the functional form (torchvision's ``"none"``), the module averages by default, as
    every PyTorch loss module does.

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import SigmoidFocalLoss
    >>> loss = SigmoidFocalLoss(alpha=None)
    >>> round(float(loss(torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1.0, 1.0, 0.0]))), 6)
    0.360361
    """

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
        super().__init__(reduction, {"alpha": alpha, "gamma": gamma, **extras})
        self.register_buffer("weight", weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return ce.sigmoid_focal_loss(  # type: ignore[no-any-return]
            input,
            target,
            weight=self.weight,
            reduction=self.reduction,
            **self.extras,
        )


class _OverlapLoss(_Loss):
    _fn: Any

    def __init__(self, mode: str, reduction: str, extras: dict[str, Any]) -> None:
        super().__init__(reduction, {"mode": mode, **extras})

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return type(self)._fn(  # type: ignore[no-any-return]
            input, target, reduction=self.reduction, **self.extras
        )


class DiceLoss(_OverlapLoss):
    r"""Soft Dice loss module; see :func:`crossentropy.dice_loss`.

    .. math::

        \ell = 1 - \frac{2I + 2s}{P + T + 2s}

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import DiceLoss
    >>> p, g = torch.tensor([0.9, 0.2, 0.6, 0.1]), torch.tensor([1.0, 0.0, 1.0, 0.0])
    >>> round(float(DiceLoss(from_logits=False)(p, g)), 6)
    0.210526
    """

    _fn = staticmethod(ce.dice_loss)

    def __init__(self, mode: str = "binary", reduction: str = "mean", **extras: Any) -> None:
        super().__init__(mode, reduction, extras)


class JaccardLoss(_OverlapLoss):
    r"""Soft Jaccard (IoU) loss module; see :func:`crossentropy.jaccard_loss`.

    .. math::

        \ell = 1 - \frac{I + s}{P + T - I + s}

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import JaccardLoss
    >>> p, g = torch.tensor([0.9, 0.2, 0.6, 0.1]), torch.tensor([1.0, 0.0, 1.0, 0.0])
    >>> round(float(JaccardLoss(from_logits=False)(p, g)), 6)
    0.347826
    """

    _fn = staticmethod(ce.jaccard_loss)

    def __init__(self, mode: str = "binary", reduction: str = "mean", **extras: Any) -> None:
        super().__init__(mode, reduction, extras)


class TverskyLoss(_OverlapLoss):
    r"""Tversky / focal-Tversky loss module; see :func:`crossentropy.tversky_loss`.

    .. math::

        \ell = \left(1 - \frac{I + s}{I + \alpha\,\mathrm{FP} + \beta\,\mathrm{FN} + s}
        \right)^{\gamma}

    Examples
    --------
    >>> import torch
    >>> from crossentropy.nn import TverskyLoss
    >>> p, g = torch.tensor([0.9, 0.2, 0.6, 0.1]), torch.tensor([1.0, 0.0, 1.0, 0.0])
    >>> round(float(TverskyLoss(alpha=0.3, beta=0.7, from_logits=False)(p, g)), 6)
    0.226804
    """

    _fn = staticmethod(ce.tversky_loss)

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


class LinearCrossEntropyLoss(_Loss):
    r"""A linear layer and its cross-entropy in one: the loss of ``self.linear(input)`` against
    class indices, computed by :func:`crossentropy.fused.linear_cross_entropy` (the
    ``[tokens, classes]`` logits never exist at once).

    .. math::

        \ell_n = -\log \operatorname{softmax}(W x_n + b)_{y_n}

    Takes the arguments of ``torch.nn.LinearCrossEntropyLoss`` that the fused function supports
    (``in_features``, ``num_classes``, ``bias``, ``device``, ``dtype``, ``reduction``,
    ``ignore_index``, ``label_smoothing``) and keeps its parameters in ``self.linear`` as PyTorch
    does, so a ``state_dict`` loads into either. PyTorch's ``ignore_index=None`` means none;
    here the default is ``-100``, as in ``CrossEntropyLoss``. Class weights and
    ``out_features`` are not supported. The keyword-only extras of the fused function
    (``z_loss``, ``softcap``, ``chunk_size``, ``empty_mean``, ``kernel``) are constructor
    keywords. To tie the weight to an embedding, assign it:
    ``loss.linear.weight = embedding.weight``.

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

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        reduction: str = "mean",
        ignore_index: int | None = -100,
        label_smoothing: float = 0.0,
        **extras: Any,
    ) -> None:
        super().__init__(reduction, extras)
        self.linear = nn.Linear(in_features, num_classes, bias=bias, device=device, dtype=dtype)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return linear_cross_entropy(
            input,
            self.linear.weight,
            target,
            bias=self.linear.bias,
            # PyTorch's None (nothing ignored): a label that cannot occur
            ignore_index=-(2**63) if self.ignore_index is None else self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
            **self.extras,
        )
