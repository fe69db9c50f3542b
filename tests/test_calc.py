"""`crossentropy calc`: one prediction worked out by hand; bad input is one line, status 2."""

from __future__ import annotations

import json
import math
import re
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
        ([], "give --logits or --probs, and --target"),
        (["--logits", "a", "2", "--target", "0"], "'a' is not a number"),
        (["--logits", "1", "inf", "--target", "0"], "'inf' is not finite"),
        (["--logits", "-nan", "1", "--target", "0"], "'-nan' is not finite"),
        (["--logits", "1", "-NaN", "--target", "0"], "'-NaN' is not finite"),
        (["--logits", "1", "2", "--target", "x"], "not a class index"),
        (["--logits", "1", "2", "3", "--target", "0.5", "0.5"], "needs 3 entries"),
        (["--logits", "1", "2", "--target", "0.7", "0.7"], "--target probabilities sum to 1.4"),
        # whole numbers are exact: no rounding to forgive, and a zero sum is refused
        (["--probs", "0", "0", "0", "--target", "0"], "--probs sum to 0, expected 1"),
        (["--logits", "1", "2", "3", "--target", "0", "0", "0"], "probabilities sum to 0,"),
        (["--probs", "1", "1", "0", "--target", "0"], "--probs sum to 2, expected 1"),
        # numbers as typed on a command line: not Python's 1_000 or another script's digits
        (["--logits", "1_000", "2", "--target", "0"], "'1_000' is not a number"),
        (["--logits", "1", "\u0662", "--target", "0"], "is not a number"),
        (["--logits", "1", "2", "--target", "\u0661"], "is not a class index"),
        (["--logits", "1", "2", "--target", "1_0"], "'1_0' is not a class index"),
        (["--logits", "1", "2", "3", "--target", "1", "1", "0"], "probabilities sum to 2,"),
        (["--logits", "1", "2", "3", "--target", "1", "0", "1"], "2 labels at once, one sigm"),
        (["--probs", ".2", ".3", ".5", "--target", "1", "1", "1"], "sum to 3, expected 1 (for"),
        # a value out of range as typed (at 6 digits, 1.0000000001 read as 1 "outside [0, 1]")
        (["--probs", "1.0000000001", "--target", "1"], "entry 0 is 1.0000000001, expected"),
        (["--probs", "1.0000000001", "0", "--target", "0"], "entry 0 is 1.0000000001, expected"),
        # forms that are not numbers here, with the one to write instead
        (["--probs", "70%", "30%", "--target", "0"], "'70%' is not a number (write a perc"),
        (["--probs", "1/4", "3/4", "--target", "0"], "fraction as a decimal: 1/4 is 0.25)"),
        (["--logits", "\u22121", "2", "--target", "0"], "minus sign as ASCII '-')"),
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
        "crossentropy calc: error: --probs sum to 1.1, expected 1: divided by the sum, entry 0 "
        "(0.9) would be 0.8182, not 0.9 rounded as typed"
    )


def test_negative_numbers_in_exponent_form_are_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calc", "--logits", "1", "-2e3", "-1.5E-1", "--target", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["values"] == [1.0, -2000.0, -0.15]


def test_sigmoid_entropy_keeps_its_digits_where_the_sigmoid_rounds_to_1(capsys) -> None:
    """H(sigmoid(z)) from the smaller of sigmoid(z) and sigmoid(-z): sigmoid(40) is 1.0 in
    float64, and H of it 0; the entropy is 2 sigmoid(-40) (40 + softplus(-40)) + ... ."""
    r = calc_json(capsys, "--logits", "40", "-40", "--target", "0.3", "0.6", "--multilabel")
    s = 1 / (1 + math.exp(40))  # sigmoid(-40), to the last digit
    each = s * (40 + math.log1p(math.exp(-40))) + (1 - s) * math.log1p(math.exp(-40))
    assert r["entropy_nats"] == pytest.approx(2 * each, rel=1e-14)
    r = calc_json(capsys, "--probs", "0.999", "--target", "1", "--multilabel")
    assert r["entropy_nats"] == pytest.approx(-0.999 * math.log(0.999) - 0.001 * math.log(0.001))


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


