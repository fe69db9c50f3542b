"""MkDocs hook: the built site works opened from disk (``file://``), offline.

- Search: browsers refuse a ``file://`` page's web worker and its request for
  ``search/search_index.json``, which the theme's search uses. The index is also written as a
  script (``search/search_index.js``) and the theme's ``search/main.js`` is replaced by
  ``search.js`` of this folder, which loads both with ``<script>`` tags and searches on the page.
- ``404.html``: MkDocs writes it with links from the site's root (``/css/...``), for a server
  to send from any path; opened from disk (or served under a sub-path) it had no styles and
  no working links. It sits at the root, so the links become relative to it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig

_HERE = Path(__file__).parent

# href="/x", src="/x" and the page's base_url "/" of a root-relative 404 page (not "//host")
_ROOT_LINK = re.compile(r'((?:href|src)=")/(?!/)')
_ROOT_BASE = re.compile(r'(var base_url = )"/"')


def on_post_build(config: MkDocsConfig) -> None:
    """After the search plugin has written its index: the script index, the search script,
    the relative 404 page."""
    site = Path(config.site_dir)
    search = site / "search"
    index = search / "search_index.json"
    if index.is_file():
        data = json.loads(index.read_text(encoding="utf-8"))
        script = "window.crossentropySearchIndex = " + json.dumps(data) + ";\n"
        (search / "search_index.js").write_text(script, encoding="utf-8")
        (search / "main.js").write_text((_HERE / "search.js").read_text(encoding="utf-8"))
    page = site / "404.html"
    if page.is_file():
        text = _ROOT_BASE.sub(r'\1"."', _ROOT_LINK.sub(r"\1", page.read_text(encoding="utf-8")))
        page.write_text(text, encoding="utf-8")
