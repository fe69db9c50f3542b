"""The documentation site's sources (the build itself is `make docs`: mkdocs build --strict)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _nav_files() -> list[str]:
    text = (ROOT / "mkdocs.yml").read_text()
    return re.findall(r":\s*([\w/.-]+\.md)\s*$", text, flags=re.MULTILINE)


def test_every_nav_page_exists_and_every_page_is_in_the_nav():
    nav = _nav_files()
    assert "index.md" in nav
    assert "demo.md" in nav
    for page in nav:
        assert (DOCS / page).is_file(), page
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages == set(nav)


@pytest.mark.parametrize("page", sorted(p.name for p in (DOCS / "api").glob("*.md")))
def test_every_api_identifier_resolves(page):
    text = (DOCS / "api" / page).read_text()
    names = re.findall(r"^::: ([\w.]+)", text, flags=re.MULTILINE)
    assert names
    for name in names:
        module, _, attr = name.rpartition(".")
        try:
            obj = importlib.import_module(name)
        except ModuleNotFoundError:
            obj = getattr(importlib.import_module(module), attr)
        assert obj.__doc__, name


def test_functional_page_lists_the_whole_public_api():
    import crossentropy

    text = (DOCS / "api" / "functional.md").read_text()
    listed = set(re.findall(r"^::: crossentropy\.(\w+)$", text, flags=re.MULTILINE))
    assert listed == set(crossentropy.__all__) - {"information"}


def _hook(name: str):
    spec = importlib.util.spec_from_file_location(name, DOCS / "hooks" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rst_hook_turns_math_into_mathml_and_roles_into_code():
    hook = _hook("rst_roles")
    page = (
        "<p>.. math::</p>\n"
        '<div class="highlight"><pre><span></span><code>a &lt; \\frac{1}{b}\n</code></pre></div>'
        "<p>see :func:<code>~numpy.log</code> and :math:<code>x^2</code></p>"
    )
    out = hook.on_page_content(page, None, None, None)
    assert '<div class="formula"><math' in out
    assert 'display="block"' in out
    assert "<mfrac><mrow><mn>1</mn></mrow><mrow><mi>b</mi></mrow></mfrac>" in out
    assert "<msup><mi>x</mi><mn>2</mn></msup>" in out
    assert "<code>numpy.log</code>" in out
    assert ":func:" not in out
    assert ":math:" not in out
    with pytest.raises(ValueError, match="cannot convert the formula"):
        hook.on_page_content(":math:<code>\\left( a</code>", None, None, None)


def test_rst_hook_sets_absolute_value_bars_without_space():
    """A bar gets no space of its own: the browser would take the closing bar of ``|e|``
    before ``\\le`` for an infix operator and space it (|e | <= d)."""
    hook = _hook("rst_roles")
    out = hook.on_page_content(":math:<code>|e| \\le \\delta</code>", None, None, None)
    bar = '<mo stretchy="false" lspace="0" rspace="0">&#x0007C;</mo>'
    assert f"{bar}<mi>e</mi>{bar}<mo>&#x02264;</mo>" in out


def test_rst_hook_sets_operator_names_apart_as_tex_does():
    """A thin space between an operator name and an ordinary symbol on either side, none
    before an opening parenthesis, none doubled between two names."""
    hook = _hook("rst_roles")
    thin = '<mspace width="0.1667em"></mspace>'

    def body(tex: str) -> str:
        out = hook.on_page_content(f":math:<code>{tex}</code>", None, None, None)
        return out.split('display="inline">')[1]

    assert f"<mi>t</mi>{thin}<mi>log</mi>{thin}<mi>p</mi>" in body("-t\\log p")
    assert f"<mi>w</mi>{thin}<mi>tanh</mi><mo stretchy" in body("w\\tanh(x - y)")
    assert f"<mi>log</mi>{thin}<mi>cosh</mi>{thin}<mi>e</mi>" in body("\\log\\cosh e")
    assert thin not in body("\\log(x) + \\exp(-x)")
    # a script stays with its operator; the space goes after the scripted name
    assert f"<msub><mi>log</mi><mi>b</mi></msub>{thin}<mi>p</mi>" in body("-\\log_b p")
    assert f"<msup><mi>tanh</mi><mn>2</mn></msup>{thin}<mi>x</mi>" in body("\\tanh^2 x")


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built by this test run (``make test``'s own build runs beside pytest)."""
    import subprocess
    import sys

    site = tmp_path_factory.mktemp("docs") / "site"
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return site


