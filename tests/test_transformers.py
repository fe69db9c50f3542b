"""crossentropy.integrations.transformers on tiny randomly initialised Hugging Face models built
from configs (no downloads): the loss and gradients of the model's own forward, the Trainer's
gradient accumulation, no logits formed."""

from __future__ import annotations

import inspect

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from crossentropy.integrations.transformers import (  # noqa: E402
    remove_fused_loss,
    use_fused_loss,
)

TINY = {
    "vocab_size": 97,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
}

MODELS = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {}),
    "mistral": ("MistralConfig", "MistralForCausalLM", {}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {}),
    "gemma2": (
        "Gemma2Config",
        "Gemma2ForCausalLM",
        {"head_dim": 8, "final_logit_softcapping": 3.0, "query_pre_attn_scalar": 8},
    ),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {"pad_token_id": 0}),
    "granite": ("GraniteConfig", "GraniteForCausalLM", {"logits_scaling": 4.0}),
    "cohere": ("CohereConfig", "CohereForCausalLM", {"logit_scale": 0.5}),
    # float32 logits (``.float()``) of a float64 model; float32 states of a half-precision one
    "mamba": ("MambaConfig", "MambaForCausalLM", {"state_size": 8, "expand": 2}),
    # its logits_scaling multiplies, where Granite's divides
    "hyperclovax": ("HyperCLOVAXConfig", "HyperCLOVAXForCausalLM", {"logits_scaling": 4.0}),
    "recurrent_gemma": (
        "RecurrentGemmaConfig",
        "RecurrentGemmaForCausalLM",
        {
            "logits_soft_cap": 0.5,
            "lru_width": 16,
            "attention_window_size": 8,
            "block_types": ["recurrent", "attention"],
        },
    ),
}


def _model(name, seed=0):
    config_name, model_name, extra = MODELS[name]
    config = getattr(transformers, config_name)(**TINY, **extra)
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(config)
    return model.to(torch.float64)


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 97, (3, 11), generator=g)
    labels = ids.clone()
    labels[0, :4] = -100  # a masked prompt
    labels[2, 7:] = -100
    mask = torch.ones_like(ids)
    mask[2, 9:] = 0
    return ids, labels, mask


def _loss_and_grads(model, **inputs):
    model.zero_grad()
    out = model(**inputs)
    out.loss.backward()
    return out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_loss_and_gradients_equal_the_models_own(name):
    ids, labels, mask = _batch()
    model = _model(name)
    inputs = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    own, own_grads = _loss_and_grads(model, **inputs)
    fused, fused_grads = _loss_and_grads(use_fused_loss(model), **inputs)
    assert fused.logits is None
    # the model's own loss takes float32 logits (logits.float()), so they agree to float32
    # rounding; the fused op computes this float64 model in float64
    assert fused.loss.dtype == own.loss.dtype == torch.float32
    torch.testing.assert_close(fused.loss, own.loss, rtol=2e-6, atol=1e-6)
    assert own_grads.keys() == fused_grads.keys()
    for key, grad in own_grads.items():
        torch.testing.assert_close(fused_grads[key], grad, rtol=1e-4, atol=1e-6, msg=key)
    # num_items_in_batch, as Trainer passes it for gradient accumulation
    own = remove_fused_loss(model)(**inputs, num_items_in_batch=torch.tensor(40))
    fused = use_fused_loss(model)(**inputs, num_items_in_batch=torch.tensor(40))
    torch.testing.assert_close(fused.loss, own.loss, rtol=2e-6, atol=1e-6)


def test_float32_model_within_rounding_and_no_logits_formed():
    ids, labels, mask = _batch(1)
    model = _model("llama").float()
    own = model(input_ids=ids, attention_mask=mask, labels=labels)
    use_fused_loss(model)
    calls = []
    handle = model.lm_head.register_forward_hook(lambda *a: calls.append(1))
    fused = model(input_ids=ids, attention_mask=mask, labels=labels)
    handle.remove()
    assert calls == []  # the output layer never ran: no [tokens, vocab] logits
    torch.testing.assert_close(fused.loss, own.loss, rtol=1e-6, atol=1e-6)


def test_arguments_by_position_are_read_by_name():
    """``labels`` is a parameter of the model's forward that a call may give by position: the
    loss is then the fused one too (it ran the model's own, forming the logits)."""
    ids, labels, mask = _batch(4)
    model = _model("llama")
    own = model(input_ids=ids, attention_mask=mask, labels=labels)
    use_fused_loss(model)
    names = list(inspect.signature(model.forward).parameters)
    args = [None] * (names.index("labels") + 1)
    args[0], args[names.index("attention_mask")], args[-1] = ids, mask, labels
    fused = model(*args)
    assert fused.logits is None
    torch.testing.assert_close(fused.loss, own.loss, rtol=1e-12, atol=1e-12)
    plain = model(ids, mask)  # without labels, by position: the model's own forward
    torch.testing.assert_close(plain.logits, own.logits, rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError, match="multiple values for 'input_ids'"):
        model(ids, input_ids=ids, labels=labels)
    with pytest.raises(TypeError, match="positional arguments but"):
        model(*([None] * (len(names) + 1)))


