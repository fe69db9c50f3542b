"""crossentropy.integrations._loss.OutputProjectionLoss: a trainer-style loss over the fused op."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import crossentropy as ce  # noqa: E402
from crossentropy.integrations import OutputProjectionLoss  # noqa: E402


def test_equals_the_cross_entropy_of_the_projection_with_its_gradients():
    torch.manual_seed(0)
    head = torch.nn.Linear(6, 13, bias=True, dtype=torch.float64)
    hidden = torch.randn(2, 5, 6, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 13, (2, 5))
    targets[0, :2] = -100
    loss_fn = OutputProjectionLoss(label_smoothing=0.1, z_loss=1e-3)
    loss_fn.set_model_output(head)
    ours = loss_fn(hidden, targets)
    grads = torch.autograd.grad(ours, [hidden, head.weight, head.bias])
    ref = ce.cross_entropy(
        head(hidden).flatten(0, 1),
        targets.flatten(),
        label_smoothing=0.1,
        z_loss=1e-3,
        mean_divisor="count",
    )
    ref_grads = torch.autograd.grad(ref, [hidden, head.weight, head.bias])
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert list(loss_fn.state_dict()) == []  # the projection stays the model's
    per_items = loss_fn(hidden, targets, num_items_in_batch=20)
    sum_ref = OutputProjectionLoss(label_smoothing=0.1, z_loss=1e-3, reduction="sum")
    sum_ref.set_model_output(head)
    torch.testing.assert_close(per_items, sum_ref(hidden, targets) / 20)


def test_class_weights_are_a_buffer_and_weigh_the_mean_as_torch():
    torch.manual_seed(1)
    head = torch.nn.Linear(6, 9, bias=False, dtype=torch.float64)
    hidden = torch.randn(10, 6, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 9, (10,))
    cw = torch.rand(9, dtype=torch.float64) + 0.5
    loss_fn = OutputProjectionLoss(weight=cw, label_smoothing=0.1)
    loss_fn.set_model_output(head)
    ref = torch.nn.functional.cross_entropy(head(hidden), targets, weight=cw, label_smoothing=0.1)
    torch.testing.assert_close(loss_fn(hidden, targets), ref, rtol=1e-12, atol=1e-12)
    assert list(loss_fn.state_dict()) == ["weight"]


def test_misuse_is_a_clear_error():
    with pytest.raises(TypeError, match="unknown keywords"):
        OutputProjectionLoss(chunks=3)
    # options of other losses would be ignored by the fused op: refused, not dropped
    for bad in ({"gamma": 2.0}, {"from_logits": False}, {"mean_divisor": "count"}, {"clip": 1e-7}):
        with pytest.raises(TypeError, match="unknown keywords"):
            OutputProjectionLoss(**bad)
    with pytest.raises(TypeError, match="weight must be a tensor"):
        OutputProjectionLoss(weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="label_smoothing"):
        OutputProjectionLoss(label_smoothing=2.0)
    loss_fn = OutputProjectionLoss()
    with pytest.raises(RuntimeError, match="set_model_output"):
        loss_fn(torch.randn(2, 3), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match=r"weight tensor .* got ReLU"):
        loss_fn.set_model_output(torch.nn.ReLU())


class _Decoder(torch.nn.Module):
    """A model of torchtune's shape: ``output`` (a linear layer, or a ``TiedLinear`` over the
    token embeddings) applied in its forward unless ``skip_output_layer`` is set."""

    def __init__(self, tied: bool) -> None:
        super().__init__()
        self.tok_embeddings = torch.nn.Embedding(11, 4, dtype=torch.float64)
        self.body = torch.nn.Linear(4, 4, dtype=torch.float64)
        self.skip_output_layer = False
        self.output = (
            _TiedLinear(self.tok_embeddings)
            if tied
            else torch.nn.Linear(4, 11, bias=False, dtype=torch.float64)
        )

    def forward(self, tokens):
        hidden = torch.tanh(self.body(self.tok_embeddings(tokens)))
        return hidden if self.skip_output_layer else self.output(hidden)


class _TiedLinear:
    """torchtune's ``TiedLinear``: not a module; the embeddings' weight as the projection."""

    def __init__(self, tied_module):
        self.tied_module = tied_module

    def __call__(self, x):
        return torch.nn.functional.linear(x, self.tied_module.weight)


@pytest.mark.parametrize("tied", [False, True], ids=["linear", "tied"])
def test_set_model_output_takes_a_torchtune_model_as_its_recipes_pass_it(tied):
    """torchtune's recipes call ``loss_fn.set_model_output(model)``: the loss takes
    ``model.output`` (tied or not) and sets ``model.skip_output_layer``, so that the model
    returns the hidden states; the loss and gradients are the logits' cross-entropy."""
    torch.manual_seed(2)
    model = _Decoder(tied)
    tokens, targets = torch.randint(0, 11, (2, 5)), torch.randint(0, 11, (2, 5))
    targets[1, :2] = -100
    ref = torch.nn.functional.cross_entropy(model(tokens).flatten(0, 1), targets.flatten())
    ref_grads = torch.autograd.grad(ref, list(model.parameters()))
    loss_fn = OutputProjectionLoss()
    loss_fn.set_model_output(model)
    assert model.skip_output_layer is True
    loss = loss_fn(model(tokens), targets)
    torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_a_tied_projection_reads_the_embeddings_current_weight():
    """A ``TiedLinear`` that kept a ``weight`` of its own (an older torchtune's) goes stale
    once the embedding's parameter is replaced (``load_state_dict(assign=True)``, FSDP): the
    loss reads the tied module's weight at each call."""
    torch.manual_seed(3)
    model = _Decoder(tied=True)
    model.output.weight = model.tok_embeddings.weight  # the older TiedLinear's own reference
    loss_fn = OutputProjectionLoss()
    loss_fn.set_model_output(model)
    fresh = torch.randn(11, 4, dtype=torch.float64)
    model.tok_embeddings.weight = torch.nn.Parameter(fresh)
    hidden, targets = model(torch.randint(0, 11, (2, 5))), torch.randint(0, 11, (2, 5))
    ref = torch.nn.functional.cross_entropy((hidden @ fresh.T).flatten(0, 1), targets.flatten())
    torch.testing.assert_close(loss_fn(hidden, targets), ref, rtol=1e-12, atol=1e-12)


