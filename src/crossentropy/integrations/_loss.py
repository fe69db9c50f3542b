"""A trainer-style loss module that receives the output projection (torchtune/torchtitan)."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor, nn

from crossentropy.fused._chunked import FusedOptions, fused_loss, linear_cross_entropy

__all__ = ["OutputProjectionLoss"]

#: Keywords of ``linear_cross_entropy`` that belong to a call, not to the loss module.
_PER_CALL = {
    "linear_bias",
    "num_items_in_batch",
    "sequence_ids",
    "cu_seqlens",
    "options",
    "process_group",
    "sequence_parallel",
}


class OutputProjectionLoss(nn.Module):
    r"""The fused linear + cross-entropy as a loss module of a training recipe that hands it the
    model's output projection and calls it on the final hidden states (the shape of
    torchtune's and torchtitan's chunked losses): ``loss_fn.set_model_output(model)`` as
    torchtune's recipes call it (the model then skips its output layer and returns its hidden
    states), or ``loss_fn.set_model_output(model.output)``, then ``loss_fn(hidden, targets)``.
    Thin over :func:`crossentropy.fused.linear_cross_entropy`, whose keywords it takes at
    construction.

    .. math::

        \ell_n = -\log \operatorname{softmax}(W h_n + b)_{y_n}

    Parameters
    ----------
    weight : Tensor, optional
        Class weights ``(V,)``, as ``linear_cross_entropy``'s ``weight`` (a buffer of the
        module).
    **options
        The other keywords of :func:`crossentropy.fused.linear_cross_entropy` (``ignore_index``,
        ``label_smoothing``, ``z_loss``, ``softcap``, ``temperature``, ``reduction``, ...);
        ``num_items_in_batch`` is an argument of each call. Any other keyword is a
        ``TypeError``.

    Examples
    --------
    >>> import torch
    >>> from crossentropy.integrations import OutputProjectionLoss
    >>> head = torch.nn.Linear(4, 10, bias=False)
    >>> loss_fn = OutputProjectionLoss(ignore_index=-100)
    >>> loss_fn.set_model_output(head)
    >>> hidden, targets = torch.randn(2, 3, 4), torch.tensor([[1, 2, -100], [4, 5, 6]])
    >>> loss = loss_fn(hidden, targets)
    >>> torch.allclose(loss, torch.nn.functional.cross_entropy(head(hidden).flatten(0, 1),
    ...                                                        targets.flatten()))
    True
    """

    def __init__(self, *, weight: Tensor | None = None, **options: Any) -> None:
        super().__init__()
        parameters = inspect.signature(linear_cross_entropy).parameters
        taken = {n for n, p in parameters.items() if p.kind is p.KEYWORD_ONLY} - _PER_CALL
        unknown = set(options) - taken
        if unknown:
            raise TypeError(
                f"OutputProjectionLoss() got unknown keywords {sorted(unknown)}; it takes "
                f"{', '.join(sorted(taken))}"
            )
        if weight is not None and not isinstance(weight, Tensor):
            raise TypeError(f"weight must be a tensor of class weights, got {type(weight)}")
        self._options = FusedOptions.from_arguments(options)
        self.register_buffer("weight", weight)
        self.output: Any = None  # an nn.Linear, or torchtune's TiedLinear

    def set_model_output(self, output: nn.Module) -> None:
        """The model's output projection, kept by reference, so tied or sharded weights stay
        the model's.

        Parameters
        ----------
        output : torch.nn.Module
            An ``nn.Linear``-like module with ``weight`` ``(V, D)`` and, optionally, ``bias``;
            or, as torchtune's recipes pass it, the model itself, whose ``output`` is taken
            (an ``nn.Linear``, or torchtune's ``TiedLinear`` over the token embeddings'
            ``tied_module``) and whose ``skip_output_layer`` is set to True, so that its
            forward returns the hidden states this loss projects.
        """
        projection: Any = output
        if _weight(output) is None and _weight(getattr(output, "output", None)) is not None:
            projection = output.output  # torchtune's model: it skips its own output layer
            object.__setattr__(output, "skip_output_layer", True)
        if _weight(projection) is None:
            raise TypeError(
                "set_model_output takes a module with a weight tensor (V, D), or a model "
                f"whose output is one; got {type(output).__name__}"
            )
        check_linear(projection, "the output projection")
        object.__setattr__(self, "output", projection)  # not a submodule: the model owns it

    def forward(
        self,
        hidden: Tensor,
        targets: Tensor,
        *,
        num_items_in_batch: int | float | Tensor | None = None,
    ) -> Any:
        if self.output is None:
            raise RuntimeError("call set_model_output(model.output) before the loss")
        weight = _weight(self.output)
        if weight is None:  # replaced since set_model_output
            raise RuntimeError("the output projection no longer has a weight tensor (V, D)")
        check_linear(self.output, "the output projection")  # wrapped since, perhaps
        bias = getattr(self.output, "bias", None)
        return fused_loss(
            hidden,
            weight,
            targets,
            bias if isinstance(bias, torch.Tensor) else None,
            self._options,
            weight=self.weight if isinstance(self.weight, Tensor) else None,
            num_items_in_batch=num_items_in_batch,
        )


def check_linear(projection: Any, name: str) -> None:
    """Refuse an output projection that computes more than ``x W^T + b``: a module holding
    parameters besides its weight and bias, such as a LoRA adapter around the layer (its
    ``weight`` is the base layer's, and its forward adds ``x A^T B^T``), which the fused loss,
    reading ``weight`` and ``bias`` only, would leave out of the loss and the gradients. The
    parameters of a parametrization (``torch.nn.utils.parametrize``: ``weight_norm``, say)
    are the weight's own: reading ``weight`` computes it from them."""
    if not isinstance(projection, nn.Module):
        return  # torchtune's TiedLinear: its tied module's weight is the map
    weight, bias = getattr(projection, "weight", None), getattr(projection, "bias", None)
    extra = [
        n
        for n, p in projection.named_parameters()
        if p is not weight and p is not bias and not n.startswith("parametrizations.")
    ]  # (a parametrized weight or bias, weight_norm's say, is recomputed at each access)
    if extra:
        more = ", ..." if len(extra) > 3 else ""
        raise TypeError(
            f"{name} ({type(projection).__name__}) holds parameters besides its weight and "
            f"bias ({', '.join(extra[:3])}{more}): its forward is more than x W^T + b (an "
            "adapter such as LoRA?), which the fused loss would leave out; merge the adapter "
            "into the weight first (peft's merge_and_unload)"
        )


def _weight(projection: Any) -> Tensor | None:
    """The ``(V, D)`` weight of an output projection, read at each call: that of the module
    it is tied to (torchtune's ``TiedLinear.tied_module``: a ``weight`` the TiedLinear kept of
    its own goes stale once the embedding's parameter is replaced), else its own; None if it
    has neither."""
    tied = getattr(projection, "tied_module", None)
    weight = getattr(tied if tied is not None else projection, "weight", None)
    return weight if isinstance(weight, Tensor) and weight.ndim == 2 else None
