r"""Closed-form gradients, for NumPy users who have no autograd.

Each function takes exactly the arguments of the loss of the same name (same keywords, same
defaults: they are bound to that function's signature, so nothing is restated here) and returns
``(value, gradient)``: the loss as the functional API computes it and its gradient with respect
to ``input``. For ``reduction="none"`` the gradient is that of the sum of the returned losses
(what ``loss.backward(ones)`` gives). Each is a thin layer over its family's
value-and-gradient (:mod:`crossentropy.losses`), which computes the value in one forward pass
and the gradient from its intermediates, in O(input) more work, on any array library. Tests hold
each gradient against PyTorch's autograd.

Softmax family (``cross_entropy``, ``focal_loss``): writing the loss as
:math:`\ell = -\sum_c a_c\, \alpha_c\, \varphi(q_c)` with :math:`q = \operatorname{softmax}(x)`,
:math:`\varphi(q) = (1 - q)^\gamma \log q` and target coefficients :math:`a` (class weights,
label smoothing and the mask folded in),

.. math::

    \frac{\partial \ell}{\partial x} = -h + q \sum_c h_c, \qquad
    h_c = a_c \alpha_c\, q_c \varphi'(q_c)
        = a_c \alpha_c (1 - q_c)^\gamma \Bigl(1 - \gamma\, q_c \frac{\log q_c}{1 - q_c}\Bigr),

which is :math:`(\sum_c a_c)\, q - a` for plain cross-entropy: softmax minus target.
"""

from __future__ import annotations

from typing import Any

from crossentropy import losses
from crossentropy._lib.namespace import Array
from crossentropy.losses.binary import binary_value_and_grad
from crossentropy.losses.classification import softmax_value_and_grad
from crossentropy.losses.focal import split_alpha
from crossentropy.losses.options import (
    BinaryOptions,
    RegressionOptions,
    SoftmaxOptions,
    bind,
)
from crossentropy.losses.regression import regression_value_and_grad

__all__ = [
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "focal_loss",
    "huber_loss",
    "l1_loss",
    "log_cosh_loss",
    "mse_loss",
    "sigmoid_focal_loss",
    "smooth_l1_loss",
]


def cross_entropy(
    input: Array, target: Array, weight: Array | None = None, **options: Any
) -> tuple[Array, Array]:
    r"""Value and input gradient of :func:`crossentropy.cross_entropy`, every option included.

    .. math::

        \frac{\partial \ell_n}{\partial x_n} = \Bigl(\sum_c a_{n,c}\Bigr)
        \operatorname{softmax}(x_n) - a_n

    where :math:`a_n` is the weighted (smoothed) target: :math:`w_{y_n} e_{y_n}` for class
    indices, :math:`w \odot t_n` for probabilities; z-loss adds
    :math:`2 z \operatorname{logsumexp}(x_n) \operatorname{softmax}(x_n)`, softcap multiplies by
    :math:`1 - \tanh^2(x / \mathrm{cap})`, and the reduction divides as the loss does.

    Parameters
    ----------
    input, target
        As :func:`crossentropy.cross_entropy`.
    weight : array_like, optional
        As :func:`crossentropy.cross_entropy`.
    **options
        Any keyword of :func:`crossentropy.cross_entropy`.

    Returns
    -------
    (value, gradient)
        The loss and its gradient with respect to ``input`` (the input's shape).

    Examples
    --------
    >>> from crossentropy import grad
    >>> value, g = grad.cross_entropy([[1.0, 2.0, 3.0]], [2])
    >>> g.round(4)  # softmax - one-hot
    array([[ 0.09  ,  0.2447, -0.3348]])
    """
    o, arrays = bind(
        losses.cross_entropy,
        SoftmaxOptions,
        options,
        owner="grad.cross_entropy()",
        arrays=("where",),
    )
    return softmax_value_and_grad(input, target, weight, o, where=arrays["where"])


