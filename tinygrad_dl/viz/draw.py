"""Running Graphviz's `dot`: pictures on disk (`render`) and inline in a notebook (`draw_graph`).

`dot` runs in its own process group with a time limit: a layout that takes too long is stopped (with anything it
started) and reported with the graph's size and the options that make it smaller, never left running."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess

from .dot import count, to_dot

INSTALL = "install Graphviz: `sudo apt-get install graphviz` (Debian/Ubuntu) or `brew install graphviz` (macOS)"
TIMEOUT = 60.0  # seconds; the default time `dot` gets for one layout
FIT_WIDTH = 720  # points (960 px): a notebook cell's usual width

# Graphviz output formats, for reading the format from a file's suffix.
FORMATS = {"svg", "svgz", "png", "pdf", "ps", "eps", "jpg", "jpeg", "jpe", "gif", "bmp", "tif", "tiff", "webp",
           "ico", "json", "json0", "xdot", "plain", "canon", "dot", "gv", "imap", "cmapx", "fig", "pic", "vml", "vrml"}
ALIASES = {"jpg": "jpeg", "jpe": "jpeg", "tif": "tiff", "gv": "dot"}


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's `dot` binary is not on PATH."""


class GraphvizError(RuntimeError):
    """`dot` failed, crashed or ran out of time on a graph."""


def dot_binary(dot_path=None) -> str:
    exe = shutil.which("dot")
    if exe is None:
        where = f" The DOT text was written to {dot_path}." if dot_path else ""
        raise GraphvizNotFoundError(f"Graphviz's `dot` program was not found on PATH; {INSTALL}.{where}")
    return exe


