"""The package as a user meets it: import cost, public API, the command line."""

from __future__ import annotations

import subprocess
import sys

import crossentropy as ce


def test_import_pulls_in_no_framework():
    code = (
        "import sys, crossentropy, crossentropy.information\n"
        "bad = [m for m in ('torch', 'jax', 'dask') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


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


def test_demo_prints_the_worked_examples():
    out = _cli("demo")
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
