r"""Hugging Face causal language models trained with the fused linear + cross-entropy.

:func:`use_fused_loss` makes a ``...ForCausalLM`` model (Llama, Mistral, Qwen2, Gemma/Gemma 2
with its logit softcap, Phi-3, Granite, Cohere, and any model whose forward runs its decoder
(``model.base_model``) and then its output embeddings) compute its training loss with
:func:`crossentropy.fused.linear_cross_entropy`: when ``labels`` (or ``shift_labels``) are given,
the decoder's last hidden states go straight into the fused op, so the ``[tokens, vocab]``
logits are never formed. The labels are shifted as the model does (pad with -100, drop the
first), ``num_items_in_batch`` divides the summed loss as the model's own loss does (Hugging
Face's gradient-accumulation normalisation), and the model's logit transforms become the fused
op's options: Gemma's ``final_logit_softcapping`` and RecurrentGemma's ``logits_soft_cap`` its
``softcap``; Cohere's ``logit_scale``, Granite's and HyperCLOVAX's ``logits_scaling`` and
Falcon-H1's ``lm_head_multiplier`` its ``temperature``. That these reproduce the model's own
logits is checked once, when the loss is installed: the model's forward runs with its decoder's
output made up (three hidden states, no layer run) and labels, and a model whose logits are
anything else (a transform no config field names, a padded vocabulary cut off), or whose own
loss is not their next-token cross-entropy (BART's and TrOCR's causal LMs, whose labels are
not shifted), is refused with a ``TypeError`` rather than trained on another loss; so is an
encoder-decoder model. The same run says whether the model's loss divides by a
``num_items_in_batch`` it is given (a forward may take the keyword and leave it unused: the
fused loss then leaves it unused too). The output is the model's own output class
(``CausalLMOutputWithPast``, a vision-language model's own) with ``logits=None`` unless asked
for (``return_logits=True``), and a float32 loss, as the models' own (computed in float32 for
half-precision models). A multimodal model is trained on its text: the fused loss runs its
``base_model`` with the call's arguments (images included).
Calls without labels (generation, evaluation of logits) run the model's own forward.
A mixture of experts with ``output_router_logits`` (Mixtral, Qwen2/3-MoE, OLMoE, ...) gets its
load-balancing loss added as its own forward adds it, in a ``MoeCausalLMOutputWithPast``.
A model whose output layer does not take the decoder's last hidden states directly (a masked
LM's prediction head, BERT's) is refused, as is a router loss of another form. A deep copy of
the model (a reference or EMA model) has its own fused loss, and a pickled model keeps it.

.. math::

    \mathcal{L} = \frac{1}{n} \sum_{t:\, y_{t+1} \ne -100}
        -\log \operatorname{softmax}(W h_t)_{y_{t+1}}

Importing this module imports ``transformers``.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import types
import warnings
from typing import Any, NamedTuple

from crossentropy._lib.extras import reraise_missing

try:
    import transformers  # noqa: F401  (the integration's library)
except ModuleNotFoundError as exc:
    reraise_missing("crossentropy.integrations.transformers", exc)
import array_api_compat.torch as xpt
import torch
from torch import Tensor, nn
from transformers.modeling_outputs import CausalLMOutputWithPast, MoeCausalLMOutputWithPast

from crossentropy._lib.policy import reads
from crossentropy.fused._chunked import FusedOptions, check_class_indices, fused_loss
from crossentropy.integrations._loss import check_linear
from crossentropy.losses.classification import index_targets

__all__ = ["remove_fused_loss", "use_fused_loss"]


# Fields of a model's (text) config that transform its logits, and how: ``"softcap"``
# (c * tanh(z / c)), ``"times"`` (z * s) or ``"over"`` (z / s, a temperature). A field of another
# model may mean another transform: :func:`_check_transform` checks the outcome on every model.
_TRANSFORMS = {
    "final_logit_softcapping": "softcap",  # Gemma 2 and 3
    "logits_soft_cap": "softcap",  # RecurrentGemma
    "logit_scale": "times",  # Cohere
    "logits_scaling": "over",  # Granite (HyperCLOVAX multiplies: _TIMES_SCALING)
    "lm_head_multiplier": "times",  # Falcon-H1
}
_TIMES_SCALING = frozenset({"hyperclovax"})  # model types whose logits_scaling multiplies


def _logit_transform(config: Any) -> tuple[float | None, float]:
    """``(softcap, temperature)`` reproducing the model's own transform of its logits, read
    from its (text) config's fields (:data:`_TRANSFORMS`)."""
    get_text = getattr(config, "get_text_config", None)
    text = get_text(decoder=True) if callable(get_text) else config
    softcap, temperature = None, 1.0
    for field, kind in _TRANSFORMS.items():
        value = getattr(text, field, None)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if field == "logits_scaling" and getattr(text, "model_type", None) in _TIMES_SCALING:
            kind = "times"
        if kind == "softcap":
            softcap = float(value)
        elif kind == "times":
            temperature /= float(value)
        else:
            temperature *= float(value)
    return softcap, temperature


