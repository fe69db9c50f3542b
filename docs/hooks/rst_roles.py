"""MkDocs hook: render the reStructuredText bits of the numpydoc docstrings.

The docstrings use Sphinx's ``.. math::`` blocks and the ``:math:``, ``:func:``, ``:class:``,
``:meth:``, ``:mod:`` and ``:data:`` roles, which mkdocstrings passes through as text. After a
page is rendered, this hook turns the math into MathJax input (``\\[...\\]`` and ``\\(...\\)``
inside ``arithmatex`` elements, typeset by ``javascripts/mathjax.js``) and the other roles into
plain code spans. Offline, the formulas stay readable as LaTeX source.
"""

from __future__ import annotations

import html
import re
from typing import Any

_BLOCK = re.compile(
    r"<p>\.\. math::</p>\s*<div class=\"highlight\"><pre>(?:<span></span>)?<code>(.*?)</code>"
    r"</pre></div>",
    re.DOTALL,
)
_INLINE_MATH = re.compile(r":math:<code>(.*?)</code>", re.DOTALL)
_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|obj):<code>~?(.*?)</code>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def _tex(code: str) -> str:
    """The LaTeX source of a rendered code span (tags dropped, entities kept escaped)."""
    return html.escape(html.unescape(_TAG.sub("", code)), quote=False).strip()


def on_page_content(content: str, page: Any, config: Any, files: Any) -> str:
    """Rewrite ``.. math::`` blocks and reST roles in a rendered page."""
    if ":math:" not in content and ".. math::" not in content and "</code>" not in content:
        return content
    content = _BLOCK.sub(lambda m: f'<div class="arithmatex">\\[{_tex(m[1])}\\]</div>', content)
    content = _INLINE_MATH.sub(
        lambda m: f'<span class="arithmatex">\\({_tex(m[1])}\\)</span>', content
    )
    return _ROLE.sub(lambda m: f"<code>{m[1]}</code>", content)