def test_bad_labels_are_named_where_the_caller_gave_them():
    """An out-of-range label is reported in ``labels`` at its own position (not in the
    shifted targets the fused op sees, one to the left)."""
    ids, labels, _ = _batch(5)
    model = use_fused_loss(_model("llama"))
    bad = labels.clone()
    bad[0, 5] = 97
    with pytest.raises(ValueError, match=r"labels holds label 97 at index \(0, 5\)"):
        model(input_ids=ids, labels=bad)
    with pytest.raises(TypeError, match="labels must hold integer class indices"):
        model(input_ids=ids, labels=labels.double())
    with pytest.raises(TypeError, match="labels must be a torch tensor; got list"):
        model(input_ids=ids, labels=labels.tolist())
    shifted = torch.nn.functional.pad(bad, (0, 1), value=-100)[:, 1:]
    with pytest.raises(ValueError, match=r"shift_labels holds label 97 at index \(0, 4\)"):
        model(input_ids=ids, shift_labels=shifted)
    with pytest.raises(ValueError, match="labels must hold a label per token; got a 0-d"):
        model(input_ids=ids, labels=torch.tensor(3))
    # the first label of each sequence is shifted out, no target: not checked, as the model
    first = labels.clone()
    first[:, 0] = 97
    own = remove_fused_loss(model)(input_ids=ids, labels=first).loss
    fused = use_fused_loss(model)(input_ids=ids, labels=first).loss
    torch.testing.assert_close(fused, own, rtol=2e-6, atol=1e-6)  # a float32 loss, as the model
    # labels of any integer dtype, as the model takes them
    small = labels.clamp(min=0).to(torch.uint8)
    own = remove_fused_loss(model)(input_ids=ids, labels=small.long()).loss
    fused = use_fused_loss(model)(input_ids=ids, labels=small).loss
    torch.testing.assert_close(fused, own, rtol=2e-6, atol=1e-6)


def test_a_forward_set_on_the_instance_before_is_warned_of():
    """accelerate's ``prepare`` sets an autocasting forward on the instance: calls with labels
    do not run it (mixed precision would silently stop for training), so it is warned of."""
    ids, labels, _ = _batch(6)
    model = _model("llama")
    calls = []
    own = model.forward

    def hooked(*args, **kwargs):
        calls.append(1)
        return own(*args, **kwargs)

    model.forward = hooked
    with pytest.warns(UserWarning, match="call use_fused_loss before preparing the model"):
        use_fused_loss(model)
    model(input_ids=ids)
    assert calls == [1]  # it still runs without labels
    model(input_ids=ids, labels=labels)
    assert calls == [1]


