// scratchnet serve, Train page: the controls, the run's stream of snapshots and the views of one.
// Plain JavaScript, no framework, no build step, nothing from the network but this server's own
// train API (docs/serve.md, "Train mode API"). Drawing: train_draw.js; one weight: train_inspect.js.
"use strict";

const POLL_MS = 300; // polling period when server-sent events are not available
const ACTIVATION_NAMES = { relu: "relu", tanh: "tanh", sigmoid: "sigmoid", "leaky_relu(0.1)": "leaky_relu(0.1)" };

const train = {
  status: "none", // none | running | paused | stopped
  latest: null, // the latest snapshot streamed
  shown: null, // the snapshot on show (the latest, or a kept one while travelling)
  travel: null, // the kept step on show, or null for live
  kept: [], // the kept steps (time travel)
  requests: 0,
  events: null,
  poll: null,
  picked: null, // {parameter, index}: the weight whose step is shown
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function markBusy() {
  document.body.dataset.busy = train.requests > 0 ? "1" : "0";
}

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  train.requests++;
  markBusy();
  try {
    const response = await fetch(path, options);
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    return answer;
  } finally {
    train.requests--;
    setTimeout(markBusy, 0);
  }
}

// ---- the setup: data, network, optimizer ----

function showDataFields() {
  const kind = $("data-kind").value;
  $("toy-fields").hidden = kind !== "toy";
  $("image-fields").hidden = kind !== "mnist" && kind !== "fashion-mnist";
  $("csv-fields").hidden = kind !== "csv";
  $("split-fields").hidden = kind === "mnist" || kind === "fashion-mnist";
  if (kind === "mnist" || kind === "fashion-mnist") {
    if ($("net-layers").dataset.edited !== "1") $("net-width").value = "32";
  }
  layersFromControls();
}

// The simple controls write the compact notation; editing the text directly takes over.
function layersFromControls() {
  const depth = Math.max(0, Math.min(6, Number($("net-depth").value) || 0));
  const width = Math.max(1, Number($("net-width").value) || 1);
  const activation = ACTIVATION_NAMES[$("net-activation").value] || "relu";
  const items = [];
  for (let k = 0; k < depth; k++) items.push(`dense(${width})`, activation);
  const image = ["mnist", "fashion-mnist"].includes($("data-kind").value);
  $("net-layers").value = (image ? ["flatten", ...items] : items).join(", ");
  $("net-layers").dataset.edited = "0";
}

function numberOf(id) {
  const value = Number($(id).value);
  if ($(id).value.trim() === "" || !Number.isFinite(value)) throw new Error(`${$(id).labels[0].textContent} is not a number`);
  return value;
}

async function dataRequest() {
  const kind = $("data-kind").value;
  if (kind === "toy") {
    const request = {
      kind, name: $("toy-name").value, points: Math.trunc(numberOf("toy-points")), noise: numberOf("toy-noise"),
      test_fraction: numberOf("test-fraction"), seed: Math.trunc(numberOf("seed")),
    };
    if ($("toy-classes").value !== "") request.classes = Math.trunc(numberOf("toy-classes"));
    return request;
  }
  if (kind === "csv") return { kind, upload: await uploadCsv(), test_fraction: numberOf("test-fraction") };
  return { kind, limit: Math.trunc(numberOf("image-limit")), test_limit: Math.trunc(numberOf("image-test-limit")) };
}

async function uploadCsv() {
  const file = $("csv-file").files[0];
  if (!file) throw new Error("choose a CSV file first");
  const bound = Number($("csv-bound").dataset.bytes || 1048576);
  if (file.size > bound) throw new Error(`${file.name} is ${file.size} bytes; the limit is ${bound}`);
  const answer = await api("/api/train/upload", { name: file.name, text: await file.text() });
  return answer.upload ?? answer.id;
}

async function startRequest() {
  return {
    data: await dataRequest(),
    network: { layers: $("net-layers").value.trim() },
    optimizer: { type: $("opt-type").value, lr: numberOf("opt-lr"), weight_decay: numberOf("opt-decay") },
    batch_size: Math.trunc(numberOf("opt-batch")),
    backend: $("backend").value,
    seed: Math.trunc(numberOf("seed")),
  };
}

