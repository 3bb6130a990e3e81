// scratchnet serve, Train page: the weight maps and one weight's step made visible (the chain rule
// with the actual numbers, the optimizer's update and a finite difference), from /api/train/inspect.
"use strict";

const WEIGHT_CELL = 12; // CSS pixels per weight in a small matrix
const WEIGHT_MAX_WIDTH = 300; // CSS pixels: a wider matrix is drawn smaller
const WEIGHT_MAX_HEIGHT = 320; // CSS pixels: so is a taller one

// weights: [{name: "0.weight", shape: [out, in], values: flat}, {name: "0.bias", shape: [out], values}]:
// one heat map per layer, its bias beside it as a column. A click picks one value.
// The same arrays as last time are repainted in place (a canvas being clicked stays where it is).
function drawWeights(weights) {
  const box = document.getElementById("weights");
  if (!Array.isArray(weights) || weights.length === 0) {
    box.dataset.key = "";
    box.replaceChildren(el("p", { class: "hint", text: "no weights to show yet" }));
    return;
  }
  const key = weights.map((w) => `${w.name}:${w.shape.join("x")}`).join(" ");
  if (box.dataset.key === key) {
    for (const w of weights) {
      const canvas = box.querySelector(`canvas[data-parameter="${w.name}"]`);
      paintValues(canvas, w.values, Number(canvas.dataset.rows), Number(canvas.dataset.cols));
    }
    return;
  }
  box.dataset.key = key;
  const layers = new Map();
  for (const w of weights) {
    const layer = w.name.split(".")[0];
    if (!layers.has(layer)) layers.set(layer, []);
    layers.get(layer).push(w);
  }
  const maps = [];
  for (const [layer, arrays] of layers) {
    const matrix = arrays.find((w) => w.shape.length > 1) ?? arrays[0];
    const rowHeight = rowHeightOf(matrix.shape[0], columnsOf(matrix.shape));
    const canvases = arrays.map((w) => weightCanvas(w, rowHeight));
    const scale = arrays.map((w) => `${w.name.split(".").slice(1).join(".")} ${w.shape.join("x")}`).join(", ");
    maps.push(el("div", { class: "wmap", "data-layer": layer }, [
      el("h4", {}, [`layer ${layer} `, el("span", { text: scale })]),
      el("div", { class: "pair" }, canvases),
    ]));
  }
  box.replaceChildren(...maps);
  markPicked();
}

// Without the weights in the state, their shapes from the layers' names (Dense(in, out),
// Conv2D(c -> o, kxk)): the maps are drawn without values, and a click still picks one.
function weightShapes(layers) {
  if (!Array.isArray(layers)) return null;
  const shapes = [];
  for (const layer of layers) {
    const dense = /^Dense\((\d+), (\d+)\)/.exec(layer.name || "");
    const conv = /^Conv2D\((\d+) -> (\d+), (\d+)x(\d+)/.exec(layer.name || "");
    let shape = null;
    if (dense) shape = [Number(dense[2]), Number(dense[1])];
    if (conv) shape = [Number(conv[2]), Number(conv[1]), Number(conv[3]), Number(conv[4])];
    if (shape === null) continue;
    shapes.push({ name: `${layer.index}.weight`, shape, values: null });
    shapes.push({ name: `${layer.index}.bias`, shape: [shape[0]], values: null });
  }
  return shapes;
}

function columnsOf(shape) {
  return shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : 1;
}

// A row's height in CSS pixels: a square cell while it fits, at least 4 px (a row of 784 inputs is
// squeezed into WEIGHT_MAX_WIDTH), and at most WEIGHT_MAX_HEIGHT for the whole map.
function rowHeightOf(rows, cols) {
  const width = Math.min(WEIGHT_CELL, WEIGHT_MAX_WIDTH / cols);
  return Math.max(1, Math.min(Math.max(width, 4), WEIGHT_MAX_HEIGHT / rows));
}

// One array's map: its rows the layer's units (of the same height as its weight map's), its columns
// the inputs; a bias is one column.
function weightCanvas(w, rowHeight) {
  const rows = w.shape[0];
  const cols = columnsOf(w.shape);
  const canvas = el("canvas", {
    "data-parameter": w.name, "data-rows": String(rows), "data-cols": String(cols),
    class: w.shape.length === 1 ? "bias" : "", title: `${w.name}: click a value to see its step`,
  });
  paintValues(canvas, w.values, rows, cols);
  canvas.style.width = `${Math.min(cols * WEIGHT_CELL, WEIGHT_MAX_WIDTH)}px`;
  canvas.style.height = `${rows * rowHeight}px`;
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
  if (train.travel !== null) {
    status("a weight's step is shown for the run as it is: press Resume from here (or Back to live) first", true);
    return;
  }
  train.picked = { parameter, index, cell };
  markPicked();
  try {
    showInspection(await api("/api/train/inspect", { parameter, index }));
  } catch (error) {
    document.getElementById("inspect").replaceChildren(el("p", { class: "error", text: error.message }));
  }
}

function kvTable(pairs) {
  return el("table", { class: "kv" }, pairs.map(([key, value]) => el("tr", { "data-key": key }, [
    el("td", { text: key }), el("td", { class: "num", text: typeof value === "number" ? num(value) : String(value) }),
  ])));
}

// An object's numbers and words as [key, value] rows; nested objects as "key.inner" (m.before, batch.size).
function flat(object, prefix = "") {
  const rows = [];
  for (const [key, value] of Object.entries(object || {})) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (typeof value === "number" || typeof value === "string") rows.push([name, value]);
    else if (value && typeof value === "object" && !Array.isArray(value)) rows.push(...flat(value, name));
  }
  return rows;
}