_PROBE_ROWS = 2048  # rows of the head per block of the check's logits (float64)


class _Hidden:
    """What the decoder returns while :func:`_check_transform` runs the model's forward: the
    made-up last hidden states, by attribute, by name or at position 0, and the attention
    mask it was given (a decoder that returns its mask, Qwen2-Audio's); no other field."""

    def __init__(self, hidden: Tensor, attention_mask: Tensor | None = None) -> None:
        self.last_hidden_state = hidden
        self.attention_mask = attention_mask

    def __getattr__(self, name: str) -> Any:  # past_key_values, attentions, router_logits, ...
        if name.startswith("__"):
            raise AttributeError(name)
        return None

    def __getitem__(self, key: Any) -> Tensor:
        if key in (0, "last_hidden_state"):
            return self.last_hidden_state
        raise KeyError(key)


class _Probe(NamedTuple):
    """What :func:`_check_transform` learned of the model's forward: the class of its outputs
    (None where it returned a tuple, or was not run), whether its loss divides by a
    ``num_items_in_batch`` it is given (False: it takes the keyword and leaves it unused), and
    whether it leaves out the labels of positions its attention mask zeroes (Qwen2-Audio's
    and Granite Speech's loss does, whatever the label)."""

    output: type | None = None
    divides: bool = True
    masks_labels: bool = False