def test_an_adapter_around_the_projection_is_refused_not_left_out_of_the_loss():
    """A module whose forward adds to x W^T (a LoRA adapter, its ``weight`` the base layer's):
    refused when set, and at a call when it was wrapped after."""

    class Adapted(torch.nn.Module):
        def __init__(self, base: torch.nn.Linear) -> None:
            super().__init__()
            self.base_layer = base
            self.lora_B = torch.nn.Parameter(torch.zeros(base.out_features, 2))

        @property
        def weight(self) -> torch.Tensor:
            return self.base_layer.weight

        @property
        def bias(self) -> torch.Tensor:
            return self.base_layer.bias

    head = torch.nn.Linear(4, 7)
    loss_fn = OutputProjectionLoss()
    with pytest.raises(TypeError, match=r"output projection \(Adapted\) holds .*\(lora_B\)"):
        loss_fn.set_model_output(Adapted(head))
    holder = torch.nn.Module()
    holder.output = head  # a model whose output is wrapped later
    loss_fn.set_model_output(holder)
    assert loss_fn(torch.randn(3, 4), torch.tensor([0, 1, 6])).ndim == 0
    wrapped = Adapted(head)
    object.__setattr__(loss_fn, "output", wrapped)
    with pytest.raises(TypeError, match="merge_and_unload"):
        loss_fn(torch.randn(3, 4), torch.tensor([0, 1, 6]))


def test_a_parametrized_projection_is_taken_with_its_parametrizations_gradients():
    """weight_norm's parameters are the weight's own (reading ``weight`` computes it), not an
    adapter: taken, with the gradients of the loss of the projection's own forward."""
    torch.manual_seed(1)
    head = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(4, 7, dtype=torch.float64))
    hidden = torch.randn(5, 4, dtype=torch.float64)
    targets = torch.tensor([0, 6, 2, 3, 1])
    loss_fn = OutputProjectionLoss()
    loss_fn.set_model_output(head)
    ours = loss_fn(hidden, targets)
    params = list(head.parameters())
    ref = torch.nn.functional.cross_entropy(head(hidden), targets)
    for a, b in zip(
        torch.autograd.grad(ours, params), torch.autograd.grad(ref, params), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
