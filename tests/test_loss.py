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
    with pytest.raises(TypeError, match="weight tensor"):
        loss_fn.set_model_output(torch.nn.ReLU())
