"""Optional dependencies: the extra that installs each, and one message where one is missing.

The core needs NumPy alone; each feature that needs more names what it lacks and the extra of
``pip install 'crossentropy[...]'`` that installs it, before any work is done, instead of a
``No module named ...`` from deep inside.
"""

from __future__ import annotations

import importlib.util
from typing import NoReturn

__all__ = ["EXTRAS", "installed", "missing", "require", "reraise_missing"]

#: For each optional package, by the name it is imported as: the extra that installs it and the
#: name it is installed by.
EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("torch", "torch"),
    "jax": ("jax", "jax"),
    "dask": ("dask", "dask"),
    "distributed": ("dask", "distributed"),
    "triton": ("triton", "triton"),
    "transformers": ("transformers", "transformers"),
    "pyarrow": ("score", "pyarrow"),
    "matplotlib": ("score", "matplotlib"),
    "jinja2": ("score", "jinja2"),
    "markupsafe": ("score", "markupsafe"),
    "latex2mathml": ("score", "latex2mathml"),
    "tqdm": ("score", "tqdm"),
    "sklearn": ("score", "scikit-learn"),
}


def installed(module: str) -> bool:
    """Whether ``module`` (a top-level name) can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses it; a stub without a spec
        return False


def _line(what: str, names: list[str], extras: list[str]) -> str:
    """``what`` needs ``names``, which are not installed, and the extras that install them."""
    state = "it is" if len(names) == 1 else "they are"
    hint = f": pip install 'crossentropy[{','.join(extras)}]'" if extras else ""
    return f"{what} needs {' and '.join(names)} ({state} not installed){hint}"


def missing(what: str, modules: tuple[str, ...] | list[str]) -> str | None:
    """One line saying which of ``modules`` ``what`` (a feature, singular) needs and lacks, and
    the extras that install them all; None when every one is installed.

    >>> missing("the report", ["numpy"]) is None
    True
    >>> missing("score(engine='dask')", ["numpy", "not_a_module"])
    "score(engine='dask') needs not_a_module (it is not installed)"
    """
    lacking = [m for m in modules if not installed(m)]
    if not lacking:
        return None
    names = [EXTRAS[m][1] if m in EXTRAS else m for m in lacking]
    return _line(what, names, list(dict.fromkeys(EXTRAS[m][0] for m in modules if m in EXTRAS)))


def require(what: str, *modules: str) -> None:
    """Raise a ``ModuleNotFoundError`` with :func:`missing`'s line where ``what`` lacks one of
    ``modules``."""
    message = missing(what, modules)
    if message is not None:
        first = next(m for m in modules if not installed(m))
        raise ModuleNotFoundError(message, name=first)


def reraise_missing(what: str, exc: ModuleNotFoundError) -> NoReturn:
    """Raise ``exc`` again, as :func:`require`'s error where it is an optional package's absence
    (``what`` needs it): the caller's ``except ModuleNotFoundError`` around an import. A missing
    part of an installed package (``torch._C``: a broken install) is raised as it is."""
    top = (exc.name or "").partition(".")[0]
    if top in EXTRAS and not installed(top):
        extra, name = EXTRAS[top]
        raise ModuleNotFoundError(_line(what, [name], [extra]), name=exc.name) from exc
    raise exc