@pytest.mark.parametrize(
    "args",
    [
        # the target is the logits' softmax to the last bit: H(t, p) - H(t) rounds to -2.2e-16
        [
            "--logits",
            "2",
            "1",
            "-0.5",
            "--target",
            "0.6896720861245035",
            "0.2537161816350252",
            "0.05661173224047128",
        ],
        ["--logits", *["0"] * 10, "--target", *["0.1"] * 10],  # rounds to +4.4e-16
        ["--logits", "-3.25", "--target", "0.03732688734412946"],  # binary: -5.6e-17
    ],
)
def test_a_divergence_within_rounding_of_0_is_0(capsys, args):
    """KL(t || p) >= 0, and 0 when p = t: the rounding of the difference H(t, p) - H(t), of
    either sign, is shown as 0."""
    r = calc_json(capsys, *args)
    assert r["kl_nats"] == 0.0
    assert main(["calc", *args]) == 0
    assert re.search(r"KL\(t \|\| p\) +0 nats = 0 bits", capsys.readouterr().out)


@pytest.mark.parametrize(
    ("args", "loss"),
    [
        (["--logits", "40", "--target", "1"], 4.248354255291589e-18),
        (["--logits", "0", "40", "--target", "1"], None),
        (["--probs", "0.9999999999999999", "1.1e-16", "--target", "0"], 1.1102230246251565e-16),
    ],
)
def test_a_tiny_divergence_from_a_hard_target_is_the_loss(capsys, args, loss):
    """With H(t) = 0 nothing cancels: KL(t || p) is the loss itself, however small."""
    r = calc_json(capsys, *args)
    assert r["target_entropy_nats"] == 0.0
    assert r["kl_nats"] == r["loss_nats"]
    if loss is not None:
        assert r["loss_nats"] == pytest.approx(loss, rel=1e-12)


def test_a_tiny_probability_of_a_class_the_target_leaves_out_is_its_gradient(capsys):
    """Where t = 0 the gradient entry is p itself, exact however small (it was shown as 0
    beside the same p); where t > 0 rounding of p - t is still 0."""
    tiny = math.exp(-40) / (1 + math.exp(-40))
    r = calc_json(capsys, "--logits", "40", "0", "--target", "0")
    assert r["grad_logits"][0] == 0.0
    assert r["grad_logits"][1] == pytest.approx(tiny, rel=1e-14)
    assert r["grad_logits"][1] == r["probs"][1]
    r = calc_json(capsys, "--logits", "-40", "--target", "0")  # binary: sigma(-40)
    assert r["grad_logits"] == [pytest.approx(tiny, rel=1e-14)]


def test_probabilities_sum_to_one_within_the_precision_typed(capsys):
    r = calc_json(capsys, "--probs", "0.3333", "0.3333", "0.3333", "--target", "0")
    assert r["renormalized"] is True
    assert r["probs"] == pytest.approx([1 / 3] * 3, rel=1e-15)
    assert r["loss_nats"] == pytest.approx(math.log(3), rel=1e-14)
    assert main(["calc", "--probs", "0.3333", "0.3333", "0.3333", "--target", "0"]) == 0
    text = capsys.readouterr().out
    assert "The probabilities summed to 0.9999, 1 only to the precision typed:" in text
    assert "divided by their" in text
    assert "d loss / d z, z = log p" in text  # the gradient named for what was given
    assert main(["calc", "--probs", "0.33", "0.33", "0.31", "--target", "0"]) == 2  # 0.97
    assert "entry 0 (0.33) would be 0.3402, not 0.33 rounded as typed" in capsys.readouterr().err
    # values that, divided by their sum, still round to what was typed (0 stays exact)
    r = calc_json(capsys, "--probs", "0", "0.33", "0.33", "0.33", "--target", "1")
    assert r["probs"] == pytest.approx([0, 1 / 3, 1 / 3, 1 / 3], rel=1e-15)
    r = calc_json(capsys, "--probs", "0.4", "0.4", "0.3", "--target", "0")  # 0.36, 0.36, 0.27
    assert r["loss_nats"] == pytest.approx(math.log(1.1 / 0.4), rel=1e-14)
    # sums that the rounding of each value could reach, but not by dividing by the sum
    for probs in (["0.1"] * 10 + ["0.5"], ["0.1"] * 20, ["0.25", "0.25", "0.25", "0.3"]):
        assert main(["calc", "--probs", *probs, "--target", "0"]) == 2
        assert "rounded as typed" in capsys.readouterr().err
    r = calc_json(capsys, "--probs", "0.9", "0.1", "--target", "0")
    assert r["renormalized"] is False
    assert r["target_renormalized"] is False
    # a target distribution divided by its sum is flagged as the probabilities are
    r = calc_json(capsys, "--logits", "1", "2", "3", "--target", "0.333", "0.333", "0.333")
    assert r["target_renormalized"] is True
    assert r["target"] == pytest.approx([1 / 3] * 3, rel=1e-15)
    assert main(["calc", "--logits", "1", "2", "3", "--target", "0.333", "0.333", "0.333"]) == 0
    assert "The target summed to 1 only to the precision typed" in capsys.readouterr().out