function agree(a, b) {
  return typeof a === "number" && typeof b === "number" && Math.abs(a - b) <= 1e-4 * Math.max(1e-3, Math.abs(a), Math.abs(b));
}

// The optimizer's update of the weight on the next batch, in the order it is computed.
function updateRows(update) {
  const rows = [];
  const batch = update.batch || {};
  rows.push(["next batch", `epoch ${batch.epoch}, step ${batch.step}, ${batch.size} samples, loss ${num(batch.loss)}`]);
  rows.push(["g (its gradient on the batch)", update.gradient], ["lr", update.lr]);
  if (update.t !== undefined && update.t !== null) rows.push(["t (steps taken)", update.t]);
  if (update.m) {
    rows.push(["m = b1 m + (1 - b1) g  (8.11)", `${num(update.m.before)} → ${num(update.m.after)}`]);
    rows.push(["v = b2 v + (1 - b2) g²  (8.12)", `${num(update.v.before)} → ${num(update.v.after)}`]);
    rows.push(["m̂ = m / (1 - b1^t)  (8.13)", update.m_hat], ["v̂ = v / (1 - b2^t)  (8.13)", update.v_hat]);
  } else {
    for (const [slot, value] of Object.entries(update.slots || {})) {
      rows.push([slot, `${num(value.before)} → ${num(value.after)}`]);
    }
  }
  rows.push(["step (the change)", update.step], ["new value", update.new_value]);
  return rows;
}

// The answer of POST /api/train/inspect: {parameter, index, value, sample, chain: {gradient,
// finite_difference, rows: [{text, value, equation}], factors: [{symbol, value, equation}], lines}, update}
function showInspection(answer) {
  const box = document.getElementById("inspect");
  const name = `${answer.parameter}[${(answer.index || []).join(",")}]`;
  const chain = answer.chain || {};
  const sample = answer.sample;
  const parts = [el("p", { class: "title" }, [
    el("b", { text: name }), " = ", el("span", { id: "inspect-value", "data-value": String(answer.value), text: num(answer.value) }),
    sample ? el("span", { class: "hint inline", text: ` for ${sample.split} sample ${sample.index} (label ${sample.label})` }) : "",
  ])];
  if (Array.isArray(chain.factors) && chain.factors.length) {
    parts.push(el("div", { class: "formula mono" }, ["dL/dw_ji = delta_j * a_i,  delta_j = (sum_k w_kj * delta_k) * f'(z_j)"]));
    parts.push(el("table", { class: "kv factors" }, chain.factors.map((factor) => el("tr", {}, [
      el("td", { text: factor.equation ? `(${factor.equation})` : "" }),
      el("td", { class: "mono", text: factor.symbol }),
      el("td", { class: "num", text: num(factor.value) }),
    ]))));
  }
  if (Array.isArray(chain.rows) && chain.rows.length) {
    // the rows of explain --backward, each with its value at the right, aligned as it prints them
    const width = Math.max(...chain.rows.map((row) => row.text.length));
    const lines = chain.rows.map((row) => {
      const value = typeof row.value === "number" ? num(row.value) : String(row.value ?? "");
      return value === "" ? row.text : `${row.text.padEnd(width)}  ${value}`;
    });
    parts.push(el("h4", { text: "The chain rule, with this step's numbers" }));
    parts.push(el("pre", { class: "chain", text: lines.join("\n") }));
  }
  parts.push(el("h4", { text: "Gradient and its check" }));
  const close = agree(chain.gradient, chain.finite_difference);
  parts.push(el("p", { class: "check-line" }, [
    el("span", { class: "mono", id: "inspect-gradient", "data-value": String(chain.gradient), text: `dL/d${name} = ${num(chain.gradient)}` }),
    "; finite difference ",
    el("span", { class: "mono", id: "inspect-fd", "data-value": String(chain.finite_difference), text: num(chain.finite_difference) }),
    " ",
    el("span", { class: `check ${close ? "ok" : "off"}`, text: close ? "✓ agree" : "✗ differ" }),
  ]));
  if (answer.update) {
    parts.push(el("h4", { text: `${answer.update.optimizer ?? "The optimizer"}: its update on the next batch` }));
    parts.push(kvTable(updateRows(answer.update)));
  }
  if (Array.isArray(chain.lines) && chain.lines.length) {
    parts.push(el("details", {}, [
      el("summary", { text: "as scratchnet explain --backward prints it" }),
      el("pre", { id: "inspect-lines", text: chain.lines.join("\n") }),
    ]));
  }
  box.replaceChildren(...parts);
}