def _check_transform(model: nn.Module, softcap: float | None, temperature: float) -> _Probe:
    """Refuse a model whose own logits are not ``softcap(W h / temperature)`` (and its bias),
    or whose own loss is not their next-token cross-entropy: the class's forward runs with
    its decoder (and the decoder's parts) replaced by three made-up hidden states (no layer
    runs) whose largest logits are 1, 30 and 1000, and labels; its logits must be those
    within the head's precision, and its loss the mean cross-entropy of the first two
    positions' logits against the next labels (a decoder whose loss pairs each label with
    its own position's logits, BART's, is refused). Where the forward takes more keywords it
    runs again with ``num_items_in_batch``, to learn whether its loss divides by it, and where
    it takes an attention mask, with the last position's zeroed, to learn whether its loss
    leaves that position's label out (a loss that does neither exactly is refused). A head on
    the ``meta`` device, or sharded (a DTensor, a partitioned parameter), is not checked:
    there is nothing to compute with here (and making it whole would be a collective
    call)."""
    from crossentropy.distributed._dtensor import holds_dtensor

    name = type(model).__name__
    head: Any = getattr(model, "get_output_embeddings")()  # noqa: B009 (may be replaced)
    weight, bias = head.weight.detach(), getattr(head, "bias", None)
    if weight.is_meta or weight.ndim != 2 or weight.numel() == 0 or holds_dtensor(weight):
        return _Probe()
    dtype = torch.float64  # the expected logits, exact beside the model's rounding
    device = weight.device.type
    exact = (  # the model's own precision, not an autocast's around the call
        torch.autocast(device, enabled=False)
        if torch.is_autocast_enabled(device)
        else contextlib.nullcontext()
    )
    with torch.no_grad(), exact:
        # a row of large norm among the first ones (a padded vocabulary's rows may be zero);
        # the logits a block of rows at a time: never a copy of the whole head
        first = weight[:1024].to(dtype)
        u = first[int(first.norm(dim=1).argmax())]
        size = float(u.dot(u))
        if not size > 0:  # an all-zero head: its logits are its bias
            u, size = torch.ones_like(u), float(u.numel())
        scales = torch.tensor([1.0, 30.0, 1000.0], dtype=dtype, device=u.device)
        hidden = (scales[:, None] * u / size).to(weight.dtype)[None]
        b = None if bias is None else bias.detach()
        expected = torch.cat(
            [
                nn.functional.linear(
                    hidden.to(dtype),
                    weight[lo : lo + _PROBE_ROWS].to(dtype),
                    None if b is None else b[lo : lo + _PROBE_ROWS].to(dtype),
                )
                for lo in range(0, weight.shape[0], _PROBE_ROWS)
            ],
            dim=-1,
        )
        expected = expected / temperature
        # the model's rounding is of these (before a softcap, which does not enlarge it)
        reach = float(expected.abs().max())
        scored = float(expected[0, :2].abs().max())  # of the two positions a loss scores
        if softcap is not None:
            expected = softcap * torch.tanh(expected / softcap)
        # the decoder and its parts (OPT's forward calls its decoder's decoder) made up
        base: Any = getattr(model, "base_model")  # noqa: B009 (a module's attribute)
        parts = [base, *base.children()]
        before = [vars(m).get("forward") for m in parts]
        for m in parts:
            object.__setattr__(
                m,
                "forward",
                lambda *args, **kwargs: _Hidden(hidden, kwargs.get("attention_mask")),
            )
        v = weight.shape[0]
        labels = ((v - 1 - torch.arange(3)) % v).to(weight.device)[None]  # (rare: special)
        kwargs: dict[str, Any] = {"input_ids": torch.zeros((1, 3), dtype=torch.long)}
        kwargs["input_ids"] = kwargs["input_ids"].to(weight.device)
        keywords = inspect.signature(type(model).forward).parameters
        takes_items = any(p.kind is p.VAR_KEYWORD for p in keywords.values())
        if "labels" in keywords:  # (a forward without labels has no loss to check)
            kwargs["labels"] = labels
        if takes_items or "return_dict" in keywords:  # its output class, not a tuple
            kwargs["return_dict"] = True
        if any(hasattr(c, "output_router_logits") for c in _configs(model)):
            kwargs["output_router_logits"] = False
        items = torch.tensor(5, device=weight.device)  # as Trainer passes it: a tensor
        masked = torch.tensor([[1, 1, 0]], device=weight.device)
        try:
            out = type(model).forward(model, **kwargs)
            per_item = (
                type(model).forward(model, **kwargs, num_items_in_batch=items)
                if takes_items and "labels" in kwargs
                else None
            )
            with_mask = (
                type(model).forward(model, **kwargs, attention_mask=masked)
                if "attention_mask" in keywords and "labels" in kwargs
                else None
            )
        except Exception as exc:
            raise TypeError(
                f"cannot check that {name}'s logits are its output embeddings' products: its "
                f"forward failed with its decoder's output made up ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''})"
            ) from exc
        finally:
            for m, forward in zip(parts, before, strict=True):
                if forward is None:
                    object.__delattr__(m, "forward")
                else:
                    object.__setattr__(m, "forward", forward)
    if isinstance(out, tuple):  # (the loss first, where there is one)
        logits = out[1] if _loss_of(out) is not None and len(out) > 1 else out[0]
    else:
        logits = getattr(out, "logits", None)
    what = (
        f"its output embeddings' products{'' if temperature == 1 else f' / {temperature:g}'}"
        f"{'' if softcap is None else f' softcapped at {softcap:g}'}"
    )
    if (
        not isinstance(logits, Tensor)
        or not logits.is_floating_point()
        or tuple(logits.shape) != tuple(expected.shape)
    ):
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise TypeError(
            f"{name}'s logits are not {what}: shape {shape} where the output embeddings give "
            f"{tuple(expected.shape)}; train it without use_fused_loss"
        )
    # in units of the coarser of the head's and the logits' precisions (a float64 model may
    # return float32 logits): every logit within 8 of the largest before the softcap, and the
    # logits' least-squares scale within 2 (a scale no config field names, 1.02 in bfloat16
    # say, is within the elementwise bound but not within this one)
    unit = max(torch.finfo(weight.dtype).eps, torch.finfo(logits.dtype).eps)
    got = logits.detach().to(dtype)
    far = float((got - expected).abs().max())
    norm = float((expected * expected).sum())
    scale = float((got * expected).sum()) / norm if norm > 0 else 1.0
    if not (far <= 8 * unit * reach and abs(scale - 1) <= 2 * unit):
        raise TypeError(
            f"{name}'s logits are not {what}: its forward transforms them in a way this "
            f"integration does not reproduce (off by up to {far:.3g}, and by a factor of "
            f"{scale:.6g}, on made-up hidden states); train it without use_fused_loss"
        )
    # the loss in float32 at least (the models' loss upcasts float64 logits to float32, too)
    loss_unit = max(unit, torch.finfo(torch.float32).eps)
    return _check_loss(
        name,
        (out, per_item, with_mask),
        expected,
        labels,
        (16 * loss_unit * max(reach, 1.0), 16 * loss_unit * max(scored, 1.0)),
    )