def test_the_built_site_needs_no_network(built_site):
    """Formulas are MathML and code is highlighted at build time: no page loads a script or a
    style sheet from the network, and no formula is left as LaTeX source."""
    site = built_site
    remote = re.compile(r"<(?:script|link|img)\b[^>]*(?:src|href)=\"(?:https?:)?//", re.I)
    formulas = 0
    for page in site.rglob("*.html"):
        text = page.read_text()
        assert not remote.search(text), (page, remote.search(text))
        assert ":math:" not in text, page
        assert ".. math::" not in text, page
        formulas += text.count("<math")
        for math in re.findall(r"<math\b.*?</math>", text, re.S):  # valid MathML arities
            for el in ElementTree.fromstring(math).iter():
                tag = el.tag.rpartition("}")[2]
                want = {"msub": 2, "msup": 2, "msubsup": 3, "mfrac": 2, "munder": 2}.get(tag)
                assert want is None or len(el) == want, (page, tag, math[:300])
    assert formulas > 200


def test_the_built_site_works_from_disk(built_site):
    """Opened from ``file://``: no page links from the site's root (the 404 page did), and the
    search needs no web worker or request (browsers refuse both there): its index is a script
    holding the search plugin's index, loaded by the replaced ``search/main.js``."""
    rooted = re.compile(r'(?:href|src)="/(?!/)|base_url = "/"')
    for page in built_site.rglob("*.html"):
        assert not rooted.search(page.read_text()), (page, rooted.search(page.read_text()))
    search = built_site / "search"
    script = (search / "main.js").read_text()
    assert "search_index.js" in script
    assert "Worker(" not in script
    assert "XMLHttpRequest" not in script
    prefix, _, body = (search / "search_index.js").read_text().partition(" = ")
    assert prefix == "window.crossentropySearchIndex"
    index = json.loads(body.rstrip().removesuffix(";"))
    assert index == json.loads((search / "search_index.json").read_text())
    assert any(doc["title"] == "perplexity" for doc in index["docs"])


def test_demo_page_has_the_markers_the_hook_fills():
    text = (DOCS / "demo.md").read_text()
    assert "<!-- demo:summary -->" in text
    assert "<!-- demo:figures -->" in text


#: Modules a guide needs that its examples do not import themselves.
GUIDE_NEEDS = {"scoring.md": ("pandas", "sklearn"), "llm.md": ("transformers",)}


def _imported_modules(code: str) -> set[str]:
    """The top-level modules a block imports (``import a.b``, ``from a import b``)."""
    modules = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module.partition(".")[0])
    return modules


@pytest.mark.parametrize(
    "page",
    sorted(p.name for p in (DOCS / "guides").glob("*.md")),
)
def test_guide_examples_run_in_order(page, tmp_path, monkeypatch):
    """Every Python block of a guide, executed in order in one fresh namespace (as a reader
    would paste them), with their assertions; in an empty working directory."""
    path = DOCS / "guides" / page
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)
    assert blocks, f"{page} has no Python example"
    needs = set(GUIDE_NEEDS.get(page, ()))
    for block in blocks:
        needs |= _imported_modules(block)
    for module in sorted(needs - {"crossentropy"}):
        pytest.importorskip(module)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, f"docs/guides/{page}", "exec"), namespace)


