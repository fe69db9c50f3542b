"""`crossentropy calc`: one prediction worked out by hand; bad input is one line, status 2."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import crossentropy as ce
from crossentropy.cli import main

LN2 = math.log(2.0)


def calc_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["calc", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_logits_and_a_class_index(capsys):
    r = calc_json(capsys, "--logits", "1", "2", "3", "--target", "1")
    x = np.array([1.0, 2.0, 3.0])
    p = np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(r["probs"], p, rtol=1e-15)
    loss = math.log(np.exp(x).sum()) - 2.0  # logsumexp - x[target]
    assert r["loss_nats"] == pytest.approx(loss, rel=1e-14)
    assert r["loss_nats"] == pytest.approx(1.4076059644443804, rel=1e-14)  # as torch
    assert r["loss_bits"] == pytest.approx(loss / LN2, rel=1e-14)
    entropy = -float(np.sum(p * np.log(p)))
    assert r["entropy_nats"] == pytest.approx(entropy, rel=1e-14)
    assert r["entropy_bits"] == pytest.approx(float(ce.entropy(p, base=2)), rel=1e-14)
    assert r["kl_nats"] == pytest.approx(loss, rel=1e-14)  # KL(one-hot || p) = -log p[target]
    np.testing.assert_allclose(r["grad_logits"], p - [0.0, 1.0, 0.0], atol=1e-15)
    assert r["target_index"] == 1


def test_probs_and_a_class_index(capsys):
    r = calc_json(capsys, "--probs", "0.9", "0.1", "--target", "0")
    assert r["probs"] == [0.9, 0.1]
    assert r["loss_nats"] == pytest.approx(-math.log(0.9), rel=1e-14)
    assert r["loss_bits"] == pytest.approx(-math.log2(0.9), rel=1e-14)
    h = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert r["entropy_nats"] == pytest.approx(h, rel=1e-14)
    assert r["kl_nats"] == pytest.approx(float(ce.kl_divergence([1.0, 0.0], [0.9, 0.1])))
    # Gradient with respect to the logits log p, whose softmax is p: p - one-hot.
    np.testing.assert_allclose(r["grad_logits"], [-0.1, 0.1], atol=1e-15)


def test_a_target_distribution(capsys):
    r = calc_json(capsys, "--logits", "1", "2", "3", "--target", "0.7", "0.2", "0.1")
    x = np.array([1.0, 2.0, 3.0])
    t = np.array([0.7, 0.2, 0.1])
    p = np.exp(x) / np.exp(x).sum()
    assert r["target_index"] is None
    assert r["loss_nats"] == pytest.approx(-float(np.sum(t * np.log(p))), rel=1e-14)
    kl = float(np.sum(t * np.log(t / p)))
    assert r["kl_nats"] == pytest.approx(kl, rel=1e-13)
    assert r["kl_nats"] == pytest.approx(float(ce.kl_divergence(t, p)), rel=1e-13)
    np.testing.assert_allclose(r["grad_logits"], p - t, atol=1e-15)


def test_large_logits_stay_finite(capsys):
    r = calc_json(capsys, "--logits", "1000", "0", "--target", "1")
    assert r["loss_nats"] == 1000.0
    assert r["kl_nats"] == 1000.0
    assert r["grad_logits"] == [1.0, -1.0]


def test_text_output(capsys):
    assert main(["calc", "--logits", "1", "2", "3", "--target", "1"]) == 0
    out = capsys.readouterr().out
    assert "softmax p              [0.0900306, 0.244728, 0.665241]" in out
    assert "1.40761 nats = 2.03075 bits" in out
    assert "KL(t || p)" in out
    assert "[0.0900306, -0.755272, 0.665241]  (p - t)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--probs", "0.9", "0.2", "--target", "0"], "sum to 1.1"),
        (["--probs", "1.1", "-0.1", "--target", "0"], "entry 0 is 1.1"),
        (["--probs", "0.5", "-0.1", "0.6", "--target", "0"], "entry 1 is -0.1"),
        (["--logits", "1", "2", "--target", "2"], "class 2 is out of range for 2 classes"),
        (["--logits", "1", "2", "--target", "-1"], "class -1 is out of range"),
        (["--logits", "1", "2", "--probs", "0.5", "0.5", "--target", "0"], "exactly one of"),
        (["--target", "0"], "exactly one of"),
        (["--logits", "1", "2"], "--target is required"),
        (["--logits", "a", "2", "--target", "0"], "'a' is not a number"),
        (["--logits", "1", "inf", "--target", "0"], "'inf' is not finite"),
        (["--logits", "1", "2", "--target", "x"], "not a class index"),
        (["--logits", "1", "2", "3", "--target", "0.5", "0.5"], "needs 3 entries"),
        (["--logits", "1", "2", "--target", "0.7", "0.7"], "--target probabilities sum to 1.4"),
    ],
)
def test_bad_input_is_one_line_and_status_2(capsys, args, message):
    assert main(["calc", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("crossentropy calc: error: ")
    assert message in lines[0]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crossentropy.cli", "calc", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_subprocess_success_and_error():
    ok = _cli("--probs", "0.9", "0.1", "--target", "0", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["loss_nats"] == pytest.approx(-math.log(0.9), rel=1e-14)
    bad = _cli("--probs", "0.9", "0.2", "--target", "0")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip() == (
        "crossentropy calc: error: --probs sum to 1.1, expected 1 (within 0.1)"
    )


def test_negative_numbers_in_exponent_form_are_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calc", "--logits", "1", "-2e3", "-1.5E-1", "--target", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["values"] == [1.0, -2000.0, -0.15]


def test_the_identity_adds_up_on_screen(capsys):
    """H(t, p) = H(t) + KL(t || p), each printed, and the gradient of p = t is exactly 0."""
    r = calc_json(capsys, "--logits", "1", "2", "3", "--target", "0.7", "0.2", "0.1")
    t = np.array([0.7, 0.2, 0.1])
    assert r["target_entropy_nats"] == pytest.approx(-float(np.sum(t * np.log(t))), rel=1e-14)
    assert r["loss_nats"] == pytest.approx(r["target_entropy_nats"] + r["kl_nats"], rel=1e-14)
    assert main(["calc", "--logits", "1", "2", "3", "--target", "0.7", "0.2", "0.1"]) == 0
    text = capsys.readouterr().out
    assert "entropy of t, H(t)     0.801819 nats" in text
    assert "2.00761 = 0.801819 + 1.20579." in text
    r = calc_json(capsys, "--probs", "0.7", "0.2", "0.1", "--target", "0.7", "0.2", "0.1")
    assert r["grad_logits"] == [0.0, 0.0, 0.0]
    assert r["kl_nats"] == 0.0


def test_probabilities_sum_to_one_within_the_precision_typed(capsys):
    r = calc_json(capsys, "--probs", "0.3333", "0.3333", "0.3333", "--target", "0")
    assert r["renormalized"] is True
    assert r["probs"] == pytest.approx([1 / 3] * 3, rel=1e-15)
    assert r["loss_nats"] == pytest.approx(math.log(3), rel=1e-14)
    assert main(["calc", "--probs", "0.3333", "0.3333", "0.3333", "--target", "0"]) == 0
    text = capsys.readouterr().out
    assert "divided by their" in text
    assert "d loss / d z, z = log p" in text  # the gradient named for what was given
    assert main(["calc", "--probs", "0.33", "0.33", "0.31", "--target", "0"]) == 2  # 0.97
    assert "expected 1 (within 0.015)" in capsys.readouterr().err
    r = calc_json(capsys, "--probs", "0.9", "0.1", "--target", "0")
    assert r["renormalized"] is False
