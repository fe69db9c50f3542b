"""Self-contained HTML reports: figures as base64 PNG data URIs, files written atomically.

A small private helper shared by the command-line reports (``crossentropy demo``, ``crossentropy
score``). It imports matplotlib only inside :func:`figure_to_data_uri` and :func:`save_png`, so
importing this module stays cheap.

Typical use::

    fig = ...  # a matplotlib Figure
    uri = figure_to_data_uri(fig)
    page = html_page("Report", [f"<h2>Loss</h2>{img_tag(uri, 'the loss', 'What it shows.')}"])
    write_atomic(out / "index.html", page)
"""

from __future__ import annotations

import base64
import html
import io
import os
import secrets
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "check_output_path",
    "escape",
    "figure_to_data_uri",
    "figure_to_png",
    "html_page",
    "html_table",
    "img_tag",
    "png_to_data_uri",
    "scoped_css",
    "write_atomic",
]

#: Default resolution of the PNGs (dots per inch).
DPI = 100

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.5; }
h1, h2, h3 { line-height: 1.2; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .92em; display: block;
        max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: .3em .6em; }
th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1.2em 0; overflow-x: auto; }
figure img { max-width: 100%; min-width: 480px; height: auto; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; }
code { background: #f5f5f5; padding: 0 .2em; }
p.note { color: #555; font-size: .9em; }
div.row { display: flex; flex-wrap: wrap; gap: 1em; }
div.row figure { flex: 1 1 45%; min-width: 320px; }
div.formula { overflow-x: auto; overflow-y: hidden; margin: .6em 0; padding: .3em 0;
              font-size: 1.1em; }
math { font-family: "Latin Modern Math", "STIX Two Math", "Cambria Math",
       "DejaVu Math TeX Gyre", "Noto Sans Math", math; }
mtd { text-align: left; }
"""


def scoped_css(css: str, root: str) -> str:
    """``css`` with every rule limited to the elements inside ``root`` (a CSS selector), the
    ``body`` rule applying to ``root`` itself: a page's style for a fragment embedded in
    another page (a notebook's output) that leaves the host page alone.

    Parameters
    ----------
    css : str
        Plain rules, ``selectors { declarations }``, no at-rules or nesting.
    root : str
        The selector of the fragment's outer element, ``.ce-report`` say.
    """
    rules = []
    for rule in css.split("}"):
        if not rule.strip():
            continue
        selectors, declarations = rule.split("{", 1)
        scoped = [
            root if sel.strip() == "body" else f"{root} {sel.strip()}"
            for sel in selectors.split(",")
        ]
        rules.append(f"{', '.join(scoped)} {{{declarations}}}")
    return "\n".join(rules) + "\n"


def escape(text: object) -> str:
    """HTML-escape ``str(text)`` (quotes included)."""
    return html.escape(str(text), quote=True)


def figure_to_png(fig: Any, *, dpi: int = DPI) -> bytes:
    """Render a matplotlib figure to PNG bytes (deterministic: no timestamp metadata).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to render.
    dpi : int, default 100
        Resolution.

    Returns
    -------
    bytes
        The PNG file's content.
    """
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings():  # a name in a script the font lacks: drawn as a box
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def figure_to_data_uri(fig: Any, *, dpi: int = DPI) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI, for ``<img src=...>``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to render.
    dpi : int, default 100
        Resolution.

    Returns
    -------
    str
        The data URI.
    """
    return png_to_data_uri(figure_to_png(fig, dpi=dpi))


def png_to_data_uri(png: bytes) -> str:
    """PNG bytes as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def img_tag(uri: str, alt: str, caption: str | None = None) -> str:
    """A ``<figure>`` holding the image ``uri`` and, if given, a caption.

    Parameters
    ----------
    uri : str
        Image source (a data URI for a self-contained page).
    alt : str
        Alternative text.
    caption : str, optional
        One line saying what the figure shows (escaped).
    """
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{escape(uri)}" alt="{escape(alt)}">{cap}</figure>'


def html_table(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, numeric: Sequence[bool] = ()
) -> str:
    """An HTML table; every cell is escaped, cells flagged in ``numeric`` are right-aligned.

    Parameters
    ----------
    header : sequence of str
        Column titles.
    rows : iterable of sequences
        The cells (converted with ``str``; format numbers before passing them).
    numeric : sequence of bool, optional
        Per column: right-align it.
    """
    flags = list(numeric) + [False] * (len(header) - len(numeric))
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{escape(c)}</td>' if flag else f"<td>{escape(c)}</td>"
            for c, flag in zip(row, flags, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def html_page(title: str, sections: Iterable[str], *, css: str = CSS) -> str:
    """A complete, self-contained HTML5 page (inline CSS, no external resources).

    Parameters
    ----------
    title : str
        Page title, also the ``<h1>`` (escaped).
    sections : iterable of str
        HTML fragments, inserted as they are (escape any text in them).
    css : str, optional
        Inline style sheet.
    """
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{css}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )


def check_output_path(path: str | os.PathLike[str], inputs: Iterable[str] = ()) -> None:
    """Refuse an output path that a written file must not replace, before any work is done.

    Only a regular file this process may write is ever replaced: a symbolic link, a device
    node, a FIFO, a socket, a folder or a read-only file at ``path`` is refused, as are a path
    that ends with a separator (a folder's),
    a missing or unwritable folder, and one of the ``inputs`` (the same file, by any name).

    Parameters
    ----------
    path : path-like
        The destination.
    inputs : iterable of str
        The files the output was (or will be) computed from.

    Raises
    ------
    TypeError
        ``path`` is not a path.
    ValueError
        Naming the path and the reason.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a file path (str or os.PathLike); got {type(path).__name__}")
    if not os.fspath(path):
        raise ValueError("path must name a file; got an empty path")
    if os.fspath(path).endswith(("/", os.sep)):
        raise ValueError(f"{path}: names a folder (it ends with a separator); give a file path")
    dest = Path(path)
    try:  # first: a longer name is an OSError of every look at the file
        longest = os.pathconf(dest.absolute().parent, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # (not known here: the checks below say)
        longest = None
    if longest is not None and len(os.fsencode(dest.name)) > longest:
        raise ValueError(
            f"{path}: cannot write: the file name is {len(os.fsencode(dest.name))} bytes long, "
            f"more than the folder's file system takes ({longest})"
        )
    try:
        link, there = dest.is_symlink(), dest.exists()
    except OSError as exc:  # a folder's name past NAME_MAX, say
        raise ValueError(f"{path}: cannot write: {exc.strerror or exc}") from None
    if link:
        raise ValueError(f"{path}: is a symbolic link; refusing to replace it")
    if there and not dest.is_file():
        kind = "a folder" if dest.is_dir() else "not a regular file (a device, FIFO or socket)"
        raise ValueError(f"{path}: is {kind}; refusing to replace it")
    if there and not os.access(dest, os.W_OK):  # (a rename would replace it all the same)
        raise ValueError(f"{path}: is read-only to this process; refusing to replace it")
    folder = dest.absolute().parent
    if not folder.is_dir():
        raise ValueError(f"{path}: cannot write: no folder {folder}")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{path}: cannot write: folder {folder} is not writable")
    import tempfile

    try:  # a file made and removed: os.access says yes to root where nothing can be made (/sys)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".crossentropy-", suffix=".probe"):
            pass
    except OSError as exc:
        raise ValueError(
            f"{path}: cannot write in folder {folder}: {exc.strerror or exc}"
        ) from None
    if dest.exists():
        for name in inputs:
            if os.path.exists(name) and os.path.samefile(name, dest):
                raise ValueError(f"{path}: is an input file; choose another path")


def write_atomic(
    path: str | os.PathLike[str], data: str | bytes, inputs: Iterable[str] = ()
) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    A reader never sees a half-written file, and an interrupted write leaves the old file (or
    none). Text is written as UTF-8. A replaced file keeps its mode (a private report stays
    private); a new one gets 0666 less the process's umask, as any file the process creates.
    Only a regular file is replaced (:func:`check_output_path`).

    Parameters
    ----------
    path : path-like
        Destination; its folder must exist.
    data : str or bytes
        The content.
    inputs : iterable of str
        Files that must not be replaced (the content's inputs).

    Returns
    -------
    pathlib.Path
        The destination path.
    """
    check_output_path(path, inputs)
    dest = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    mode = stat.S_IMODE(dest.stat().st_mode) if dest.exists() else None
    while True:  # as mkstemp, but created with 0666 for the umask to apply
        # a short name of its own: the destination's name and more may be past NAME_MAX
        tmp = dest.parent / f".crossentropy-{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