def _configs(model: nn.Module) -> list[Any]:
    """The model's config and, where it has another, its text (decoder) config."""
    config = getattr(model, "config", None)
    get_text = getattr(config, "get_text_config", None)
    text = get_text(decoder=True) if callable(get_text) else None
    return [c for c in (config, text) if c is not None and (c is config or text is not config)]


def _loss_of(out: Any) -> float | None:
    """The probe's loss (None where the forward gave none)."""
    loss = out[0] if isinstance(out, tuple) else getattr(out, "loss", None)
    if not isinstance(loss, Tensor) or (isinstance(out, tuple) and loss.dim() != 0):
        return None  # (a tuple without a loss starts with the logits)
    return float(loss) if loss.numel() == 1 else float("nan")


def _check_loss(
    name: str,
    outs: tuple[Any, Any, Any],
    logits: Tensor,
    labels: Tensor,
    tols: tuple[float, float],
) -> _Probe:
    """The probe's losses against the next-token cross-entropy of its (float64) logits:
    refused unless it is that mean (see :func:`_check_transform`); with
    ``num_items_in_batch=5``, the sum over 5 or the same mean (a forward that takes the
    keyword and leaves it unused); with the last position's attention mask 0, the same mean
    or that of the first label alone (a loss that leaves the masked position's label out).
    ``tols``: the loss's tolerance by the largest logit of the probe, and by the largest of
    the two positions scored (the mask's question is of those two; where their losses are
    too close to tell the mean from the first alone, a zero head, the model is taken as
    leaving no label out, the common case)."""
    out, per_item, with_mask = outs
    tol, scored_tol = tols
    ce = nn.functional.cross_entropy
    shifted = ce(logits[0, :-1], labels[0, 1:], reduction="none")
    mean, own = float(shifted.mean()), _loss_of(out)
    output = None if isinstance(out, tuple) else type(out)
    if own is None:  # a forward that computes no loss: nothing of the model's to follow
        return _Probe(output, True)
    if not abs(own - mean) <= tol:
        unshifted = float(ce(logits[0], labels[0]))
        why = (
            "pairs each label with the logits of its own position (its labels are not shifted)"
            if abs(own - unshifted) <= tol
            else f"is not their next-token cross-entropy ({own:.6g} where that gives {mean:.6g})"
        )
        raise TypeError(
            f"{name}'s own loss {why}, on made-up hidden states; this integration computes the "
            "next-token loss of causal LMs: train it without use_fused_loss"
        )
    divides = True
    if per_item is not None:
        by_items = float(shifted.sum()) / 5
        own = _loss_of(per_item)
        own = float("nan") if own is None else own
        divides = abs(own - by_items) <= tol
        if not divides and not abs(own - mean) <= tol:
            raise TypeError(
                f"{name}'s own loss with num_items_in_batch=5 is {own:.6g}, neither the sum "
                f"over 5 ({by_items:.6g}) nor the mean ({mean:.6g}); train it without "
                "use_fused_loss"
            )
    masks = False
    if with_mask is not None:
        first = float(shifted[0])  # the one label whose position the mask keeps
        own = _loss_of(with_mask)
        own = float("nan") if own is None else own
        as_mean, as_first = abs(own - mean) <= scored_tol, abs(own - first) <= scored_tol
        masks = as_first and not as_mean and abs(first - mean) > 2 * scored_tol
        if not as_first and not as_mean:
            raise TypeError(
                f"{name}'s own loss with an attention mask of [1, 1, 0] is {own:.6g}, neither "
                f"the mean over the labels ({mean:.6g}) nor that over the label the mask keeps "
                f"({first:.6g}); train it without use_fused_loss"
            )
    return _Probe(output, divides, masks)


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
    passes it and the model's own loss divides by it (the model's own convention); a model
    whose own loss leaves out the labels of positions its attention mask zeroes
    (Qwen2-Audio's, Granite Speech's) has them left out here too (of ``labels``; explicit
    ``shift_labels`` are taken as given). The
    model's ``forward`` keeps its signature (its ``**kwargs`` let ``Trainer`` pass
    ``num_items_in_batch``); with ``labels`` or ``shift_labels`` it runs ``model.base_model``
    and the fused op on the last hidden states and ``model.get_output_embeddings().weight``
    (tied weights stay tied), and returns the model's own output class; without them it runs
    the model's own forward. ``label_smoothing`` and ``z_loss`` are extras (0 reproduces the
    model). The model's own logits and loss are checked once against these options (its
    forward on three made-up hidden states and labels, no decoder layer run; not for a head
    on the ``meta`` device or sharded across processes): a logit transform they do not
    reproduce, a loss that is not the next-token cross-entropy (labels not shifted) or that
    uses the attention mask otherwise than to leave out the labels it masks, an
    encoder-decoder model and a router loss named in a text config only are a
    ``TypeError``; so is a training call after ``model.loss_function``, ``model.loss_type``
    or the config's logit transform changed (checked between calls, not while compiling).
    The check scores three labels: a loss that treats another label its own way is not
    seen. A second call replaces the options of the first;
    :func:`remove_fused_loss` undoes it. Call it before anything sets a ``forward`` on the
    model's instance (accelerate's ``prepare``, hence ``Trainer``, does so for mixed
    precision): such a forward then runs for calls without labels only, with a warning.
    Arguments given by position are read by the names of the model's forward. With
    ``return_dict=False`` (as a call's argument or in the model's config) the outputs come as
    the model's tuple.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A ``...ForCausalLM`` model.
    return_logits : bool, default False
        Also compute and return the logits on calls with labels (they are then formed, as the
        model would, for the positions a ``logits_to_keep`` keeps; the loss, of every token,
        still comes from the fused op).
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
    if getattr(getattr(model, "config", None), "is_encoder_decoder", False):
        raise TypeError(
            f"{type(model).__name__} is an encoder-decoder model: this integration computes the "
            "loss of causal LMs (a decoder alone)"
        )
    _check_layout(model)
    softcap, temperature = _logit_transform(getattr(model, "config", None))
    try:
        probe = _check_transform(model, softcap, temperature)
    except TypeError as refused:
        if softcap is None:
            raise
        try:  # a softcap field its forward does not apply (a multimodal Gemma 3's text config)
            probe, softcap = _check_transform(model, None, temperature), None
        except TypeError:
            raise refused from None
    fused = FusedOptions(  # checked now, not at the first training step
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        softcap=softcap,
        temperature=temperature,
        chunk_size=chunk_size,
        kernel=kernel,
    )
    routed = getattr(getattr(model, "config", None), "output_router_logits", False)
    if routed and _router_loss_func(model) is None:  # a router loss it cannot add: refused
        raise _no_router_loss(model)
    text = _configs(model)[1:]
    if text and getattr(text[0], "output_router_logits", False) and not routed:
        raise TypeError(  # (its training would leave out the load-balancing loss)
            f"{type(model).__name__} has a router loss in its text config: this integration adds "
            "the router loss of models that say so in their own config; train it without "
            "use_fused_loss, or set output_router_logits=False"
        )
    remove_fused_loss(model)  # a second call (now checked): its options replace the first's
    own = vars(model).get("forward")  # a forward set on the instance (a hook's), else None
    if own is not None:
        warnings.warn(
            f"{type(model).__name__}.forward was set on the instance before use_fused_loss "
            "(accelerate's prepare sets one for mixed precision, and so do hooks): it now runs "
            "only for calls without labels, and training calls run without it; call "
            "use_fused_loss before preparing the model",
            UserWarning,
            stacklevel=2,
        )
    forward = _FusedForward(model, own, fused, return_logits, probe)
    object.__setattr__(model, "forward", forward)
    return model