function setupError(text) {
  $("setup-error").textContent = text || "";
  $("setup-error").hidden = !text;
}

async function start() {
  setupError("");
  try {
    const request = await startRequest();
    const answer = await api("/api/train/start", request);
    train.travel = null;
    train.kept = [];
    train.picked = null;
    clearInspect();
    $("live-lr").value = String(Math.log10(request.optimizer.lr));
    $("live-lr-value").textContent = num(request.optimizer.lr);
    if (answer.step !== undefined) show(answer, true);
    listen();
  } catch (error) {
    setupError(error.message);
  }
}

async function control(action, extra = {}) {
  try {
    const answer = await api("/api/train/control", { action, ...extra });
    if (answer.step !== undefined) {
      train.travel = null;
      show(answer, true);
    }
    if (action === "reset") {
      train.latest = null;
      train.shown = null;
      train.kept = [];
      clearViews();
      clearInspect();
    }
    return answer;
  } catch (error) {
    status(error.message, true);
    return null;
  }
}

// ---- the stream of snapshots ----

function listen() {
  if (train.events !== null || train.poll !== null) return;
  if (typeof EventSource === "function") {
    train.events = new EventSource("/api/train/events");
    train.events.onmessage = (event) => show(JSON.parse(event.data), true);
    train.events.addEventListener("snapshot", (event) => show(JSON.parse(event.data), true));
    train.events.onerror = () => {
      if (train.events.readyState === EventSource.CLOSED) {
        train.events = null;
        startPolling();
      }
    };
  } else {
    startPolling();
  }
}

function startPolling() {
  if (train.poll !== null) return;
  train.poll = setInterval(async () => {
    try {
      show(await api("/api/train/state"), true);
    } catch (error) {
      status(error.message, true);
    }
  }, POLL_MS);
}

function runStatus(snapshot) {
  if (snapshot.status) return snapshot.status;
  if (snapshot.running === true) return "running";
  if (snapshot.running === false) return snapshot.step > 0 ? "paused" : "none";
  return train.status;
}

// A snapshot arrives (live == true: from the stream or a control) or is asked for (time travel).
function show(snapshot, live) {
  if (!snapshot || snapshot.step === undefined || snapshot.step === null) {
    if (snapshot && live) setStatus(runStatus(snapshot));
    return;
  }
  if (live) {
    train.latest = snapshot;
    setStatus(runStatus(snapshot));
    if (Array.isArray(snapshot.kept)) setKept(snapshot.kept);
    if (train.travel !== null) return; // looking at the past: the live run goes on underneath
  }
  train.shown = snapshot;
  render(snapshot);
}

function setStatus(value) {
  train.status = value;
  document.body.dataset.run = value;
  const running = value === "running";
  const active = value === "running" || value === "paused";
  $("pause").disabled = !active;
  $("pause").textContent = running ? "Pause" : "Resume";
  $("step").disabled = running || !active;
  $("reset").disabled = value === "none";
  $("start").disabled = active;
  $("save").disabled = !active && value !== "stopped";
  $("download").classList.toggle("disabled", !(active || value === "stopped"));
  $("download").setAttribute("aria-disabled", String(!(active || value === "stopped")));
}

function setKept(steps) {
  train.kept = steps.map((s) => (typeof s === "number" ? s : s.step));
  const slider = $("travel");
  slider.max = String(Math.max(0, train.kept.length - 1));
  slider.disabled = train.kept.length === 0;
  if (train.travel === null) slider.value = slider.max;
}

// ---- the views of one snapshot ----

function curve(snapshot, name) {
  const curves = snapshot.curves || {};
  return pairsOf(curves[name]);
}

function lastValue(points) {
  return points.length ? points[points.length - 1][1] : null;
}

