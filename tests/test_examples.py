"""The tutorials' worked examples, as the library computes them and as `make demo` prints them."""

from __future__ import annotations

import math

import numpy as np
import pytest

import crossentropy as ce
from crossentropy import information
from crossentropy.cli._examples import P, Q, format_table, worked_examples


def test_surprise_of_likely_and_unlikely_events():
    assert round(float(ce.self_information(0.9)), 3) == 0.105
    assert round(float(ce.self_information(0.1)), 2) == 2.30


def test_softmax_of_one_two_three():
    np.testing.assert_allclose(ce.softmax([1.0, 2.0, 3.0]), [0.0900, 0.2447, 0.6652], atol=5e-5)


def test_pytorch_cross_entropy_example():
    torch = pytest.importorskip("torch")
    x = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    ours = float(ce.cross_entropy(x, [1, 2]))
    theirs = float(torch.nn.CrossEntropyLoss()(torch.tensor(x), torch.tensor([1, 2])))
    assert round(ours, 4) == 0.9076
    assert ours == pytest.approx(theirs, rel=1e-6)


def test_sklearn_log_loss_example():
    log_loss = pytest.importorskip("sklearn.metrics").log_loss
    ours = float(ce.cross_entropy([[0.9, 0.1], [0.5, 0.5]], [0, 1], from_logits=False))
    assert ours == pytest.approx(log_loss([0, 1], [[0.9, 0.1], [0.5, 0.5]]), rel=1e-12)
    assert ours == pytest.approx((-math.log(0.9) - math.log(0.5)) / 2, rel=1e-12)


def test_fair_coin_is_one_bit():
    assert float(ce.binary_entropy(0.5, base=2)) == pytest.approx(1.0, abs=1e-15)


def test_cross_entropy_is_entropy_plus_kl_on_a_concrete_pair():
    h_pq = float(information.cross_entropy(P, Q))
    assert h_pq == pytest.approx(float(ce.entropy(P)) + float(ce.kl_divergence(P, Q)), rel=1e-14)
    assert h_pq == pytest.approx(-sum(p * math.log(q) for p, q in zip(P, Q, strict=True)))


def test_demo_table_holds_every_example_in_nats_and_bits():
    examples = worked_examples()
    by_call = {ex.call: ex for ex in examples}
    ce_row = by_call["ce.cross_entropy([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [1, 2])"]
    assert ce_row.nats == pytest.approx(0.9076059644443804, rel=1e-12)
    assert ce_row.bits == pytest.approx(0.9076059644443804 / math.log(2), rel=1e-12)
    for ex in examples:
        if ex.nats is not None:
            assert ex.bits == pytest.approx(ex.nats / math.log(2), rel=1e-12)
    table = format_table(examples)
    for needed in ("0.1054", "2.3026", "0.0900, 0.2447, 0.6652", "0.9076", "1.0000"):
        assert needed in table


def test_torch_module_and_functional_agree_with_f32_recorded_value():
    # torch 2.13 float32: F.cross_entropy on the example gives 0.9076058864593506.
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torch.nn.functional")
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    out = ce.cross_entropy(x, torch.tensor([1, 2]))
    assert out.dtype == torch.float32
    assert float(out) == pytest.approx(float(F.cross_entropy(x, torch.tensor([1, 2]))), abs=0)
