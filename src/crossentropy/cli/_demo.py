"""``crossentropy demo``: the tutorials' claims, tested on scikit-learn's bundled digits.

Every model here is trained by plain NumPy gradient descent whose loss gradients come from
:mod:`crossentropy.grad` (gradients with respect to the logits or predictions, chained to the
weights by hand), so the demo exercises the library the way a NumPy user without autograd would.
Six experiments, each a function returning a :class:`Section` (numbers for ``results.json`` and
the report, arrays for the figures):

- :func:`logistic_regression`: binary logistic regression (3 vs 8) against scikit-learn's
  ``LogisticRegression`` on the same split and the same objective;
- :func:`mlp_ce_vs_mse`: a one-hidden-layer network on all ten digits, trained with softmax
  cross-entropy and with MSE on the softmax output from the same initialisation;
- :func:`imbalance`: one digit kept at 5 % of its training examples; plain, class-weighted and
  focal cross-entropy;
- :func:`outliers`: a line fitted with MSE, MAE and Huber to data with outliers;
- :func:`landscapes`: the loss functions themselves;
- :func:`multilabel`: three binary attributes per digit (odd, at least 5, has a closed loop),
  learnt with one sigmoid per attribute and binary cross-entropy summed over the attributes,
  and with a softmax over the attributes, which makes them compete.

Everything is seeded and deterministic. scikit-learn and matplotlib are imported only when the
demo runs (``pip install "crossentropy[score]"``).
"""

from __future__ import annotations

import importlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import crossentropy as ce
from crossentropy import grad
from crossentropy._lib import extras
from crossentropy.cli._examples import worked_examples

__all__ = [
    "DEFAULT",
    "QUICK",
    "DemoResult",
    "Section",
    "Settings",
    "demo_command",
    "imbalance",
    "landscapes",
    "load_digits_split",
    "logistic_regression",
    "mlp_ce_vs_mse",
    "multilabel",
    "outlier_data",
    "outliers",
    "run_demo",
    "summary_lines",
]

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True)
class Settings:
    """How long each experiment trains (the default run and a quick one for tests and docs)."""

    seed: int = 0
    logreg_steps: int = 1500
    mlp_epochs: int = 40
    mlp_hidden: int = 32
    mlp_lr: float = 0.1
    imbalance_epochs: int = 40
    imbalance_lr: float = 0.2
    minority_digit: int = 8
    minority_fraction: float = 0.05
    focal_gamma: float = 2.0
    outlier_steps: int = 1500
    huber_delta: float = 1.0
    multilabel_epochs: int = 40
    batch_size: int = 32
    quick: bool = False


DEFAULT = Settings()
QUICK = Settings(
    logreg_steps=300,
    mlp_epochs=8,
    imbalance_epochs=8,
    outlier_steps=400,
    multilabel_epochs=8,
    quick=True,
)


@dataclass
class Section:
    """One experiment: JSON-able numbers (``results``) and arrays for its figure (``plot``)."""

    results: dict[str, Any]
    plot: dict[str, Any] = field(default_factory=dict)


@dataclass
class Digits:
    """scikit-learn's digits, pixels scaled to [0, 1], split 75/25 stratified by class."""

    x_train: FloatArray
    x_test: FloatArray
    y_train: IntArray
    y_test: IntArray


@dataclass
class DemoResult:
    """What :func:`run_demo` computed and wrote."""

    results: dict[str, Any]
    files: list[Path]
    seconds: float
    figures: list[dict[str, str]] = field(default_factory=list)


def _rng(settings: Settings, stream: int) -> np.random.Generator:
    """An independent, reproducible random stream per experiment."""
    return np.random.default_rng([settings.seed, stream])


