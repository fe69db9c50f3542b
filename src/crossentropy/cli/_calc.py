"""``crossentropy calc``: cross-entropy of one prediction, by hand, in nats and bits.

::

    crossentropy calc --logits 1 2 3 --target 1
    crossentropy calc --probs 0.9 0.1 --target 0
    crossentropy calc --logits 1 2 3 --target 0.7 0.2 0.1     # a target distribution

prints the prediction's probabilities (the softmax, for logits), the loss :math:`H(t, p) = -\\sum_c
t_c \\log p_c` in nats and bits, the entropy :math:`H(t)` of the target and the divergence
:math:`\\mathrm{KL}(t \\,\\|\\, p) = \\sum_c t_c \\log(t_c / p_c)` from the target ``t`` to the
prediction ``p`` (the direction cross-entropy minimises; it equals the loss for a one-hot target,
since :math:`H(t) = 0`), so that :math:`H(t, p) = H(t) + \\mathrm{KL}(t \\,\\|\\, p)` adds up on
screen, the entropy :math:`H(p)` of the prediction, and the gradient of the loss with respect to the
logits, :math:`p - t`. For ``--logits`` the divergence is computed as :math:`H(t, p) - H(t)` from
the logits (finite where the softmax underflows to 0); for ``--probs`` by ``kl_divergence(t, p)``.
For ``--probs`` the gradient is with respect to the logits whose softmax is ``p`` (``log p``, up to
a constant), and is labelled so. Probabilities need to sum to 1 only to the precision typed
(``0.3333 0.3333 0.3333``); they are then divided by their sum, with a note. Gradient entries within
rounding of 0 are printed as 0.

Every number comes from the library (``softmax``, ``cross_entropy``, ``entropy``,
``kl_divergence``, ``grad.cross_entropy``); bits are nats divided by :math:`\\ln 2`. Bad input
exits with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from typing import Any

__all__ = ["CalcError", "add_calc_parser", "calc", "calc_command", "format_calc"]

#: How far a probability vector's sum may stray from 1, at least (more for values typed with
#: few decimals: ``0.3333 0.3333 0.3333`` is a distribution to the precision typed).
SUM_TOLERANCE = 1e-6


def _sum_tolerance(typed: list[str]) -> float:
    """Half a unit in the last typed decimal of each value, added up (at least
    :data:`SUM_TOLERANCE`): how far values rounded as typed can sum away from 1."""
    half_units = 0.0
    for text in typed:
        mantissa, _, exponent = text.lower().partition("e")
        decimals = len(mantissa.partition(".")[2])
        half_units += 0.5 * 10.0 ** (-decimals + (int(exponent) if exponent else 0))
    return max(SUM_TOLERANCE, half_units * (1 - 1e-9))  # a sum off by all of it is not


class CalcError(ValueError):
    """Bad input to ``crossentropy calc`` (reported as one line, exit status 2)."""


def add_calc_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``calc`` on the subparsers action ``sub`` of the ``crossentropy`` parser."""
    calc_parser: argparse.ArgumentParser = sub.add_parser(
        "calc",
        help="cross-entropy, entropy, KL divergence and gradient of one prediction",
        description="Cross-entropy of one prediction (logits or probabilities) against a "
        "target class or distribution, in nats and bits, with the entropy of the prediction, "
        "KL(target || prediction) and the gradient with respect to the logits (p - t).",
    )
    calc_parser.add_argument(
        "--logits", nargs="+", metavar="X", help="the logits of one sample (softmax is applied)"
    )
    calc_parser.add_argument(
        "--probs",
        nargs="+",
        metavar="P",
        help="predicted probabilities (summing to 1 to the precision typed)",
    )
    calc_parser.add_argument(
        "--target",
        nargs="+",
        metavar="T",
        help="a class index (0-based), or a probability distribution over the classes",
    )
    calc_parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    # Values such as -2e3, -1.5E-7 or -inf are numbers, not options (argparse's own test only
    # knows -12 and -1.5).
    calc_parser._negative_number_matcher = re.compile(
        r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-inf(inity)?$", re.IGNORECASE
    )
    calc_parser.set_defaults(func=calc_command)
    return calc_parser


def _numbers(values: list[str], what: str) -> list[float]:
    out = []
    for v in values:
        try:
            x = float(v)
        except ValueError:
            raise CalcError(f"{what}: {v!r} is not a number") from None
        if not math.isfinite(x):
            raise CalcError(f"{what}: {v!r} is not finite")
        out.append(x)
    return out


