"""Optional dependencies (``crossentropy._lib.extras``): a feature whose extra is missing says
what it needs and which extra installs it, in one line, before any work is done."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crossentropy._lib import extras
from crossentropy.cli import main

ROOT = Path(__file__).resolve().parents[1]

# A child that cannot import the packages BLOCKED (a finder ahead of the others), runs each of
# CALLS and prints what each raised.
CHILD = """
import json, sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name in {blocked!r} or name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, Blocked())
out = {{}}
for label, code in {calls!r}.items():
    try:
        exec(code, {{}})
        out[label] = None
    except Exception as exc:
        out[label] = [type(exc).__name__, str(exc)]
print(json.dumps(out))
"""


def _blocked(blocked: set[str], calls: dict[str, str]) -> dict[str, list[str] | None]:
    code = CHILD.format(blocked=blocked, calls=calls)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, list[str] | None] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_torch_and_jax_modules_name_their_extra_when_missing():
    got = _blocked(
        {"torch", "jax"},
        {
            "core": "import crossentropy as ce; ce.cross_entropy([[1.0, 2.0]], [1])",
            "nn": "import crossentropy.nn",
            "fused": "from crossentropy.fused import linear_cross_entropy",
            "kl": "import crossentropy.fused as f; f.linear_kl_div",
            "integrations": "import crossentropy.integrations",
            "distributed": "from crossentropy.distributed import vocab_parallel_cross_entropy",
            "jax": "import crossentropy.fused.jax",
        },
    )
    assert got["core"] is None  # NumPy alone
    torch = "needs torch (it is not installed): pip install 'crossentropy[torch]'"
    assert got["nn"] == ["ModuleNotFoundError", f"crossentropy.nn {torch}"]
    assert got["fused"] == [
        "ModuleNotFoundError",
        f"crossentropy.fused.linear_cross_entropy {torch}",
    ]
    assert got["kl"] == ["ModuleNotFoundError", f"crossentropy.fused.linear_kl_div {torch}"]
    assert got["integrations"] == ["ModuleNotFoundError", f"crossentropy.integrations {torch}"]
    assert got["distributed"] == [
        "ModuleNotFoundError",
        f"crossentropy.distributed.vocab_parallel_cross_entropy {torch}",
    ]
    assert got["jax"] == [
        "ModuleNotFoundError",
        "crossentropy.fused.jax needs jax (it is not installed): pip install 'crossentropy[jax]'",
    ]


def test_the_transformers_integration_names_its_extra_when_missing():
    got = _blocked({"transformers"}, {"hf": "import crossentropy.integrations.transformers"})
    assert got["hf"] == [
        "ModuleNotFoundError",
        "crossentropy.integrations.transformers needs transformers (it is not installed): "
        "pip install 'crossentropy[transformers]'",
    ]


def test_a_broken_install_is_not_called_missing():
    """A missing part of an installed package (torch._C: a broken wheel) is raised as it is:
    installing the extra would not help."""
    got = _blocked({"torch._C"}, {"nn": "import crossentropy.nn"})
    assert got["nn"] == ["ModuleNotFoundError", "No module named 'torch._C'"]


def test_a_stub_module_without_a_spec_counts_as_not_installed(monkeypatch):
    import types

    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    assert not extras.installed("tqdm")
    assert extras.installed("numpy")


def test_every_package_is_in_the_extra_it_is_named_with():
    """EXTRAS agrees with the package's optional dependencies (pyproject.toml's, as installed)."""
    import importlib.metadata
    import re

    extra_of: dict[str, set[str]] = {}
    for line in importlib.metadata.requires("crossentropy") or []:
        found = re.search(r"extra == [\"']([a-z]+)[\"']", line)
        if found:
            name = re.split(r"[\[<>=;! ]", line, maxsplit=1)[0].lower()
            extra_of.setdefault(found.group(1), set()).add(name)
    for module, (extra, package) in extras.EXTRAS.items():
        assert package.lower() in extra_of[extra], (module, extra, package)


def test_a_missing_package_of_another_kind_is_raised_as_it_is():
    try:
        import left_pad  # type: ignore[import-not-found]  # noqa: F401
    except ModuleNotFoundError as exc:
        error = exc
    with pytest.raises(ModuleNotFoundError, match="No module named 'left_pad'") as info:
        extras.reraise_missing("this feature", error)
    assert info.value is error


@pytest.fixture
def without(monkeypatch):
    """``without(*modules)``: the feature checks see those packages as not installed."""

    def hide(*modules: str) -> None:
        real = extras.installed
        monkeypatch.setattr(extras, "installed", lambda m: m not in modules and real(m))

    return hide


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "preds.csv"
    path.write_text("y,p_a,p_b\na,0.8,0.2\nb,0.3,0.7\n")
    return path


def test_scoring_names_pyarrow_and_its_extra(without, tmp_path):
    from crossentropy.scoring import kaggle_score, score

    without("pyarrow")
    line = "score needs pyarrow (it is not installed): pip install 'crossentropy[score]'"
    with pytest.raises(ModuleNotFoundError) as info:
        score(np.array([[0.8, 0.2], [0.3, 0.7]]), target=np.array([0, 1]))
    assert str(info.value) == line
    assert info.value.name == "pyarrow"
    with pytest.raises(ModuleNotFoundError, match=r"^kaggle_score needs pyarrow \(it is not"):
        kaggle_score(None, None, "id")


def test_the_dask_engine_names_both_extras(without):
    from crossentropy.scoring import score

    without("distributed")
    with pytest.raises(ModuleNotFoundError) as info:
        score(np.array([[0.8, 0.2], [0.3, 0.7]]), target=np.array([0, 1]), engine="dask")
    assert str(info.value) == (
        "score(engine='dask') needs distributed (it is not installed): "
        "pip install 'crossentropy[score,dask]'"
    )


def test_the_report_names_what_it_draws_with(without):
    from crossentropy.scoring import score

    report = score(np.array([[0.8, 0.2], [0.3, 0.7]]), target=np.array([0, 1]), bootstrap=0)
    without("matplotlib", "jinja2")
    line = (
        "the HTML report needs matplotlib and jinja2 (they are not installed): "
        "pip install 'crossentropy[score]'"
    )
    with pytest.raises(ModuleNotFoundError) as info:
        report.html()
    assert str(info.value) == line


def test_cli_names_the_missing_package_in_one_line(without, tmp_path, capsys):
    path = _csv(tmp_path)
    without("pyarrow")
    assert main(["score", str(path), "--target", "y", "--proba-cols", "p_*"]) == 2
    assert capsys.readouterr().err == (
        "crossentropy score: error: score needs pyarrow (it is not installed): "
        "pip install 'crossentropy[score]'\n"
    )


def test_cli_checks_the_report_packages_before_scoring(without, tmp_path, capsys, monkeypatch):
    import crossentropy.scoring as scoring

    path, out = _csv(tmp_path), tmp_path / "report.html"
    called = []
    monkeypatch.setattr(scoring, "score", lambda *a, **k: called.append(1))
    without("matplotlib")
    args = ["score", str(path), "--target", "y", "--proba-cols", "p_*", "--report", str(out)]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "crossentropy score: error: the HTML report needs matplotlib (it is not installed): "
        "pip install 'crossentropy[score]'\n"
    )
    assert called == []
    assert not out.exists()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_scores_without_tqdm_and_progress_asks_for_it(
    without, tmp_path, capsys, monkeypatch
):
    path = _csv(tmp_path)
    without("tqdm")
    stream = _Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    args = ["score", str(path), "--target", "y", "--proba-cols", "p_*", "--json"]
    assert main(args) == 0  # no bar where tqdm is not installed
    assert json.loads(capsys.readouterr().out)["n"] == 2
    assert stream.getvalue() == ""
    assert main([*args, "--progress"]) == 2
    assert stream.getvalue() == (
        "crossentropy score: error: a progress bar needs tqdm (it is not installed): "
        "pip install 'crossentropy[score]'\n"
    )


def test_demo_names_every_package_it_draws_with(without, tmp_path, capsys):
    without("latex2mathml")
    out = tmp_path / "report"
    assert main(["demo", "--quick", "--out", str(out)]) == 1
    assert capsys.readouterr().err == (
        "crossentropy demo: error: running the digits experiments needs latex2mathml (it is not "
        "installed): pip install 'crossentropy[score]'\n"
    )
    assert not out.exists()