def load_digits_split(seed: int = 0) -> Digits:
    """The bundled digits (no network): 1797 images of 8x8 pixels, 75 % train, 25 % test."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = np.asarray(data.data, dtype=np.float64) / 16.0
    y = np.asarray(data.target, dtype=np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    return Digits(x_tr, x_te, y_tr, y_te)


# --------------------------------------------------------------------------- metrics


def _library_log_loss() -> tuple[Callable[..., Any] | None, str]:
    """``crossentropy.metrics.log_loss`` where it exists, else the core losses (same numbers)."""
    try:
        module = importlib.import_module("crossentropy.metrics")
        fn = module.log_loss
    except (ImportError, AttributeError):
        return None, "crossentropy.cross_entropy(from_logits=False, clip='sklearn')"
    return fn, "crossentropy.metrics.log_loss"


def log_loss(y_true: IntArray, proba: FloatArray) -> float:
    """Log loss (nats) of class probabilities ``proba`` of shape ``(n, C)``, as scikit-learn.

    Uses ``crossentropy.metrics.log_loss`` when that module exists, otherwise
    ``crossentropy.cross_entropy`` on probabilities with scikit-learn's clipping.
    """
    fn, _ = _library_log_loss()
    if fn is not None:
        return float(fn(y_true, proba, labels=list(range(proba.shape[1]))))
    return float(ce.cross_entropy(proba, y_true, from_logits=False, clip="sklearn"))


def accuracy(y_true: IntArray, y_pred: IntArray) -> float:
    """Fraction of correct predictions."""
    return float(np.mean(y_true == y_pred))


def recall_per_class(y_true: IntArray, y_pred: IntArray, n_classes: int) -> list[float]:
    """Recall of each class: correct predictions of class c / examples of class c."""
    return [float(np.mean(y_pred[y_true == c] == c)) for c in range(n_classes)]


# --------------------------------------------------------------------------- 2. logistic


def logistic_regression(
    data: Digits, settings: Settings, *, classes: tuple[int, int] = (3, 8), c_reg: float = 1.0
) -> Section:
    """Binary logistic regression by gradient descent vs scikit-learn, same split and objective.

    The objective is scikit-learn's ``LogisticRegression(C=c_reg)``: the mean binary
    cross-entropy plus ``||w||^2 / (2 C n)`` (the bias is not penalised). The loss gradient with
    respect to the logits comes from ``grad.binary_cross_entropy_with_logits``; the chain rule to
    the weights is ``X^T g``. Steps use Nesterov momentum (restarted whenever the objective
    goes up) with step size ``1 / L`` from the data's Lipschitz bound.
    """
    from sklearn.linear_model import LogisticRegression

    pos = classes[1]
    tr = np.isin(data.y_train, classes)
    te = np.isin(data.y_test, classes)
    x_tr, x_te = data.x_train[tr], data.x_test[te]
    t_tr = (data.y_train[tr] == pos).astype(np.float64)
    y_te = (data.y_test[te] == pos).astype(np.int64)
    n, d = x_tr.shape
    lam = 1.0 / (c_reg * n)
    xb = np.hstack([x_tr, np.ones((n, 1))])
    lipschitz = 0.25 * float(np.linalg.eigvalsh(xb.T @ xb / n)[-1]) + lam
    lr = 1.0 / lipschitz

    def objective_and_grad(wb: FloatArray) -> tuple[float, FloatArray]:
        w, b = wb[:d], wb[d]
        value, g_logits = grad.binary_cross_entropy_with_logits(x_tr @ w + b, t_tr)
        gw = x_tr.T @ g_logits + lam * w
        gb = float(np.sum(g_logits))
        return float(value) + 0.5 * lam * float(w @ w), np.append(gw, gb)

    wb = np.zeros(d + 1)
    prev = wb.copy()
    curve = []  # the objective after each step
    k = 0
    for _ in range(settings.logreg_steps):
        look = wb + (k / (k + 3)) * (wb - prev)
        _, g = objective_and_grad(look)
        prev, wb = wb, look - lr * g
        curve.append(objective_and_grad(wb)[0])
        k += 1
        if len(curve) > 1 and curve[-1] > curve[-2]:
            k = 0  # adaptive restart: drop the momentum when the objective goes up
    final_obj = curve[-1] if curve else objective_and_grad(wb)[0]

    model = LogisticRegression(C=c_reg, max_iter=5000, tol=1e-10)
    model.fit(x_tr, t_tr.astype(np.int64))
    sk_w = np.asarray(model.coef_[0], dtype=np.float64)
    sk_b = float(model.intercept_[0])
    sk_obj = objective_and_grad(np.append(sk_w, sk_b))[0]

    p_ours = np.asarray(ce.sigmoid(x_te @ wb[:d] + wb[d]), dtype=np.float64)
    p_sk = np.asarray(model.predict_proba(x_te)[:, 1], dtype=np.float64)

    def two_col(p: FloatArray) -> FloatArray:
        return np.stack([1.0 - p, p], axis=1)

    results = {
        "classes": list(classes),
        "n_train": int(n),
        "n_test": int(te.sum()),
        "C": c_reg,
        "steps": settings.logreg_steps,
        "step_size": lr,
        "objective_ours": final_obj,
        "objective_sklearn": sk_obj,
        "test_log_loss_ours": log_loss(y_te, two_col(p_ours)),
        "test_log_loss_sklearn": log_loss(y_te, two_col(p_sk)),
        "test_accuracy_ours": accuracy(y_te, (p_ours > 0.5).astype(np.int64)),
        "test_accuracy_sklearn": accuracy(y_te, (p_sk > 0.5).astype(np.int64)),
        "max_abs_weight_difference": float(np.max(np.abs(wb[:d] - sk_w))),
        "first_step_at_or_below_sklearn": next(
            (i + 1 for i, v in enumerate(curve) if v <= sk_obj), None
        ),
        "metric": _library_log_loss()[1],
        "test_labels": y_te.tolist(),
        "test_proba_ours": p_ours.tolist(),
        "test_proba_sklearn": p_sk.tolist(),
    }
    plot = {"curve": np.asarray(curve), "w_ours": wb[:d], "w_sklearn": sk_w}
    return Section(results, plot)


# --------------------------------------------------------------------------- 3. network


def _softmax_mse_grad(z: FloatArray, onehot: FloatArray) -> tuple[float, FloatArray]:
    """MSE between softmax(z) and the one-hot target (sum over classes, mean over the batch).

    ``grad.mse_loss`` gives the gradient with respect to the probabilities ``p``; the softmax
    Jacobian ``diag(p) - p p^T`` carries it to the logits: ``p * (g - sum(g * p))``.
    """
    p = np.asarray(ce.softmax(z, axis=1))
    value, g_p = grad.mse_loss(p, onehot, reduction="batchmean")
    g_z = p * (g_p - np.sum(g_p * p, axis=1, keepdims=True))
    return float(value), g_z


def _ce_grad(z: FloatArray, y: IntArray) -> tuple[float, FloatArray]:
    value, g = grad.cross_entropy(z, y)
    return float(value), np.asarray(g)


def mlp_ce_vs_mse(data: Digits, settings: Settings) -> Section:
    """A 64-H-10 tanh network trained twice, same initialisation, learning rate and batches.

    Once with softmax cross-entropy (``grad.cross_entropy``), once with the squared error of the
    softmax output (``grad.mse_loss`` through the softmax Jacobian). Per epoch: the training
    objective, the test cross-entropy (log loss) and the test accuracy.
    """
    rng = _rng(settings, 3)
    d, h, c = data.x_train.shape[1], settings.mlp_hidden, 10
    init = {
        "w1": rng.normal(0.0, 1.0 / math.sqrt(d), (d, h)),
        "b1": np.zeros(h),
        "w2": rng.normal(0.0, 1.0 / math.sqrt(h), (h, c)),
        "b2": np.zeros(c),
    }
    n = data.x_train.shape[0]
    orders = [rng.permutation(n) for _ in range(settings.mlp_epochs)]
    onehot_tr = np.eye(c)[data.y_train]

    def forward(params: dict[str, FloatArray], x: FloatArray) -> tuple[FloatArray, FloatArray]:
        hidden = np.tanh(x @ params["w1"] + params["b1"])
        return hidden, hidden @ params["w2"] + params["b2"]

    runs: dict[str, dict[str, list[float]]] = {}
    for name in ("cross_entropy", "mse"):
        params = {k: v.copy() for k, v in init.items()}

        def loss_grad(z: FloatArray, idx: IntArray, name: str = name) -> tuple[float, FloatArray]:
            if name == "cross_entropy":
                return _ce_grad(z, data.y_train[idx])
            return _softmax_mse_grad(z, onehot_tr[idx])

        hist: dict[str, list[float]] = {"train_objective": [], "test_log_loss": [], "test_acc": []}

        def record(params: dict[str, FloatArray], hist: dict[str, list[float]] = hist) -> None:
            _, z_tr = forward(params, data.x_train)
            hist["train_objective"].append(loss_grad(z_tr, np.arange(n))[0])
            _, z_te = forward(params, data.x_test)
            proba = np.asarray(ce.softmax(z_te, axis=1))
            hist["test_log_loss"].append(log_loss(data.y_test, proba))
            hist["test_acc"].append(accuracy(data.y_test, np.argmax(z_te, axis=1)))

        record(params)
        for order in orders:
            for start in range(0, n, settings.batch_size):
                idx = order[start : start + settings.batch_size]
                x = data.x_train[idx]
                hidden, z = forward(params, x)
                _, g_z = loss_grad(z, idx)
                g_hidden = (g_z @ params["w2"].T) * (1.0 - hidden * hidden)
                params["w2"] -= settings.mlp_lr * (hidden.T @ g_z)
                params["b2"] -= settings.mlp_lr * g_z.sum(axis=0)
                params["w1"] -= settings.mlp_lr * (x.T @ g_hidden)
                params["b1"] -= settings.mlp_lr * g_hidden.sum(axis=0)
            record(params)
        runs[name] = hist

    def first_epoch(hist: dict[str, list[float]], level: float) -> int | None:
        hits = [e for e, a in enumerate(hist["test_acc"]) if a >= level]
        return hits[0] if hits else None

    ce_run, mse_run = runs["cross_entropy"], runs["mse"]
    results = {
        "hidden": h,
        "epochs": settings.mlp_epochs,
        "learning_rate": settings.mlp_lr,
        "batch_size": settings.batch_size,
        "mse_reduction": "sum over classes, mean over the batch",
        "final_test_accuracy_ce": ce_run["test_acc"][-1],
        "final_test_accuracy_mse": mse_run["test_acc"][-1],
        "final_test_log_loss_ce": ce_run["test_log_loss"][-1],
        "final_test_log_loss_mse": mse_run["test_log_loss"][-1],
        "first_epoch_90pct_ce": first_epoch(ce_run, 0.9),
        "first_epoch_90pct_mse": first_epoch(mse_run, 0.9),
        "curves": runs,
    }
    return Section(results, {"curves": runs})


# --------------------------------------------------------------------------- 4. imbalance


def imbalance(data: Digits, settings: Settings) -> Section:
    """Softmax regression with one digit kept at ``minority_fraction`` of its training examples.

    Three runs from the same zero initialisation and batches: plain cross-entropy, cross-entropy
    weighted by ``class_weights(y, "balanced")``, and the focal loss (``gamma=focal_gamma``).
    The test set keeps every class at its natural frequency.
    """
    rng = _rng(settings, 4)
    digit = settings.minority_digit
    minority = np.flatnonzero(data.y_train == digit)
    keep_n = max(1, round(settings.minority_fraction * minority.size))
    kept = rng.choice(minority, size=keep_n, replace=False)
    mask = data.y_train != digit
    mask[kept] = True
    x, y = data.x_train[mask], data.y_train[mask]
    n, d, c = x.shape[0], x.shape[1], 10
    weights = np.asarray(ce.class_weights(y, "balanced", classes=range(c)), dtype=np.float64)
    orders = [rng.permutation(n) for _ in range(settings.imbalance_epochs)]

    def plain(z: FloatArray, t: IntArray) -> FloatArray:
        return np.asarray(grad.cross_entropy(z, t)[1])

    def weighted(z: FloatArray, t: IntArray) -> FloatArray:
        return np.asarray(grad.cross_entropy(z, t, weight=weights)[1])

    def focal(z: FloatArray, t: IntArray) -> FloatArray:
        return np.asarray(grad.focal_loss(z, t, gamma=settings.focal_gamma)[1])

    methods: dict[str, Callable[[FloatArray, IntArray], FloatArray]] = {
        "plain": plain,
        "weighted": weighted,
        "focal": focal,
    }
    out: dict[str, dict[str, Any]] = {}
    for name, g_fn in methods.items():
        w = np.zeros((d, c))
        b = np.zeros(c)
        for order in orders:
            for start in range(0, n, settings.batch_size):
                idx = order[start : start + settings.batch_size]
                g_z = g_fn(x[idx] @ w + b, y[idx])
                w -= settings.imbalance_lr * (x[idx].T @ g_z)
                b -= settings.imbalance_lr * g_z.sum(axis=0)
        z_te = data.x_test @ w + b
        pred = np.argmax(z_te, axis=1)
        recalls = recall_per_class(data.y_test, pred, c)
        out[name] = {
            "minority_recall": recalls[digit],
            "test_log_loss": log_loss(data.y_test, np.asarray(ce.softmax(z_te, axis=1))),
            "test_accuracy": accuracy(data.y_test, pred),
            "recall_per_class": recalls,
        }
    results = {
        "minority_digit": digit,
        "minority_train_examples": int(keep_n),
        "minority_train_examples_before": int(minority.size),
        "n_train": int(n),
        "epochs": settings.imbalance_epochs,
        "learning_rate": settings.imbalance_lr,
        "focal_gamma": settings.focal_gamma,
        "class_weights": weights.tolist(),
        "methods": out,
    }
    return Section(results, {"methods": out})


# --------------------------------------------------------------------------- 5. outliers


def outlier_data(
    seed: int = 0, n: int = 80, outlier_fraction: float = 0.1
) -> tuple[FloatArray, FloatArray, np.ndarray[Any, np.dtype[np.bool_]], tuple[float, float]]:
    """Points ``y = 1.5 x + 2 + noise`` on [0, 10]; a fraction of them pushed up by 15 to 25.

    Returns ``x``, ``y``, the outlier mask and the true ``(slope, intercept)``.
    """
    rng = np.random.default_rng([seed, 5])
    slope, intercept = 1.5, 2.0
    x = np.sort(rng.uniform(0.0, 10.0, n))
    y = slope * x + intercept + rng.normal(0.0, 0.5, n)
    out = np.zeros(n, dtype=bool)
    out[rng.choice(np.flatnonzero(x > 5.0), size=round(outlier_fraction * n), replace=False)] = True
    y[out] += rng.uniform(15.0, 25.0, int(out.sum()))
    return x, y, out, (slope, intercept)


def _fit_line(
    x: FloatArray, y: FloatArray, loss: Callable[..., Any], steps: int, **kwargs: Any
) -> tuple[float, float, list[float]]:
    """Fit ``a x + b`` by gradient descent on a standardised ``x``; ``(a, b, loss curve)``."""
    mu, sd = float(np.mean(x)), float(np.std(x))
    u = (x - mu) / sd
    a = b = 0.0
    lr = 0.5  # the mean loss's curvature in (a, b) is at most 2 on a standardised x (MSE)
    curve = []
    for _ in range(steps):
        value, g = loss(a * u + b, y, **kwargs)
        g = np.asarray(g)
        a -= lr * float(g @ u)
        b -= lr * float(np.sum(g))
        curve.append(float(value))
    return a / sd, b - a * mu / sd, curve


def outliers(settings: Settings) -> Section:
    """MSE, MAE and Huber line fits on data with outliers, each by gradient descent from
    (0, 0) (the MAE's by its subgradient)."""
    x, y, out, (slope, intercept) = outlier_data(settings.seed)
    fits = {
        "mse": _fit_line(x, y, grad.mse_loss, settings.outlier_steps),
        "mae": _fit_line(x, y, grad.l1_loss, settings.outlier_steps),
        "huber": _fit_line(
            x, y, grad.huber_loss, settings.outlier_steps, delta=settings.huber_delta
        ),
    }
    clean = ~out
    lstsq = np.polyfit(x, y, 1)
    res: dict[str, Any] = {
        "n": int(x.size),
        "n_outliers": int(out.sum()),
        "true_slope": slope,
        "true_intercept": intercept,
        "huber_delta": settings.huber_delta,
        "steps": settings.outlier_steps,
        "least_squares_slope": float(lstsq[0]),
        "least_squares_intercept": float(lstsq[1]),
    }
    for name, (a, b, _) in fits.items():
        pred = a * x[clean] + b
        res[f"{name}_slope"] = a
        res[f"{name}_intercept"] = b
        res[f"{name}_clean_rmse"] = float(ce.rmse_loss(pred, y[clean]))
    plot = {"x": x, "y": y, "outlier": out, "fits": {k: v[:2] for k, v in fits.items()}}
    return Section(res, plot)


# --------------------------------------------------------------------------- 6. landscapes


def landscapes() -> Section:
    """The loss functions themselves, each computed by the library."""
    p = np.linspace(0.001, 1.0, 400)
    neglog_nats = np.asarray(ce.self_information(p))
    neglog_bits = np.asarray(ce.self_information(p, base=2))
    bce_pos = np.asarray(ce.binary_cross_entropy(p, np.ones_like(p), reduction="none"))
    q = np.linspace(0.0, 0.999, 400)
    bce_neg = np.asarray(ce.binary_cross_entropy(q, np.zeros_like(q), reduction="none"))

    # One logit z of the true class 0 among three classes, the other two logits 0.
    z = np.linspace(-8.0, 8.0, 321)
    logits = np.stack([z, np.zeros_like(z), np.zeros_like(z)], axis=1)
    target = np.zeros(z.size, dtype=np.int64)
    onehot = np.eye(3)[target]
    _, ce_grad = grad.cross_entropy(logits, target, reduction="sum")
    ce_curve = np.asarray(ce.cross_entropy(logits, target, reduction="none"))
    probs = np.asarray(ce.softmax(logits, axis=1))
    mse_curve = np.asarray(ce.mse_loss(probs, onehot, reduction="none")).sum(axis=1)
    g_p = np.asarray(grad.mse_loss(probs, onehot, reduction="sum")[1])
    mse_grad = (probs * (g_p - np.sum(g_p * probs, axis=1, keepdims=True)))[:, 0]
    step = float(z[1] - z[0])
    curv_ce = np.diff(ce_curve, 2) / step**2
    curv_mse = np.diff(mse_curve, 2) / step**2

    base_logits = np.array([1.0, 2.0, 3.0])
    temps = np.geomspace(0.1, 10.0, 200)
    soft = np.asarray(ce.softmax(base_logits[None, :] / temps[:, None], axis=1))
    ent_bits = np.asarray(ce.entropy(soft, base=2))
    marks = [0.1, 1.0, 10.0]
    soft_marks = np.asarray(ce.softmax(base_logits[None, :] / np.array(marks)[:, None], axis=1))

    results = {
        "neglog_at_half_bits": float(ce.self_information(0.5, base=2)),
        "ce_at_zero_logit": float(ce_curve[z.size // 2]),
        "log3": math.log(3.0),
        "min_curvature_ce": float(curv_ce.min()),
        "min_curvature_mse": float(curv_mse.min()),
        "ce_convex": bool(curv_ce.min() >= -1e-9),
        "mse_convex": bool(curv_mse.min() >= -1e-9),
        "ce_grad_at_minus8": float(np.asarray(ce_grad)[0, 0]),
        "mse_grad_at_minus8": float(mse_grad[0]),
        "temperature_logits": base_logits.tolist(),
        "temperatures": marks,
        "softmax_at_temperatures": soft_marks.tolist(),
        "entropy_bits_at_temperatures": np.asarray(ce.entropy(soft_marks, base=2)).tolist(),
        "max_entropy_bits": float(ce.entropy(np.full(3, 1.0 / 3.0), base=2)),
    }
    plot = {
        "p": p,
        "neglog_nats": neglog_nats,
        "neglog_bits": neglog_bits,
        "q": q,
        "bce_pos": bce_pos,
        "bce_neg": bce_neg,
        "z": z,
        "ce_curve": ce_curve,
        "mse_curve": mse_curve,
        "ce_grad": np.asarray(ce_grad)[:, 0],
        "mse_grad": mse_grad,
        "temps": temps,
        "soft": soft,
        "ent_bits": ent_bits,
    }
    return Section(results, plot)


# --------------------------------------------------------------------------- 7. multi-label

#: The attributes of each digit 0-9: odd, at least 5, has a closed loop (0, 6, 8, 9 as usually
#: written). Digit 2 and 4 have none, 9 has all three: the labels are not exclusive.
ATTRIBUTES = ("odd", "at least 5", "has a loop")
ATTRIBUTE_TABLE = np.array(
    [[d % 2 == 1, d >= 5, d in (0, 6, 8, 9)] for d in range(10)], dtype=np.float64
)


def multilabel(data: Digits, settings: Settings) -> Section:
    """Three binary attributes per image, learnt two ways from the same initialisation.

    A 64-H-3 tanh network, trained once with a sigmoid per attribute and binary cross-entropy
    summed over the attributes and averaged over the batch
    (``grad.binary_cross_entropy_with_logits(..., reduction="batchmean")``), once with a softmax
    over the attributes and cross-entropy against the attributes divided by their count (the
    usual way to force several labels into one distribution; an image with no attribute has
    nothing to learn from). An attribute is predicted when its probability is at least 0.5; a
    softmax's probabilities sum to 1, so it can predict at most one.
    """
    rng = _rng(settings, 7)
    d, h, c = data.x_train.shape[1], settings.mlp_hidden, len(ATTRIBUTES)
    t_tr, t_te = ATTRIBUTE_TABLE[data.y_train], ATTRIBUTE_TABLE[data.y_test]
    counts = t_tr.sum(axis=1, keepdims=True)
    dist_tr = np.divide(t_tr, counts, out=np.zeros_like(t_tr), where=counts > 0)
    init = {
        "w1": rng.normal(0.0, 1.0 / math.sqrt(d), (d, h)),
        "b1": np.zeros(h),
        "w2": rng.normal(0.0, 1.0 / math.sqrt(h), (h, c)),
        "b2": np.zeros(c),
    }
    n = data.x_train.shape[0]
    orders = [rng.permutation(n) for _ in range(settings.multilabel_epochs)]

    def sigmoid_bce(z: FloatArray, idx: IntArray) -> FloatArray:
        return np.asarray(
            grad.binary_cross_entropy_with_logits(z, t_tr[idx], reduction="batchmean")[1]
        )

    def softmax_ce(z: FloatArray, idx: IntArray) -> FloatArray:
        return np.asarray(grad.cross_entropy(z, dist_tr[idx])[1])

    heads: dict[str, tuple[Callable[..., FloatArray], Callable[..., Any]]] = {
        "sigmoid": (sigmoid_bce, ce.sigmoid),
        "softmax": (softmax_ce, lambda z: ce.softmax(z, axis=1)),
    }
    true_count = t_te.sum(axis=1)
    out: dict[str, dict[str, Any]] = {}
    for name, (loss_grad, probabilities) in heads.items():
        params = {k: v.copy() for k, v in init.items()}
        for order in orders:
            for start in range(0, n, settings.batch_size):
                idx = order[start : start + settings.batch_size]
                x = data.x_train[idx]
                hidden = np.tanh(x @ params["w1"] + params["b1"])
                g_z = loss_grad(hidden @ params["w2"] + params["b2"], idx)
                g_hidden = (g_z @ params["w2"].T) * (1.0 - hidden * hidden)
                params["w2"] -= settings.mlp_lr * (hidden.T @ g_z)
                params["b2"] -= settings.mlp_lr * g_z.sum(axis=0)
                params["w1"] -= settings.mlp_lr * (x.T @ g_hidden)
                params["b1"] -= settings.mlp_lr * g_hidden.sum(axis=0)
        z_te = np.tanh(data.x_test @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]
        proba = np.asarray(probabilities(z_te), dtype=np.float64)
        predicted = proba >= 0.5
        exact = np.all(predicted == (t_te == 1), axis=1)
        out[name] = {
            "attribute_accuracy": np.mean(predicted == (t_te == 1), axis=0).tolist(),
            "exact_match": float(np.mean(exact)),
            "exact_match_by_count": [float(np.mean(exact[true_count == k])) for k in range(c + 1)],
            "mean_probability_sum_by_count": [
                float(np.mean(proba[true_count == k].sum(axis=1))) for k in range(c + 1)
            ],
            "test_bce": float(
                ce.binary_cross_entropy(
                    np.clip(proba, 1e-15, 1 - 1e-15), t_te, reduction="batchmean"
                )
            ),
        }
    results = {
        "attributes": list(ATTRIBUTES),
        "attribute_of_digit": ATTRIBUTE_TABLE.astype(int).tolist(),
        "epochs": settings.multilabel_epochs,
        "hidden": h,
        "learning_rate": settings.mlp_lr,
        "batch_size": settings.batch_size,
        "test_images_by_count": [int(np.sum(true_count == k)) for k in range(c + 1)],
        "heads": out,
    }
    return Section(results, {"heads": out, "attributes": list(ATTRIBUTES)})


# --------------------------------------------------------------------------- the run


def _examples_results() -> list[dict[str, Any]]:
    return [asdict(ex) for ex in worked_examples()]


def summary_lines(results: dict[str, Any]) -> list[str]:
    """A few lines that sum up the run, every number from ``results``."""
    lr, mlp, imb, out, ml = (
        results[k] for k in ("logistic", "mlp", "imbalance", "outliers", "multilabel")
    )
    methods = imb["methods"]
    heads = ml["heads"]

    def epochs(e: int | None) -> str:
        return str(e) if e is not None else f"> {mlp['epochs']}"

    return [
        f"Digits (scikit-learn's bundled 8x8 images), seed {results['seed']}, "
        f"{'quick' if results['quick'] else 'full'} run:",
        f"  logistic regression, {lr['classes'][0]} vs {lr['classes'][1]}: test log loss "
        f"{lr['test_log_loss_ours']:.4f} (scikit-learn {lr['test_log_loss_sklearn']:.4f}), "
        f"accuracy {lr['test_accuracy_ours']:.3f} ({lr['test_accuracy_sklearn']:.3f})",
        f"  network, {mlp['epochs']} epochs: test accuracy {mlp['final_test_accuracy_ce']:.3f} "
        f"with cross-entropy vs {mlp['final_test_accuracy_mse']:.3f} with MSE,",
        f"    test log loss {mlp['final_test_log_loss_ce']:.3f} vs "
        f"{mlp['final_test_log_loss_mse']:.3f}, 90 % test accuracy after "
        f"{epochs(mlp['first_epoch_90pct_ce'])} vs {epochs(mlp['first_epoch_90pct_mse'])} epochs",
        f"  imbalance, digit {imb['minority_digit']} at {imb['minority_train_examples']} "
        f"training images: its test recall {methods['plain']['minority_recall']:.3f} plain, "
        f"{methods['weighted']['minority_recall']:.3f} weighted, "
        f"{methods['focal']['minority_recall']:.3f} focal",
        f"  outliers: RMSE on the clean points {out['mse_clean_rmse']:.3f} with MSE vs "
        f"{out['mae_clean_rmse']:.3f} with MAE and {out['huber_clean_rmse']:.3f} with Huber",
        f"  multi-label ({', '.join(ml['attributes'])}): all three right for "
        f"{heads['sigmoid']['exact_match']:.3f} of the test images",
        f"    with a sigmoid per attribute + BCE vs {heads['softmax']['exact_match']:.3f} with a "
        "softmax over them",
    ]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def run_demo(out_dir: str | Path, settings: Settings = DEFAULT) -> DemoResult:
    """Run every experiment, write ``index.html``, the PNG figures and ``results.json``.

    Parameters
    ----------
    out_dir : path-like
        Output folder (created if missing).
    settings : Settings
        :data:`DEFAULT` or :data:`QUICK` (fewer steps and epochs).

    Returns
    -------
    DemoResult
        The results and the files written.
    """
    from crossentropy._lib.html import write_atomic
    from crossentropy.cli import _demo_report

    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = load_digits_split(settings.seed)
    sections = {
        "logistic": logistic_regression(data, settings),
        "mlp": mlp_ce_vs_mse(data, settings),
        "imbalance": imbalance(data, settings),
        "outliers": outliers(settings),
        "landscapes": landscapes(),
        "multilabel": multilabel(data, settings),
    }
    results: dict[str, Any] = {
        "seed": settings.seed,
        "quick": settings.quick,
        "settings": asdict(settings),
        "data": {
            "n_train": int(data.y_train.size),
            "n_test": int(data.y_test.size),
            "n_features": int(data.x_train.shape[1]),
        },
        "examples": _examples_results(),
    }
    results.update({k: s.results for k, s in sections.items()})
    figures = _demo_report.make_figures(sections)
    results["figures"] = [
        {"file": f.filename, "section": f.section, "title": f.title, "caption": f.caption}
        for f in figures
    ]
    files = []
    for fig in figures:
        files.append(write_atomic(out / fig.filename, fig.png))
    page = _demo_report.render_html(results, figures)
    files.append(write_atomic(out / "index.html", page))
    files.append(
        write_atomic(
            out / "results.json",
            json.dumps(results, indent=1, default=_json_default, allow_nan=True) + "\n",
        )
    )
    return DemoResult(results, files, time.perf_counter() - start, results["figures"])


def missing_packages() -> str | None:
    """What the digits experiments and their report lack, as one line (None when scikit-learn,
    matplotlib and latex2mathml are installed)."""
    return extras.missing(
        "running the digits experiments", ("sklearn", "matplotlib", "latex2mathml")
    )


def demo_command(out_dir: str | Path, *, quick: bool = False) -> int:
    """``crossentropy demo``: run, print the summary and where the report is; the exit code.

    Returns 1 with one line on stderr when scikit-learn, matplotlib or latex2mathml is missing,
    2 when the output folder cannot be written (bad usage).
    """
    import sys

    missing = missing_packages()
    if missing is not None:
        print(f"crossentropy demo: error: {missing}", file=sys.stderr)
        return 1
    print("\nRunning the experiments on scikit-learn's digits ...", flush=True)
    try:
        done = run_demo(out_dir, QUICK if quick else DEFAULT)
    except OSError as err:  # the output folder cannot be created or written
        from crossentropy.scoring._report import printable  # one line, whatever the name

        print(
            printable(f"crossentropy demo: error: cannot write to {out_dir}: {err}"),
            file=sys.stderr,
        )
        return 2
    print("\n".join(summary_lines(done.results)))
    report = Path(out_dir) / "index.html"
    print(
        f"\nReport: {report} ({sum(f.suffix == '.png' for f in done.files)} figures, "
        f"results.json beside it), {done.seconds:.1f} s"
    )
    return 0
