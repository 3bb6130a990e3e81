// scratchnet serve: the page. Plain JavaScript, no framework, no build step, nothing from the network
// but this server's own API (docs/serve.md).
"use strict";

const PAD_LINE = 20; // stroke width on the 280x280 pad: about MNIST's stroke once scaled to 20x20
const THROTTLE_MS = 90; // at most one prediction per this many milliseconds while drawing
const TOP_TERMS = 12; // terms of a weighted sum listed one by one

const state = {
  model: null, // GET /api/model
  mode: "draw",
  seen: null, // the 28x28 image of the last prediction (what the network saw)
  label: null, // the test image's label, in test-set mode
  testIndex: 0,
  testShown: null, // the index of the test image on show (null before the first one arrives)
  prediction: null,
  selected: null, // {layer, unit}: the unit whose weighted sum is shown
  clicked: null, // the cell, map or bar clicked last: "back to the unit" scrolls to it
  inFlight: false,
  pending: false,
  timer: null,
  sequence: 0,
  hasInk: false,
  requests: 0, // requests in flight (predictions, explanations, test images)
};

// body[data-busy] is "1" while a request is scheduled or in flight, "0" when the page shows the
// latest answers (the browser tests wait for it).
function markBusy() {
  document.body.dataset.busy = state.requests > 0 || state.timer !== null || state.pending ? "1" : "0";
}

// $ and el: dom.js

// Numbers as scratchnet explain prints them: 6 significant digits.
function num(value) {
  if (value === null || value === undefined) return "";
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs < 1e-4 || abs >= 1e6) return value.toExponential(5).replace(/\.?0+e/, "e");
  return String(Number(value.toPrecision(6)));
}

function percent(p) {
  return `${(100 * p).toFixed(1)}%`;
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const started = performance.now();
  state.requests++;
  markBusy();
  try {
    const response = await fetch(path, options);
    const answer = await response.json();
    answer.roundTrip = performance.now() - started;
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    return answer;
  } finally {
    state.requests--;
    setTimeout(markBusy, 0); // after the caller has shown the answer (and perhaps asked for more)
  }
}

function status(text, isError = false) {
  const node = $("status");
  node.textContent = text;
  node.className = isError ? "error" : "";
}

// ---- shading: one scale per layer, dark (its lowest value) to bright (its highest) ----

function level(value, low, high) {
  if (!(high > low)) return 0;
  return Math.max(0, Math.min(1, (value - low) / (high - low)));
}

function grey(t) {
  const v = Math.round(255 * t);
  return `rgb(${v},${v},${v})`;
}

