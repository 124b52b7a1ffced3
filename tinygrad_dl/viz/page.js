// The backprop stepper: step 0 is the forward graph, step k (1..n) the k-th op the backward pass visits, step n+1
// every leaf's gradient. All text from the graph is set with textContent (never parsed as HTML). Gradients in the
// data are JSON lists in which NaN and infinities are the strings "NaN", "Infinity" and "-Infinity".
(function(){
"use strict";
var D = JSON.parse(document.getElementById("steps-data").textContent);
var N = D.steps.length + 1;
var SVGNS = "http://www.w3.org/2000/svg";
var byId = function(id){ return document.getElementById(id); };
function el(tag, cls, text){ var e = document.createElement(tag); if(cls) e.className = cls;
  if(text !== undefined) e.textContent = text; return e; }
function setGrad(id, info){
  var node = byId(id); if(!node) return;  // not drawn (a summarised graph)
  var t = byId("g" + id);
  if(info){
    if(t){ t.textContent = info.summary; t.classList.remove("unknown"); }
    node.setAttribute("data-grad", JSON.stringify(info.grad));
    node.setAttribute("data-grad-shape", JSON.stringify(info.shape));
    node.setAttribute("data-grad-summary", info.summary);
  } else {
    if(t){ t.textContent = "\u2207 ?"; t.classList.add("unknown"); }
    ["data-grad", "data-grad-shape", "data-grad-summary"].forEach(function(a){ node.removeAttribute(a); });
  }
}
function clear(){
  document.querySelectorAll(".active,.active-out,.receiving,.flowing,.leaf-final").forEach(function(e){
    e.classList.remove("active", "active-out", "receiving", "flowing", "leaf-final"); });
  document.querySelectorAll(".grad-text.fresh").forEach(function(e){ e.classList.remove("fresh"); });
  document.querySelectorAll(".flow-label").forEach(function(e){ e.parentNode.removeChild(e); });
}
function edgeLabel(edgeId, text){
  var edge = byId(edgeId); if(!edge) return;
  edge.classList.add("flowing");
  var path = edge.querySelector("path"); if(!path || !path.getTotalLength) return;
  var p = path.getPointAtLength(path.getTotalLength() / 2);
  var g = document.createElementNS(SVGNS, "g"); g.setAttribute("class", "flow-label"); g.setAttribute("data-edge", edgeId);
  var r = document.createElementNS(SVGNS, "rect"), t = document.createElementNS(SVGNS, "text");
  t.setAttribute("x", p.x); t.setAttribute("y", p.y + 4); t.setAttribute("text-anchor", "middle"); t.textContent = text;
  g.appendChild(r); g.appendChild(t); edge.parentNode.appendChild(g);
  var b = t.getBBox();
  r.setAttribute("x", b.x - 3); r.setAttribute("y", b.y - 2); r.setAttribute("width", b.width + 6);
  r.setAttribute("height", b.height + 4); r.setAttribute("rx", 3);
}
function centre(node){  // scroll the graph pane only (not the page around an inline frame)
  var pane = byId("graph"), a = node.getBoundingClientRect(), c = pane.getBoundingClientRect();
  pane.scrollLeft += (a.left + a.width / 2) - (c.left + c.width / 2);
  pane.scrollTop += (a.top + a.height / 2) - (c.top + c.height / 2);
}
function block(cls, title, lines, data){
  var d = el("div", cls), h = el("div");
  h.appendChild(el("b", "", title)); d.appendChild(h);
  d.appendChild(el("pre", "", lines.join("\n")));
  for(var k in data){ d.setAttribute(k, data[k]); }
  return d;
}
function showStep(panel, k, s){
  var opNode = byId(s.op);
  if(opNode){ opNode.classList.add("active"); centre(opNode); }
  var out = byId(s.out); if(out) out.classList.add("active-out");
  panel.appendChild(el("h2", "", "Step " + k + ": " + s.name + " \u2192 " + s.out_name));
  panel.setAttribute("data-op", s.op);
  if(!opNode) panel.appendChild(el("div", "note", "This op is not drawn (the graph is summarised near the output)."));
  panel.appendChild(el("div", "rule", "local rule:  " + s.rule));
  panel.appendChild(el("div", "rule course", s.course.join("\n")));
  panel.appendChild(block("gout", "incoming d" + s.out_name + "  " + JSON.stringify(s.grad_out.shape), s.grad_out.lines,
    {"data-tensor": s.out, "data-grad": JSON.stringify(s.grad_out.grad), "data-grad-shape": JSON.stringify(s.grad_out.shape)}));
  s.flows.forEach(function(f){
    var n = byId(f.tensor); if(n) n.classList.add("receiving");
    var t = byId("g" + f.tensor); if(t) t.classList.add("fresh");
    edgeLabel(f.edge, "d" + f.name.split(".").pop() + " " + f.summary);
    panel.appendChild(block("flow", "d" + f.name + " += (input " + f.index + ")  " + JSON.stringify(f.shape), f.lines,
      {"data-tensor": f.tensor, "data-input-index": f.index, "data-grad": JSON.stringify(f.grad),
       "data-grad-shape": JSON.stringify(f.shape), "data-edge": f.edge}));
  });
}
function show(k){
  k = Math.max(0, Math.min(N, k | 0));
  clear();
  D.tensors.forEach(function(id){ setGrad(id, D.start[id] || null); });
  for(var i = 0; i < k && i < D.steps.length; i++){ var ch = D.steps[i].changed; for(var id in ch){ setGrad(id, ch[id]); } }
  var panel = byId("panel"); panel.textContent = ""; panel.removeAttribute("data-op");
  document.body.setAttribute("data-step", k);
  byId("counter").textContent = "step " + k + " / " + N;
  byId("prev").disabled = k === 0; byId("next").disabled = k === N;
  if(k === 0){
    panel.appendChild(el("h2", "", "Forward pass"));
    panel.appendChild(el("p", "", "Each box is a tensor (value, then gradient \u2207 once known); each oval is an op. " +
      "Backpropagation starts at the output with dJ/dJ = 1 and visits the ops in reverse order. Press Next."));
  } else if(k <= D.steps.length){
    showStep(panel, k, D.steps[k - 1]);
  } else {
    panel.appendChild(el("h2", "", "Done: every leaf's gradient"));
    panel.appendChild(el("p", "", "These are the values an ordinary backward() writes into each parameter's .grad."));
    D.leaves.forEach(function(l){
      var n = byId(l.tensor); if(n) n.classList.add("leaf-final");
      panel.appendChild(block("leaf-grad", "d" + l.name + "  " + JSON.stringify(l.shape), l.lines,
        {"data-tensor": l.tensor, "data-name": l.name, "data-grad": JSON.stringify(l.grad), "data-grad-shape": JSON.stringify(l.shape)}));
    });
  }
  var want = "#step=" + k;
  if(location.hash !== want){ try { history.replaceState(null, "", want); } catch(e) {} }  // a sandboxed frame may refuse
}
function current(){ return parseInt(document.body.getAttribute("data-step"), 10) || 0; }
function fromHash(){ var m = /step=(\d+)/.exec(location.hash); return m ? parseInt(m[1], 10) : 0; }
byId("next").addEventListener("click", function(){ show(current() + 1); });
byId("prev").addEventListener("click", function(){ show(current() - 1); });
document.addEventListener("keydown", function(e){
  if(e.key === "ArrowRight" || e.key === "ArrowDown"){ show(current() + 1); e.preventDefault(); }
  else if(e.key === "ArrowLeft" || e.key === "ArrowUp"){ show(current() - 1); e.preventDefault(); }
});
window.addEventListener("hashchange", function(){ if(fromHash() !== current()) show(fromHash()); });
document.body.setAttribute("data-nsteps", N);
show(fromHash());
})();
