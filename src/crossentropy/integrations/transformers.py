r"""Hugging Face causal language models trained with the fused linear + cross-entropy.

:func:`use_fused_loss` makes a ``...ForCausalLM`` model (Llama, Mistral, Qwen2, Gemma/Gemma 2
with its logit softcap, Phi-3, Granite, Cohere, and any model whose forward runs its decoder
(``model.base_model``) and then its output embeddings) compute its training loss with
:func:`crossentropy.fused.linear_cross_entropy`: when ``labels`` (or ``shift_labels``) are given,
the decoder's last hidden states go straight into the fused op, so the ``[tokens, vocab]``
logits are never formed. The labels are shifted as the model does (pad with -100, drop the
first), ``num_items_in_batch`` divides the summed loss as the model's own loss does (Hugging
Face's gradient-accumulation normalisation), and the model's logit transforms become the fused
op's options: Gemma's ``final_logit_softcapping`` its ``softcap``, Cohere's ``logit_scale`` and
Granite's ``logits_scaling`` its ``temperature``. The output is the model's
``CausalLMOutputWithPast`` with ``logits=None`` unless asked for (``return_logits=True``), and a
float32 loss, as the models' own (computed in float32 for half-precision models).
Calls without labels (generation, evaluation of logits) run the model's own forward.

.. math::

    \mathcal{L} = \frac{1}{n} \sum_{t:\, y_{t+1} \ne -100}
        -\log \operatorname{softmax}(W h_t)_{y_{t+1}}

Importing this module imports ``transformers``.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import torch
import transformers  # noqa: F401  (the integration's library)
from torch import Tensor, nn
from transformers.modeling_outputs import CausalLMOutputWithPast

from crossentropy.fused._chunked import FusedOptions, fused_loss

__all__ = ["remove_fused_loss", "use_fused_loss"]

_ATTRIBUTE = "_crossentropy_fused_forward"


def _logit_transform(config: Any) -> tuple[float | None, float]:
    """``(softcap, temperature)`` reproducing the model's own transform of its logits."""
    softcap = getattr(config, "final_logit_softcapping", None)
    temperature = 1.0
    scale = getattr(config, "logit_scale", None)  # Cohere: logits * scale
    if isinstance(scale, (int, float)) and scale != 1:
        temperature = 1.0 / float(scale)
    scaling = getattr(config, "logits_scaling", None)  # Granite: logits / scaling
    if isinstance(scaling, (int, float)) and scaling != 1:
        temperature *= float(scaling)
    return (None if softcap is None else float(softcap)), temperature


