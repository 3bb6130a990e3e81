// scratchnet serve, Train page: the weight maps and one weight's step made visible (the chain rule
// with the actual numbers, the optimizer's update and a finite difference), from /api/train/inspect.
"use strict";

const WEIGHT_CELL = 12; // CSS pixels per weight in a small matrix
const WEIGHT_MAX_WIDTH = 300; // CSS pixels: a wider matrix is drawn smaller

// weights: [{name: "0.weight", shape: [out, in], values: flat}, {name: "0.bias", shape: [out], values}]:
// one heat map per layer, its bias beside it as a column. A click picks one value.
function drawWeights(weights) {
  const box = document.getElementById("weights");
  if (!Array.isArray(weights) || weights.length === 0) {
    box.replaceChildren(el("p", { class: "hint", text: "no weights to show yet" }));
    return;
  }
  const layers = new Map();
  for (const w of weights) {
    const layer = w.name.split(".")[0];
    if (!layers.has(layer)) layers.set(layer, []);
    layers.get(layer).push(w);
  }
  const maps = [];
  for (const [layer, arrays] of layers) {
    const canvases = arrays.map((w) => weightCanvas(w));
    const scale = arrays.map((w) => `${w.name.split(".").slice(1).join(".")} ${w.shape.join("x")}`).join(", ");
    maps.push(el("div", { class: "wmap", "data-layer": layer }, [
      el("h4", {}, [`layer ${layer} `, el("span", { text: scale })]),
      el("div", { class: "pair" }, canvases),
    ]));
  }
  box.replaceChildren(...maps);
  markPicked();
}

function weightCanvas(w) {
  const rows = w.shape[0];
  const cols = w.shape.length > 1 ? w.shape.slice(1).reduce((a, b) => a * b, 1) : 1;
  const canvas = el("canvas", {
    "data-parameter": w.name, "data-rows": String(rows), "data-cols": String(cols),
    class: w.shape.length === 1 ? "bias" : "", title: `${w.name}: click a value to see its step`,
  });
  paintValues(canvas, w.values, rows, cols);
  const cell = Math.max(1, Math.min(WEIGHT_CELL, Math.floor(WEIGHT_MAX_WIDTH / cols)));
  canvas.style.width = `${cols * cell}px`;
  canvas.style.height = `${rows * Math.max(cell, w.shape.length === 1 ? 3 : 1)}px`;
  const holder = el("span", { class: "holder" }, [canvas]);
  canvas.addEventListener("click", (event) => {
    const rect = canvas.getBoundingClientRect();
    const j = Math.min(rows - 1, Math.floor(((event.clientY - rect.top) / rect.height) * rows));
    const i = Math.min(cols - 1, Math.floor(((event.clientX - rect.left) / rect.width) * cols));
    const index = w.shape.length === 1 ? [j] : w.shape.length === 2 ? [j, i] : [j, ...unflat(i, w.shape.slice(1))];
    inspect(w.name, index, [j, i]);
  });
  return holder;
}

function unflat(p, shape) {
  const index = [];
  for (let k = shape.length - 1; k >= 0; k--) {
    index.unshift(p % shape[k]);
    p = Math.floor(p / shape[k]);
  }
  return index;
}

// The picked value is outlined on its map (cell: its row and column there).
function markPicked() {
  for (const old of document.querySelectorAll("#weights .cellpick")) old.remove();
  if (!train.picked) return;
  const canvas = document.querySelector(`#weights canvas[data-parameter="${train.picked.parameter}"]`);
  if (!canvas) return;
  const [row, col] = train.picked.cell;
  const height = parseFloat(canvas.style.height) / Number(canvas.dataset.rows);
  const width = parseFloat(canvas.style.width) / Number(canvas.dataset.cols);
  const box = el("span", { class: "cellpick" });
  box.style.left = `${col * width + 1}px`;
  box.style.top = `${row * height + 1}px`;
  box.style.width = `${width}px`;
  box.style.height = `${height}px`;
  canvas.parentElement.append(box);
}