def _check_layout(model: nn.Module) -> None:
    """Refuse a model whose output embeddings do not take the decoder's last hidden states
    directly: its own parameters are its decoder's (``base_model``) and its output layer's,
    both direct children (a masked LM's prediction head transforms them first)."""
    name = type(model).__name__
    if isinstance(getattr(model, "_orig_mod", None), nn.Module):  # torch.compile's wrapper
        raise TypeError(
            f"model is a compiled module ({name}): call use_fused_loss on the model first, "
            "then torch.compile it"
        )
    get_head = getattr(model, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    base = getattr(model, "base_model", None)
    if not isinstance(getattr(head, "weight", None), Tensor) or not isinstance(base, nn.Module):
        raise TypeError(
            f"model must be a causal LM with output embeddings and a base model; got {name}"
        )
    if base is model:
        prefix = getattr(model, "base_model_prefix", "")
        raise TypeError(
            f"{name}'s base_model is the model itself (its base_model_prefix {prefix!r} names "
            "no submodule), so its decoder cannot be told from its output layer"
        )
    check_linear(head, "the output embeddings")
    children = [m for m in model.children() if any(True for _ in m.parameters())]
    own = [n for n, _ in model.named_parameters(recurse=False)]
    if own or any(m is not base and m is not head for m in children):
        others = own + [n for n, m in model.named_children() if m is not base and m is not head]
        raise TypeError(
            f"model must be a causal LM whose output embeddings take the decoder's last hidden "
            f"states directly; {name} also has {', '.join(others)} (a prediction head that "
            "transforms them first?)"
        )


_NO_ROUTER_LOSS = "none"  # a mixture of experts whose forward adds no router loss (DeepSeek-V3)


def _router_loss_func(model: nn.Module) -> Any:
    """The mixture-of-experts load-balancing loss function the model's own forward adds
    (``load_balancing_loss_func(gate_logits, num_experts, top_k, attention_mask)`` of its
    module, with the model's ``num_experts``, ``num_experts_per_tok`` and
    ``router_aux_loss_coef``); :data:`_NO_ROUTER_LOSS` for a forward that adds none (its
    module has no such function and its forward no ``aux_loss``); None for a router loss of
    another form."""
    module = sys.modules.get(type(model).__module__)
    func = getattr(module, "load_balancing_loss_func", None)
    if func is None:
        try:
            source = inspect.getsource(type(model).forward)
        except (OSError, TypeError):  # no source to read: not known to add none
            return None
        return None if "aux_loss" in source else _NO_ROUTER_LOSS
    expected = ["gate_logits", "num_experts", "top_k", "attention_mask"]
    if list(inspect.signature(func).parameters) != expected:
        return None
    terms = _router_terms(model)
    if not isinstance(terms[0], int) or not isinstance(terms[1], int):
        return None
    if not isinstance(terms[2], (int, float)):
        return None
    return func


def _router_terms(model: nn.Module) -> tuple[Any, Any, Any]:
    """The model's expert count, experts per token and router loss coefficient, read at each
    call (a schedule may change the coefficient)."""
    coef = getattr(model, "router_aux_loss_coef", getattr(model, "aux_loss_coef", None))
    return getattr(model, "num_experts", None), getattr(model, "num_experts_per_tok", None), coef


def _no_router_loss(model: nn.Module) -> TypeError:
    return TypeError(
        f"{type(model).__name__}'s router loss (output_router_logits=True) is not one this "
        "integration adds; train with output_router_logits=False or without use_fused_loss"
    )


def _checked_state(model: nn.Module) -> tuple[Any, ...]:
    """What the fused loss was checked against: a loss function set on the instance (by
    ``model.loss_function = f``), the model's ``loss_type``, and its logits' transform."""
    return (
        vars(model).get("_loss_function"),
        getattr(model, "loss_type", None),
        _logit_transform(getattr(model, "config", None)),
    )


class _FusedForward:
    """A model's ``forward`` with the fused loss, set on the model's instance.

    It holds the model it belongs to, so that a deep copy of the model (a reference or EMA
    model) gets a forward of its own, and pickles with it; its ``__signature__`` is the model's
    own (``Trainer`` keeps the dataset columns that forward names). What a call needs to know
    of the model's forward is read once, here, so that ``torch.compile(fullgraph=True)``
    traces a call without a break. A forward set on the instance before (a hook's) runs for
    calls without labels; calls with labels run the decoder and the fused loss.
    """

    def __init__(
        self,
        model: nn.Module,
        own: Any,
        options: FusedOptions,
        return_logits: bool,
        probe: _Probe | None = None,
    ) -> None:
        self.model = model
        self.probe = probe if probe is not None else _Probe()
        self.own = own  # the instance's own forward before this one, if any
        self.options = options
        self.return_logits = return_logits
        # the class's forward: calls with labels never run a forward set on the instance
        own_forward = types.MethodType(type(model).forward, model)
        parameters = inspect.signature(own_forward).parameters.values()  # in order, no self
        # the names of the arguments a call may give by position: a call is read by name
        self.positional = tuple(p.name for p in parameters if p.kind in _BY_POSITION)
        # a mixture of experts: its config has the flag (its forward may take it as **kwargs)
        self.routed = hasattr(getattr(model, "config", None), "output_router_logits")
        self.router = _router_loss_func(model) if self.routed else None
        self.checked = _checked_state(model)  # what use_fused_loss checked the loss against

    def _unchanged(self) -> None:
        """Refuse a call after the model's loss function (``model.loss_function = f``, its
        ``loss_type``) or its config's transform of the logits changed since
        :func:`use_fused_loss` checked them: the fused loss would ignore the change."""
        if _checked_state(self.model) != self.checked:
            raise TypeError(
                f"{type(self.model).__name__}'s loss function (loss_function, loss_type) or "
                "its config's transform of the logits (a softcap, a scale) changed after "
                "use_fused_loss checked them, and the fused loss would not follow: call "
                "use_fused_loss again to check the new ones (or remove_fused_loss)"
            )

    def _original(self) -> inspect.Signature:
        forward = self.own
        if forward is None:
            forward = types.MethodType(type(self.model).forward, self.model)
        return inspect.signature(forward)

    @property
    def __signature__(self) -> inspect.Signature:
        return self._original()

    def _own_forward(self, *args: Any, **kwargs: Any) -> Any:
        """The model's forward without the fused loss."""
        if self.own is not None:
            return self.own(*args, **kwargs)
        return type(self.model).forward(self.model, *args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) > len(self.positional):
            raise TypeError(
                f"{type(self.model).__name__}.forward takes {len(self.positional)} positional "
                f"arguments but {len(args)} were given"
            )
        for name, value in zip(self.positional, args, strict=False):  # by position: by name
            if name in kwargs:
                raise TypeError(
                    f"{type(self.model).__name__}.forward got multiple values for {name!r}"
                )
            kwargs[name] = value
        labels: Tensor | None = kwargs.pop("labels", None)
        shift_labels: Tensor | None = kwargs.pop("shift_labels", None)
        logits_to_keep = kwargs.pop("logits_to_keep", 0)
        model, fused = self.model, self.options
        shifted = shift_labels is None  # labels given, shifted here
        if shift_labels is None and labels is None:  # no loss to compute: the model's own
            return self._own_forward(logits_to_keep=logits_to_keep, **kwargs)
        if not torch.compiler.is_compiling():  # (read between compiled steps: not traced)
            self._unchanged()
        head: Any = getattr(model, "get_output_embeddings")()  # noqa: B009 (may be replaced)
        check_linear(head, "the output embeddings")  # (an adapter added since, say)
        name = "labels" if shifted else "shift_labels"
        given = _checked_labels(
            labels if shifted else shift_labels, name, head, fused.ignore_index, shifted
        )
        if shift_labels is None:
            padded = nn.functional.pad(given, (0, 1), value=fused.ignore_index)
            shift_labels = padded[..., 1:]  # as the model shifts them
        num_items = kwargs.pop("num_items_in_batch", None)
        if not self.probe.divides:  # as the model's own loss, which leaves it unused
            num_items = None
        return_dict = kwargs.pop("return_dict", None)
        config = getattr(model, "config", None)
        if return_dict is None:
            return_dict = getattr(config, "return_dict", True)
        router = False
        if self.routed:  # as the model's forward: the call's choice, else the config's
            if kwargs.get("output_router_logits") is None:
                kwargs["output_router_logits"] = getattr(config, "output_router_logits", False)
            router = bool(kwargs["output_router_logits"])
            if router and self.router is None:
                raise _no_router_loss(model)
        base: Any = getattr(model, "base_model")  # noqa: B009 (a module's attribute)
        outputs = base(return_dict=True, **kwargs)
        hidden = outputs[0]
        if tuple(shift_labels.shape) != tuple(hidden.shape[:-1]):  # named as the caller knows them
            raise ValueError(
                f"{name} must have the shape of the tokens {tuple(hidden.shape[:-1])}; got "
                f"{tuple(given.shape)}"
            )
        if self.probe.masks_labels and shifted:  # as the model's loss: the labels of positions
            mask = getattr(outputs, "attention_mask", None)  # its attention mask zeroes left out
            if not isinstance(mask, Tensor):
                mask = kwargs.get("attention_mask")
            if isinstance(mask, Tensor):
                tokens = tuple(hidden.shape[:-1])
                if mask.ndim != 2 or mask.shape[0] != tokens[0] or mask.shape[1] < tokens[1]:
                    raise ValueError(
                        f"attention_mask must have the shape of the tokens {tokens} (or more "
                        f"positions, of which the last are the tokens'); got {tuple(mask.shape)}"
                    )
                mask = mask[:, mask.shape[1] - tokens[1] :]  # (a prefix's positions: cropped)
                kept = nn.functional.pad(mask[..., 1:].to(shift_labels.device) != 0, (0, 1))
                ignored = -100 if fused.ignore_index is None else fused.ignore_index
                shift_labels = shift_labels.masked_fill(~kept, ignored)
        dtype = head.weight.dtype
        if hidden.dtype != dtype and not torch.is_autocast_enabled(hidden.device.type):
            hidden = hidden.to(dtype)  # as the model casts them (Mamba's float32 states)
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
        if self.return_logits:  # of the positions logits_to_keep keeps, as the model's own
            keep = (
                slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
            )
            logits = head(hidden[:, keep, :]) / fused.temperature
            if fused.softcap is not None:
                logits = fused.softcap * torch.tanh(logits / fused.softcap)
        rest = {k: v for k, v in outputs.items() if k != "last_hidden_state"}
        front: dict[str, Any] = {"loss": loss}
        if router and callable(self.router):  # the load-balancing loss, as the model adds it
            experts, top_k, coef = _router_terms(model)
            mask = kwargs.get("attention_mask")
            aux = self.router(outputs.router_logits, experts, top_k, mask)
            front = {"loss": loss + coef * aux.to(loss.device), "aux_loss": aux}
        front["logits"] = logits
        if not return_dict:  # the model's tuple: the logits keep their place, None or not
            return (*front.values(), *rest.values())
        moe = "router_logits" in getattr(type(outputs), "__dataclass_fields__", {})
        kind: Any = MoeCausalLMOutputWithPast if moe else CausalLMOutputWithPast
        own = self.probe.output  # the model's own output class (a vision-language model's)
        fields = getattr(own, "__dataclass_fields__", {})
        if own is not None and {"loss", "logits"} <= set(fields) and set(rest) <= set(fields):
            kind = own
        return kind(**front, **rest)


#: The kinds of parameter a call may give by position.
_BY_POSITION = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _checked_labels(
    labels: Any, name: str, head: Any, ignore_index: int | None, shifted: bool
) -> Tensor:
    """``labels`` (or ``shift_labels``, as ``name`` says) as the caller gave them, as int64: a
    tensor of integer class indices in ``[0, V)`` or ``ignore_index``, an error naming them
    and the position in them of a bad label (the fused op would see them shifted). Labels
    that are shifted out (each sequence's first) are not targets and not checked."""
    t = check_class_indices(labels, name)
    if t.ndim == 0:
        raise ValueError(f"{name} must hold a label per token; got a 0-d tensor")
    if reads(None, t):
        mask = None
        if shifted:  # the first label of each sequence is no target
            mask = torch.ones(t.shape, dtype=torch.bool, device=t.device)
            mask[..., 0] = False
        v = head.weight.shape[0]
        index_targets(xpt, t, v, ignore_index, check=True, mask=mask, name=name)
    return t.long()


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
    forward = vars(model).get("forward")
    if isinstance(forward, _FusedForward):
        if forward.own is None:
            object.__delattr__(model, "forward")
        else:
            object.__setattr__(model, "forward", forward.own)
    return model