def use_fused_loss(
    model: nn.Module,
    *,
    return_logits: bool = False,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    chunk_size: int | None = None,
    kernel: str = "auto",
) -> nn.Module:
    r"""Make ``model`` (a Hugging Face causal LM) compute its training loss with the fused
    linear + cross-entropy, in place; returns ``model``.

    .. math::

        \mathcal{L} = \frac{1}{n} \sum_{t:\, y_{t+1} \ne -100}
            -\log \operatorname{softmax}(W h_t)_{y_{t+1}}

    with :math:`n` the number of target tokens, or ``num_items_in_batch`` when the trainer
    passes it (the model's own convention). The model's ``forward`` keeps its signature (its
    ``**kwargs`` let ``Trainer`` pass ``num_items_in_batch``); with ``labels`` or
    ``shift_labels`` it runs ``model.base_model`` and the fused op on the last hidden states
    and ``model.get_output_embeddings().weight`` (tied weights stay tied), without them the
    model's own forward. ``label_smoothing`` and ``z_loss`` are extras (0 reproduces the
    model). A second call replaces the options of the first; :func:`remove_fused_loss` undoes
    it. With ``return_dict=False`` (as a call's argument or in the model's config) the
    outputs come as the model's tuple.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A ``...ForCausalLM`` model.
    return_logits : bool, default False
        Also compute and return the logits on calls with labels (they are then formed, as the
        model would; the loss still comes from the fused op).
    ignore_index : int, default -100
        Targets equal to it are left out, as in :func:`crossentropy.fused.linear_cross_entropy`.
    label_smoothing : float, default 0.0
        PyTorch's label smoothing, in [0, 1].
    z_loss : float, default 0.0
        PaLM's auxiliary :math:`\lambda\,\mathrm{lse}^2` coefficient.
    chunk_size : int, optional
        Tokens per chunk (default: about 16 M logits per chunk).
    kernel : {"auto", "torch", "triton"}, default "auto"
        The fused op's per-row step (Triton on CUDA when installed, under ``"auto"``).

    Examples
    --------
    >>> import torch
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> from crossentropy.integrations.transformers import use_fused_loss
    >>> config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
    ...                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    >>> model = LlamaForCausalLM(config)
    >>> ids = torch.randint(0, 64, (2, 7))
    >>> expected = model(input_ids=ids, labels=ids).loss
    >>> out = use_fused_loss(model)(input_ids=ids, labels=ids)
    >>> out.logits is None, torch.allclose(out.loss, expected, atol=1e-6)
    (True, True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if not isinstance(return_logits, bool):
        raise TypeError(f"return_logits must be True or False; got {return_logits!r}")
    get_head = getattr(model, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    base = getattr(model, "base_model", None)
    if not isinstance(getattr(head, "weight", None), Tensor) or not isinstance(base, nn.Module):
        raise TypeError(
            f"model must be a causal LM with output embeddings and a base model; got "
            f"{type(model).__name__}"
        )
    if base is model:
        raise TypeError(f"{type(model).__name__} has no separate decoder (base_model)")
    softcap, temperature = _logit_transform(getattr(model, "config", None))
    fused = FusedOptions(  # checked now, not at the first training step
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        softcap=softcap,
        temperature=temperature,
        chunk_size=chunk_size,
        kernel=kernel,
    )
    remove_fused_loss(model)  # a second call (now checked): its options replace the first's
    original = model.forward

    # the unbound function's metadata: the bound method then shows the model's own signature
    # (Trainer keeps the dataset columns that forward names)
    @functools.wraps(getattr(original, "__func__", original))
    def forward(
        self: nn.Module,
        *args: Any,
        labels: Tensor | None = None,
        shift_labels: Tensor | None = None,
        logits_to_keep: int | Tensor = 0,
        **kwargs: Any,
    ) -> Any:
        shifted = shift_labels is None  # labels given, shifted here
        if shift_labels is None:
            if labels is None:  # no loss to compute: the model's own forward
                return original(*args, logits_to_keep=logits_to_keep, **kwargs)
            padded = nn.functional.pad(labels, (0, 1), value=ignore_index)
            shift_labels = padded[..., 1:]  # as the model shifts them
        num_items = kwargs.pop("num_items_in_batch", None)
        return_dict = kwargs.pop("return_dict", None)
        if return_dict is None:
            return_dict = getattr(getattr(self, "config", None), "return_dict", True)
        outputs = base(*args, return_dict=True, **kwargs)
        hidden = outputs[0]
        if tuple(shift_labels.shape) != tuple(hidden.shape[:-1]):  # named as the caller knows them
            given = labels if shifted and labels is not None else shift_labels
            raise ValueError(
                f"{'labels' if shifted else 'shift_labels'} must have the shape of the tokens "
                f"{tuple(hidden.shape[:-1])}; got {tuple(given.shape)}"
            )
        head: Any = getattr(self, "get_output_embeddings")()  # noqa: B009 (may be replaced)
        loss = fused_loss(
            hidden,
            head.weight,
            shift_labels.to(hidden.device),
            getattr(head, "bias", None),
            fused,
            num_items_in_batch=num_items,
            out_dtype=torch.float32,  # as the model's loss (on float logits)
        )
        logits = None
        if return_logits:
            logits = head(hidden) / temperature
            if softcap is not None:
                logits = softcap * torch.tanh(logits / softcap)
        rest = {k: v for k, v in outputs.items() if k != "last_hidden_state"}
        if not return_dict:  # the model's tuple: the logits keep their place, None or not
            return (loss, logits, *rest.values())
        return CausalLMOutputWithPast(loss=loss, logits=logits, **rest)

    object.__setattr__(model, _ATTRIBUTE, original)
    model.forward = types.MethodType(forward, model)
    return model


def remove_fused_loss(model: nn.Module) -> nn.Module:
    """Undo :func:`use_fused_loss`: the model's own forward again; returns ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        A model given to :func:`use_fused_loss` (any other is returned as it is).

    Examples
    --------
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> from crossentropy.integrations.transformers import remove_fused_loss, use_fused_loss
    >>> model = use_fused_loss(LlamaForCausalLM(LlamaConfig(
    ...     vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
    ...     num_attention_heads=2, num_key_value_heads=2)))
    >>> "forward" in vars(remove_fused_loss(model))
    False
    """
    original = getattr(model, _ATTRIBUTE, None)
    if original is not None:
        del model.forward
        object.__delattr__(model, _ATTRIBUTE)
    return model
