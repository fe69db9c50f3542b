"""crossentropy.fused.linear_cross_entropy against the functional core on the full logits."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import crossentropy as ce
from crossentropy.fused import linear_cross_entropy

OPTIONS = [
    {},
    {"label_smoothing": 0.1},
    {"z_loss": 1e-3},
    {"softcap": 3.0},
    {"label_smoothing": 0.2, "z_loss": 1e-2, "softcap": 2.0},
]


def _case(n, d, v, dtype=torch.float64, seed=0, ignore=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    w = torch.randn(v, d, generator=g, dtype=dtype) / math.sqrt(d)
    b = torch.randn(v, generator=g, dtype=dtype)
    y = torch.randint(0, v, (n,), generator=g)
    if ignore and n > 2:
        y[1] = -100
    return x, w, b, y


def _grads(fn, x, w, b):
    leaves = [t.detach().clone().requires_grad_(True) for t in (x, w, b)]
    out = fn(*leaves)
    cot = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).reshape(out.shape)
    grads = torch.autograd.grad((out * cot).sum(), leaves)
    return out.detach(), grads


@pytest.mark.parametrize(
    ("shape", "chunk", "options", "reduction"),
    list(
        itertools.product(
            [(1, 4, 7), (5, 3, 11), (13, 6, 9)],
            [1, 4, None],
            OPTIONS,
            ["mean", "sum", "none"],
        )
    ),
)
def test_matches_cross_entropy_of_the_full_logits(shape, chunk, options, reduction):
    x, w, b, y = _case(*shape)
    kw = {**options, "reduction": reduction}
    ours = _grads(
        lambda x, w, b: linear_cross_entropy(x, w, y, bias=b, chunk_size=chunk, **kw), x, w, b
    )
    ref = _grads(
        lambda x, w, b: ce.cross_entropy(x @ w.T + b, y, mean_divisor="count", **kw), x, w, b
    )
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-12, atol=1e-12)
    for a, r in zip(ours[1], ref[1], strict=True):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)


def test_without_bias_and_with_batch_dimensions():
    x, w, _, y = _case(12, 4, 6)
    x3, y3 = x.reshape(3, 4, 4), y.reshape(3, 4)
    out = linear_cross_entropy(x3, w, y3, reduction="none", chunk_size=5)
    assert out.shape == (3, 4)
    ref = ce.cross_entropy(x @ w.T, y, reduction="none")
    torch.testing.assert_close(out.reshape(-1), ref)


def test_weight_tied_to_an_embedding_gets_both_gradients():
    x, w, _, y = _case(6, 4, 9, ignore=False)
    tokens = torch.tensor([1, 3, 5])
    w1 = w.clone().requires_grad_(True)
    h = x + w1[tokens].sum(0)  # the embedding lookup uses the same weight
    linear_cross_entropy(h, w1, y, chunk_size=2).backward()
    w2 = w.clone().requires_grad_(True)
    h2 = x + w2[tokens].sum(0)
    ce.cross_entropy(h2 @ w2.T, y).backward()
    torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-10, atol=1e-12)


def test_all_ignored_batch_follows_the_core_convention():
    x, w, b, _ = _case(4, 3, 5)
    y = torch.full((4,), -100)
    assert math.isnan(float(linear_cross_entropy(x, w, y, bias=b)))
    wl = w.clone().requires_grad_(True)
    out = linear_cross_entropy(x, wl, y, bias=b, empty_mean=0.0)
    out.backward()
    assert float(out.detach()) == 0.0
    assert not wl.grad.any()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_half_precision_accumulates_in_float32(dtype):
    x, w, b, y = _case(16, 8, 13, dtype=torch.float32)
    xs, ws, bs = (t.to(dtype) for t in (x, w, b))
    ours = _grads(lambda x, w, b: linear_cross_entropy(x, w, y, bias=b, chunk_size=5), xs, ws, bs)
    ref = _grads(
        lambda x, w, b: ce.cross_entropy((x @ w.T + b).float(), y),
        xs.float(),
        ws.float(),
        bs.float(),
    )
    assert ours[0].dtype == dtype
    assert all(g.dtype == dtype for g in ours[1])
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-5
    torch.testing.assert_close(ours[0].float(), ref[0], rtol=tol, atol=tol)
    for a, r in zip(ours[1], ref[1], strict=True):
        torch.testing.assert_close(a.float(), r, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"weight": torch.zeros(5, 2)}, ValueError, "weight"),
        ({"target": torch.zeros(3, dtype=torch.long)}, ValueError, "target"),
        ({"target": torch.zeros(4)}, TypeError, "target"),
        ({"target": torch.tensor([0, 1, 9, 2])}, ValueError, "label 9"),
        ({"bias": torch.zeros(4)}, ValueError, "bias"),
        ({"reduction": "batchmean"}, ValueError, "reduction"),
        ({"chunk_size": 0}, ValueError, "chunk_size"),
        ({"label_smoothing": 1.5}, ValueError, "label_smoothing"),
    ],
)
def test_bad_inputs(kwargs, error, match):
    args = {
        "input": torch.zeros(4, 3),
        "weight": torch.zeros(5, 3),
        "target": torch.zeros(4, dtype=torch.long),
    }
    args.update({k: v for k, v in kwargs.items() if k in args})
    rest = {k: v for k, v in kwargs.items() if k not in args}
    with pytest.raises(error, match=match):
        linear_cross_entropy(args["input"], args["weight"], args["target"], **rest)


# ----------------------------------------------------------------------------------------------
# The module: crossentropy.nn.LinearCrossEntropyLoss


def _module_pair(bias, **kw):
    from crossentropy.nn import LinearCrossEntropyLoss

    torch.manual_seed(0)
    ref = torch.nn.LinearCrossEntropyLoss(6, 11, bias=bias, dtype=torch.float64, **kw)
    ours = LinearCrossEntropyLoss(6, 11, bias=bias, dtype=torch.float64, **kw)
    ours.load_state_dict(ref.state_dict())  # the same parameter names as PyTorch's module
    return ours, ref


def _module_value_and_grads(module, x, y):
    x = x.detach().clone().requires_grad_(True)
    out = module(x, y)
    leaves = [x, *module.parameters()]
    return out.detach(), torch.autograd.grad(out, leaves)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize(
    "kw",
    [{}, {"reduction": "sum"}, {"label_smoothing": 0.1}, {"ignore_index": None}],
    ids=["mean", "sum", "smoothing", "ignore-none"],
)
def test_module_matches_torch_linear_cross_entropy_loss(bias, kw):
    ours, ref = _module_pair(bias, **kw)
    x = torch.randn(9, 6, dtype=torch.float64)
    y = torch.randint(0, 11, (9,))
    if "ignore_index" not in kw:  # our default is CrossEntropyLoss's -100; PyTorch's is None
        y[2] = -100
        ref.ignore_index = -100
    a, b = _module_value_and_grads(ours, x, y), _module_value_and_grads(ref, x, y)
    torch.testing.assert_close(a[0], b[0], rtol=1e-12, atol=1e-12)
    for ga, gb in zip(a[1], b[1], strict=True):
        torch.testing.assert_close(ga, gb, rtol=1e-10, atol=1e-12)


def test_module_extras_pickle_move_and_repr():
    import copy
    import pickle

    from crossentropy.nn import LinearCrossEntropyLoss

    module = LinearCrossEntropyLoss(4, 7, bias=True, z_loss=1e-3, softcap=5.0, chunk_size=2)
    x, y = torch.randn(5, 4), torch.randint(0, 7, (5,))
    expected = ce.cross_entropy(module.linear(x), y, z_loss=1e-3, softcap=5.0, mean_divisor="count")
    torch.testing.assert_close(module(x, y), expected)
    for clone in (pickle.loads(pickle.dumps(module)), copy.deepcopy(module)):
        torch.testing.assert_close(clone(x, y), module(x, y))
    moved = module.to(torch.float64)
    assert moved.linear.weight.dtype == torch.float64
    assert moved(x.double(), y).dtype == torch.float64
    assert "z_loss=0.001" in repr(module)
    assert "softcap=5.0" in repr(module)


def test_module_weight_tied_to_an_embedding():
    from crossentropy.nn import LinearCrossEntropyLoss

    embedding = torch.nn.Embedding(9, 4)
    module = LinearCrossEntropyLoss(4, 9)
    module.linear.weight = embedding.weight
    tokens = torch.tensor([1, 4, 4, 8])
    out = module(embedding(tokens), torch.tensor([4, 4, 8, 0]))
    out.backward()
    assert embedding.weight.grad is not None
    assert embedding.weight.grad[1].abs().sum() > 0


@pytest.mark.parametrize("backend", ["eager", "inductor"])
def test_module_under_torch_compile(backend):
    from crossentropy.nn import LinearCrossEntropyLoss

    torch._dynamo.reset()
    module = LinearCrossEntropyLoss(5, 13, bias=True, label_smoothing=0.1, chunk_size=3)
    x, y = torch.randn(7, 5), torch.randint(0, 13, (7,))
    compiled = torch.compile(module, backend=backend, fullgraph=backend == "eager")
    a, b = _module_value_and_grads(compiled, x, y), _module_value_and_grads(module, x, y)
    torch.testing.assert_close(a[0], b[0])
    for ga, gb in zip(a[1], b[1], strict=True):
        torch.testing.assert_close(ga, gb)