def _distribution(p: list[float], what: str, typed: list[str] | None = None) -> list[float]:
    """``p`` checked as a distribution: entries in [0, 1] summing to 1 within the precision
    typed; returned divided by its sum (unchanged when it sums to 1 exactly)."""
    for i, x in enumerate(p):
        if not 0.0 <= x <= 1.0:
            raise CalcError(f"{what}: entry {i} is {x:g}, expected a probability in [0, 1]")
    total = math.fsum(p)
    tolerance = _sum_tolerance(typed) if typed is not None else SUM_TOLERANCE
    if abs(total - 1.0) > tolerance:
        raise CalcError(f"{what} sum to {total:.10g}, expected 1 (within {tolerance:.3g})")
    return p if total == 1.0 else [x / total for x in p]


def _target(values: list[str], n_classes: int) -> tuple[int | None, list[float]]:
    """A class index (one integer) or a distribution; returns ``(index or None, t)``."""
    if len(values) == 1:
        raw = values[0]
        try:
            index = int(raw)
        except ValueError:
            raise CalcError(f"--target: {raw!r} is not a class index (an integer)") from None
        if not 0 <= index < n_classes:
            raise CalcError(
                f"--target: class {index} is out of range for {n_classes} classes "
                f"(0 to {n_classes - 1})"
            )
        return index, [1.0 if c == index else 0.0 for c in range(n_classes)]
    t = _numbers(values, "--target")
    if len(t) != n_classes:
        raise CalcError(
            f"--target: a distribution needs {n_classes} entries (one per class), got {len(t)}"
        )
    return None, _distribution(t, "--target probabilities", values)


def calc(
    *,
    logits: list[float] | None = None,
    probs: list[float] | None = None,
    target: list[str],
    typed: list[str] | None = None,
) -> dict[str, Any]:
    """Compute what ``crossentropy calc`` prints.

    Parameters
    ----------
    logits, probs : list of float
        Exactly one of them: the logits of one sample, or its predicted probabilities.
    target : list of str
        One class index, or one probability per class.
    typed : list of str, optional
        ``probs`` as typed: they may sum to 1 within the precision of their decimals (then
        they are divided by their sum, and ``renormalized`` is True).

    Returns
    -------
    dict
        ``probs``, ``loss_nats``, ``loss_bits``, ``entropy_nats``, ``entropy_bits``,
        ``kl_nats``, ``kl_bits`` (KL(target || prediction)), ``target_entropy_nats`` and
        ``target_entropy_bits`` (H(t), so that H(t, p) = H(t) + KL(t || p)), ``grad_logits``
        (p - t, entries within rounding of 0 given as 0), ``target`` (the target
        distribution), ``target_index`` (or None) and ``renormalized``.

    Raises
    ------
    CalcError
        Bad input, with a one-line message.
    """
    import numpy as np

    import crossentropy as ce
    from crossentropy import grad

    if logits is not None and probs is None:
        given = logits
    elif probs is not None and logits is None:
        given = probs
    else:
        raise CalcError("give exactly one of --logits and --probs")
    if not given:
        raise CalcError("--logits/--probs need at least one value")
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
    # p - t of entries in [0, 1]: below a few ulps of 1 it is rounding, shown as 0
    g = np.where(np.abs(np.asarray(g)) <= 8 * np.finfo(np.float64).eps, 0.0, np.asarray(g))
    # From logits: H(t, p) - H(t), finite where the softmax underflows to 0.
    kl = loss - float(ce.entropy(t[0])) if probs is None else float(ce.kl_divergence(t[0], p[0]))
    return {
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
    }


def _vec(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


def _pair(nats: float) -> str:
    return f"{nats:.6g} nats = {nats / math.log(2.0):.6g} bits"


def format_calc(r: dict[str, Any]) -> str:
    """The text ``crossentropy calc`` prints for the result ``r`` of :func:`calc`."""
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
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines.append("")
    lines.append(
        "H(t, p) = -sum t log p is the loss. KL(t || p) = sum t log(t / p) = H(t, p) - H(t)"
    )
    lines.append(
        "is the divergence from the target t to the prediction p: "
        f"{r['loss_nats']:.6g} = {r['target_entropy_nats']:.6g} + {r['kl_nats']:.6g}."
    )
    if not logits:
        lines.append("For probabilities the gradient is with respect to z = log p, the logits")
        lines.append("whose softmax is p.")
    if r["renormalized"]:
        lines.append("The probabilities summed to 1 only to the precision typed: divided by their")
        lines.append("sum.")
    return "\n".join(lines)


def calc_command(args: argparse.Namespace) -> int:
    """Run ``crossentropy calc``: print the result, or one error line and return 2."""
    try:
        if args.target is None:
            raise CalcError("--target is required (a class index or a distribution)")
        logits = _numbers(args.logits, "--logits") if args.logits is not None else None
        probs = _numbers(args.probs, "--probs") if args.probs is not None else None
        result = calc(logits=logits, probs=probs, target=args.target, typed=args.probs)
    except (CalcError, ValueError, TypeError) as err:
        print(f"crossentropy calc: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(format_calc(result))
    return 0