function render(snapshot) {
  const marker = train.travel;
  const testLoss = snapshot.test_loss ?? lastValue(curve(snapshot, "test_loss"));
  const testAccuracy = snapshot.test_accuracy ?? lastValue(curve(snapshot, "test_accuracy"));
  $("test-loss").textContent = testLoss === null ? "–" : short(testLoss, 4);
  $("test-loss").dataset.value = testLoss === null ? "" : String(testLoss);
  $("test-accuracy").textContent = testAccuracy === null ? "–" : `${(100 * testAccuracy).toFixed(1)}%`;
  $("step-count").textContent = String(snapshot.step);
  $("step-count").dataset.step = String(snapshot.step);
  const source = marker === null ? train.latest ?? snapshot : train.latest ?? snapshot;
  drawCurves($("loss-curve"), [
    { points: curve(source, "train_loss"), colour: TRAIN_COLOUR },
    { points: curve(source, "test_loss"), colour: TEST_COLOUR },
  ], 0, null, marker);
  drawCurves($("accuracy-curve"), [
    { points: curve(source, "train_accuracy"), colour: TRAIN_COLOUR },
    { points: curve(source, "test_accuracy"), colour: TEST_COLOUR },
  ], 0, 1, marker);
  runLine(snapshot);
  const twoD = Boolean(snapshot.regions);
  $("regions-panel").hidden = !twoD && Boolean(snapshot.filters);
  $("filters-panel").hidden = !snapshot.filters;
  if (twoD) drawRegions($("regions"), snapshot.regions, snapshot.points);
  if (snapshot.filters) drawFilters(snapshot.filters);
  drawActivations(snapshot.activations, snapshot.sample);
  drawWeights(snapshot.weights);
  drawDiagnostics(snapshot.diagnostics, snapshot.warnings);
}