def test_logits_when_asked_for_and_calls_without_labels():
    ids, labels, _ = _batch(2)
    model = _model("gemma2")
    own = model(input_ids=ids, labels=labels)
    use_fused_loss(model, return_logits=True)
    fused = model(input_ids=ids, labels=labels)
    torch.testing.assert_close(fused.logits, own.logits, rtol=1e-12, atol=1e-12)
    plain = model(input_ids=ids)  # no labels: the model's own forward
    assert plain.loss is None
    torch.testing.assert_close(plain.logits, own.logits, rtol=1e-12, atol=1e-12)
    # logits_to_keep: the loss of every token, the logits of the kept positions (the model's
    # own forward refuses labels with it: the shapes differ)
    kept = model(input_ids=ids, labels=labels, logits_to_keep=2)
    torch.testing.assert_close(kept.loss, fused.loss, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(kept.logits, own.logits[:, -2:], rtol=1e-12, atol=1e-12)
    picked = model(input_ids=ids, labels=labels, logits_to_keep=torch.tensor([0, 3]))
    torch.testing.assert_close(picked.logits, own.logits[:, [0, 3]], rtol=1e-12, atol=1e-12)
    shifted = torch.nn.functional.pad(labels, (0, 1), value=-100)[:, 1:]
    by_shift = model(input_ids=ids, shift_labels=shifted)
    torch.testing.assert_close(by_shift.loss, own.loss, rtol=2e-6, atol=1e-6)
    # return_dict=False: the model's tuple (loss, logits, cache), also from the config
    as_tuple = model(input_ids=ids, labels=labels, return_dict=False)
    own_tuple = remove_fused_loss(model)(input_ids=ids, labels=labels, return_dict=False)
    assert [type(v) for v in as_tuple] == [type(v) for v in own_tuple]
    torch.testing.assert_close(as_tuple[0], own.loss, rtol=2e-6, atol=1e-6)
    torch.testing.assert_close(as_tuple[1], own.logits, rtol=1e-12, atol=1e-12)
    use_fused_loss(model)  # no logits: None keeps their place
    no_logits = model(input_ids=ids, labels=labels, return_dict=False)
    assert no_logits[1] is None
    assert [type(v) for v in no_logits[2:]] == [type(v) for v in own_tuple[2:]]
    model.config.return_dict = False
    assert isinstance(model(input_ids=ids, labels=labels), tuple)


def test_extras_and_undo():
    ids, labels, _ = _batch(3)
    model = _model("qwen2")
    use_fused_loss(model)
    # a second call replaces the options of the first
    assert use_fused_loss(model, z_loss=1e-2, label_smoothing=0.1) is model
    out = model(input_ids=ids, labels=labels)
    logits = remove_fused_loss(model)(input_ids=ids).logits
    shifted = torch.nn.functional.pad(labels, (0, 1), value=-100)[:, 1:]
    import crossentropy as ce

    expected = ce.cross_entropy(
        logits.reshape(-1, 97), shifted.reshape(-1), z_loss=1e-2, label_smoothing=0.1
    )
    torch.testing.assert_close(out.loss, expected.float(), rtol=1e-6, atol=1e-7)
    assert "forward" not in vars(model)


def test_bad_models_and_options_are_refused_at_once():
    with pytest.raises(TypeError, match="causal LM"):
        use_fused_loss(torch.nn.Linear(2, 3))
    with pytest.raises(ValueError, match="label_smoothing"):
        use_fused_loss(_model("llama"), label_smoothing=2.0)
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        use_fused_loss("llama")
    with pytest.raises(TypeError, match="return_logits must be True or False; got 'yes'"):
        use_fused_loss(_model("llama"), return_logits="yes")
    # a masked LM: its prediction head transforms the hidden states before the output layer
    bert = transformers.BertForMaskedLM(
        transformers.BertConfig(
            vocab_size=97,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    )
    with pytest.raises(TypeError, match=r"BertForMaskedLM also has cls"):
        use_fused_loss(bert)
    # a compiled model: the loss is installed on the model, before compiling
    with pytest.raises(TypeError, match=r"compiled module .* use_fused_loss on the model first"):
        use_fused_loss(torch.compile(_model("llama")))
    # a model whose base_model is itself (its prefix names no submodule): no decoder to take
    selfish = _model("llama")
    selfish.base_model_prefix = "language_model"
    with pytest.raises(TypeError, match=r"base_model is the model itself .* 'language_model'"):
        use_fused_loss(selfish)
    # a router loss of another form than the load-balancing loss this integration adds
    doge = transformers.DogeForCausalLM(
        transformers.DogeConfig(**TINY, is_moe=True, output_router_logits=True)
    )
    with pytest.raises(TypeError, match=r"DogeForCausalLM's router loss"):
        use_fused_loss(doge)
    # a refused second call leaves the first one in place
    model = use_fused_loss(_model("llama"), label_smoothing=0.1)
    with pytest.raises(ValueError, match="label_smoothing"):
        use_fused_loss(model, label_smoothing=2.0)
    assert "forward" in vars(model)
    ids = torch.randint(0, 97, (2, 9))
    with pytest.raises(ValueError, match=r"labels must have the shape of the tokens \(2, 9\)"):
        model(input_ids=ids, labels=ids[:, :5])
    with pytest.raises(ValueError, match=r"shift_labels must have the shape of the tokens"):
        model(input_ids=ids, shift_labels=ids[:, :5])
    with pytest.raises(ValueError, match=r"shift_labels must .* got \(2, 5\)"):
        model(input_ids=ids, labels=ids, shift_labels=ids[:, :5])  # the model uses shift_labels


def _transformed(transform):
    """A Llama whose forward transforms its output embeddings' products with ``transform``,
    which no config field says (a user's own model class)."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    class Transformed(transformers.LlamaForCausalLM):
        def forward(self, input_ids=None, labels=None, **kwargs):
            hidden = self.model(input_ids=input_ids, **kwargs).last_hidden_state
            logits = transform(self.lm_head(hidden))
            loss = None
            if labels is not None:
                loss = self.loss_function(logits, labels, vocab_size=logits.shape[-1])
            return CausalLMOutputWithPast(loss=loss, logits=logits)

    torch.manual_seed(0)
    return Transformed(transformers.LlamaConfig(**TINY))


def test_a_logit_transform_it_does_not_reproduce_is_refused():
    """The model's own logits are checked once against the fused op's options (on made-up
    hidden states): a transform no config field names is refused, not a silently other loss."""
    assert "forward" in vars(use_fused_loss(_transformed(lambda z: z)))
    with pytest.raises(TypeError, match=r"Transformed's logits are not .*off by up to"):
        use_fused_loss(_transformed(lambda z: 2 * z))
    with pytest.raises(TypeError, match=r"Transformed's logits are not .*off by up to"):
        use_fused_loss(_transformed(lambda z: 30 * torch.tanh(z / 30)))  # a softcap of its own
    with pytest.raises(TypeError, match=r"shape \(1, 3, 96\) where the output embeddings give"):
        use_fused_loss(_transformed(lambda z: z[..., :-1]))  # a padded vocabulary cut
    with pytest.raises(
        TypeError, match=r"cannot check that Transformed's logits .*\(ValueError: no\)"
    ):
        use_fused_loss(_transformed(lambda z: (_ for _ in ()).throw(ValueError("no"))))
    model = _transformed(lambda z: 2 * z)
    with pytest.raises(TypeError):
        use_fused_loss(model)
    assert "forward" not in vars(model)  # refused: the model is left as it was
    assert all("forward" not in vars(m) for m in model.modules())


def test_a_scale_within_bfloat16s_rounding_of_each_logit_is_still_refused():
    """In bfloat16 a scale of 1.02 moves each logit by less than the elementwise bound (8 of
    its units), but the logits' least-squares scale gives it away."""
    torch.manual_seed(0)
    with pytest.raises(TypeError, match="logits are not"):
        use_fused_loss(_transformed(lambda z: 1.02 * z).to(torch.bfloat16))
    assert "forward" in vars(use_fused_loss(_transformed(lambda z: z).to(torch.bfloat16)))


def test_half_precision_heads_take_the_decoders_states_as_the_model_casts_them():
    """Mamba's decoder returns float32 states to a bfloat16 head, cast by its forward: the
    fused loss casts them too, and gives the model's loss."""
    ids, labels, _ = _batch(4)
    model = _model("mamba").to(torch.bfloat16)
    own = model(input_ids=ids, labels=labels).loss
    fused = use_fused_loss(model)(input_ids=ids, labels=labels).loss
    torch.testing.assert_close(fused, own, rtol=1e-3, atol=1e-3)


def test_the_check_takes_a_scale_that_is_not_a_power_of_two_and_ignores_an_autocast():
    """Cohere's ``logit_scale`` 0.1 differs from the fused op's temperature 10 by a rounding
    (seeds 3 and 5 put a one-unit scale bound just short); a call inside ``torch.autocast``
    checks the model in its own precision."""
    config = {**TINY, "vocab_size": 64, "logit_scale": 0.1}
    for seed in (0, 3, 5):
        torch.manual_seed(seed)
        model = transformers.CohereForCausalLM(transformers.CohereConfig(**config))
        assert "forward" in vars(use_fused_loss(model))
    model = _model("mamba").float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert "forward" in vars(use_fused_loss(model))


def test_a_half_precision_decoder_before_a_float32_head_compiles_whole():
    """The cast of the decoder's states to the head's dtype traces with ``fullgraph=True`` and
    gives the eager loss."""
    ids, labels, _ = _batch(5)
    model = _model("llama").to(torch.bfloat16)
    model.lm_head.float()
    eager = use_fused_loss(model)(input_ids=ids, labels=labels).loss
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(input_ids=ids, labels=labels).loss, eager)


def test_a_model_on_the_meta_device_is_taken_unchecked():
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**TINY))
    assert "forward" in vars(use_fused_loss(model))