def test_one_logit_is_the_binary_sigmoid_mode_like_torch(capsys):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for z, t in [(2.0, 1.0), (1.0, 0.0), (-3.5, 0.25), (40.0, 0.0)]:
        r = calc_json(capsys, "--logits", str(z), "--target", str(t))
        assert r["mode"] == "binary"
        zt = torch.tensor([z], dtype=torch.float64, requires_grad=True)
        ref = F.binary_cross_entropy_with_logits(zt, torch.tensor([t], dtype=torch.float64))
        ref.backward()
        assert r["loss_nats"] == pytest.approx(ref.item(), rel=1e-14)
        assert r["grad_logits"] == pytest.approx(zt.grad.tolist(), rel=1e-14, abs=1e-300)
        p = 1 / (1 + math.exp(-z))
        assert r["probs"] == pytest.approx([p], rel=1e-15)
        # both branches, as typed: -t log p and -(1 - t) log(1 - p)
        pos = t * math.log1p(math.exp(-z))
        neg = (1 - t) * (z + math.log1p(math.exp(-z)))
        assert r["positive_branch_nats"] == pytest.approx([pos], rel=1e-13, abs=0)
        assert r["negative_branch_nats"] == pytest.approx([neg], rel=1e-13, abs=0)
        h_t = float(ce.binary_entropy(t))
        assert r["target_entropy_nats"] == pytest.approx(h_t, abs=1e-15)
        assert r["loss_nats"] == pytest.approx(h_t + r["kl_nats"], rel=1e-14)
        assert r["entropy_nats"] == pytest.approx(float(ce.binary_entropy(p)), rel=1e-12)
    # once a silent 0 (a softmax over one class): now the binary loss log(1 + e)
    r = calc_json(capsys, "--logits", "1", "--target", "0")
    assert r["loss_nats"] == pytest.approx(math.log1p(math.e), rel=1e-15)


def test_one_probability_and_a_soft_label(capsys):
    torch = pytest.importorskip("torch")
    r = calc_json(capsys, "--probs", "0.8", "--target", "0.3")
    ref = torch.nn.functional.binary_cross_entropy(
        torch.tensor([0.8], dtype=torch.float64), torch.tensor([0.3], dtype=torch.float64)
    )
    assert r["loss_nats"] == pytest.approx(ref.item(), rel=1e-14)
    assert r["positive_branch_nats"] == pytest.approx([-0.3 * math.log(0.8)], rel=1e-14)
    assert r["negative_branch_nats"] == pytest.approx([-0.7 * math.log(0.2)], rel=1e-14)
    kl = 0.3 * math.log(0.3 / 0.8) + 0.7 * math.log(0.7 / 0.2)
    assert r["kl_nats"] == pytest.approx(kl, rel=1e-13)
    assert r["loss_nats"] == pytest.approx(r["target_entropy_nats"] + kl, rel=1e-14)
    # the gradient with respect to the logit whose sigmoid is p: p - t
    assert r["grad_logits"] == pytest.approx([0.5], rel=1e-14)
    assert main(["calc", "--probs", "0.8", "--target", "0.3"]) == 0
    text = capsys.readouterr().out
    assert "t = 1 branch, -t log p              0.0669431" in text
    assert "t = 0 branch, -(1 - t) log(1 - p)   1.12661" in text
    assert "d loss / d z, z = log(p / (1 - p))  0.5  (p - t)" in text
    assert "1.19355 = 0.610864 + 0.582685." in text