def run_dot(text, fmt, *, dot_path=None, timeout=TIMEOUT, where="render") -> bytes:
    """`dot -T<fmt>` on the DOT text; its whole process group is killed if it outlives `timeout` seconds."""
    exe = dot_binary(dot_path)
    nodes, edges = count(text)
    size = f"{nodes} nodes and {edges} edges"
    hint = ("draw fewer nodes with max_nodes= (the part nearest the output is kept), collapse_modules=True, "
            "or allow more time with timeout=")
    own_group = {"start_new_session": True} if os.name == "posix" else \
        {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
    proc = subprocess.Popen([exe, f"-T{fmt}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **own_group)
    try:
        out, err = proc.communicate(text.encode("utf-8"), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise GraphvizError(f"{where}: Graphviz's dot did not finish laying out {size} within {timeout:g} s and was "
                            f"stopped; {hint}") from None
    except BaseException:  # KeyboardInterrupt in a notebook: leave nothing running
        _kill(proc)
        raise
    if proc.returncode != 0:
        how = f"crashed (signal {-proc.returncode})" if proc.returncode < 0 else f"failed (exit {proc.returncode})"
        raise GraphvizError(f"{where}: Graphviz's dot {how} on {size}: "
                            f"{err.decode('utf-8', errors='replace')[:2000].strip()}; {hint}")
    return out


def _kill(proc):
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    proc.communicate()


def _format_of(path, format):
    """(base path, format): the format from the suffix when it names one, else `format` (default svg)."""
    stem, dot, suffix = path.rpartition(".")
    named = suffix.lower() if dot and "/" not in suffix and os.sep not in suffix else ""
    named = named if named in FORMATS else ""
    if format is None:
        return (stem, named) if named else (path, "svg")
    if not isinstance(format, str) or not re.fullmatch(r"[a-z0-9_:]+", format):
        raise ValueError(f"render: format must be a Graphviz output format such as 'svg' or 'png', got {format!r}")
    if named and ALIASES.get(named, named) != ALIASES.get(format, format):
        raise ValueError(f"render: the path {path!r} ends in .{suffix} but format={format!r}; give one or make "
                         f"them agree")
    return (stem, named) if named else (path, format)


def render(root, path, format=None, *, timeout=TIMEOUT, **options) -> str:
    """Draw the graph of `root` to a file with Graphviz's `dot` and return the file's path.

    The format is the path's suffix when it names a Graphviz format (`"graph.png"`, `"graph.pdf"`), else `format`
    (default `"svg"`: `render(root, "graph")` writes `graph.svg`). The DOT text (`to_dot(root, **options)`) is
    written beside the picture as `graph.dot`; a `.dot` or `.gv` path writes only the DOT text (no Graphviz needed).
    Without `dot` on PATH: GraphvizNotFoundError naming the install command and the .dot file written.
    A suffix that disagrees with an explicit `format` is an error."""
    path = os.fspath(path)
    if not isinstance(path, str):
        path = os.fsdecode(path)
    base, fmt = _format_of(path, format)
    text = to_dot(root, **options)
    if fmt in ("dot", "gv"):
        out_path = path if path.rpartition(".")[2].lower() in ("dot", "gv") else base + ".dot"
        _write(out_path, text.encode("utf-8"))
        return out_path
    dot_path, out_path = base + ".dot", base + "." + (path.rpartition(".")[2] if base != path else fmt)
    _write(dot_path, text.encode("utf-8"))
    _write(out_path, run_dot(text, fmt, dot_path=dot_path, timeout=timeout))
    return out_path


def _write(path, data: bytes):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def fit_svg(svg: str, width=FIT_WIDTH) -> str:
    """Scale an SVG from `dot` down to at most `width` points (its height in proportion), and let it shrink further
    with the page (max-width: 100%); a small drawing keeps its size."""
    m = re.search(r'<svg\b[^>]*?\swidth="([\d.]+)pt"\s+height="([\d.]+)pt"', svg)
    if not m:
        return svg
    w, h = float(m.group(1)), float(m.group(2))
    scale = min(1.0, width / w) if w > 0 else 1.0
    new = f'width="{w * scale:.0f}pt" height="{h * scale:.0f}pt" style="max-width:100%;height:auto"'
    return svg[:m.start(1) - len('width="')] + new + svg[m.end(2) + len('pt"'):]


def draw_graph(root, show_values=True, show_grads=True, max_elements=6, *, fit=True, timeout=TIMEOUT, **options):
    """The graph as a `graphviz.Digraph` that displays inline in Jupyter (and other notebook front ends).

    fit=True (the default) fits a notebook cell: the graph is laid out top to bottom (a notebook scrolls down, not
    sideways; pass rankdir= to choose) and scaled down to at most 720 pt wide, shrinking further with a narrower
    cell. For the full-size picture: fit=False (left to right, natural size), or render(root, "graph.svg") and
    open the file. Same options as `to_dot`. Needs the `viz` extra: pip install tinygrad_dl[viz]."""
    try:
        import graphviz
    except ImportError:
        raise ImportError("draw_graph: needs the graphviz Python package: pip install 'tinygrad_dl[viz]' "
                          "(or pip install graphviz); to_dot() works without it") from None
    options.setdefault("rankdir", "TB" if fit else "LR")
    text = to_dot(root, show_values, show_grads, max_elements, **options)
    body = text.split("\n", 1)[1].rsplit("}", 1)[0]
    return _digraph_class(graphviz)(name="tinygrad_dl", body=[line + "\n" for line in body.strip("\n").split("\n")],
                                    fit=fit, timeout=timeout)


_DIGRAPH = None


def _digraph_class(graphviz):
    """A graphviz.Digraph whose notebook display runs `dot` with a time limit and fits the cell's width."""
    global _DIGRAPH
    if _DIGRAPH is None:
        class Digraph(graphviz.Digraph):
            def __init__(self, *args, fit=True, timeout=TIMEOUT, **kwargs):
                super().__init__(*args, **kwargs)
                self.fit, self.timeout = fit, timeout

            def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
                want = set(include) if include is not None else {"image/svg+xml"}
                want -= set(exclude or ())
                out = {}
                if "image/svg+xml" in want:
                    svg = run_dot(self.source, "svg", timeout=self.timeout, where="draw_graph").decode("utf-8")
                    out["image/svg+xml"] = fit_svg(svg) if self.fit else svg
                rest = want - {"image/svg+xml"}
                if rest:
                    out.update(super()._repr_mimebundle_(include=rest, **kwargs))
                return out

        Digraph.__name__ = Digraph.__qualname__ = "Digraph"
        Digraph.__module__ = __name__
        _DIGRAPH = Digraph
    return _DIGRAPH