def test_home_page_examples_give_the_numbers_their_comments_show():
    """Each Python block of the home page runs in order; an expression line whose comment
    shows numbers gives those numbers (to the digits shown; ``0.9076...`` is a prefix)."""
    import numpy as np

    text = (DOCS / "index.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks
    namespace: dict[str, object] = {}
    checked = 0
    for block in blocks:
        for line in block.splitlines():
            code, _, comment = line.partition("  #")
            exec(compile(code, "docs/index.md", "single" if code.strip() else "exec"), namespace)
            shown = re.findall(r"-?\d+\.\d+", comment)
            if not shown:
                continue
            value = np.ravel(np.asarray(eval(code, namespace), dtype=float))
            assert value.size == len(shown), (line, value)
            for got, number in zip(value, shown, strict=True):
                digits = len(number.partition(".")[2])
                assert abs(got - float(number)) < 10.0**-digits, (line, got)
            checked += 1
    assert checked >= 3


#: Every API page: each documented function and class has a complete parameter table.
API_PAGES = sorted(p.name for p in (DOCS / "api").glob("*.md"))


def _parameter_table_problems(obj, name: str) -> list[str]:
    """What the site's parser (griffe, numpy style) finds wrong with ``obj``'s parameter
    table: a parameter of the signature missing, one documented that is not in it, an empty
    description, a placeholder left in the text."""
    obj = obj.final_target if obj.is_alias else obj
    members = [(name, obj)]
    if obj.is_class:
        for member, value in obj.members.items():
            value = value.final_target if value.is_alias else value
            if not member.startswith("_") and value.is_function and value.docstring:
                members.append((f"{name}.{member}", value))
    problems = []
    for label, item in members:
        if item.docstring is None:
            problems.append(f"{label}: no docstring")
            continue
        if "%(" in item.docstring.value:
            problems.append(f"{label}: a template placeholder")
        documented = {}
        # a class's arguments, or a dataclass's fields (its attributes)
        kinds = ("parameters", "attributes") if item.is_class else ("parameters",)
        for section in item.docstring.parse("numpy", warnings=False):
            if section.kind.value in kinds:
                documented.update({p.name.lstrip("*"): p for p in section.value})
        signature = item.members.get("__init__") if item.is_class else item
        if signature is None:
            continue
        signature = signature.final_target if signature.is_alias else signature
        params = [p.name for p in signature.parameters if p.name not in ("self", "cls")]
        # a grouped entry ("a, b : ...") shows the first one's type and default for all
        defaults = {p.name: str(p.default) for p in signature.parameters}
        table = re.search(
            r"^Parameters\n-+\n(.*?)(?=\n\n\w+\n-+\n|\Z)", item.docstring.value, re.S | re.M
        )
        for group in re.findall(r"^(\w+(?:, \w+)+)\b", table.group(1) if table else "", re.M):
            if len({defaults.get(n.strip()) for n in group.split(",")}) > 1:
                problems.append(f"{label}: {group} grouped, with different defaults")
        problems += [f"{label}: {p} not documented" for p in params if p not in documented]
        problems += [f"{label}: {p} not in the signature" for p in documented if p not in params]
        problems += [
            f"{label}: {p} without a description"
            for p, d in documented.items()
            if not (d.description or "").strip()
        ]
    return problems


@pytest.mark.parametrize("page", API_PAGES)
def test_api_parameter_tables_are_complete(page):
    griffe = pytest.importorskip("griffe")
    package = griffe.load(
        "crossentropy", search_paths=[str(ROOT / "src")], docstring_parser="numpy"
    )
    problems = []
    for name in re.findall(r"^::: ([\w.]+)", (DOCS / "api" / page).read_text(), re.MULTILINE):
        obj = package
        for part in name.split(".")[1:]:
            obj = obj.members[part]
        if obj.is_module:
            exported = obj.exports if obj.exports is not None else list(obj.members)
            for member in exported:
                member = member if isinstance(member, str) else member.name
                value = obj.members.get(member)
                if value is None or member.startswith("_"):
                    continue
                target = value.final_target if value.is_alias else value
                if target.is_function or target.is_class:  # constants have no table
                    problems += _parameter_table_problems(value, f"{name}.{member}")
        else:
            problems += _parameter_table_problems(obj, name)
    assert not problems, "\n".join(problems)


def test_public_docstrings_state_the_limits_the_code_holds():
    """Limits written out in public docstrings (their constants are private) are the code's."""
    from crossentropy import metrics
    from crossentropy.metrics import _calibration, _score
    from crossentropy.scoring import Comparison, _compare

    doc = metrics.ScoreAccumulator.__doc__ or ""
    assert f"up to {_score.CLASSWISE_MAX} classes" in doc
    assert f"up to {_score.CONFUSION_MAX} classes" in doc
    assert f"(at most {_score.MAX_WORST:,})" in doc
    assert f"at most {_calibration.MAX_BINS:,}" in doc
    smooth = " ".join((metrics.smooth_calibration_error.__doc__ or "").split())
    assert f"grid of {_calibration.GRID:,} cells" in smooth
    assert f"[4 / {_calibration.GRID}, 1]" in smooth
    bound = f"{_calibration.smooth_ece_bound(0.01):.1e}".replace("e-06", "e-6")
    assert f"({bound} at σ = 0.01)" in smooth
    for fn in (metrics.calibration_error, metrics.murphy_decomposition):
        assert f"1 to {_calibration.MAX_MEMORY_BINS:,}" in (fn.__doc__ or "")
    assert f"within {_compare.TIE:g} of each other" in (Comparison.__doc__ or "")