def focal_loss(input: Array, target: Array, **options: Any) -> tuple[Array, Array]:
    r"""Value and input gradient of :func:`crossentropy.focal_loss`.

    .. math::

        \frac{\partial \ell}{\partial x} = -h + \operatorname{softmax}(x) \sum_c h_c,
        \qquad h_c = a_c \alpha_c (1 - q_c)^\gamma
        \Bigl(1 - \gamma\, q_c \tfrac{\log q_c}{1 - q_c}\Bigr)

    with :math:`q = \operatorname{softmax}(x)` and :math:`a` the weighted target; finite as
    :math:`q_c \to 1` for any :math:`\gamma \ge 0`.

    Parameters
    ----------
    input, target
        As :func:`crossentropy.focal_loss`.
    **options
        Any keyword of :func:`crossentropy.focal_loss`.

    Examples
    --------
    >>> from crossentropy import grad
    >>> value, g = grad.focal_loss([[1.0, 2.0, 3.0]], [2], gamma=2.0)
    >>> g.shape
    (1, 3)
    """
    scalar, vector = split_alpha(options.pop("alpha", None))
    o, arrays = bind(
        losses.focal_loss,
        SoftmaxOptions,
        {**options, "alpha": scalar},
        owner="grad.focal_loss()",
        arrays=("weight", "where"),
        fixed={"focal": True},
    )
    return softmax_value_and_grad(
        input, target, arrays["weight"], o, alpha=vector, where=arrays["where"]
    )


def binary_cross_entropy_with_logits(
    input: Array, target: Array, weight: Array | None = None, **options: Any
) -> tuple[Array, Array]:
    r"""Value and input gradient of :func:`crossentropy.binary_cross_entropy_with_logits`.

    .. math::

        \frac{\partial \ell}{\partial x} = w \bigl((1 - t)\, \sigma(x) - p_w\, t\, \sigma(-x)\bigr)

    which is :math:`w(\sigma(x) - t)` without ``pos_weight``; the reduction divides as the loss.

    Parameters
    ----------
    input, target
        As :func:`crossentropy.binary_cross_entropy_with_logits`.
    weight : array_like, optional
        As :func:`crossentropy.binary_cross_entropy_with_logits`.
    **options
        Any keyword of :func:`crossentropy.binary_cross_entropy_with_logits`.

    Examples
    --------
    >>> from crossentropy import grad
    >>> value, g = grad.binary_cross_entropy_with_logits([0.0, 2.0], [1.0, 0.0], reduction="sum")
    >>> g.round(4)
    array([-0.5   ,  0.8808])
    """
    o, arrays = bind(
        losses.binary_cross_entropy_with_logits,
        BinaryOptions,
        options,
        owner="grad.binary_cross_entropy_with_logits()",
        arrays=("pos_weight",),
        fixed={"from_logits": True, "clip": None},
    )
    return binary_value_and_grad(input, target, weight, o, pos_weight=arrays["pos_weight"])


def sigmoid_focal_loss(input: Array, target: Array, **options: Any) -> tuple[Array, Array]:
    r"""Value and input gradient of :func:`crossentropy.sigmoid_focal_loss` (on logits).

    With :math:`\ell = \alpha_t M B`, :math:`M = (1 - p_t)^\gamma`, :math:`B` the binary
    cross-entropy and :math:`1 - p_t = t\sigma(-x) + (1 - t)\sigma(x)`,

    .. math::

        \frac{\partial \ell}{\partial x} = \alpha_t M \Bigl(\gamma (1 - 2t)
        \frac{\sigma(x)\sigma(-x)}{1 - p_t} B + \sigma(x) - t\Bigr)

    where the ratio is formed in log space, so the gradient stays finite as :math:`p_t \to 1`.

    Parameters
    ----------
    input, target
        As :func:`crossentropy.sigmoid_focal_loss`.
    **options
        Any keyword of :func:`crossentropy.sigmoid_focal_loss`.

    Examples
    --------
    >>> from crossentropy import grad
    >>> value, g = grad.sigmoid_focal_loss([2.0, -1.0, 0.5], [1.0, 1.0, 0.0])
    >>> g.round(5)
    array([-0.00122, -0.19206,  0.39461])
    """
    o, arrays = bind(
        losses.sigmoid_focal_loss,
        BinaryOptions,
        options,
        owner="grad.sigmoid_focal_loss()",
        arrays=("weight",),
        fixed={"focal": True},
    )
    return binary_value_and_grad(input, target, arrays["weight"], o)