def test_a_deep_copy_or_a_pickle_keeps_its_own_fused_loss():
    """A reference or EMA copy of the model gets its own decoder's loss and gradients (not the
    original's), and a pickled model comes back with the fused loss still on."""
    import copy
    import pickle

    ids, labels, _ = _batch(5)
    model = use_fused_loss(_model("llama"))
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.model.norm.weight.zero_()  # the copy's logits are then all 0: its loss is log V
    out = twin(input_ids=ids, labels=labels)
    torch.testing.assert_close(out.loss, torch.tensor(97.0).log(), rtol=1e-6, atol=1e-6)
    assert out.logits is None
    model.zero_grad()
    out.loss.backward()
    assert twin.model.norm.weight.grad is not None
    assert all(p.grad is None for p in model.parameters())
    back = pickle.loads(pickle.dumps(model))
    expected = remove_fused_loss(_model("llama"))(input_ids=ids, labels=labels)
    got = back(input_ids=ids, labels=labels)
    assert got.logits is None  # still the fused loss
    torch.testing.assert_close(got.loss, expected.loss, rtol=2e-6, atol=1e-6)
    assert "forward" not in vars(remove_fused_loss(back))


def test_a_mixture_of_experts_adds_its_router_loss_as_the_model_does():
    config = transformers.MixtralConfig(
        **TINY, num_local_experts=4, num_experts_per_tok=2, output_router_logits=True
    )
    torch.manual_seed(0)
    model = transformers.MixtralForCausalLM(config)  # float32: its experts' grouped products
    ids, labels, mask = _batch(6)
    inputs = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    own, own_grads = _loss_and_grads(model, **inputs)
    fused, fused_grads = _loss_and_grads(use_fused_loss(model), **inputs)
    assert type(fused) is type(own)
    assert fused.logits is None
    torch.testing.assert_close(fused.aux_loss, own.aux_loss)
    torch.testing.assert_close(fused.loss, own.loss, rtol=2e-6, atol=1e-6)
    assert own_grads.keys() == fused_grads.keys()
    for key, grad in own_grads.items():
        torch.testing.assert_close(fused_grads[key], grad, rtol=1e-4, atol=1e-5, msg=key)
    # the coefficient is read at each call (an aux-loss schedule changes it)
    model.router_aux_loss_coef = 0.0
    scheduled = model(**inputs)
    expected = remove_fused_loss(model)(**inputs)
    use_fused_loss(model)
    torch.testing.assert_close(scheduled.loss, expected.loss, rtol=2e-6, atol=1e-6)
    model.router_aux_loss_coef = config.router_aux_loss_coef
    # a padded batch's mask given by position reaches the router loss too
    by_position = model(ids, mask, labels=labels)
    torch.testing.assert_close(by_position.aux_loss, own.aux_loss)
    torch.testing.assert_close(by_position.loss, own.loss, rtol=2e-6, atol=1e-6)
    # the call's choice over the config's, and the tuple of the model's order
    plain = model(**inputs, output_router_logits=False)
    expected = remove_fused_loss(model)(**inputs, output_router_logits=False)
    torch.testing.assert_close(plain.loss, expected.loss, rtol=2e-6, atol=1e-6)
    own_tuple = model(**inputs, return_dict=False)
    as_tuple = use_fused_loss(model)(**inputs, return_dict=False)
    assert [type(v) for v in as_tuple[:2]] == [type(v) for v in own_tuple[:2]]
    assert as_tuple[2] is None  # the logits' place
    torch.testing.assert_close(as_tuple[1], own_tuple[1])


