"""See backpropagation: the graph as DOT text with values and gradients, rendered pictures, and a page that steps
through the backward pass in the engine's exact order, in a browser or inline in a notebook.

`to_dot` is pure (no Graphviz needed); `draw_graph` returns a `graphviz.Digraph` (the `viz` extra); `render` and
`backprop_page` / `backprop_html` run Graphviz's `dot` binary. Everything is read through the graph's public face
(`t.creator`, `fn.inputs`, `fn.name`, `fn.rule`, `t.name`) and walked with the engine's own `toposort`; gradients of
intermediate tensors are captured by the drawing call itself (one backward pass with `retain_graph=True` and the
pass's hook), touching no `.grad`.

    trace.py    the graph and every gradient in it
    dot.py      DOT text (pure), escaping, what is drawn for a large graph
    draw.py     running `dot`: render, draw_graph
    course.py   each backward step in the course's notation (a table)
    page.py     the stepper page, from page.html, page.css and page.js
"""
from .dot import to_dot
from .draw import GraphvizError, GraphvizNotFoundError, draw_graph, render
from .page import BackpropPage, backprop_html, backprop_page
from .trace import GraphReleasedError, Trace, trace

__all__ = ["to_dot", "draw_graph", "render", "backprop_html", "backprop_page", "BackpropPage", "trace", "Trace",
           "GraphvizNotFoundError", "GraphvizError", "GraphReleasedError"]
