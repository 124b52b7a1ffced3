"""Each backward step in the course's notation (course notes 1.2, 2.3), with this graph's names: a table from the
op's name to the lines the page shows. A line is a template over {y} (the output's name), {a} and {b} (the inputs'
names) and {shape_a} (the first input's shape); MatMul and Add read their context (a Dense layer, a broadcast b)."""
from __future__ import annotations

TANH = "dZ = dA * (1 - A²)   (g'(z) = 1 - tanh(z)², course 2.3):  d{a} = d{y} * (1 - {y}²)"
RELU = "ReLU: dZ = dA * g'(Z) with g'(z) = [z > 0]   (course 2.3; a tie z = 0 gets 1/2)"


def _matmul(fn, out, names, consumers):
    ins, y = fn.inputs, names["y"]
    dense_z = (out.name or "").endswith(".Z") or any((o.name or "").endswith(".Z") for o in consumers)
    lines = []
    if dense_z and (ins[0].name or "").endswith(".W"):
        lines += ["dW = dZ · A_prevᵀ   (course eq. 2.10; the 1/m is already inside dZ, from the cost's mean)",
                  "dA_prev = Wᵀ · dZ   (course eq. 2.12, before the * g'(Z))"]
    elif ins[0].creator is not None and ins[0].creator.name == "Transpose":
        lines += ["Z = wᵀX: d(wᵀ) = dZ · Xᵀ, so dw = X · dZᵀ   (course alg. 1.3; 1/m comes from the mean)"]
    return lines + [f"d{names['a']} = d{y} · ({names['b']})ᵀ", f"d{names['b']} = ({names['a']})ᵀ · d{y}"]


def _add(fn, out, names, consumers):
    lines = []
    for x, nx in zip(fn.inputs, (names["a"], names["b"])):
        if x.shape == out.shape:
            lines.append(f"d{nx} = d{names['y']}")
        elif (x.name or "").endswith(".b") or x.name == "b":
            lines.append("db = sum(dZ, axis=1)   (course eq. 2.11: b was broadcast over the m columns)")
        else:
            lines.append(f"d{nx} = d{names['y']} summed over the broadcast axes")
    return lines


RULES = {
    "MatMul": _matmul,
    "Add": _add,
    "Sub": ("d{a} = d{y}", "d{b} = -d{y}"),
    "Mul": ("d{a} = d{y} * {b}", "d{b} = d{y} * {a}"),
    "Div": ("d{a} = d{y} / {b}", "d{b} = -d{y} * {y} / {b}"),
    "Neg": ("d{a} = -d{y}",),
    "Tanh": (TANH,),
    "Exp": ("d{a} = d{y} * {y}",),
    "Log": ("d{a} = d{y} / {a}",),
    "Maximum": (RELU,),
    "Where": ("d{a} = d{y} where the condition holds, d{b} = d{y} elsewhere",),
    "Sum": ("d{a} = d{y} broadcast back to {shape_a}",),
    "Transpose": ("d{a} = (d{y})ᵀ",),
}


def course_rule(step, tr) -> list:
    """The lines for one step of `tr.steps`; a line about an input that needs no gradient is left out."""
    fn, out = step["fn"], step["out"]
    ins = fn.inputs
    input_names = [tr.name(x) for x in ins]
    names = {"y": tr.name(out), "a": input_names[0] if ins else "", "b": input_names[1] if len(ins) > 1 else "",
             "shape_a": tuple(ins[0].shape) if ins else ()}
    rule = RULES.get(fn.name)
    if rule is None:
        lines = [f"d{nx} = local rule applied to d{names['y']}" for nx in input_names]
    elif callable(rule):
        lines = rule(fn, out, names, [o for o, _ in tr.consumers.get(out, [])])
    else:
        lines = [template.format(**names) for template in rule]
    constant = [f"d{nx} " for x, nx in zip(ins, input_names) if not x.requires_grad]
    return [line for line in lines if not any(line.startswith(c) for c in constant)]