def test_a_mixture_of_experts_that_adds_no_router_loss_returns_its_router_logits():
    """GLM-4-MoE takes ``output_router_logits`` through ``**kwargs`` and adds no router loss
    (balanced without one, as DeepSeek-V3): its own loss and output type, with and without
    the router logits."""
    config = transformers.Glm4MoeConfig(
        **TINY,
        n_routed_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=16,
        first_k_dense_replace=0,
        n_group=1,
        topk_group=1,
    )
    torch.manual_seed(0)
    model = transformers.Glm4MoeForCausalLM(config)
    ids, labels, mask = _batch(8)
    inputs = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    for routed in (False, True):
        own = remove_fused_loss(model)(**inputs, output_router_logits=routed)
        fused = use_fused_loss(model)(**inputs, output_router_logits=routed)
        assert type(fused) is type(own)
        torch.testing.assert_close(fused.loss, own.loss, rtol=2e-6, atol=1e-6)
        assert (fused.router_logits is None) == (own.router_logits is None)


@pytest.mark.parametrize("name", ["llama", "mixtral"])
def test_the_model_compiles_whole_with_the_fused_loss(name):
    """``torch.compile(model, fullgraph=True)``: no graph break in the fused forward (a
    mixture of experts' router loss included), the eager loss."""
    ids, labels, mask = _batch(7)
    if name == "mixtral":
        config = transformers.MixtralConfig(
            **TINY, num_local_experts=4, num_experts_per_tok=2, output_router_logits=True
        )
        torch.manual_seed(0)
        model = transformers.MixtralForCausalLM(config)
    else:
        model = _model(name).float()
    use_fused_loss(model)
    eager = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    got = compiled(input_ids=ids, attention_mask=mask, labels=labels).loss
    torch.testing.assert_close(got, eager, rtol=1e-6, atol=1e-6)
    torch._dynamo.reset()


def test_trainer_with_gradient_accumulation_gives_the_same_losses(tmp_path):
    """A few Trainer steps with gradient accumulation (num_items_in_batch): the logged losses
    and the trained weights equal those of the model's own loss."""
    from transformers import Trainer, TrainingArguments

    rows = []
    for seed in range(8):
        ids, labels, mask = _batch(seed)
        for i in range(3):
            rows.append({"input_ids": ids[i], "attention_mask": mask[i], "labels": labels[i]})

    def train(fused):
        model = _model("llama").float()
        if fused:
            use_fused_loss(model)
        args = TrainingArguments(
            output_dir=str(tmp_path / str(fused)),
            per_device_train_batch_size=2,
            gradient_accumulation_steps=3,
            max_steps=3,
            learning_rate=1e-2,
            logging_steps=1,
            report_to=[],
            save_strategy="no",
            use_cpu=True,
            seed=0,
            data_seed=0,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=args, train_dataset=rows)
        trainer.train()
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        return losses, model.lm_head.weight.detach().clone()

    (own, own_w), (fused, fused_w) = train(False), train(True)
    assert len(own) == 3
    assert fused == pytest.approx(own, rel=1e-5)
    torch.testing.assert_close(fused_w, own_w, rtol=1e-4, atol=1e-6)


