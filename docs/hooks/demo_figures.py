"""MkDocs hook: run ``crossentropy demo`` at build time and publish what it wrote.

The figures (PNG) and the self-contained report (``demo/report.html``) are added to the site as
generated files, so nothing binary is committed and the pages always show what the current code
computes. ``demo.md`` holds two markers that this hook fills in: ``<!-- demo:summary -->`` (the
printed summary) and ``<!-- demo:figures -->`` (every figure with its title and caption).
The run is seeded, so the output is the same on every build.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

_STATE: dict[str, Any] = {}
_FOLDER = "demo"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Run the demo (the full run, as ``make demo``: a few seconds) into a temporary folder and
    add its outputs to the site."""
    from crossentropy.cli._demo import run_demo, summary_lines

    with tempfile.TemporaryDirectory() as tmp:
        done = run_demo(tmp)
        for path in sorted(Path(tmp).iterdir()):
            name = "report.html" if path.name == "index.html" else path.name
            files.append(File.generated(config, f"{_FOLDER}/{name}", content=path.read_bytes()))
    _STATE["summary"] = summary_lines(done.results)
    _STATE["figures"] = done.figures
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Fill the markers of ``demo.md`` with the summary and the figures of this build's run."""
    if page.file.src_uri != "demo.md":
        return markdown
    summary = "```text\n" + "\n".join(_STATE["summary"]) + "\n```"
    blocks = []
    for fig in _STATE["figures"]:
        blocks.append(
            f"### {fig['title']}\n\n![{fig['title']}]({_FOLDER}/{fig['file']})\n\n"
            f"*{fig['caption']}*\n"
        )
    return markdown.replace("<!-- demo:summary -->", summary).replace(
        "<!-- demo:figures -->", "\n".join(blocks)
    )