function paint(canvas, values, width, height, low = 0, high = 255) {
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  for (let k = 0; k < width * height; k++) {
    const v = Math.round(255 * level(values[k], low, high));
    image.data[4 * k] = v;
    image.data[4 * k + 1] = v;
    image.data[4 * k + 2] = v;
    image.data[4 * k + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

// ---- drawing ----

const pad = $("pad");
const ink = pad.getContext("2d", { willReadFrequently: true });
let last = null;

function clearPad() {
  ink.fillStyle = "#000";
  ink.fillRect(0, 0, pad.width, pad.height);
  state.hasInk = false;
  state.seen = null;
  showEmpty();
  if (state.selected !== null) explainSelected(); // says there is nothing to explain yet
}

function padPoint(event) {
  const rect = pad.getBoundingClientRect();
  return {
    x: ((event.clientX - rect.left) * pad.width) / rect.width,
    y: ((event.clientY - rect.top) * pad.height) / rect.height,
  };
}

function stroke(from, to) {
  ink.strokeStyle = "#fff";
  ink.fillStyle = "#fff";
  ink.lineWidth = PAD_LINE;
  ink.lineCap = "round";
  ink.lineJoin = "round";
  ink.beginPath();
  if (from.x === to.x && from.y === to.y) {
    ink.arc(to.x, to.y, PAD_LINE / 2, 0, 2 * Math.PI);
    ink.fill();
  } else {
    ink.moveTo(from.x, from.y);
    ink.lineTo(to.x, to.y);
    ink.stroke();
  }
  state.hasInk = true;
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  last = padPoint(event);
  stroke(last, last);
  schedule();
});
pad.addEventListener("pointermove", (event) => {
  if (last === null) return;
  event.preventDefault();
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of events.length ? events : [event]) {
    const point = padPoint(e);
    stroke(last, point);
    last = point;
  }
  schedule();
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => {
    if (last === null) return;
    last = null;
    schedule(0);
  });
}
$("clear").addEventListener("click", clearPad);

function padPixels() {
  const data = ink.getImageData(0, 0, pad.width, pad.height).data;
  const grey = new Uint8Array(pad.width * pad.height);
  for (let k = 0; k < grey.length; k++) grey[k] = data[4 * k];
  let binary = "";
  for (let k = 0; k < grey.length; k += 0x8000) binary += String.fromCharCode.apply(null, grey.subarray(k, k + 0x8000));
  return btoa(binary);
}

// At most one request at a time, and at most one per THROTTLE_MS: the display follows the pen.
function schedule(delay = THROTTLE_MS) {
  if (state.inFlight) {
    state.pending = true;
    markBusy();
    return;
  }
  if (state.timer !== null) {
    if (delay !== 0) return;
    clearTimeout(state.timer);
  }
  state.timer = setTimeout(() => {
    state.timer = null;
    predictDrawing();
  }, delay);
  markBusy();
}

async function predictDrawing() {
  if (state.mode !== "draw") {
    markBusy();
    return;
  }
  if (!state.hasInk) {
    showEmpty();
    markBusy();
    return;
  }
  state.inFlight = true;
  const sequence = ++state.sequence;
  try {
    const answer = await api("/api/predict", { pixels: padPixels(), width: pad.width, height: pad.height });
    if (sequence === state.sequence && state.mode === "draw") {
      state.label = null;
      show(answer);
    }
  } catch (error) {
    status(error.message, true);
  } finally {
    state.inFlight = false;
    if (state.pending) {
      state.pending = false;
      schedule();
    }
  }
}

// ---- test-set mode ----

function setMode(mode) {
  state.mode = mode;
  state.sequence++;
  $("draw-panel").hidden = mode !== "draw";
  $("test-panel").hidden = mode !== "test";
  for (const name of ["draw", "test"]) {
    $(`mode-${name}`).classList.toggle("active", name === mode);
    $(`mode-${name}`).setAttribute("aria-pressed", String(name === mode));
  }
  if (mode === "test") {
    loadTest(`index=${state.testIndex}`);
  } else {
    state.label = null;
    state.hasInk ? schedule(0) : showEmpty();
  }
}

// An error about the test image asked for is shown under the Index field (and the field marked),
// saying which image is still on show, so the field's value and the image never disagree silently.
function fieldError(text) {
  const node = $("test-error");
  const still = state.testShown === null ? "" : ` Still showing test image ${state.testShown}.`;
  node.textContent = text ? `${text}${still}` : "";
  node.hidden = !text;
  $("test-index").setAttribute("aria-invalid", text ? "true" : "false");
}

async function loadTest(query) {
  const sequence = ++state.sequence;
  try {
    const answer = await api(`/api/test?${query}`);
    if (sequence !== state.sequence || state.mode !== "test") return;
    fieldError("");
    state.testIndex = answer.index;
    state.testShown = answer.index;
    state.label = answer.label;
    $("test-index").value = answer.index;
    paint($("test-image"), answer.image.flat(), 28, 28);
    const right = answer.predicted === answer.label;
    const caption = $("test-caption");
    caption.replaceChildren(
      el("span", { text: `Test image ${answer.index} of ${answer.count}: label ` }),
      el("b", { id: "test-label", "data-label": String(answer.label), text: answer.label_name }),
      el("span", { class: right ? "" : "error", text: right ? " (predicted right)" : " (predicted wrong)" }),
    );
    show(answer);
  } catch (error) {
    if (sequence !== state.sequence || state.mode !== "test") return;
    fieldError(error.message.replace(/\.$/, "") + ".");
    status(error.message, true);
  }
}

// The index typed in the field, checked here against the test set's size: a bad one is named at the
// field, and no request is made.
function showTypedIndex() {
  const typed = $("test-index").value.trim();
  const index = Number(typed);
  const size = state.model.test_set.size;
  if (typed === "" || !Number.isInteger(index) || index < 0 || index >= size) {
    const what = typed === "" ? "The index is empty or not a number" : `There is no test image ${typed}`;
    fieldError(`${what}: give a whole number from 0 to ${size - 1}.`);
    return;
  }
  loadTest(`index=${index}`);
}

$("mode-draw").addEventListener("click", () => setMode("draw"));
$("mode-test").addEventListener("click", () => setMode("test"));
$("test-show").addEventListener("click", showTypedIndex);
$("test-index").addEventListener("keydown", (event) => {
  if (event.key === "Enter") $("test-show").click();
});
$("test-random").addEventListener("click", () => loadTest("random"));
$("test-wrong").addEventListener("click", () => loadTest(`misclassified_after=${state.testIndex}`));

// ---- showing a prediction ----

function showEmpty() {
  state.prediction = null;
  paint($("seen"), new Array(784).fill(0), 28, 28);
  $("seen-note").textContent = "28x28 pixels, the digit scaled to fit 20x20 and centred by its centre of mass, as in MNIST.";
  $("predicted-class").textContent = "–";
  $("predicted-p").textContent = "draw a digit";
  $("prediction").dataset.class = "";
  $("prediction").classList.remove("wrong");
  for (const row of document.querySelectorAll(".prob")) {
    row.classList.remove("top", "label", "wrong");
    row.dataset.p = "";
    row.querySelector(".fill").style.width = "0";
    row.querySelector(".value").textContent = "";
  }
  for (const layer of document.querySelectorAll(".layer")) layer.dispatchEvent(new CustomEvent("clear"));
  status("");
}

function show(answer) {
  state.prediction = answer;
  state.seen = answer.image;
  paint($("seen"), answer.image.flat(), 28, 28);
  const pre = answer.preprocessing;
  $("seen-note").textContent = pre === null
    ? "A test image, fed as it is: MNIST's images are already 28x28 and centred."
    : pre.unchanged ? "Already 28x28 and centred as MNIST's digits are: fed as it is."
      : `The ink (${pre.box.height}x${pre.box.width} pixels) scaled to ${pre.size[0]}x${pre.size[1]} and centred by its centre of mass.`;
  const names = state.model.class_names;
  const k = answer.predicted;
  // In test-set mode a wrong prediction is marked as wrong: its bar in the warning colour, the true
  // class's bar in green.
  const wrong = state.label !== null && k !== state.label;
  $("predicted-class").textContent = names[k];
  $("predicted-p").textContent = percent(answer.probabilities[k]) + (wrong ? ` · wrong: the label is ${names[state.label]}` : "");
  $("prediction").dataset.class = String(k);
  $("prediction").classList.toggle("wrong", wrong);
  answer.probabilities.forEach((p, j) => {
    const row = document.querySelector(`.prob[data-class="${j}"]`);
    row.dataset.p = String(p);
    row.classList.toggle("top", j === k);
    row.classList.toggle("wrong", wrong && j === k);
    row.classList.toggle("label", state.label !== null && j === state.label);
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(2)}%`;
    row.querySelector(".value").textContent = percent(p);
  });
  for (const layer of answer.layers) {
    const node = document.querySelector(`.layer[data-index="${layer.index}"]`);
    if (node) node.dispatchEvent(new CustomEvent("values", { detail: layer }));
  }
  status(`prediction: ${answer.roundTrip.toFixed(0)} ms round trip, ${answer.server_milliseconds.toFixed(1)} ms in the server`
    + ` (${answer.milliseconds.toFixed(1)} ms in the model)`);
  if (state.selected !== null) explainSelected();
}

// ---- the page's parts, built from the model ----

function buildBars() {
  const bars = $("bars");
  bars.replaceChildren();
  state.model.class_names.forEach((name, k) => {
    const row = el("button", { type: "button", class: "prob", "data-class": String(k), role: "listitem",
      title: `explain output neuron ${k}` }, [
      el("span", { class: "name", text: name === String(k) ? name : `${k} ${name}` }),
      el("span", { class: "track" }, [el("span", { class: "fill" })]),
      el("span", { class: "value" }),
    ]);
    row.addEventListener("click", () => select({ layer: state.model.output_layer, unit: [k], node: row }));
    bars.append(row);
  });
}

function buildLayers() {
  const container = $("layers");
  container.replaceChildren();
  if (state.model.layers.length === 0) {
    container.append(el("p", { class: "hint", text: "This model has no hidden layer." }));
  }
  for (const layer of state.model.layers) {
    const shape = layer.shape;
    const node = el("div", { class: "layer", "data-index": String(layer.index) });
    const size = shape.length === 3 ? `${shape[0]} feature maps of ${shape[1]}x${shape[2]}` : `${shape[0]} units`;
    const range = el("span");
    const which = layer.explain === layer.index ? `layer ${layer.index}` : `layers ${layer.explain}–${layer.index}`;
    node.append(el("h4", {}, [`${which}: ${layer.name} `, el("span", { text: `· ${size}` }), " ", range]));
    if (shape.length === 3) buildMaps(node, layer, range);
    else buildCells(node, layer, range);
    container.append(node);
  }
}

function buildCells(node, layer, range) {
  const cells = el("div", { class: "cells" });
  const units = [];
  for (let j = 0; j < layer.shape[0]; j++) {
    const cell = el("button", { type: "button", class: "cell", "data-unit": String(j), title: `unit ${j}` });
    cell.addEventListener("click", () => select({ layer: layer.explain, unit: [j], node: cell }));
    cells.append(cell);
    units.push(cell);
  }
  node.append(cells);
  node.addEventListener("values", (event) => {
    const { values, low, high } = event.detail;
    range.textContent = `· from ${num(low)} to ${num(high)}`;
    units.forEach((cell, j) => {
      cell.style.background = grey(level(values[j], low, high));
      cell.title = `unit ${j}: ${num(values[j])}`;
    });
  });
  node.addEventListener("clear", () => {
    range.textContent = "";
    for (const cell of units) cell.style.background = "#000";
  });
}

function buildMaps(node, layer, range) {
  const [channels, height, width] = layer.shape;
  const scale = Math.max(2, Math.min(4, Math.floor(84 / Math.max(height, width))));
  const maps = el("div", { class: "maps" });
  const canvases = [];
  for (let c = 0; c < channels; c++) {
    const canvas = el("canvas", { width: String(width), height: String(height), "data-channel": String(c) });
    canvas.style.width = `${width * scale}px`;
    canvas.style.height = `${height * scale}px`;
    const box = el("div", { class: "map" }, [canvas, el("span", { text: `ch ${c}` })]);
    canvas.addEventListener("click", (event) => {
      const rect = canvas.getBoundingClientRect();
      const i = Math.min(height - 1, Math.floor(((event.clientY - rect.top) * height) / rect.height));
      const j = Math.min(width - 1, Math.floor(((event.clientX - rect.left) * width) / rect.width));
      const pick = el("span", { class: "pick" });
      pick.style.left = `${j * scale - 1}px`;
      pick.style.top = `${i * scale - 1}px`;
      pick.style.width = `${scale + 2}px`;
      pick.style.height = `${scale + 2}px`;
      select({ layer: layer.explain, unit: [c, i, j], node: box, pick });
    });
    maps.append(box);
    canvases.push(canvas);
  }
  node.append(maps);
  node.addEventListener("values", (event) => {
    const { values, low, high } = event.detail;
    range.textContent = `· from ${num(low)} to ${num(high)}`;
    const plane = height * width;
    canvases.forEach((canvas, c) => paint(canvas, values.slice(c * plane, (c + 1) * plane), width, height, low, high));
  });
  node.addEventListener("clear", () => {
    range.textContent = "";
    for (const canvas of canvases) paint(canvas, new Array(height * width).fill(0), width, height);
  });
}

// ---- explaining a unit ----

function select(choice) {
  for (const node of document.querySelectorAll(".selected")) node.classList.remove("selected");
  for (const node of document.querySelectorAll(".pick")) node.remove();
  choice.node.classList.add("selected");
  if (choice.pick) choice.node.append(choice.pick);
  state.selected = { layer: choice.layer, unit: choice.unit };
  explainSelected();
  reveal(choice.node);
}

function smoothly() {
  return window.matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth";
}

// The Weighted sum card may be far from the unit clicked (on a phone the page is one long column):
// unless its top is already on screen, scroll it into view, and offer a button back to the unit.
function reveal(clicked) {
  const card = $("explain-card").getBoundingClientRect();
  const back = $("explain-back");
  state.clicked = clicked;
  if (card.top >= 0 && card.top <= window.innerHeight - 160) {
    back.hidden = true;
    return;
  }
  const below = clicked.getBoundingClientRect().top > card.top;
  back.textContent = `${below ? "↓" : "↑"} back to the unit`;
  back.hidden = false;
  $("explain-card").scrollIntoView({ behavior: smoothly(), block: "start" });
}

$("explain-back").addEventListener("click", () => {
  $("explain-back").hidden = true;
  if (state.clicked && state.clicked.isConnected) state.clicked.scrollIntoView({ behavior: smoothly(), block: "center" });
});

async function explainSelected() {
  if (state.seen === null || state.selected === null) {
    $("explanation").replaceChildren(el("p", { class: "hint", text: "Draw a digit (or pick a test image) first." }));
    return;
  }
  const { layer, unit } = state.selected;
  const body = { pixels: state.seen, preprocess: false, layer, unit, top: TOP_TERMS };
  if (state.label !== null) body.label = state.label;
  const sequence = state.sequence;
  try {
    const answer = await api("/api/explain", body);
    if (sequence === state.sequence && state.selected && state.selected.layer === layer
      && String(state.selected.unit) === String(unit)) {
      renderExplanation(answer);
    }
  } catch (error) {
    $("explanation").replaceChildren(el("p", { class: "error", text: error.message }));
  }
}

function equationLine(equation, extra = "") {
  return el("div", { class: "equation mono" }, [
    el("b", { text: `(${equation.number}) ` }), `${equation.function}: ${equation.formula}${extra}`,
  ]);
}

function termsTable(answer, inputName) {
  const largest = Math.max(1e-300, ...answer.terms.map((t) => Math.abs(t.product)));
  const table = el("table", { class: "terms" });
  table.append(el("tr", {}, [
    el("th", { text: inputName }), el("th", { text: "w" }), el("th", { text: "x" }),
    el("th", { text: "w · x" }), el("th", { text: "" }),
  ]));
  for (const t of answer.terms) {
    const bar = el("div", { class: "pbar" }, [el("i", { class: t.product >= 0 ? "pos" : "neg" })]);
    bar.firstChild.style.width = `${(50 * Math.abs(t.product)) / largest}%`;
    table.append(el("tr", {}, [
      el("td", { class: "mono", text: t.where }), el("td", { text: num(t.weight) }), el("td", { text: num(t.input) }),
      el("td", { text: num(t.product) }), el("td", { class: "bar" }, [bar]),
    ]));
  }
  const line = (cls, label, value) => el("tr", { class: cls }, [
    el("td", { text: label, colspan: "3" }), el("td", { text: num(value) }), el("td"),
  ]);
  if (answer.rest_count) table.append(line("rest", `+ the other ${answer.rest_count} terms`, answer.rest_sum));
  table.append(line("sum", "= the weighted sum", answer.weighted_sum));
  table.append(line("", "+ b (bias)", answer.bias));
  table.append(line("sum", "= z", answer.z));
  return table;
}

function activationLine(activation, symbol = "z") {
  if (!activation) return [];
  if (!activation.kind) return [el("p", { class: "activation", text: `${symbol}: ${activation.then}` })];
  const name = activation.kind === "Softmax" ? "softmax" : `${activation.kind}.f`;
  return [el("p", { class: "activation" }, [
    el("b", { class: "mono", text: `(${activation.number}) ` }), `${name}: `,
    el("span", { class: "mono", text: activation.rule }), " gives ",
    el("b", { text: `${activation.kind === "Softmax" ? "p" : "a"} = ${num(activation.a)}` }),
  ])];
}

function renderExplanation(answer) {
  const parts = [el("p", { class: "title", text: answer.title })];
  if (answer.kind === "Dense" || answer.kind === "Conv2D") {
    parts.push(equationLine(answer.equation));
    const zeros = answer.zero_inputs ? `; ${answer.zero_inputs} inputs are 0 and add nothing` : "";
    const padded = answer.padded ? `; ${answer.padded} taps on the zero padding are left out` : "";
    parts.push(el("p", { class: "where", text: `x = ${answer.input_name}${zeros}${padded}. The largest terms first:` }));
    parts.push(termsTable(answer, answer.kind === "Dense" ? "input" : "term"));
    parts.push(...activationLine(answer.activation));
  } else if (answer.kind === "MaxPool2D" || answer.kind === "AvgPool2D") {
    parts.push(equationLine(answer.equation));
    parts.push(el("p", { class: "where", text: `the window at rows ${answer.rows[0]}..${answer.rows[1]}, cols ${answer.cols[0]}..${answer.cols[1]} of x = ${answer.input_name}` }));
    const table = el("table", { class: "terms window" });
    table.append(el("tr", {}, [el("th", { text: "" }), ...answer.window[0].map((_, m) => el("th", { text: `col ${answer.cols[0] + m}` }))]));
    answer.window.forEach((values, n) => {
      const r = answer.rows[0] + n;
      table.append(el("tr", {}, [el("td", { text: `row ${r}` }), ...values.map((v, m) => {
        const chosen = answer.chosen && answer.chosen[0] === r && answer.chosen[1] === answer.cols[0] + m;
        return el("td", { class: chosen ? "chosen" : "", text: num(v) });
      })]));
    });
    parts.push(table);
    parts.push(el("p", { class: "activation" }, [el("b", { text: `a = ${num(answer.a)}` }),
      answer.kind === "MaxPool2D" ? " (the window's first maximum, in red)" : ` (the sum ${num(answer.total)} divided by the window's size)`]));
  } else if (answer.kind === "BatchNorm") {
    parts.push(equationLine(answer.equation));
    const table = el("table", { class: "terms" });
    for (const [label, value] of [["x", answer.x], ["running mean", answer.mean], ["running var", answer.var],
      ["(15.3) x_hat", answer.x_hat], ["gamma", answer.gamma], ["beta", answer.beta], ["(15.4) y", answer.y]]) {
      table.append(el("tr", {}, [el("td", { text: label }), el("td", { text: num(value) })]));
    }
    parts.push(table);
    parts.push(...activationLine(answer.activation, "y"));
  }
  const text = el("pre", { text: answer.lines.join("\n") });
  parts.push(el("details", {}, [el("summary", { text: "as scratchnet explain prints it" }), text]));
  $("explanation").replaceChildren(...parts);
}

// ---- start ----

async function start() {
  try {
    state.model = await api("/api/model");
  } catch (error) {
    $("model-line").replaceChildren(el("span", { class: "error", text: `cannot load the model: ${error.message}` }));
    return;
  }
  const model = state.model;
  const line = $("model-line");
  line.replaceChildren(
    el("b", { text: model.model }), ` · ${model.architecture}`, model.dataset ? ` · trained on ${model.dataset}` : "",
  );
  line.title = line.textContent; // on a narrow screen the line is cut to one line: a tap shows it all
  line.addEventListener("click", () => line.classList.toggle("open"));
  const test = model.test_set;
  $("mode-test").disabled = !test.available;
  $("mode-test").title = test.available ? `browse the ${test.size} test images` : `no test set: ${test.problem}`;
  $("test-index").max = String(Math.max(0, test.size - 1));
  buildBars();
  buildLayers();
  clearPad();
  markBusy();
}

start();