def _regression(
    fn: Any, loss: str, input: Array, target: Array, options: dict[str, Any]
) -> tuple[Array, Array]:
    o, arrays = bind(
        fn,
        RegressionOptions,
        options,
        owner=f"grad.{fn.__name__}()",
        arrays=("weight",),
        fixed={"loss": loss},
    )
    return regression_value_and_grad(input, target, arrays["weight"], o)


def mse_loss(input: Array, target: Array, **options: Any) -> tuple[Array, Array]:
    r"""Value and input gradient of :func:`crossentropy.mse_loss`.

    .. math::

        \frac{\partial \ell}{\partial x} = 2 w (x - y) \big/ \textstyle\sum w
        \quad\text{(reduction }\texttt{"mean"}\text{; } N \text{ without weights)}

    Parameters
    ----------
    input, target
        As :func:`crossentropy.mse_loss`.
    **options
        Any keyword of :func:`crossentropy.mse_loss`.

    Examples
    --------
    >>> from crossentropy import grad
    >>> value, g = grad.mse_loss([1.0, 2.0], [0.0, 0.0])
    >>> g
    array([1., 2.])
    """
    return _regression(losses.mse_loss, "mse", input, target, options)


def l1_loss(input: Array, target: Array, **options: Any) -> tuple[Array, Array]:
    r"""Value and input gradient of :func:`crossentropy.l1_loss`.

    .. math::

        \frac{\partial \ell}{\partial x} = w \operatorname{sign}(x - y)

    divided as the loss's reduction divides.

    Parameters
    ----------
    input, target
        As :func:`crossentropy.l1_loss`.
    **options
        Any keyword of :func:`crossentropy.l1_loss`.

    Examples
    --------
    >>> from crossentropy import grad
    >>> value, g = grad.l1_loss([1.0, -2.0], [0.0, 0.0], reduction="sum")
    >>> g
    array([ 1., -1.])
    """
    return _regression(losses.l1_loss, "l1", input, target, options)


def huber_loss(input: Array, target: Array, **options: Any) -> tuple[Array, Array]:
    r"""Value and input gradient of :func:`crossentropy.huber_loss`.

    .. math::

        \frac{\partial \ell}{\partial x} = w \operatorname{clip}(x - y, -\delta, \delta)

    divided by :math:`N` for ``"mean"`` (PyTorch's rule, also with weights).

    Parameters
    ----------
    input, target
        As :func:`crossentropy.huber_loss`.
    **options
        Any keyword of :func:`crossentropy.huber_loss`.

    Examples
    --------
    >>> from crossentropy import grad
    >>> value, g = grad.huber_loss([0.0, 0.0], [0.5, 3.0], reduction="sum")
    >>> g
    array([-0.5, -1. ])
    """
    return _regression(losses.huber_loss, "huber", input, target, options)


def smooth_l1_loss(input: Array, target: Array, **options: Any) -> tuple[Array, Array]:
    r"""Value and input gradient of :func:`crossentropy.smooth_l1_loss`.

    .. math::

        \frac{\partial \ell}{\partial x} = w \operatorname{clip}((x - y) / \beta, -1, 1)

    (:math:`w \operatorname{sign}(x - y)` at :math:`\beta = 0`).

    Parameters
    ----------
    input, target
        As :func:`crossentropy.smooth_l1_loss`.
    **options
        Any keyword of :func:`crossentropy.smooth_l1_loss`.

    Examples
    --------
    >>> from crossentropy import grad
    >>> value, g = grad.smooth_l1_loss([0.0, 0.0], [0.5, 3.0], reduction="sum")
    >>> g
    array([-0.5, -1. ])
    """
    return _regression(losses.smooth_l1_loss, "smooth_l1", input, target, options)


def log_cosh_loss(input: Array, target: Array, **options: Any) -> tuple[Array, Array]:
    r"""Value and input gradient of :func:`crossentropy.log_cosh_loss`.

    .. math::

        \frac{\partial \ell}{\partial x} = w \tanh(x - y)

    Parameters
    ----------
    input, target
        As :func:`crossentropy.log_cosh_loss`.
    **options
        Any keyword of :func:`crossentropy.log_cosh_loss`.

    Examples
    --------
    >>> from crossentropy import grad
    >>> value, g = grad.log_cosh_loss([0.0], [1.0], reduction="sum")
    >>> g.round(6)
    array([-0.761594])
    """
    return _regression(losses.log_cosh_loss, "log_cosh", input, target, options)
