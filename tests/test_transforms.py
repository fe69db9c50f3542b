"""Every public function and ``nn`` module under the transforms users apply, driven by the
registry: ``torch.func`` (``vmap`` of ``grad``, ``jacrev``, ``jacfwd``; ``functional_call``),
``torch.autocast``, ``torch.compile(fullgraph=True)`` with no warning, and JAX's ``jit``,
``grad`` and ``vmap`` with traced hyperparameters. Where PyTorch has the same function, its
result under the same transform is the reference; otherwise a Python loop (per-sample
gradients) or the eager call is. Also losses under ``jax.jit`` and ``torch.compile`` with arrays
captured from the enclosing scope."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.func import functional_call, grad, jacfwd, jacrev, vmap  # noqa: E402

import crossentropy as ce  # noqa: E402
import crossentropy.nn as cnn  # noqa: E402
from _helpers import lazy_calls, lazy_inputs  # noqa: E402
from registry import CASES, MODULES  # noqa: E402

DIFFERENTIABLE = [n for n, c in CASES.items() if c.differentiable]
PER_SAMPLE = [n for n in DIFFERENTIABLE if CASES[n].per_sample]
BATCH = CASES["cross_entropy"].arrays[0].shape[0]


def _tensors(arrays, dtype=torch.float64):
    return [
        torch.as_tensor(a, dtype=dtype if a.dtype.kind == "f" else None).clone() for a in arrays
    ]


def _batched(a):
    """Arrays whose first axis is the batch (class weights are not)."""
    return a.ndim > 0 and a.shape[0] == BATCH


def _per_sample_fn(call, flags):
    """``call`` on one sample: batched arguments get their batch axis back."""

    def one(*args):
        return call(*(a[None] if f else a for a, f in zip(args, flags, strict=True))).sum()

    return one


# ---------------------------------------------------------------------------------------------
# torch.func
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_per_sample_gradients_equal_a_python_loop(name):
    case = CASES[name]
    args = _tensors(case.arrays)
    flags = [_batched(a) for a in case.arrays]
    in_dims = tuple(0 if f else None for f in flags)
    one = _per_sample_fn(case.call, flags)
    got = vmap(grad(one), in_dims=in_dims)(*args)
    loop = []
    for i in range(BATCH):
        sample = [a[i] if f else a for a, f in zip(args, flags, strict=True)]
        leaf = sample[0].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(one(leaf, *sample[1:]), leaf)
        loop.append(g)
    torch.testing.assert_close(got, torch.stack(loop), rtol=1e-10, atol=1e-12)
    if case.torch_call is not None:
        theirs = vmap(grad(_per_sample_fn(case.torch_call, flags)), in_dims=in_dims)(*args)
        torch.testing.assert_close(got, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("transform", [jacrev, jacfwd], ids=["jacrev", "jacfwd"])
@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_jacobians_equal_autograd(name, transform):
    case = CASES[name]
    args = _tensors(case.arrays)

    def f(x):
        return case.call(x, *args[1:])

    got = transform(f)(args[0])
    expected = torch.autograd.functional.jacobian(f, args[0])
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(MODULES))
def test_modules_under_functional_call_and_vmap(name):
    spec = MODULES[name]
    module = spec.make()
    x, t = _tensors(spec.arrays)
    state = dict(module.named_buffers())
    out = functional_call(module, state, (x, t))
    torch.testing.assert_close(out, module(x, t))
    if spec.arrays[0].ndim != 2:
        return  # per-sample gradients below are for (N, C) inputs

    def one(xi, ti):
        return functional_call(module, state, (xi[None], ti[None]))

    got = vmap(grad(one))(x, t)
    loop = torch.stack([torch.func.grad(one)(x[i], t[i]) for i in range(BATCH)])
    torch.testing.assert_close(got, loop, rtol=1e-10, atol=1e-12)
    if spec.torch_make is not None:
        theirs = spec.torch_make()
        ref = vmap(grad(lambda xi, ti: theirs(xi[None], ti[None])))(x, t)
        torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-12)


def test_vmap_over_the_loss_itself_matches_torch():
    # The example: per-sample gradients of cross_entropy through vmap(grad(...)).
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randint(0, 3, (5,))
    ours = vmap(grad(lambda a, b: ce.cross_entropy(a[None], b[None])))(x, y)
    theirs = vmap(grad(lambda a, b: torch.nn.functional.cross_entropy(a[None], b[None])))(x, y)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize(
    "options", [{}, {"label_smoothing": 0.1}, {"z_loss": 1e-4}, {"empty_mean": 0.0}, "focal"]
)
def test_per_sample_gradients_of_unbatched_samples_with_class_weights(options):
    """vmap(grad) over unbatched samples (logits ``(C,)``, a 0-d label) with class weights:
    the weight of a 0-d label was read by indexing, which vmap of grad cannot batch. The
    loop's gradients, and PyTorch's where it has the options."""
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(6, 5, dtype=torch.float64, generator=gen)
    y = torch.randint(0, 5, (6,), generator=gen)
    w = torch.rand(5, dtype=torch.float64, generator=gen) + 0.5
    if options == "focal":
        calls = [lambda a, b: ce.focal_loss(a, b, alpha=w, gamma=2.0)]
    else:
        calls = [
            lambda a, b: ce.cross_entropy(a, b, w, **options),
            lambda a, b: cnn.CrossEntropyLoss(w, **options)(a, b),
        ]
    for one in calls:
        got = vmap(grad(one))(x, y)
        loop = torch.stack([grad(one)(x[i], y[i]) for i in range(x.shape[0])])
        torch.testing.assert_close(got, loop, rtol=1e-12, atol=1e-14)
        if options in ({}, {"label_smoothing": 0.1}):
            theirs = vmap(grad(lambda a, b: F.cross_entropy(a, b, w, **options)))(x, y)
            torch.testing.assert_close(got, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_vmap_over_labels_of_fixed_logits_with_label_smoothing(reduction):
    """A batch of label tensors for one set of logits (ATen's smoothing, filled in place by a
    mask of the labels, cannot be batched so): the loop's values and gradients, with class
    weights, an ignored label and classes on axis 1."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(6, 5, 2, dtype=torch.float64, generator=gen)
    labels = torch.randint(0, 5, (4, 6, 2), generator=gen)
    labels[1, 0, 0] = 3
    w = torch.rand(5, dtype=torch.float64, generator=gen) + 0.5
    opts = {"label_smoothing": 0.1, "ignore_index": 3, "reduction": reduction}
    for weight in (None, w):

        def ours(xi, y, weight=weight):
            return ce.cross_entropy(xi, y, weight, **opts)

        def theirs(xi, y, weight=weight):
            return F.cross_entropy(xi, y, weight, **opts)

        loop = torch.stack([theirs(x, y) for y in labels])
        torch.testing.assert_close(vmap(lambda y: ours(x, y))(labels), loop)
        module = ce.nn.CrossEntropyLoss(weight, **opts)
        torch.testing.assert_close(vmap(lambda y, m=module: m(x, y))(labels), loop)
        g_loop = torch.stack([grad(lambda a, y=y: theirs(a, y).sum())(x) for y in labels])
        g = vmap(lambda y: grad(lambda a: ours(a, y).sum())(x))(labels)
        torch.testing.assert_close(g, g_loop)


