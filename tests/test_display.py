"""Rich displays (display.py): a Tensor's and a Module's HTML. Checked by parsing the HTML back (every user string
shows as text, never as markup), against independent counts in NumPy, and for a bounded size on big tensors."""
import html.parser
import re

import numpy as np
import pytest

import tinygrad_dl as dl
from tinygrad_dl.display import format_value, module_html, tensor_html
from conftest import need_module

HOSTILE = ['</script><script>alert("x")</script>', "<b>bold</b>", "it's \"quoted\" & <i>", "back\\slash\nnew line",
           "<img src=x onerror=alert(1)>"]
OUR_TAGS = {"div", "b", "span", "table", "tr", "th", "td"}


class Parsed(html.parser.HTMLParser):
    """Tags, attributes and the text of an HTML fragment; the table cells (th/td) as texts, row by row."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text, self.rows, self._cell = [], [], [], [], None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)
        self.text.append("\n" if tag in ("div", "tr", "table") else "\t" if tag in ("td", "th") else "")
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def all_text(self):
        return "".join(self.text)


# --------------------------------------------------------------------------- Tensor

def test_tensor_facts():
    W = dl.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="W")
    Z = (W * 2.0).sum()
    Z.backward()
    p = Parsed(W._repr_html_())
    text = p.all_text
    assert "'W'" in text and "shape (2, 3)" in text and "float64" in text and "leaf" in text
    assert "requires_grad" in text
    norm = float(re.search(r"‖grad‖ (\S+)", text).group(1))
    assert norm == pytest.approx(np.linalg.norm(np.full((2, 3), 2.0)), rel=1e-3)
    z = Parsed(Z._repr_html_()).all_text
    assert "made by Sum" in z and "shape ()" in z and "grad None" in z
    c = Parsed(dl.Tensor(np.ones(3, dtype=np.float32))._repr_html_()).all_text
    assert "float32" in c and "shape (3,)" in c and "requires_grad" not in c and "grad" not in c


def test_preview_values_match_the_array():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 4)) * 10.0 ** rng.integers(-5, 5, (5, 4))
    p = Parsed(tensor_html(dl.Tensor(a)))
    body = p.rows[1:]                                  # the first row holds the column indices
    assert p.rows[0] == ["", "0", "1", "2", "3"] and [r[0] for r in body] == ["0", "1", "2", "3", "4"]
    got = np.array([[float(x) for x in r[1:]] for r in body])
    np.testing.assert_allclose(got, a, rtol=1e-3)     # 4 significant digits
    stats = re.search(r"min (\S+)  mean (\S+)  max (\S+)", p.all_text).groups()
    np.testing.assert_allclose([float(s) for s in stats], [a.min(), a.mean(), a.max()], rtol=1e-3)


def test_nan_and_inf_are_shown_as_such():
    a = np.array([[1.5, np.nan, -np.inf], [-0.0, np.inf, np.nan]])
    p = Parsed(tensor_html(dl.Tensor(a)))
    cells = [r[1:] for r in p.rows[1:]]
    assert cells == [["1.5", "NaN", "-inf"], ["-0", "inf", "NaN"]]
    assert "2 NaN, 1 inf, 1 -inf" in p.all_text
    # min / mean / max over the finite values only
    assert re.search(r"min -0  mean 0.75  max 1.5", p.all_text)
    huge = Parsed(tensor_html(dl.Tensor(np.array([1e308, 1e308, -np.inf])))).all_text   # the sum overflows
    assert "mean 1e+308" in huge and "1 -inf" in huge
    only_nan = Parsed(tensor_html(dl.Tensor(np.full((2, 2), np.nan)))).all_text
    assert "4 NaN" in only_nan and "min" not in only_nan
    assert [format_value(v) for v in (np.nan, np.inf, -np.inf, -0.0, 1e-300)] == ["NaN", "inf", "-inf", "-0", "1e-300"]


def test_big_tensors_render_small():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((1000, 1000))
    a[999, 999] = np.nan
    out = dl.Tensor(a)._repr_html_()
    assert len(out) < 12_000
    p = Parsed(out)
    assert len(p.rows) == 1 + 9 and all(len(r) == 1 + 9 for r in p.rows)   # 4 + gap + 4, plus the index column
    assert p.rows[0][1:] == ["0", "1", "2", "3", "…", "996", "997", "998", "999"]
    assert [r[0] for r in p.rows[1:]] == ["0", "1", "2", "3", "⋮", "996", "997", "998", "999"]
    assert float(p.rows[1][1]) == pytest.approx(a[0, 0], rel=1e-3) and p.rows[-1][-1] == "NaN"
    assert "1 NaN" in p.all_text
    # many small dimensions: no axis is long, but the preview is still one 2-D slice
    deep = Parsed(dl.Tensor(np.ones((2,) * 20))._repr_html_())
    assert len(deep.rows) == 3 and "slice [0, 0" in deep.all_text and "20 dimensions" in deep.all_text
    long_row = Parsed(dl.Tensor(np.arange(10.0 ** 6))._repr_html_())
    assert len(long_row.rows) == 2 and len(long_row.rows[1]) == 1 + 9
    assert float(long_row.rows[1][-1]) == pytest.approx(999_999, rel=1e-3)


def test_edge_shapes():
    for data, want in ((np.zeros((0, 3)), "empty"), (np.float64(-2.5), "-2.5"), (np.zeros(0), "empty")):
        assert want in Parsed(tensor_html(dl.Tensor(data))).all_text


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_stay_text(name):
    t = dl.Tensor(np.ones((2, 2)), requires_grad=True, name=name)
    Evil = type(name, (dl.Function,), {"forward": lambda self, x: x * 1.0, "backward": lambda self, g, o, x: (g,)})
    y = Evil()(t)
    for out, shown in ((t._repr_html_(), repr(name)), (y._repr_html_(), name)):
        p = Parsed(out)
        assert set(p.tags) <= OUR_TAGS
        assert all(k in ("style", "class", "data-total") for k, _ in p.attrs)
        assert shown in p.all_text


def test_plain_repr_is_unchanged():
    t = dl.Tensor([1.0, 2.0], requires_grad=True, name="x")
    assert repr(t) == "Tensor([1. 2.], dtype=float64, name='x', requires_grad=True)"
    assert "<" not in repr(dl.nn.Dense(2, 3))


def test_ipython_picks_the_html():
    need_module("IPython")
    from IPython.core.formatters import DisplayFormatter
    fmt = DisplayFormatter()
    data, _ = fmt.format(dl.Tensor([1.0], name="t"))
    assert set(data) == {"text/plain", "text/html"} and data["text/plain"] == repr(dl.Tensor([1.0], name="t"))
    data, _ = fmt.format(dl.nn.Sequential(dl.nn.Dense(2, 1)))
    assert "text/html" in data and "Sequential" in data["text/plain"]


# --------------------------------------------------------------------------- Module

class Block(dl.nn.Module):
    """A module with its own parameter and two children, one of them shared from outside."""

    def __init__(self, shared, rng):
        super().__init__()
        self.scale = dl.Tensor(np.ones((3, 1)), requires_grad=True)
        self.inner = dl.nn.Sequential(dl.nn.Dense(5, 3, rng=rng), dl.nn.Tanh(), dl.nn.Dense(3, 3, rng=rng))
        self.shared = shared


def test_module_tree_and_counts():
    rng = np.random.default_rng(0)
    shared = dl.nn.Dense(3, 2, rng=rng, dtype=np.float32)
    net = dl.nn.Module()
    net.first = Block(shared, rng)
    net.again = shared                      # the same layer twice: its parameters count once
    net.head = dl.nn.Dense(2, 1, rng=rng)
    out = net._repr_html_()
    p = Parsed(out)
    # independent count: every distinct parameter array, counted with NumPy
    arrays = {id(t): t.data for t in (net.first.scale, net.first.inner[0].W, net.first.inner[0].b,
                                       net.first.inner[2].W, net.first.inner[2].b, shared.W, shared.b,
                                       net.head.W, net.head.b)}
    want = int(sum(np.prod(a.shape) for a in arrays.values()))
    total_row = p.rows[-1]
    assert total_row[0] == "total" and int(total_row[-1].replace(",", "")) == want == 3 + 18 + 12 + 8 + 3
    assert f"{want:,} parameters in {len(arrays)} tensors" in p.all_text
    rows = {r[0]: r[1:] for r in p.rows[1:-1]}
    assert rows["scale"] == ["(3, 1)", "float64", "3"]
    assert rows["first.inner: Sequential"][-1] == str(18 + 12)
    assert rows["first.inner.layers.0: Dense(5 -> 3, init=he)"][-1] == "18"
    assert rows["first.shared: Dense(3 -> 2, init=he, dtype=float32)"][-1] == "8"
    assert rows["again: Dense(3 -> 2, init=he, dtype=float32)"][-1] == "8"
    assert "W (shared: counted once)" in rows and rows["W (shared: counted once)"] == ["(2, 3)", "float32", "6"]
    assert [r[0] for r in p.rows[1:-1]].count("W") == 4    # inner W twice, shared W once, head W once
    assert rows["first.inner.layers.1: Tanh"][-1] == "0"


def test_module_hostile_names_and_row_limit():
    m = dl.nn.Module()
    for name in HOSTILE:
        setattr(m, name, dl.Tensor(np.zeros((1, 2)), requires_grad=True))
    Evil = type("<script>bad()</script>", (dl.nn.Module,), {})
    m.child = Evil()
    p = Parsed(m._repr_html_())
    assert set(p.tags) <= OUR_TAGS
    texts = [r[0] for r in p.rows]
    assert all(name in texts for name in HOSTILE) and "child: <script>bad()</script>" in texts
    many = dl.nn.Sequential(*[dl.nn.Dense(1, 1) for _ in range(400)])
    q = Parsed(module_html(many, max_rows=50))
    assert len(q.rows) == 1 + 50 + 2 and "1,151 more rows" in q.all_text
    assert q.rows[-1][-1] == "800"