class _Adapted(torch.nn.Module):
    """A low-rank adapter around a linear layer, laid out as peft's ``lora.Linear``: its
    ``weight`` is the base layer's, its forward adds ``x A^T B^T``."""

    def __init__(self, base: torch.nn.Linear, rank: int = 2) -> None:
        super().__init__()
        self.base_layer = base
        like = {"dtype": base.weight.dtype}
        self.lora_A = torch.nn.Parameter(torch.randn(rank, base.in_features, **like) * 0.1)
        self.lora_B = torch.nn.Parameter(torch.zeros(base.out_features, rank, **like))

    @property
    def weight(self) -> torch.Tensor:
        return self.base_layer.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base_layer.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base_layer(x) + (x @ self.lora_A.T) @ self.lora_B.T


def test_an_adapter_around_the_head_is_refused_not_left_out_of_the_loss():
    """A LoRA-wrapped head computes more than x W^T (its B starts at 0, so the logits agree
    when the integration checks them): refused at install, and at a call when the adapter
    came after."""
    model = _model("llama")
    model.lm_head = _Adapted(model.lm_head)
    with pytest.raises(TypeError, match=r"the output embeddings \(_Adapted\) holds parameters "):
        use_fused_loss(model)
    model = use_fused_loss(_model("llama"))
    model.lm_head = _Adapted(model.lm_head)
    ids = torch.randint(0, 97, (2, 9))
    with pytest.raises(TypeError, match=r"\(lora_A, lora_B\).*merge_and_unload"):
        model(input_ids=ids, labels=ids)
    assert model(input_ids=ids).logits.shape == (2, 9, 97)  # without labels: the model's own


_BART = {
    "vocab_size": 97,
    "d_model": 16,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 32,
    "decoder_ffn_dim": 32,
}


def test_decoders_whose_loss_is_not_next_token_and_encoder_decoders_are_refused():
    """A decoder whose own loss pairs each label with its own position's logits (BART's
    causal LM: 'the labels are not shifted') would be trained on another objective; an
    encoder-decoder feeds its decoder other inputs: both refused at install."""
    with pytest.raises(TypeError, match=r"BartForCausalLM's own loss pairs each label with"):
        use_fused_loss(transformers.BartForCausalLM(transformers.BartConfig(**_BART)))
    seq2seq = transformers.BartForConditionalGeneration(transformers.BartConfig(**_BART))
    with pytest.raises(TypeError, match=r"BartForConditionalGeneration is an encoder-decoder"):
        use_fused_loss(seq2seq)


def test_a_t5_is_refused_as_an_encoder_decoder():
    """The clearer of the two reasons first (its layout check said its base model is itself)."""
    config = transformers.T5Config(vocab_size=64, d_model=16, d_ff=32, num_layers=1, d_kv=8)
    with pytest.raises(TypeError, match=r"T5ForConditionalGeneration is an encoder-decoder"):
        use_fused_loss(transformers.T5ForConditionalGeneration(config))


def test_a_loss_function_or_logit_transform_changed_after_the_call_is_refused():
    """The fused loss was checked against the model's loss and its config's softcap: a loss
    function set afterwards (it was ignored: 5.510 where the model gave 5.523) or a softcap
    changed afterwards (still applied) stops the next training call; calling again checks
    the new ones."""
    from transformers.loss.loss_utils import ForCausalLMLoss

    ids, labels, _ = _batch(4)

    def skip_seven(logits, labels, vocab_size, **kw):
        return ForCausalLMLoss(logits, labels.masked_fill(labels == 7, -100), vocab_size, **kw)

    model = use_fused_loss(_model("llama"))
    model(input_ids=ids, labels=labels)
    model.loss_function = skip_seven
    with pytest.raises(TypeError, match=r"LlamaForCausalLM's loss function .* changed after"):
        model(input_ids=ids, labels=labels)
    model(input_ids=ids)  # (no loss: the model's own forward)
    gemma = use_fused_loss(_model("gemma2"))
    gemma.config.final_logit_softcapping = 5.0
    with pytest.raises(TypeError, match=r"transform of the logits .* changed after"):
        gemma(input_ids=ids, labels=labels)
    use_fused_loss(gemma)
    own = type(gemma).forward(gemma, input_ids=ids, labels=labels).loss
    torch.testing.assert_close(gemma(input_ids=ids, labels=labels).loss, own)