def test_multilabel_sums_the_classes_binary_losses_like_torch(capsys):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    z, t = [2.0, -1.0, 0.5], [1.0, 0.0, 1.0]
    args = ["--logits", *map(str, z), "--target", *map(str, t), "--multilabel"]
    r = calc_json(capsys, *args)
    assert r["mode"] == "multilabel"
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    tt = torch.tensor(t, dtype=torch.float64)
    total = F.binary_cross_entropy_with_logits(zt, tt, reduction="sum")
    total.backward()
    assert r["loss_nats"] == pytest.approx(total.item(), rel=1e-14)
    per_class = F.binary_cross_entropy_with_logits(zt, tt, reduction="none").tolist()
    assert r["loss_per_class_nats"] == pytest.approx(per_class, rel=1e-14)
    mean = F.binary_cross_entropy_with_logits(zt, tt).item()  # torch's default: the mean
    assert r["mean_over_classes_nats"] == pytest.approx(mean, rel=1e-14)
    assert r["grad_logits"] == pytest.approx(zt.grad.tolist(), rel=1e-14)
    sigmoids = [1 / (1 + math.exp(-v)) for v in z]
    assert r["probs"] == pytest.approx(sigmoids, rel=1e-15)  # independent: they sum to 1.77
    assert main(["calc", *args]) == 0
    text = capsys.readouterr().out
    assert "BCE per class                      [0.126928, 0.313262, 0.474077]" in text
    assert "sum over classes                   0.914267 nats" in text
    assert "averages over them instead: 0.304756." in text
    r = calc_json(capsys, "--probs", "0.9", "0.2", "--target", "1", "0", "--multilabel")
    assert r["loss_nats"] == pytest.approx(-math.log(0.9) - math.log(0.8), rel=1e-14)
    assert r["grad_logits"] == pytest.approx([-0.1, 0.2], rel=1e-12)
    # probabilities: PyTorch's module is BCELoss, whose log is clamped at -100
    args = ["--probs", "0", "0.5", "--target", "1", "0", "--multilabel"]
    r = calc_json(capsys, *args)
    want = F.binary_cross_entropy(torch.tensor([0.0, 0.5]), torch.tensor([1.0, 0.0])).item()
    assert r["loss_nats"] == r["kl_nats"] == "inf"  # a certain miss (JSON has no inf)
    assert r["mean_over_classes_nats"] == pytest.approx(want, rel=1e-6)  # 50.3466
    assert main(["calc", *args]) == 0
    assert "BCELoss (its log clamped at -100) averages over them instead: 50.3466." in (
        capsys.readouterr().out.replace("\n", " ")
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--logits", "2", "--target", "2"], "entry 0 is 2, expected a label or probability"),
        (["--logits", "2", "--target", "0", "1"], "binary needs 1 entry"),
        (["--logits", "2", "1", "--target", "1", "--multilabel"], "multi-label needs 2 entries"),
        (["--probs", "1.2", "--target", "1"], "--probs: entry 0 is 1.2"),
        (["--probs", "0.5", "-0.5", "--target", "1", "0", "--multilabel"], "entry 1 is -0.5"),
        (["--logits", "2", "--target", "a"], "'a' is not a number"),
    ],
)
def test_bad_sigmoid_input_is_one_line_and_status_2(capsys, args, message):
    assert main(["calc", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert message in captured.err


@pytest.mark.parametrize(
    "args",
    [
        ["--probs", "0", "--target", "1"],
        ["--probs", "1", "--target", "1"],
        ["--probs", "0", "--target", "0"],
        ["--probs", "0", "1", "--target", "1", "0", "--multilabel"],
        ["--probs", "0", "1", "--target", "1", "0"],
    ],
)
def test_certain_predictions_give_strict_json_and_no_warnings(args):
    """p in {0, 1}: an infinite loss is the string "inf" (strict JSON has no Infinity), a
    branch the label switches off is 0 (not 0 * inf), and nothing is printed on stderr."""
    out = _cli(*args, "--json")
    assert out.returncode == 0
    assert out.stderr == ""

    def refuse(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    r = json.loads(out.stdout, parse_constant=refuse)
    assert r["loss_nats"] in ("inf", 0.0)
    if r["mode"] != "softmax":
        for value in r["positive_branch_nats"] + r["negative_branch_nats"]:
            assert value == "inf" or value >= 0.0
            assert str(value) != "-0.0"


def test_one_bit_is_singular(capsys):
    assert main(["calc", "--probs", "0.5", "0.5", "--target", "0"]) == 0
    out = capsys.readouterr().out
    assert "0.693147 nats = 1 bit" in out
    assert "= 1 bits" not in out


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--logits", "1", "2", "3", "--logits", "4", "--target", "1"], "--logits"),
        (["--probs", "1", "--probs", "1", "--target", "1"], "--probs"),
        (["--logits", "1", "2", "--target", "0.5", "0.5", "--target", "1"], "--target"),
    ],
)
def test_an_option_given_twice_is_refused(capsys, args, option):
    """argparse would keep the second values and drop the first without a word."""
    with pytest.raises(SystemExit) as exited:
        main(["calc", *args])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"crossentropy calc: error: argument {option}: given twice: give all its values once "
        "(see crossentropy calc --help)"
    ]