function clearInspect() {
  train.picked = null;
  const box = document.getElementById("inspect");
  box.replaceChildren(el("p", {
    class: "hint",
    text: "Pause (or take one step), then click a weight or a bias in the weight maps: you get its gradient as "
      + "the chain rule with this step's numbers, the optimizer's update of it, and a finite-difference check.",
  }));
}

async function inspect(parameter, index, cell) {
  if (train.status === "running") {
    status("pause the run (or take one step) to see a weight's step", true);
    return;
  }
  train.picked = { parameter, index, cell };
  markPicked();
  const body = { parameter, index };
  if (train.travel !== null) body.step = train.travel;
  try {
    showInspection(await api("/api/train/inspect", body));
  } catch (error) {
    document.getElementById("inspect").replaceChildren(el("p", { class: "error", text: error.message }));
  }
}

function kvTable(pairs) {
  return el("table", { class: "kv" }, pairs.map(([key, value]) => el("tr", {}, [
    el("td", { text: key }), el("td", { class: "num", text: typeof value === "number" ? num(value) : String(value) }),
  ])));
}

function scalars(object) {
  return Object.entries(object || {}).filter(([, v]) => typeof v === "number" || typeof v === "string");
}

// The answer: {name, gradient, finite_difference, formula, terms|chain: [...], update: {...}, lines: [...]}
function showInspection(answer) {
  const box = document.getElementById("inspect");
  const name = answer.name ?? `${answer.parameter}[${(answer.index || []).join(",")}]`;
  const parts = [el("p", { class: "title" }, [el("b", { text: name }), answer.step !== undefined ? ` at step ${answer.step}` : ""])];
  const chain = answer.chain ?? answer.chain_rule;
  if (answer.formula) parts.push(el("div", { class: "formula mono", text: answer.formula }));
  if (Array.isArray(chain)) {
    parts.push(el("h4", { text: "The chain rule, with this step's numbers" }));
    for (const factor of chain) {
      if (typeof factor === "string") parts.push(el("div", { class: "formula mono", text: factor }));
      else parts.push(el("div", { class: "formula mono" }, [
        factor.equation ? el("b", { text: `(${factor.equation}) ` }) : "", `${factor.text ?? factor.formula ?? ""}`,
        factor.value !== undefined ? ` = ${num(factor.value)}` : "",
      ]));
    }
  } else if (chain && typeof chain === "object") {
    parts.push(el("h4", { text: "The chain rule, with this step's numbers" }), kvTable(scalars(chain)));
  }
  const gradient = answer.gradient;
  const fd = answer.finite_difference;
  parts.push(el("h4", { text: "Gradient and its check" }));
  const close = typeof gradient === "number" && typeof fd === "number"
    && Math.abs(gradient - fd) <= 1e-4 * Math.max(1, Math.abs(gradient), Math.abs(fd));
  parts.push(el("p", { class: "check-line" }, [
    el("span", { class: "mono", id: "inspect-gradient", "data-value": String(gradient), text: `dL/d${name} = ${num(gradient)}` }),
    "; finite difference ",
    el("span", { class: "mono", id: "inspect-fd", "data-value": String(fd), text: num(fd) }),
    " ",
    el("span", { class: `check ${close ? "ok" : "off"}`, text: close ? "✓ agree" : "✗ differ" }),
  ]));
  if (answer.update) {
    parts.push(el("h4", { text: `The optimizer's update${answer.update.type ? ` (${answer.update.type})` : ""}` }));
    parts.push(kvTable(scalars(answer.update).filter(([key]) => key !== "type")));
  }
  if (Array.isArray(answer.lines) && answer.lines.length) {
    parts.push(el("details", { open: "" }, [
      el("summary", { text: "as scratchnet explain --backward prints it" }),
      el("pre", { text: answer.lines.join("\n") }),
    ]));
  }
  box.replaceChildren(...parts);
}