def test_num_items_in_batch_divides_only_where_the_models_own_loss_divides():
    """A model whose forward takes num_items_in_batch (as **kwargs) and leaves it unused gives
    the mean; the fused loss follows it, as it follows a model whose loss divides by it."""
    import copy

    ids = torch.randint(1, 97, (2, 9), generator=torch.Generator().manual_seed(5))
    for model in (_transformed(lambda z: z), _model("llama")):
        reference = copy.deepcopy(model)
        use_fused_loss(model)
        for items in (None, 7):
            want = reference(input_ids=ids, labels=ids, num_items_in_batch=items).loss
            got = model(input_ids=ids, labels=ids, num_items_in_batch=items).loss
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_multimodal_models_return_their_own_output_class():
    """A vision-language model (Llava) returns its own output class (building a causal LM's
    from its decoder's fields failed); a multimodal Gemma 3, whose text config names a
    softcap its forward does not apply, is taken without it (it was refused)."""
    import copy

    torch.manual_seed(0)
    text = transformers.LlamaConfig(**TINY)
    tiny_vision = {
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 16,
        "patch_size": 8,
    }
    vision = transformers.CLIPVisionConfig(**tiny_vision)
    llava = transformers.LlavaForConditionalGeneration(
        transformers.LlavaConfig(vision_config=vision, text_config=text, image_token_index=96)
    )
    gemma = transformers.Gemma3ForConditionalGeneration(
        transformers.Gemma3Config(
            text_config=transformers.Gemma3TextConfig(
                **TINY, head_dim=8, final_logit_softcapping=5.0
            ),
            vision_config=transformers.SiglipVisionConfig(**tiny_vision),
            mm_tokens_per_image=4,
        )
    )
    ids = torch.randint(1, 90, (2, 9), generator=torch.Generator().manual_seed(6))
    for model in (llava, gemma):
        model = model.to(torch.float64)
        reference = copy.deepcopy(model)
        want = reference(input_ids=ids, labels=ids)
        got = use_fused_loss(model)(input_ids=ids, labels=ids)
        assert type(got) is type(want)
        torch.testing.assert_close(got.loss, want.loss, rtol=1e-6, atol=1e-6)


def test_a_loss_that_leaves_out_the_labels_of_masked_positions_is_followed():
    """Qwen2-Audio's loss leaves out the labels of positions whose attention mask is 0, even
    where the label is a token (right padding labelled as the ids): the fused loss and its
    gradients follow it (it counted them). A Llama's loss counts them, and so does its fused
    loss; a loss that uses the mask otherwise is refused at once."""
    import copy

    from transformers.modeling_outputs import CausalLMOutputWithPast

    audio = transformers.Qwen2AudioEncoderConfig(
        d_model=16,
        encoder_layers=1,
        encoder_attention_heads=2,
        encoder_ffn_dim=32,
        num_mel_bins=8,
        max_source_positions=16,
    )
    text = transformers.Qwen2Config(**TINY)
    torch.manual_seed(0)
    qwen = transformers.Qwen2AudioForConditionalGeneration(
        transformers.Qwen2AudioConfig(audio_config=audio, text_config=text, audio_token_index=96)
    )
    ids = torch.randint(1, 90, (2, 9), generator=torch.Generator().manual_seed(8))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0  # padding whose labels are tokens, not -100
    inputs = {"input_ids": ids, "attention_mask": mask, "labels": ids}
    for model in (qwen, _model("llama")):
        model = model.to(torch.float64)
        own, own_grads = _loss_and_grads(copy.deepcopy(model), **inputs)
        fused, fused_grads = _loss_and_grads(use_fused_loss(model), **inputs)
        # (Qwen2-Audio's own loss keeps its float64 logits' dtype; the fused loss is float32)
        torch.testing.assert_close(fused.loss, own.loss, rtol=2e-6, atol=1e-6, check_dtype=False)
        for key, grad in own_grads.items():
            torch.testing.assert_close(fused_grads[key], grad, rtol=1e-4, atol=1e-6, msg=key)
    logits = _model("llama")(input_ids=ids).logits.detach()
    per_token = torch.nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none"
    )
    kept = mask[:, 1:] != 0
    assert not torch.isclose(per_token[kept].mean(), per_token.mean())  # the two differ here

    # half precision: the probe's tolerance (by its largest logit, 1000) once took every
    # bfloat16 model for one that leaves masked labels out (4.5908 against 4.5856); and a
    # zero head, whose probe cannot tell the two apart, is taken as leaving none out
    mask[1, 4:] = 0
    bf16 = _model("llama").to(torch.bfloat16)
    own = copy.deepcopy(bf16)(**inputs).loss
    counted = torch.nn.functional.cross_entropy(
        copy.deepcopy(bf16)(input_ids=ids).logits[:, :-1].float().transpose(1, 2), ids[:, 1:]
    )
    kept = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    left_out = torch.nn.functional.cross_entropy(
        copy.deepcopy(bf16)(input_ids=ids).logits[:, :-1].float().transpose(1, 2), kept
    )
    assert abs(float(counted - left_out)) > 0.01  # the two conventions differ here
    fused = use_fused_loss(bf16)(**inputs).loss
    torch.testing.assert_close(fused, own, rtol=2e-3, atol=0)
    torch.testing.assert_close(fused, counted, rtol=2e-3, atol=0)
    zero = _model("llama")
    with torch.no_grad():
        zero.lm_head.weight.zero_()
    use_fused_loss(zero)
    with torch.no_grad():
        zero.lm_head.weight.normal_()
    own = remove_fused_loss(copy.deepcopy(zero))(**inputs).loss
    torch.testing.assert_close(zero(**inputs).loss, own, rtol=2e-6, atol=1e-6)

    class MaskWeighted(transformers.LlamaForCausalLM):  # the mask as a weight of 3 per token
        def forward(self, input_ids=None, attention_mask=None, labels=None):
            h = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            logits = self.lm_head(h)
            loss = None
            if labels is not None:
                each = torch.nn.functional.cross_entropy(
                    logits[:, :-1].transpose(1, 2), labels[:, 1:], reduction="none"
                )
                w = 1.0 if attention_mask is None else 3.0 * attention_mask[:, 1:]
                loss = (w * each).mean()
            return CausalLMOutputWithPast(loss=loss, logits=logits)

    torch.manual_seed(0)
    weighted = MaskWeighted(transformers.LlamaConfig(**TINY)).to(torch.float64)
    with pytest.raises(TypeError, match=r"with an attention mask of \[1, 1, 0\] is"):
        use_fused_loss(weighted)


