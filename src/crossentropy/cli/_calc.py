"""``crossentropy calc``: cross-entropy of one prediction, by hand, in nats and bits.

::

    crossentropy calc --logits 1 2 3 --target 1
    crossentropy calc --probs 0.9 0.1 --target 0
    crossentropy calc --logits 1 2 3 --target 0.7 0.2 0.1     # a target distribution
    crossentropy calc --logits 2 --target 1                   # one logit: sigmoid, binary CE
    crossentropy calc --logits 2 -1 0.5 --target 1 0 1 --multilabel

Three modes, as in the tutorials:

* **softmax** (several values): prints the prediction's probabilities (the softmax, for
  logits), the loss :math:`H(t, p) = -\\sum_c t_c \\log p_c` in nats and bits, the entropy
  :math:`H(t)` of the target and the divergence :math:`\\mathrm{KL}(t \\,\\|\\, p) = \\sum_c t_c
  \\log(t_c / p_c)` from the target ``t`` to the prediction ``p`` (the direction cross-entropy
  minimises; it equals the loss for a one-hot target, since :math:`H(t) = 0`), so that
  :math:`H(t, p) = H(t) + \\mathrm{KL}(t \\,\\|\\, p)` adds up on screen, the entropy
  :math:`H(p)` of the prediction, and the gradient :math:`p - t`. For ``--probs`` the gradient
  is with respect to :math:`z = \\log p`, the logits whose softmax is ``p``, and is labelled
  so. Probabilities need to sum to 1 only to the precision typed (``0.3333 0.3333 0.3333``):
  they are then divided by their sum, with a note, and each must still round to the value as
  typed.
* **binary** (one value): :math:`p = \\sigma(z)` for a logit, the target a label or a
  probability :math:`t \\in [0, 1]`, and the binary cross-entropy
  :math:`-[t \\log p + (1 - t) \\log(1 - p)]` with both branches shown.
* **multi-label** (``--multilabel``): one independent sigmoid per class, the binary
  cross-entropy of each class, and the loss as their sum (the tutorials' convention; PyTorch's
  default mean over the classes is printed beside it).

In the sigmoid modes the entropies and the divergence are those of the Bernoulli variables,
summed over the classes, and the gradient is :math:`p - t` with respect to the logit
:math:`z = \\log(p / (1 - p))` (given, or computed from ``--probs``). For logits the divergence
is :math:`H(t, p) - H(t)` (finite where the probabilities underflow to 0); for probabilities
``kl_divergence``. Gradient entries of a nonzero target and a divergence within rounding of 0
are printed as 0 (where the target is 0 the entry is ``p`` itself, however small).

Every number comes from the library (``softmax``, ``sigmoid``, ``log_sigmoid``,
``cross_entropy``, ``binary_cross_entropy(_with_logits)``, ``entropy``, ``binary_entropy``,
``kl_divergence``, ``grad``); bits are nats divided by :math:`\\ln 2`. Bad input exits with
status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from typing import Any

from crossentropy.cli._numbers import typed_float, typed_int

__all__ = ["CalcError", "add_calc_parser", "calc", "calc_command", "format_calc"]

#: How far a probability vector's sum may stray from 1 whatever was typed (float rounding:
#: ``0.1 0.2 0.7`` sums to 0.9999999999999999).
SUM_TOLERANCE = 1e-6


def _typed_rounding(typed: list[str]) -> list[float]:
    """Half a unit in the last typed decimal of each value: how far the value it stands for
    may be from it (``0.33`` is anything in [0.325, 0.335]). A whole number typed without a
    point or exponent (``0``, ``1``) is exact."""
    out = []
    for text in typed:
        mantissa, _, exponent = text.lower().partition("e")
        if "." not in mantissa and not exponent:
            out.append(0.0)
            continue
        decimals = len(mantissa.partition(".")[2])
        out.append(0.5 * 10.0 ** (-decimals + (int(exponent) if exponent else 0)))
    return out


class CalcError(ValueError):
    """Bad input to ``crossentropy calc`` (reported as one line, exit status 2)."""


class _Once(argparse.Action):
    """Store an option's values, refusing the option given twice (argparse would keep the
    last values and drop the first without a word)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if getattr(namespace, self.dest, None) is not None:
            raise argparse.ArgumentError(self, "given twice: give all its values once")
        setattr(namespace, self.dest, values)