def test_an_unknown_option_is_told_by_the_command(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["calc", "--logits", "1", "2", "--target", "0", "--foo"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "crossentropy calc: error: unrecognized arguments: --foo (see crossentropy calc --help)"
    ]


def test_an_unknown_option_before_the_command_is_told_by_the_main_parser(capsys):
    with pytest.raises(SystemExit):
        main(["--bogus", "calc", "--logits", "1", "2", "--target", "0"])
    assert capsys.readouterr().err.startswith(
        "crossentropy: error: unrecognized arguments: --bogus"
    )


def test_minus_zero_is_shown_as_zero(capsys):
    """``-0`` typed is 0 on screen and in JSON (not ``-0``)."""
    assert main(["calc", "--logits", "-0", "0", "--target", "1"]) == 0
    assert "[0, 0]" in capsys.readouterr().out
    out = calc_json(capsys, "--probs", "0.5", "0.5", "--target", "-0", "1")
    assert [math.copysign(1.0, v) for v in out["target"]] == [1.0, 1.0]


def test_a_sum_off_one_by_binary_rounding_alone_is_no_renormalisation(capsys):
    """0.01 + 0.29 + 0.7 is 0.9999999999999999 in binary: the values are used as typed, with
    no note about the precision typed."""
    for args in (
        ["--probs", "0.01", "0.29", "0.7", "--target", "2"],
        ["--logits", "1", "2", "3", "--target", "0.01", "0.29", "0.7"],
    ):
        r = calc_json(capsys, *args)
        assert r["renormalized"] is False
        assert r["target_renormalized"] is False
        assert main(["calc", *args]) == 0
        assert "precision typed" not in capsys.readouterr().out
    r = calc_json(capsys, "--probs", "0.01", "0.29", "0.7", "--target", "2")
    assert r["probs"] == [0.01, 0.29, 0.7]
    assert r["loss_nats"] == pytest.approx(-math.log(0.7), rel=1e-15)


def test_a_probability_that_underflows_to_zero_is_refused(capsys):
    for args in (["--probs", "1e-400", "1"], ["--probs", "1e-400"], ["--probs", "2E-999", "1"]):
        assert main(["calc", *args, "--target", "0"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert "underflows to 0 in float64" in err, err
    # a target's probabilities too, in every mode (1e-400 would be read as a 0)
    for args in (
        ["--probs", "0.5", "0.5", "--target", "1e-400", "1"],
        ["--probs", "0.5", "--target", "1e-400"],
        ["--probs", "0.5", "0.5", "--multilabel", "--target", "1e-400", "1"],
    ):
        assert main(["calc", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert "--target: '1e-400' underflows to 0 in float64" in err, err
    # the smallest subnormal and a written zero are numbers
    r = calc_json(capsys, "--probs", "4.9e-324", "1", "--target", "0")
    assert r["loss_nats"] == pytest.approx(744.44007, rel=1e-7)
    assert calc_json(capsys, "--probs", "0e-5", "1", "--target", "1")["loss_nats"] == 0.0
    # a logit that underflows is 0 to the result (log(2) for two equal logits)
    r = calc_json(capsys, "--logits", "1e-400", "0", "--target", "0")
    assert r["loss_nats"] == pytest.approx(math.log(2), rel=1e-15)
    # a sum off 1 by more than the values' own rounding is still divided by the sum
    r = calc_json(capsys, "--probs", "0.999999999999999", "0", "--target", "0")
    assert r["renormalized"] is True


def test_an_infinite_loss_is_explained(capsys):
    """A probability of 0 where the target has mass: -log 0 = inf, and scikit-learn's clip."""
    for args in (
        ["--probs", "1", "0", "--target", "1"],
        ["--probs", "0", "--target", "1"],
        ["--probs", "0", "1", "--multilabel", "--target", "1", "1"],
    ):
        assert main(["calc", *args]) == 0
        out = capsys.readouterr().out
        assert "The loss is infinite: the target puts mass where p is 0" in out, out
        assert f"-log eps = {-math.log(2.0**-52):.4g} nats" in out
    for args in (
        ["--probs", "1", "0", "--target", "0"],
        ["--logits", "1000", "0", "--target", "1"],
        ["--logits", "1e308", "-1e308", "--target", "1"],  # inf by overflow: no p of 0
    ):
        assert main(["calc", *args]) == 0
        assert "infinite" not in capsys.readouterr().out