# ---------------------------------------------------------------------------------------------
# torch.autocast
# ---------------------------------------------------------------------------------------------

LOSSES = set(ce.losses.__all__)


@pytest.mark.parametrize("in_dtype", [torch.bfloat16, torch.float32], ids=["bf16", "f32"])
@pytest.mark.parametrize("name", list(CASES))
def test_autocast_losses_compute_and_return_float32(name, in_dtype):
    # Losses follow autocast's policy for PyTorch's losses (float32 in and out); the other
    # functions keep the input's dtype, as PyTorch's softmax, logsumexp, ... do on the CPU.
    case = CASES[name]
    args = _tensors(case.arrays, in_dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = case.call(*args)
        theirs = case.torch_call(*args) if case.torch_call is not None else None
    # PyTorch 2.13's weighted mse_loss multiplies its float32 loss by the weight outside
    # autocast's policy and returns the weight's dtype; ours stays float32, as its unweighted
    # form (and every other loss) under autocast.
    torch_quirk = name == "mse_loss" and in_dtype != torch.float32
    if theirs is not None and not torch_quirk:
        assert out.dtype == theirs.dtype, (out.dtype, theirs.dtype)
    if case.function not in LOSSES:
        assert out.dtype == in_dtype
        return
    assert out.dtype == torch.float32, out.dtype
    reference = case.call(*(a.float() if a.is_floating_point() else a for a in args))
    torch.testing.assert_close(out, reference, rtol=1e-6, atol=1e-6)
    if theirs is not None:
        torch.testing.assert_close(
            out,
            theirs.float(),
            rtol=1e-2 if torch_quirk else 1e-5,
            atol=1e-2 if torch_quirk else 1e-5,
        )


@pytest.mark.parametrize("name", list(MODULES))
def test_modules_under_autocast_return_float32(name):
    spec = MODULES[name]
    x, t = _tensors(spec.arrays, torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = spec.make()(x, t)
        theirs = spec.torch_make()(x, t) if spec.torch_make is not None else None
    assert out.dtype == torch.float32
    if theirs is not None:
        assert theirs.dtype == torch.float32
        torch.testing.assert_close(out, theirs, rtol=1e-5, atol=1e-5)


def test_autocast_gradients_keep_the_input_dtype():
    x = torch.randn(4, 3, dtype=torch.bfloat16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = ce.cross_entropy(x, torch.tensor([0, 2, 1, 1]), label_smoothing=0.1, z_loss=1e-3)
    loss.backward()
    assert loss.dtype == torch.float32
    assert x.grad.dtype == torch.bfloat16


# ---------------------------------------------------------------------------------------------
# torch.compile: fullgraph, no warning, same numbers and gradients.
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _compile_quietly(fn, *args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # an unclosed file or socket of an earlier test, collected here, is not this call's
        warnings.simplefilter("ignore", ResourceWarning)
        out = torch.compile(fn, fullgraph=True, backend="eager")(*args)
    return out, [str(w.message) for w in caught]


def test_compile_fullgraph_takes_the_deprecated_elementwise_mean(fresh_dynamo):
    """PyTorch's deprecated ``reduction="elementwise_mean"`` compiles whole (its warning, and
    the walk of the stack that places it, are left out while Dynamo traces), as ``"mean"``."""
    x, y = torch.randn(4, 3, dtype=torch.float64), torch.tensor([0, 2, 1, 0])
    out, _ = _compile_quietly(
        lambda a, b: ce.cross_entropy(a, b, reduction="elementwise_mean"), x, y
    )
    torch.testing.assert_close(out, ce.cross_entropy(x, y), rtol=0, atol=0)


@pytest.mark.parametrize("name", list(CASES))
def test_compile_fullgraph_without_warnings(name, fresh_dynamo):
    case = CASES[name]
    args = _tensors(case.arrays)
    leaf = args[0].clone().requires_grad_(case.differentiable)

    def f(x, *rest):
        return case.call(x, *rest)

    out, caught = _compile_quietly(f, leaf, *args[1:])
    assert caught == []
    eager = case.call(args[0], *args[1:])
    torch.testing.assert_close(out, eager, rtol=1e-12, atol=1e-12, equal_nan=True)
    if case.differentiable:
        (g,) = torch.autograd.grad(out.sum(), leaf)
        e_leaf = args[0].clone().requires_grad_(True)
        (ge,) = torch.autograd.grad(case.call(e_leaf, *args[1:]).sum(), e_leaf)
        torch.testing.assert_close(g, ge, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "fn", [ce.mse_loss, ce.l1_loss, ce.huber_loss, ce.smooth_l1_loss, ce.rmse_loss]
)
def test_compile_fullgraph_of_a_target_that_broadcasts(fn, fresh_dynamo):
    """Shapes that broadcast, which PyTorch warns of eagerly: one graph (the warning is left
    out while Dynamo traces), the eager numbers."""
    x, t = torch.randn(4, 1, dtype=torch.float64), torch.rand(4, 3, dtype=torch.float64)
    out, caught = _compile_quietly(fn, x, t)
    assert caught == []
    with pytest.warns(UserWarning, match="different to the input size"):
        eager = fn(x, t)
    torch.testing.assert_close(out, eager, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_export_with_a_dynamic_batch_runs_at_another_batch_size(name, fresh_dynamo):
    """``torch.export`` with the batch axis dynamic: no size is fixed while tracing (as for
    PyTorch's own losses), and the exported program gives the eager numbers at twice the
    batch."""
    case = CASES[name]
    args = _tensors(case.arrays)
    batch = args[0].shape[0]
    dims = tuple(
        {0: torch.export.Dim("batch", min=2)} if a.ndim and a.shape[0] == batch else None
        for a in args
    )

    class Loss(torch.nn.Module):
        def forward(self, *a):
            return case.call(*a)

    program = torch.export.export(Loss(), tuple(args), dynamic_shapes=(dims,))
    twice = [torch.cat([a, a]) if d is not None else a for a, d in zip(args, dims, strict=True)]
    torch.testing.assert_close(
        program.module()(*twice), case.call(*twice), rtol=1e-12, atol=1e-12, equal_nan=True
    )


@pytest.mark.parametrize("name", list(CASES))
def test_compile_fullgraph_in_half_precision_outside_autocast(name, fresh_dynamo):
    """bfloat16 inputs with float32 targets and weights (pure half-precision training, no
    autocast): one graph, no warning, the eager numbers (the dtype promotion is traced)."""
    case = CASES[name]
    args = [a.to(torch.float32) if a.is_floating_point() else a for a in _tensors(case.arrays)]
    args[0] = args[0].to(torch.bfloat16)
    out, caught = _compile_quietly(case.call, *args)
    assert caught == []
    torch.testing.assert_close(out, case.call(*args), rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8])
def test_compile_takes_class_indices_of_every_integer_dtype(dtype, fresh_dynamo):
    """Labels of a narrower integer dtype than int64 (which ATen refuses): under
    torch.compile the eager numbers and gradients, spatial and not, with and without options."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 4, (2, 3, 3), generator=gen).to(dtype)
    calls = {
        "cross_entropy": lambda a, b: ce.cross_entropy(a, b),
        "smoothed": lambda a, b: ce.cross_entropy(a, b, label_smoothing=0.1, ignore_index=2),
        "nll_loss": lambda a, b: ce.nll_loss(torch.log_softmax(a, 1), b, reduction="sum"),
        "flat": lambda a, b: ce.cross_entropy(a[:, :, 0, 0], b[:, 0, 0]),
    }
    for name, call in calls.items():
        out, caught = _compile_quietly(call, x, y)
        assert caught == [], name
        want = call(x, y.long())
        torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)
        (g,) = torch.autograd.grad(out, x)
        (gw,) = torch.autograd.grad(want, x)
        torch.testing.assert_close(g, gw, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("transform", ["grad", "vmap", "vmap_grad", "none"])
def test_compile_fullgraph_over_torch_func_with_label_smoothing(transform, fresh_dynamo):
    """Label smoothing under torch.func inside torch.compile(fullgraph=True) traces whole (the
    test of a vmap level was a Python int Dynamo cannot trace); torch's numbers."""
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(4, 3, dtype=torch.float64, generator=gen)
    y = torch.tensor([0, 1, 2, 1])

    def step(loss):
        one = lambda z, t: loss(z[None], t[None])  # noqa: E731
        return {
            "grad": lambda a, b: grad(lambda z: loss(z, b))(a),
            "vmap": lambda a, b: vmap(one)(a, b),
            "vmap_grad": lambda a, b: vmap(grad(one))(a, b),
            "none": loss,
        }[transform]

    for ours in (
        ce.nn.CrossEntropyLoss(label_smoothing=0.1),
        lambda a, b: ce.cross_entropy(a, b, label_smoothing=0.1),
    ):
        out, caught = _compile_quietly(step(ours), x, y)
        assert caught == []
        want = step(torch.nn.CrossEntropyLoss(label_smoothing=0.1))(x, y)
        torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(MODULES))
def test_modules_compile_fullgraph_without_warnings(name, fresh_dynamo):
    spec = MODULES[name]
    module = spec.make()
    x, t = _tensors(spec.arrays)
    out, caught = _compile_quietly(module, x, t)
    assert caught == []
    torch.testing.assert_close(out, module(x, t), rtol=1e-12, atol=1e-12)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


#: Modules in configurations whose divisor or gather once fixed the compiled graph to one
#: batch size (a count made a Python float, take_along_dim's broadcasting).
_SIZED = {
    **{name: (spec.make, spec.arrays) for name, spec in MODULES.items()},
    "BCELoss[mean]": (lambda: ce.nn.BCELoss(), MODULES["BCELoss"].arrays),
    "KLDivLoss[mean]": (lambda: ce.nn.KLDivLoss(), MODULES["KLDivLoss"].arrays),
    "CrossEntropyLoss[probabilities]": (
        lambda: ce.nn.CrossEntropyLoss(from_logits=False),
        (_softmax(MODULES["NLLLoss"].arrays[0]), MODULES["NLLLoss"].arrays[1]),
    ),
    "CrossEntropyLoss[per_sample]": (
        lambda: ce.nn.CrossEntropyLoss(
            weight=torch.linspace(0.5, 1.5, MODULES["NLLLoss"].arrays[0].shape[1]),
            weight_mode="per_sample",
        ),
        MODULES["NLLLoss"].arrays,
    ),
    "FocalLoss[sum]": (lambda: ce.nn.FocalLoss(reduction="sum"), MODULES["FocalLoss"].arrays),
}


@pytest.mark.parametrize("name", list(_SIZED))
def test_modules_compile_once_for_every_batch_size(name, fresh_dynamo):
    """After the first recompilation (dynamic shapes), one graph serves every batch size, as
    for PyTorch's own losses: no size is fixed by the loss, so the recompile limit is never
    hit."""
    make, arrays = _SIZED[name]
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    module = make()
    compiled = torch.compile(module, fullgraph=True, backend=backend)
    for n in range(2, 7):  # compiled once per size, this would be five graphs
        x, t = _tensors(tuple(np.take(a, np.arange(n) % a.shape[0], axis=0) for a in arrays))
        torch.testing.assert_close(compiled(x, t), module(x, t), rtol=1e-12, atol=1e-12)
    assert len(graphs) <= 2, f"{len(graphs)} graphs for 5 batch sizes"


def test_compile_with_inductor_matches_eager(fresh_dynamo):
    x, y = torch.randn(8, 5), torch.randint(0, 5, (8,))
    fn = lambda a, b: ce.focal_loss(a, b, label_smoothing=0.1)  # noqa: E731
    torch.testing.assert_close(torch.compile(fn, fullgraph=True)(x, y), fn(x, y))


# ---------------------------------------------------------------------------------------------
# JAX: jit, grad, vmap; traced hyperparameters; the log-sum-exp's gradient stops at the max.
# ---------------------------------------------------------------------------------------------


def _jax(arrays):
    return [jnp.asarray(a) for a in arrays]


@pytest.mark.parametrize("name", list(CASES))
def test_jax_jit_equals_eager(name):
    case = CASES[name]
    args = _jax(case.arrays)
    np.testing.assert_allclose(
        np.asarray(jax.jit(case.call)(*args)), np.asarray(case.call(*args)), rtol=1e-12
    )


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_jax_gradients_equal_torch_gradients(name):
    case = CASES[name]
    args = _jax(case.arrays)
    g = jax.jit(jax.grad(lambda x, *rest: jnp.sum(case.call(x, *rest))))(*args)
    targs = _tensors(case.arrays)
    leaf = targs[0].clone().requires_grad_(True)
    (tg,) = torch.autograd.grad(case.call(leaf, *targs[1:]).sum(), leaf)
    np.testing.assert_allclose(np.asarray(g), tg.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_jax_vmap_of_grad_is_per_sample(name):
    case = CASES[name]
    args = _jax(case.arrays)
    flags = [_batched(a) for a in case.arrays]
    one = _per_sample_fn(case.call, flags)
    in_axes = tuple(0 if f else None for f in flags)
    got = jax.jit(jax.vmap(jax.grad(one), in_axes=in_axes))(*args)
    each = jax.jit(jax.grad(one))
    loop = [
        each(*(a[i] if f else a for a, f in zip(args, flags, strict=True))) for i in range(BATCH)
    ]
    np.testing.assert_allclose(np.asarray(got), np.stack(loop), rtol=1e-10, atol=1e-12)


HYPER = [(n, h) for n, c in CASES.items() for h in c.hyper]


@pytest.mark.parametrize(("name", "hyper"), HYPER, ids=[f"{n}-{h}" for n, h in HYPER])
def test_jax_hyperparameters_may_be_traced(name, hyper):
    case = CASES[name]
    value, call = case.hyper[hyper]
    args = _jax(case.arrays)
    traced = jax.jit(lambda h, *a: call(*a, h))(jnp.asarray(value), *args)
    eager = call(*case.arrays, value)
    np.testing.assert_allclose(np.asarray(traced), np.asarray(eager), rtol=1e-12)
    g = jax.jit(jax.grad(lambda h, *a: jnp.sum(call(*a, h))))(jnp.asarray(value), *args)
    assert np.isfinite(float(g))


def _accepted(name: str, hyper: str, value: float) -> bool:
    """Whether the function takes ``value`` for ``hyper`` (as a Python float)."""
    try:
        CASES[name].hyper[hyper][1](*CASES[name].arrays, value)
    except ValueError:
        return False
    return True


# each hyperparameter at the edges of its range that the function takes (0, 1, inf)
EDGES = [(n, h, e) for n, h in HYPER for e in (0.0, 1.0, math.inf) if _accepted(n, h, e)]


@pytest.mark.parametrize(
    ("name", "hyper", "edge"), EDGES, ids=[f"{n}-{h}-{e}" for n, h, e in EDGES]
)
def test_traced_hyperparameters_at_their_edges_are_the_eager_numbers(name, hyper, edge):
    """A hyperparameter at an edge of its range, given as a traced JAX scalar or a 0-d
    tensor, gives the number its Python float gives (a traced smooth-L1 beta of 0 gave
    0 / 0 = NaN where the float gives the L1 loss)."""
    case = CASES[name]
    _, call = case.hyper[hyper]
    eager = np.asarray(call(*case.arrays, edge))
    traced = jax.jit(lambda h, *a: call(*a, h))(jnp.asarray(edge), *_jax(case.arrays))
    np.testing.assert_allclose(np.asarray(traced), eager, rtol=1e-12, atol=1e-300)
    tensor = call(*_tensors(case.arrays), torch.tensor(edge, dtype=torch.float64))
    np.testing.assert_allclose(tensor.numpy(), eager, rtol=1e-12, atol=1e-300)


# one hyperparameter of each family (each compile takes about a second)
COMPILED_HYPER = [
    ("cross_entropy", "label_smoothing"),
    ("binary_cross_entropy_with_logits", "label_smoothing"),
    ("focal_loss", "alpha"),
    ("huber_loss", "delta"),
    ("jaccard_loss", "smooth"),
]


@pytest.mark.parametrize(
    ("name", "hyper"), COMPILED_HYPER, ids=[f"{n}-{h}" for n, h in COMPILED_HYPER]
)
def test_compile_fullgraph_with_tensor_hyperparameters_without_warnings(name, hyper, fresh_dynamo):
    """A 0-d tensor hyperparameter under torch.compile: the eager number, no warning (the
    look-up of its array library warned of functools.lru_cache)."""
    case = CASES[name]
    value, call = case.hyper[hyper]
    args = _tensors(case.arrays)
    h = torch.tensor(value, dtype=torch.float64)
    out, caught = _compile_quietly(lambda h, *a: call(*a, h), h, *args)
    assert caught == []
    torch.testing.assert_close(out, call(*args, value), rtol=1e-12, atol=1e-12)


def _primitives(f, x):
    names = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            names.append(eqn.primitive.name)
            for p in eqn.params.values():
                inner = getattr(p, "jaxpr", None)
                if inner is not None:
                    walk(getattr(inner, "jaxpr", inner))

    walk(jax.make_jaxpr(f)(x).jaxpr)
    return names


def test_jax_logsumexp_gradient_stops_at_the_max():
    # As jax.nn.logsumexp: the max is a stop_gradient, so the gradient program is no larger,
    # but for the one select that gives a row of -inf a zero gradient (jax.nn's is NaN there).
    x = jnp.ones((3, 4))
    ours = _primitives(jax.grad(lambda x: ce.logsumexp(x).sum()), x)
    theirs = _primitives(jax.grad(lambda x: jax.nn.logsumexp(x, axis=-1).sum()), x)
    assert "stop_gradient" in ours
    assert len(ours) <= len(theirs) + 1
    masked = x.at[1].set(-jnp.inf)
    assert np.all(np.asarray(jax.grad(lambda v: ce.logsumexp(v)[0] + 0.0)(masked))[1] == 0)
    ours_g = jax.grad(lambda v: jnp.where(jnp.arange(3) == 1, 0.0, ce.logsumexp(v)).sum())
    assert np.all(np.isfinite(np.asarray(ours_g(masked))))
    theirs_g = jax.grad(
        lambda v: jnp.where(jnp.arange(3) == 1, 0.0, jax.nn.logsumexp(v, axis=-1)).sum()
    )
    assert np.isnan(np.asarray(theirs_g(masked))).any()
    for fn in (
        ce.log_softmax,
        lambda v: ce.cross_entropy(v, jnp.asarray([0, 1, 2])),
    ):
        assert "stop_gradient" in _primitives(jax.grad(lambda v, fn=fn: jnp.sum(fn(v))), x)


# ---------------------------------------------------------------------------------------------
# jax.jit and torch.compile of the losses with captured arrays (review regressions).
# ---------------------------------------------------------------------------------------------

X = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
Y = [1, 2]
W = [1.0, 2.0, 3.0]


def test_jax_other_losses_under_jit():
    x, y, soft, p, q = lazy_inputs()
    calls = lazy_calls
    args = [jnp.asarray(a) for a in (x, y, soft, p, q)]
    for name in (
        "cross_entropy_soft",
        "nll_loss",
        "bce",
        "bce_with_logits",
        "kl_div",
        "log_softmax",
        "entropy",
        "js_divergence",
    ):
        jitted = jax.jit(lambda *a, name=name: calls(*a)[name]())(*args)
        np.testing.assert_allclose(
            np.asarray(jitted), calls(x, y, soft, p, q)[name](), rtol=1e-12, err_msg=name
        )


def test_jit_with_captured_weight_and_target():
    x, y, w = jnp.asarray(X), jnp.asarray(Y), jnp.asarray(W)
    assert float(jax.jit(lambda x: ce.cross_entropy(x, y, w))(x)) == pytest.approx(
        0.8076059644443804
    )
    soft = jnp.eye(3)[y]
    assert float(jax.jit(lambda x: ce.cross_entropy(x, soft, w, label_smoothing=0.1))(x)) > 0
    assert np.isfinite(float(jax.jit(lambda x: ce.entropy(jnp.asarray([0.5, 0.5]) * x[0, 0]))(x)))
    out = jax.jit(lambda x: ce.binary_cross_entropy_with_logits(x, jnp.ones((2, 3)) / 2))(x)
    assert np.isfinite(float(out))


@pytest.mark.parametrize(
    "fn",
    [
        lambda x, y: ce.cross_entropy(x, y, z_loss=1e-3, label_smoothing=0.1),
        lambda x, y: ce.cross_entropy(x, y, softcap=5.0, reduction="batchmean"),
        lambda x, y: ce.cross_entropy(x, F.one_hot(y, 5).double()),
        lambda x, y: ce.focal_loss(x, y, alpha=0.5),
        lambda x, y: ce.binary_cross_entropy(torch.sigmoid(x), torch.sigmoid(-x)),
        lambda x, y: ce.binary_cross_entropy_with_logits(x, torch.sigmoid(x), label_smoothing=0.1),
        lambda x, y: ce.kl_div(torch.log_softmax(x, 1), torch.softmax(x, 1)),
        lambda x, y: ce.dice_loss(x, y, mode="multiclass"),
        lambda x, y: ce.xlogy(torch.sigmoid(x), torch.sigmoid(x)).sum(),
    ],
)
def test_torch_compile_fullgraph(fn):
    torch._dynamo.reset()
    x = torch.randn(4, 5, dtype=torch.float64)
    y = torch.tensor([0, 1, 4, 2])
    compiled = torch.compile(fn, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x, y), fn(x, y))


@pytest.mark.parametrize("name", ["cross_entropy", "focal_loss"])
def test_jax_traced_label_smoothing_of_0_with_masked_classes_is_the_unsmoothed_loss(name):
    # a -inf logit (a masked class): smoothing's term is +inf, and a traced epsilon of 0 takes
    # none of it (0 * inf = 0), as a Python 0.0 does; epsilon > 0 gives inf, as PyTorch does
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(4, 5))).at[:, 3].set(-jnp.inf)
    y = jnp.asarray([0, 1, 2, 4])
    kw = {"gamma": 2.0, "alpha": None} if name == "focal_loss" else {}

    def loss(x, e):
        return getattr(ce, name)(x, y, axis=-1, label_smoothing=e, **kw)

    want = getattr(ce, name)(x, y, axis=-1, **kw)
    assert np.isfinite(float(want))
    for got in (
        jax.jit(loss)(x, 0.0),
        loss(x, jnp.asarray(0.0)),
        jax.vmap(lambda e: loss(x, e))(jnp.asarray([0.0, 0.1]))[0],
    ):
        assert float(got) == pytest.approx(float(want), rel=1e-12)
    assert float(jax.jit(loss)(x, 0.1)) == math.inf
    if name == "cross_entropy":
        xt = torch.tensor(np.asarray(x))
        theirs = F.cross_entropy(xt, torch.tensor(np.asarray(y)).long(), label_smoothing=0.1)
        assert float(theirs) == math.inf
    g = jax.jit(jax.grad(loss))(x, 0.0)
    np.testing.assert_allclose(g, jax.grad(lambda x: getattr(ce, name)(x, y, axis=-1, **kw))(x))
    # the masked class with class weight 0 (a padded vocabulary): its smoothing term is NaN
    cw = jnp.asarray([1.0, 2.0, 1.0, 0.0, 1.0])
    want = getattr(ce, name)(x, y, axis=-1, weight=cw, **kw)
    got = jax.jit(lambda x, e: getattr(ce, name)(x, y, axis=-1, weight=cw, label_smoothing=e, **kw))
    assert float(got(x, 0.0)) == pytest.approx(float(want), rel=1e-12)


@pytest.mark.parametrize(
    "call",
    [
        lambda a, p, y: ce.cross_entropy(a, p),
        lambda a, p, y: ce.cross_entropy(a, p, label_smoothing=0.1),
        lambda a, p, y: ce.cross_entropy(a, y, z_loss=0.1),
        lambda a, p, y: ce.focal_loss(a, y),
        lambda a, p, y: ce.nn.CrossEntropyLoss(label_smoothing=0.1)(a, p),
        lambda a, p, y: ce.dice_loss(a, y, mode="multiclass", axis=1),
    ],
    ids=["soft", "soft-smoothing", "z-loss", "focal", "module", "dice"],
)
def test_vmap_over_k_dimensional_input_on_the_generic_path(call):
    # (N, C, d) input per sample: the classes are moved to the last axis with permute (vmap
    # had no batching rule for the moveaxis it used: a RuntimeError)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 2, 3, 2, dtype=torch.float64, generator=g)
    p = torch.rand(2, 3, 2, dtype=torch.float64, generator=g).softmax(1)
    y = p.argmax(1)
    got = vmap(lambda a: call(a, p, y))(x)
    loop = torch.stack([call(a, p, y) for a in x])
    torch.testing.assert_close(got, loop, rtol=1e-12, atol=1e-14)
    grads = vmap(grad(lambda a: call(a, p, y)))(x)
    loop_grads = torch.stack([grad(lambda a: call(a, p, y))(a) for a in x])
    torch.testing.assert_close(grads, loop_grads, rtol=1e-12, atol=1e-14)
