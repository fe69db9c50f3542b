"""The package as a user meets it: import cost, public API, the command line, a first call on
every backend, and test modules that run with NumPy alone (no PyTorch, JAX, Dask,
array-api-strict or optax importable)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import crossentropy as ce

ROOT = Path(__file__).resolve().parents[1]


def test_import_pulls_in_no_framework():
    """Nor do the submodules that need none, reached as attributes of the package."""
    code = (
        "import sys, crossentropy as ce\n"
        "assert ce.information and ce.grad and ce.metrics and ce.scoring and ce.fused\n"
        "assert ce.metrics.log_loss([0, 1], [[0.8, 0.2], [0.3, 0.7]]) > 0\n"
        "bad = [m for m in ('torch', 'jax', 'dask') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_version_is_one_number_everywhere():
    from importlib.metadata import version

    out = subprocess.run(
        [sys.executable, "-m", "crossentropy", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert out.stdout.strip() == f"crossentropy {ce.__version__}"
    assert version("crossentropy") == ce.__version__  # the installed metadata reads it too


def test_the_license_ships_with_the_package():
    """The metadata's MIT licence has its text in the distribution (PEP 639 ``License-File``)."""
    from importlib.metadata import metadata

    meta = metadata("crossentropy")
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")


def test_all_is_sorted_and_complete():
    assert ce.__all__ == sorted(ce.__all__)
    for name in ce.__all__:
        assert getattr(ce, name) is not None


# Configuration, not formulas: examples but no math.
SETTINGS = {"get_validation", "set_validation", "validation"}


def test_public_functions_have_math_and_examples():
    from crossentropy import grad, information

    for module in (ce, grad, information):
        for name in module.__all__:
            obj = getattr(module, name)
            if callable(obj):
                doc = obj.__doc__ or ""
                assert name in SETTINGS or ".. math::" in doc, name
                assert ">>> " in doc, name
                assert "Examples" in doc, name


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crossentropy.cli", *args], capture_output=True, text=True
    )


def test_demo_prints_the_worked_examples(tmp_path):
    out = _cli("demo", "--quick", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "0.9076" in out.stdout
    assert "bits" in out.stdout
    assert "Traceback" not in out.stderr


def test_unknown_command_exits_2_without_traceback():
    out = _cli("frobnicate")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr


def test_no_command_exits_2():
    out = _cli()
    assert out.returncode == 2


def test_backend_roundtrip(backend):
    x = backend.asarray([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
    y = backend.asarray([1, 2])
    out = ce.cross_entropy(x, y)
    assert backend.is_native(out)
    assert out.dtype == x.dtype
    np.testing.assert_allclose(backend.to_numpy(out), 0.9076059, rtol=1e-6)


# The array libraries a test module may import only through ``pytest.importorskip``.
FRAMEWORKS = ("torch", "jax", "jaxlib", "dask", "array_api_strict", "optax")

# Run pytest where importing any of FRAMEWORKS raises ModuleNotFoundError (a finder ahead of
# the others; not None in sys.modules, which libraries that look there would trip over). No
# "-q": the project's addopts has one already, and "-qq" would hide the "N passed" line.
NO_FRAMEWORKS = """
import sys

class NoFrameworks:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {frameworks!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, NoFrameworks())
import pytest

sys.exit(pytest.main([{module!r}, "-p", "no:cacheprovider"]))
"""


@pytest.mark.parametrize("module", ["tests/test_metrics.py", "tests/test_information.py"])
def test_module_runs_and_passes_with_numpy_alone(module):
    code = NO_FRAMEWORKS.format(frameworks=FRAMEWORKS, module=module)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    tail = out.stdout[-4000:] + out.stderr[-2000:]
    assert out.returncode == 0, tail
    assert re.search(r"\b[1-9][0-9]* passed", out.stdout), tail
    assert "skipped" in out.stdout, tail  # the tests that need a framework skip


def test_no_module_imports_another_modules_underscore_names():
    """Cross-module imports go through documented internal modules: a name imported from
    another module never starts with an underscore (modules themselves may: ``_lib``)."""
    import ast
    import importlib.util
    from pathlib import Path

    root = Path(ce.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("crossentropy"):
                for alias in node.names:
                    if not alias.name.startswith("_"):
                        continue
                    full = f"{node.module}.{alias.name}"
                    if importlib.util.find_spec(full) is None:  # a name, not a module
                        offenders.append(f"{path.relative_to(root)}: {full}")
    assert offenders == []