function runLine(snapshot) {
  const parts = [];
  if (snapshot.architecture) parts.push(`<b>${escapeHtml(snapshot.architecture)}</b>`);
  if (snapshot.data) parts.push(escapeHtml(snapshot.data));
  parts.push(`step ${snapshot.step}`);
  if (snapshot.epoch !== undefined) parts.push(`epoch ${snapshot.epoch}`);
  if (snapshot.lr !== undefined) parts.push(`lr ${num(snapshot.lr)}`);
  parts.push(train.travel === null ? train.status : `kept snapshot (the run is ${train.status})`);
  $("run-line").innerHTML = parts.join(" · ");
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

// filters: {shape: [units, h, w], values: [units][h*w]} or a list of {rows, cols, values}
function drawFilters(filters) {
  const box = $("filters");
  const list = Array.isArray(filters) ? filters : filters.values.map((values) => ({
    rows: filters.shape[1], cols: filters.shape[2], values,
  }));
  while (box.children.length > list.length) box.lastChild.remove();
  list.forEach((filter, k) => {
    let canvas = box.children[k];
    if (!canvas) {
      canvas = el("canvas", { "data-unit": String(k), title: `unit ${k}` });
      box.append(canvas);
    }
    paintValues(canvas, filter.values, filter.rows, filter.cols);
  });
}

// activations: [{index, name, values}] for one sample (flat values), one strip each
function drawActivations(activations, sample) {
  const box = $("activations");
  $("sample-note").textContent = sample === undefined || sample === null ? "" : `test sample ${sample.index ?? sample}`;
  if (!Array.isArray(activations)) {
    box.replaceChildren();
    return;
  }
  box.replaceChildren(...activations.map((layer) => {
    const values = layer.values;
    const low = Math.min(...values);
    const high = Math.max(...values);
    const canvas = el("canvas", { "data-index": String(layer.index) });
    paintValues(canvas, values, 1, values.length, { grey: true });
    return el("div", { class: "act" }, [
      el("h4", {}, [`${layer.index} ${layer.name ?? ""} `, el("span", { text: `${values.length} values, ${short(low, 3)} to ${short(high, 3)}` })]),
      canvas,
    ]);
  }));
}

function drawDiagnostics(diagnostics, warnings) {
  const box = $("diagnostics");
  if (!Array.isArray(diagnostics) || diagnostics.length === 0) {
    box.replaceChildren(el("p", { class: "hint", text: "none yet" }));
    return;
  }
  const head = el("tr", {}, ["layer", "act. mean", "act. std", "saturated", "grad std", "log10 update/data"].map((t) => el("th", { text: t })));
  const rows = diagnostics.map((d) => {
    const ratio = d.update_ratio ?? d.log10_update_ratio;
    const saturated = d.saturated ?? d.saturated_fraction;
    const off = ratio !== null && ratio !== undefined && (ratio < -4 || ratio > -2);
    return el("tr", {}, [
      el("td", { text: `${d.index ?? d.layer} ${d.name ?? d.kind ?? ""}` }),
      el("td", { text: short(d.mean ?? d.activation_mean, 3) }),
      el("td", { text: short(d.std ?? d.activation_std, 3) }),
      el("td", { text: saturated === null || saturated === undefined ? "–" : `${(100 * saturated).toFixed(0)}%`, class: saturated > 0.5 ? "warn" : "" }),
      el("td", { text: short(d.grad_std ?? d.gradient_std, 3) }),
      el("td", { text: short(ratio, 3), class: off ? "warn" : "" }),
    ]);
  });
  const parts = [el("table", { class: "diag" }, [head, ...rows])];
  for (const warning of warnings || []) parts.push(el("p", { class: "warning", text: warning }));
  box.replaceChildren(...parts);
}

function clearViews() {
  for (const id of ["loss-curve", "accuracy-curve", "regions"]) {
    const canvas = $(id);
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  }
  for (const id of ["filters", "activations", "weights"]) $(id).replaceChildren();
  $("test-loss").textContent = "–";
  $("test-loss").dataset.value = "";
  $("test-accuracy").textContent = "–";
  $("step-count").textContent = "0";
  $("run-line").innerHTML = "no run yet: choose the data and the network, then <b>Start</b>";
  drawDiagnostics(null, null);
  setKept([]);
  setTravel(null);
}

// ---- time travel ----

function setTravel(step) {
  train.travel = step;
  document.body.dataset.travel = step === null ? "live" : "past";
  $("travel-label").textContent = step === null ? "live" : `step ${step}`;
  $("travel-live").disabled = step === null;
  $("fork").disabled = step === null;
}

async function travelTo(position) {
  const step = train.kept[position];
  if (step === undefined) return;
  if (position === train.kept.length - 1 && train.status === "running") {
    setTravel(null);
    if (train.latest) show(train.latest, false);
    return;
  }
  setTravel(step);
  try {
    const snapshot = await api(`/api/train/snapshot?step=${step}`);
    if (train.travel === step) show(snapshot, false);
  } catch (error) {
    status(error.message, true);
  }
}

async function fork() {
  if (train.travel === null) return;
  const step = train.travel;
  try {
    const answer = await api("/api/train/fork", { step });
    setTravel(null);
    status(`resumed from step ${step}: the later snapshots are dropped`);
    if (answer.step !== undefined) show(answer, true);
  } catch (error) {
    status(error.message, true);
  }
}

// ---- the model ----

async function save() {
  try {
    const answer = await api("/api/train/save", { name: $("save-name").value });
    $("save-note").textContent = answer.message || `saved as ${answer.file ?? answer.path ?? answer.name}`;
  } catch (error) {
    $("save-note").textContent = error.message;
  }
}

// ---- wiring ----

$("data-kind").addEventListener("change", showDataFields);
for (const id of ["net-depth", "net-width", "net-activation"]) $(id).addEventListener("input", layersFromControls);
$("net-layers").addEventListener("input", () => { $("net-layers").dataset.edited = "1"; });
$("start").addEventListener("click", start);
$("pause").addEventListener("click", () => control(train.status === "running" ? "pause" : "resume"));
$("step").addEventListener("click", () => control("step"));
$("reset").addEventListener("click", () => control("reset"));
$("live-lr").addEventListener("input", () => {
  $("live-lr-value").textContent = num(10 ** Number($("live-lr").value));
});
$("live-lr").addEventListener("change", () => {
  const lr = Number((10 ** Number($("live-lr").value)).toPrecision(3));
  $("live-lr-value").textContent = num(lr);
  if (train.status !== "none") control("lr", { lr });
});
$("travel").addEventListener("input", () => travelTo(Number($("travel").value)));
$("travel-live").addEventListener("click", () => {
  setTravel(null);
  $("travel").value = $("travel").max;
  if (train.latest) show(train.latest, false);
});
$("fork").addEventListener("click", fork);
$("save").addEventListener("click", save);

setStatus("none");
setTravel(null);
api("/api/train/state").then((snapshot) => {
  if (snapshot && snapshot.step !== undefined && snapshot.step !== null) {
    show(snapshot, true); // a run already going: this tab watches it too
    listen();
  } else if (snapshot) {
    setStatus(runStatus(snapshot));
  }
}).catch((error) => status(`the train API does not answer: ${error.message}`, true));
