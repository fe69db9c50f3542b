"""MkDocs hook: render the reStructuredText bits of the numpydoc docstrings.

The docstrings use Sphinx's ``.. math::`` blocks and the ``:math:``, ``:func:``, ``:class:``,
``:meth:``, ``:mod:`` and ``:data:`` roles, which mkdocstrings passes through as text. After a
page is rendered, this hook turns the math into MathML at build time (``latex2mathml``; browsers
draw MathML themselves, so the formulas need no script and no network) and the other roles
into plain code spans. A formula that does not convert fails the build.
"""

from __future__ import annotations

import html
import re
from typing import Any

from latex2mathml.converter import convert

_BLOCK = re.compile(
    r"<p>\.\. math::</p>\s*<div class=\"highlight\"><pre>(?:<span></span>)?<code>(.*?)</code>"
    r"</pre></div>",
    re.DOTALL,
)
_INLINE_MATH = re.compile(r":math:<code>(.*?)</code>", re.DOTALL)
_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|obj):<code>~?(.*?)</code>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


_TEXT = re.compile(r"(\\text(?:tt|rm|it|bf|sf)?\{)([^{}]*)\}")

# An operator name (\log, \tanh, \max: an identifier of two or more letters, alone or as the
# base of a sub- or superscript: \log_b, \tanh^2) and what is set beside it: a thin space, as
# TeX sets one between an operator and an ordinary symbol (not before an opening
# parenthesis, not after an operator or at the start of a row, never inside the script).
_NAME = r"<mi>[A-Za-z]{2,}</mi>"
_SCRIPT = r"(?:<mi>[^<]*</mi>|<mn>[^<]*</mn>|<mrow>(?:(?!</?mrow>).)*</mrow>)"
_ATOM = (
    rf"(?:(?<!<msub>)(?<!<msup>)(?<!<msubsup>){_NAME}"
    rf"|<(?P<s>msub|msup|msubsup)>{_NAME}{_SCRIPT}{{1,2}}</(?P=s)>)"
)
_THIN = '<mspace width="0.1667em"></mspace>'
_AFTER_NAME = re.compile(rf"({_ATOM})(?!<mo|</|<mspace)")
_BEFORE_NAME = re.compile(rf"(</mi>|</mn>|</msub>|</msup>|</msubsup>|&#x00029;</mo>)({_ATOM})")


# A bar (|x|) is an operator of MathML's dictionary whose form the browser guesses from its
# place: "infix" between two terms, with space on both sides (|e | - d). Set as TeX sets an
# absolute value: no space of its own.
_BAR = re.compile(r'<mo stretchy="false">&#x0007C;</mo>')


def _mathml(code: str, display: str) -> str:
    r"""The MathML of a rendered code span's LaTeX source (tags dropped, entities decoded;
    ``\_`` inside ``\text{...}``, which the converter would show as written, made ``_``)."""
    tex = html.unescape(_TAG.sub("", code)).strip()
    tex = _TEXT.sub(lambda m: m[1] + m[2].replace("\\_", "_") + "}", tex)
    try:
        mathml = str(convert(tex, display=display))
    except Exception as exc:  # a formula the converter cannot read: stop the build
        raise ValueError(f"cannot convert the formula {tex!r} to MathML: {exc}") from exc
    mathml = _BAR.sub('<mo stretchy="false" lspace="0" rspace="0">&#x0007C;</mo>', mathml)
    mathml = _BEFORE_NAME.sub(lambda m: m[1] + _THIN + m[2], mathml)
    return _AFTER_NAME.sub(lambda m: m[1] + _THIN, mathml)


def on_page_content(content: str, page: Any, config: Any, files: Any) -> str:
    """Rewrite ``.. math::`` blocks and reST roles in a rendered page."""
    if ":math:" not in content and ".. math::" not in content and "</code>" not in content:
        return content
    content = _BLOCK.sub(
        lambda m: f'<div class="formula">{_mathml(m[1], "block")}</div>', content
    )
    content = _INLINE_MATH.sub(lambda m: _mathml(m[1], "inline"), content)
    return _ROLE.sub(lambda m: f"<code>{m[1]}</code>", content)