def add_calc_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``calc`` on the subparsers action ``sub`` of the ``crossentropy`` parser."""
    calc_parser: argparse.ArgumentParser = sub.add_parser(
        "calc",
        help="cross-entropy, entropy, KL divergence and gradient of one prediction",
        description="Cross-entropy of one prediction (logits or probabilities) against a "
        "target, in nats and bits, with H(target), KL(target || prediction), the entropy of "
        "the prediction and the gradient (p - t). Several values: softmax over classes; one "
        "value: sigmoid and binary cross-entropy; --multilabel: one sigmoid per class, binary "
        "cross-entropy summed over the classes.",
    )
    calc_parser.add_argument(
        "--logits",
        nargs="+",
        action=_Once,
        metavar="X",
        help="the logits of one sample (softmax; one value or --multilabel: sigmoid)",
    )
    calc_parser.add_argument(
        "--probs",
        nargs="+",
        action=_Once,
        metavar="P",
        help="predicted probabilities (summing to 1 to the precision typed)",
    )
    calc_parser.add_argument(
        "--target",
        nargs="+",
        action=_Once,
        metavar="T",
        help="a class index (0-based) or a distribution over the classes; binary and "
        "multi-label: one label or probability in [0, 1] per value",
    )
    calc_parser.add_argument(
        "--multilabel",
        action="store_true",
        help="independent sigmoids, one per class (labels are not exclusive)",
    )
    calc_parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    # Values such as -2e3, -1.5E-7, -inf or -nan are numbers, not options (argparse's own test
    # only knows -12 and -1.5).
    calc_parser._negative_number_matcher = re.compile(
        r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf(inity)?|nan)$", re.IGNORECASE
    )
    calc_parser.set_defaults(func=calc_command)
    return calc_parser


def _numbers(values: list[str], what: str, probabilities: bool = False) -> list[float]:
    """The numbers typed, finite; ``probabilities``: none that underflows to 0 (its log would
    be -inf where the value typed has a finite one)."""
    out = []
    for v in values:
        x = typed_float(v)
        if x is None:
            raise CalcError(f"{what}: {v!r} is not a number{_number_hint(v)}")
        if not math.isfinite(x):
            raise CalcError(f"{what}: {v!r} is not finite")
        if probabilities and x == 0.0 and re.search(r"[1-9]", v.lower().split("e")[0]):
            raise CalcError(
                f"{what}: {v!r} underflows to 0 in float64 (the smallest positive number is "
                "about 4.9e-324)"
            )
        out.append(x + 0.0)  # -0 is shown as 0
    return out


def _number_hint(typed: str) -> str:
    """How to write a value typed in another form (a percentage, a fraction, a minus sign
    that is not ASCII's), or nothing."""
    if typed.rstrip().endswith("%"):
        return " (write a percentage as a decimal: 70% is 0.7)"
    if "/" in typed:
        return " (write a fraction as a decimal: 1/4 is 0.25)"
    if any(c in typed for c in "\u2212\u2012\u2013\u2014\ufe63\uff0d"):
        return " (write the minus sign as ASCII '-')"
    return ""


def _shown(x: float) -> str:
    """A value as typed, to its last digit (``1.0000000001``, not ``1``)."""
    return repr(float(x))


def _distribution(p: list[float], what: str, typed: list[str] | None = None) -> list[float]:
    """``p`` checked as a distribution: entries in [0, 1] summing to 1, or to the precision
    typed (each value divided by the sum stays within the rounding of the value as typed:
    ``0.3333 0.3333 0.3333``); returned divided by its sum (unchanged when it sums to 1 but
    for the binary rounding of its values, as ``0.01 0.29 0.7`` does)."""
    for i, x in enumerate(p):
        if not 0.0 <= x <= 1.0:
            shown = typed[i] if typed is not None else _shown(x)
            raise CalcError(f"{what}: entry {i} is {shown}, expected a probability in [0, 1]")
    total = math.fsum(p)
    if total <= 0.0:
        raise CalcError(f"{what} sum to 0, expected 1")
    if abs(total - 1.0) <= 2 * sys.float_info.epsilon:  # (fsum: the values' own rounding)
        return p  # 1 but for the binary rounding of the values typed (0.01 0.29 0.7)
    if abs(total - 1.0) <= SUM_TOLERANCE:
        return [x / total for x in p]
    scaled = [x / total for x in p]
    rounding = _typed_rounding(typed) if typed is not None else [0.0] * len(p)
    for i, (x, q, half) in enumerate(zip(p, scaled, rounding, strict=True)):
        if abs(q - x) > half * (1 - 1e-9):  # a value off by all of its rounding is not
            shown = typed[i] if typed is not None else f"{x:g}"
            raise CalcError(
                f"{what} sum to {total:.10g}, expected 1: divided by the sum, entry {i} "
                f"({shown}) would be {q:.4g}, not {shown} rounded as typed"
            )
    return scaled


def _target(values: list[str], n_classes: int) -> tuple[int | None, list[float]]:
    """A class index (one integer) or a distribution; returns ``(index or None, t)``."""
    if len(values) == 1:
        raw = values[0]
        index = typed_int(raw)
        if index is None:
            raise CalcError(f"--target: {raw!r} is not a class index (an integer)")
        if not 0 <= index < n_classes:
            raise CalcError(
                f"--target: class {index} is out of range for {n_classes} classes "
                f"(0 to {n_classes - 1})"
            )
        return index, [1.0 if c == index else 0.0 for c in range(n_classes)]
    t = _numbers(values, "--target", True)
    if len(t) != n_classes:
        raise CalcError(
            f"--target: a distribution needs {n_classes} entries (one per class), got {len(t)}"
        )
    if all(x in (0.0, 1.0) for x in t) and sum(t) > 1:  # several labels: a multi-label target
        raise CalcError(
            f"--target probabilities sum to {sum(t):g}, expected 1 (for {sum(t):g} labels "
            "at once, one sigmoid per class, add --multilabel)"
        )
    return None, _distribution(t, "--target probabilities", values)


def calc(
    *,
    logits: list[float] | None = None,
    probs: list[float] | None = None,
    target: list[str],
    typed: list[str] | None = None,
    multilabel: bool = False,
) -> dict[str, Any]:
    """Compute what ``crossentropy calc`` prints.

    Parameters
    ----------
    logits, probs : list of float
        Exactly one of them: the logits of one sample, or its predicted probabilities.
    target : list of str
        Softmax mode: one class index, or one probability per class. Binary and multi-label
        modes: one label or probability in [0, 1] per value.
    typed : list of str, optional
        ``probs`` as typed: they may sum to 1 within the precision of their decimals (then
        they are divided by their sum, each of which must round to the value as typed, and
        ``renormalized`` is True).
    multilabel : bool, default False
        One independent sigmoid per class. One value is always the binary (sigmoid) mode.

    Returns
    -------
    dict
        ``mode`` (``"softmax"``, ``"binary"`` or ``"multilabel"``), ``probs``, ``loss_nats``,
        ``loss_bits``, ``entropy_nats``, ``entropy_bits`` (H(p)), ``kl_nats``, ``kl_bits``
        (KL(target || prediction)), ``target_entropy_nats`` and ``target_entropy_bits`` (H(t),
        so that H(t, p) = H(t) + KL(t || p)), ``grad_logits`` (p - t, entries of a nonzero
        target within rounding of 0 given as 0), ``target`` (the target distribution, or the
        labels), ``target_index`` (or None), ``renormalized`` and, in softmax mode,
        ``target_renormalized`` (the target distribution divided by its sum, as ``probs`` may
        be). The sigmoid modes add ``loss_per_class_nats``, ``positive_branch_nats`` (-t log p),
        ``negative_branch_nats`` (-(1 - t) log(1 - p)) and ``mean_over_classes_nats`` (the mean
        of PyTorch's default module: ``BCEWithLogitsLoss`` for logits, ``BCELoss``, its log
        clamped at -100, for probabilities). A divergence within rounding of 0 is given as 0.

    Raises
    ------
    CalcError
        Bad input, with a one-line message.
    """
    if logits is not None and probs is None:
        given = logits
    elif probs is not None and logits is None:
        given = probs
    else:
        raise CalcError("give exactly one of --logits and --probs")
    if not given:
        raise CalcError("--logits/--probs need at least one value")
    if multilabel or len(given) == 1:
        return _sigmoid_calc(logits, probs, target, "binary" if len(given) == 1 else "multilabel")
    return _softmax_calc(given, logits, probs, target, typed)


def _softmax_calc(
    given: list[float],
    logits: list[float] | None,
    probs: list[float] | None,
    target: list[str],
    typed: list[str] | None,
) -> dict[str, Any]:
    import numpy as np

    import crossentropy as ce
    from crossentropy import grad

    index, t_list = _target(target, len(given))
    t = np.asarray([t_list])
    tgt: Any = np.asarray([index]) if index is not None else t
    if probs is None:
        x = np.asarray([given], dtype=np.float64)
        p = np.asarray(ce.softmax(x, axis=1))
        loss = float(ce.cross_entropy(x, tgt))
        _, g = grad.cross_entropy(x, tgt)
    else:
        probs = _distribution(probs, "--probs", typed)
        p = np.asarray([probs], dtype=np.float64)
        loss = float(ce.cross_entropy(p, tgt, from_logits=False))
        with np.errstate(divide="ignore"):
            log_p = np.log(p)  # logits whose softmax is p (0 -> -inf, a masked class)
        _, g = grad.cross_entropy(log_p, tgt)
    ln2 = math.log(2.0)
    entropy = float(ce.entropy(p[0]))
    target_entropy = float(ce.entropy(t[0]))
    g = _rounding_to_zero(g, t)
    # From logits: H(t, p) - H(t), finite where the softmax underflows to 0.
    kl = loss - target_entropy if probs is None else float(ce.kl_divergence(t[0], p[0]))
    kl = _kl_rounding_to_zero(kl, target_entropy)
    return {
        "mode": "softmax",
        "input": "logits" if probs is None else "probs",
        "values": list(given),
        "target_index": index,
        "target": t_list,
        "probs": [float(v) for v in p[0]],
        "loss_nats": loss,
        "loss_bits": loss / ln2,
        "entropy_nats": entropy,
        "entropy_bits": entropy / ln2,
        "kl_nats": kl,
        "kl_bits": kl / ln2,
        "target_entropy_nats": target_entropy,
        "target_entropy_bits": target_entropy / ln2,
        "grad_logits": [float(v) for v in g[0]],
        "renormalized": probs is not None and list(probs) != list(given),
        "target_renormalized": index is None and t_list != _numbers(target, "--target"),
    }


def _rounding_to_zero(g: Any, t: Any) -> Any:
    """``g`` (a difference p - t of entries in [0, 1]) with entries below a few ulps of 1, which
    are rounding, set to 0; where ``t`` is 0 the entry is ``p`` itself, exact however small."""
    import numpy as np

    g = np.asarray(g)
    return np.where((np.abs(g) <= 8 * np.finfo(np.float64).eps) & (np.asarray(t) != 0), 0.0, g)


def _kl_rounding_to_zero(kl: float, target_entropy: float) -> float:
    """A divergence (never negative) within a few ulps of the target's entropy, which is
    rounding of either sign (the difference H(t, p) - H(t), or a sum of terms of that size),
    as 0; with H(t) = 0 (a hard target) the divergence is the loss itself and stays."""
    import numpy as np

    return 0.0 if abs(kl) <= 8 * np.finfo(np.float64).eps * target_entropy else kl


def _labels(values: list[str], n_classes: int, mode: str) -> list[float]:
    """Binary and multi-label targets: one label or probability in [0, 1] per class."""
    t = _numbers(values, "--target", True)
    if len(t) != n_classes:
        what = (
            "binary needs 1 entry" if mode == "binary" else f"multi-label needs {n_classes} entries"
        )
        raise CalcError(
            f"--target: {what} (a label or probability in [0, 1] per class), got {len(t)}"
        )
    for i, x in enumerate(t):
        if not 0.0 <= x <= 1.0:
            raise CalcError(
                f"--target: entry {i} is {x:g}, expected a label or probability in [0, 1]"
            )
    return t


def _sigmoid_calc(
    logits: list[float] | None, probs: list[float] | None, target: list[str], mode: str
) -> dict[str, Any]:
    """Binary (one value) and multi-label (one sigmoid per class) cross-entropy."""
    import numpy as np

    import crossentropy as ce
    from crossentropy import grad

    given = logits if logits is not None else probs
    assert given is not None
    t = np.asarray(_labels(target, len(given), mode))
    if logits is not None:
        z = np.asarray(logits, dtype=np.float64)
        p = np.asarray(ce.sigmoid(z))
        # -log p and -log(1 - p), finite where the sigmoid rounds to 0 or 1
        neg_log_p, neg_log_q = -np.asarray(ce.log_sigmoid(z)), -np.asarray(ce.log_sigmoid(-z))
        per_class = np.asarray(ce.binary_cross_entropy_with_logits(z, t, reduction="none"))
    else:
        p = np.asarray(given, dtype=np.float64)
        for i, x in enumerate(p):
            if not 0.0 <= x <= 1.0:
                raise CalcError(
                    f"--probs: entry {i} is {_shown(x)}, expected a probability in [0, 1]"
                )
        with np.errstate(divide="ignore"):
            neg_log_p, neg_log_q = -np.log(p), -np.log1p(-p)
            z = np.log(p) - np.log1p(-p)  # the logit whose sigmoid is p
        per_class = np.asarray(ce.binary_cross_entropy(p, t, reduction="none", clip=None))
    # t (-log p) and (1 - t)(-log(1 - p)), with 0 * inf = 0 for a branch the label switches off
    with np.errstate(invalid="ignore"):  # 0 * inf in the branch a label switches off
        positive = np.where(t > 0, t * neg_log_p, 0.0) + 0.0  # + 0.0: no -0
        negative = np.where(t < 1, (1 - t) * neg_log_q, 0.0) + 0.0
        per_class = per_class + 0.0
    loss = float(np.sum(per_class))
    target_entropy = float(np.sum(ce.binary_entropy(t)))
    # H(p) = H(1 - p): from the smaller of the two, which keeps its digits where the other
    # rounds to 1 (sigmoid(40))
    small = np.asarray(ce.sigmoid(-np.abs(z))) if logits is not None else np.minimum(p, 1 - p)
    entropy = float(np.sum(ce.binary_entropy(small)))
    if logits is not None:
        kl = loss - target_entropy
        torch_mean = loss / len(given)  # BCEWithLogitsLoss
    else:
        bernoulli = np.stack([t, 1 - t], axis=-1), np.stack([p, 1 - p], axis=-1)
        kl = float(np.sum(ce.kl_divergence(*bernoulli)))
        torch_mean = float(ce.binary_cross_entropy(p, t))  # BCELoss: log clamped at -100
    kl = _kl_rounding_to_zero(kl, target_entropy)
    _, g = grad.binary_cross_entropy_with_logits(z, t, reduction="sum")
    g = _rounding_to_zero(g, t)
    ln2 = math.log(2.0)
    return {
        "mode": mode,
        "input": "logits" if logits is not None else "probs",
        "values": list(given),
        "target_index": None,
        "target": [float(v) for v in t],
        "probs": [float(v) for v in p],
        "positive_branch_nats": [float(v) for v in positive],
        "negative_branch_nats": [float(v) for v in negative],
        "loss_per_class_nats": [float(v) for v in per_class],
        "loss_nats": loss,
        "loss_bits": loss / ln2,
        "mean_over_classes_nats": torch_mean,
        "entropy_nats": entropy,
        "entropy_bits": entropy / ln2,
        "kl_nats": kl,
        "kl_bits": kl / ln2,
        "target_entropy_nats": target_entropy,
        "target_entropy_bits": target_entropy / ln2,
        "grad_logits": [float(v) for v in g],
        "renormalized": False,
    }


def _vec(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


def _pair(nats: float) -> str:
    value, bits = f"{nats:.6g}", f"{nats / math.log(2.0):.6g}"
    return (
        f"{value} {'nat' if value == '1' else 'nats'} = {bits} {'bit' if bits == '1' else 'bits'}"
    )


def _table(rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(k) for k, _ in rows)
    return [f"{k.ljust(width)}  {v}" for k, v in rows]


def _sums(r: dict[str, Any]) -> str:
    return f"{r['loss_nats']:.6g} = {r['target_entropy_nats']:.6g} + {r['kl_nats']:.6g}."


def _infinite(r: dict[str, Any]) -> list[str]:
    """Why the loss is infinite, when it is: a probability of 0 where the target has mass
    (from probabilities; logits as large as float64's largest overflow instead)."""
    if not math.isinf(r["loss_nats"]) or r["input"] == "logits":
        return []
    eps = sys.float_info.epsilon
    return [
        "The loss is infinite: the target puts mass where p is 0, and -log 0 = inf. scikit-learn's",
        f"log_loss clips p to [eps, 1 - eps] first (float64's eps, {eps:.3g}: at most",
        f"-log eps = {-math.log(eps):.4g} nats a sample).",
    ]


def _format_sigmoid(r: dict[str, Any]) -> str:
    logits = r["input"] == "logits"
    binary = r["mode"] == "binary"
    show = (lambda v: f"{v[0]:.6g}") if binary else _vec
    grad_label = "d loss / d z" if logits else "d loss / d z, z = log(p / (1 - p))"
    rows = [
        (("logit z" if binary else "logits z") if logits else "p", show(r["values"])),
        ("target t", show(r["target"])),
    ]
    if logits:
        rows.append(("sigmoid p = 1 / (1 + e^-z)", show(r["probs"])))
    rows += [
        ("t = 1 branch, -t log p", show(r["positive_branch_nats"])),
        ("t = 0 branch, -(1 - t) log(1 - p)", show(r["negative_branch_nats"])),
    ]
    if not binary:
        rows.append(("BCE per class", _vec(r["loss_per_class_nats"])))
    rows += [
        ("binary cross-entropy" if binary else "sum over classes", _pair(r["loss_nats"])),
        ("entropy of t, H(t)", _pair(r["target_entropy_nats"])),
        ("KL(t || p)", _pair(r["kl_nats"])),
        ("entropy of p, H(p)", _pair(r["entropy_nats"])),
        (grad_label, show(r["grad_logits"]) + "  (p - t)"),
    ]
    lines = _table(rows)
    lines.append("")
    lines.append("BCE = -[t log p + (1 - t) log(1 - p)]: the first branch counts when the label")
    lines.append("is 1, the second when it is 0 (a soft label weighs both).")
    if not binary:
        lines.append("Each class is its own binary problem: the sigmoids are independent and")
        lines.append("need not sum to 1. The loss sums the classes' BCE; PyTorch's default")
        module = "BCEWithLogitsLoss" if logits else "BCELoss (its log clamped at -100)"
        lines.append(f"{module} averages over them instead: {r['mean_over_classes_nats']:.6g}.")
    where = "the Bernoulli variables t and p" if binary else "each class, summed"
    lines.append(f"H(t, p) = H(t) + KL(t || p), for {where}:")
    lines.append(_sums(r))
    if not logits:
        lines.append("For probabilities the gradient is with respect to the logit whose sigmoid")
        lines.append("is p.")
    lines += _infinite(r)
    return "\n".join(lines)


def format_calc(r: dict[str, Any]) -> str:
    """The text ``crossentropy calc`` prints for the result ``r`` of :func:`calc`."""
    if r["mode"] != "softmax":
        return _format_sigmoid(r)
    target = f"class {r['target_index']}" if r["target_index"] is not None else _vec(r["target"])
    logits = r["input"] == "logits"
    prob_label = "softmax p" if logits else "p"
    grad_label = "d loss / d logits" if logits else "d loss / d z, z = log p"
    rows = [
        (r["input"], _vec(r["values"])),
        ("target t", target),
        (prob_label, _vec(r["probs"])),
        ("cross-entropy H(t, p)", _pair(r["loss_nats"])),
        ("entropy of t, H(t)", _pair(r["target_entropy_nats"])),
        ("KL(t || p)", _pair(r["kl_nats"])),
        ("entropy of p, H(p)", _pair(r["entropy_nats"])),
        (grad_label, _vec(r["grad_logits"]) + "  (p - t)"),
    ]
    lines = _table(rows)
    lines.append("")
    lines.append(
        "H(t, p) = -sum t log p is the loss. KL(t || p) = sum t log(t / p) = H(t, p) - H(t)"
    )
    lines.append(f"is the divergence of the target t from the prediction p: {_sums(r)}")
    lines += _infinite(r)
    if not logits:
        lines.append("For probabilities the gradient is with respect to z = log p, the logits")
        lines.append("whose softmax is p.")
    if r["renormalized"]:
        total = math.fsum(r["values"])
        lines.append(f"The probabilities summed to {total:.15g}, 1 only to the precision typed:")
        lines.append("divided by their sum.")
    if r.get("target_renormalized"):
        lines.append("The target summed to 1 only to the precision typed: divided by its sum.")
    return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    """``value`` with infinite and NaN floats written as the strings ``"inf"``, ``"-inf"`` and
    ``"nan"`` (strict JSON has no such numbers; ``float("inf")`` reads them back)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def calc_command(args: argparse.Namespace) -> int:
    """Run ``crossentropy calc``: print the result, or one error line and return 2."""
    try:
        if args.target is None:
            given = args.logits is not None or args.probs is not None
            raise CalcError(
                "--target is required (a class index or a distribution)"
                if given
                else "give --logits or --probs, and --target (a class index or a distribution)"
            )
        logits = _numbers(args.logits, "--logits") if args.logits is not None else None
        probs = _numbers(args.probs, "--probs", True) if args.probs is not None else None
        result = calc(
            logits=logits,
            probs=probs,
            target=args.target,
            typed=args.probs,
            multilabel=args.multilabel,
        )
    except (CalcError, ValueError, TypeError) as err:
        from crossentropy.scoring._report import printable  # one line, whatever was typed

        print(printable(f"crossentropy calc: error: {err}"), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(_json_safe(result), indent=1, allow_nan=False))
    else:
        print(format_calc(result))
    return 0