def _own_forwards():
    """Llamas with forwards of their own: without labels; a tuple without return_dict; a loss
    that divides by num_items_in_batch as a tensor (as Trainer passes it); a tuple of the
    logits alone, without labels."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    class NoLabels(transformers.LlamaForCausalLM):
        def forward(self, input_ids=None, attention_mask=None):
            h = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return CausalLMOutputWithPast(logits=self.lm_head(h))

    class Tuple(transformers.LlamaForCausalLM):
        def forward(self, input_ids=None, labels=None):
            logits = self.lm_head(self.model(input_ids=input_ids).last_hidden_state)
            if labels is None:
                return (logits,)
            return (self.loss_function(logits, labels, vocab_size=97), logits)

    class TensorItems(transformers.LlamaForCausalLM):
        def forward(self, input_ids=None, labels=None, num_items_in_batch=None, **kwargs):
            logits = self.lm_head(self.model(input_ids=input_ids).last_hidden_state)
            loss = None
            if labels is not None:
                total = torch.nn.functional.cross_entropy(
                    logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), reduction="sum"
                )
                count = (labels[:, 1:] != -100).sum()
                items = count if num_items_in_batch is None else num_items_in_batch.to(count)
                loss = total / items
            return CausalLMOutputWithPast(loss=loss, logits=logits)

    class TupleNoLabels(transformers.LlamaForCausalLM):
        def forward(self, input_ids=None):
            return (self.lm_head(self.model(input_ids=input_ids).last_hidden_state),)

    return NoLabels, Tuple, TensorItems, TupleNoLabels


@pytest.mark.parametrize(
    "kind", [0, 1, 2, 3], ids=["no-labels", "tuple", "tensor-items", "tuple-no-labels"]
)
def test_forwards_of_their_own_pass_the_install_check(kind):
    """The install check runs a forward with labels only where it takes them, reads a tuple's
    loss and logits, and passes num_items_in_batch as a tensor, as Trainer does (each of these
    models was refused, its forward failing in the check)."""
    cls = _own_forwards()[kind]
    torch.manual_seed(0)
    model = cls(transformers.LlamaConfig(**TINY)).to(torch.float64)
    ids = torch.randint(1, 97, (2, 9), generator=torch.Generator().manual_seed(7))
    logits = model(input_ids=ids)[0] if kind in (1, 3) else model(input_ids=ids).logits
    use_fused_loss(model)
    items = torch.tensor(7) if kind == 2 else None
    out = model(input_ids=ids, labels=ids, num_items_in_batch=items)
    loss = out[0] if isinstance(out, tuple) else out.loss
    total = torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="sum"
    )
    torch.testing.assert_close(loss, (total / (7 if kind == 2 else 16)).float())


def test_a_router_loss_named_only_in_the_text_config_is_refused():
    """A vision-language mixture of experts whose router loss is on in its text config only
    (Qwen3-VL-MoE): refused at install (its check ran the router and failed; before that it
    trained without the load-balancing loss)."""
    config = transformers.Qwen3VLMoeConfig()
    text = config.text_config
    for key, value in dict(
        TINY, num_hidden_layers=1, head_dim=8, moe_intermediate_size=16, num_experts=4
    ).items():
        setattr(text, key, value)
    text.num_experts_per_tok, text.output_router_logits = 2, True
    vision = config.vision_config
    for key, value in dict(
        hidden_size=16, intermediate_size=32, depth=1, num_heads=2, out_hidden_size=16
    ).items():
        setattr(vision, key, value)
    config.image_token_id, config.video_token_id = 96, 95
    torch.manual_seed(0)
    model = transformers.Qwen3VLMoeForConditionalGeneration(config)
    with pytest.raises(TypeError, match=r"has a router loss in its text config"):
        use_fused_loss(model)
