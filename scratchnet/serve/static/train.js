// scratchnet serve, Train page: the controls, the run's stream of snapshots and the views of one.
// Plain JavaScript, no framework, no build step, nothing from the network but this server's own
// train API (docs/serve.md, "Train mode API"). Drawing: train_draw.js; one weight: train_inspect.js.
"use strict";

const POLL_MS = 300; // polling period when server-sent events are not available
const ACTIVATION_NAMES = { relu: "relu", tanh: "tanh", sigmoid: "sigmoid", "leaky_relu(0.1)": "leaky_relu(0.1)" };

const train = {
  status: "idle", // idle | running | paused | finished | stopped (docs/serve.md, "Train mode API")
  run: null, // the run's settings and points (sent in the first event of a stream and when a run starts)
  runId: null,
  info: null, // GET /api/train/info
  latest: null, // the latest snapshot streamed
  shown: null, // the snapshot on show (the latest, or a kept one while travelling)
  travel: null, // the kept step on show, or null for live
  kept: [], // the kept steps (time travel)
  requests: 0,
  events: null,
  poll: null,
  picked: null, // {parameter, index}: the weight whose step is shown
};

// $ and el: dom.js

function markBusy() {
  document.body.dataset.busy = train.requests > 0 ? "1" : "0";
}

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function api(path, body, type = "application/json") {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": type },
    body: type === "application/json" ? JSON.stringify(body) : body,
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
  const answer = await api("/api/train/upload", await file.text(), "text/csv");
  $("csv-note").textContent = `${file.name}: ${answer.rows} rows, samples of ${[].concat(answer.features).join("x")}, ${answer.classes} classes`;
  return answer.upload;
}

// "momentum" is SGD with momentum 0.9; the others are the optimizers' own names.
function optimizerRequest() {
  const type = $("opt-type").value;
  const optimizer = { type: type === "momentum" ? "sgd" : type, lr: numberOf("opt-lr") };
  if (type === "momentum") optimizer.momentum = 0.9;
  const decay = numberOf("opt-decay");
  if (decay !== 0) optimizer.weight_decay = decay;
  return optimizer;
}

async function startRequest() {
  return {
    data: await dataRequest(),
    network: { layers: $("net-layers").value.trim() },
    optimizer: optimizerRequest(),
    batch_size: Math.trunc(numberOf("opt-batch")),
    epochs: Math.trunc(numberOf("epochs")),
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
    setTravel(null);
    train.picked = null;
    clearInspect();
    $("live-lr").value = String(Math.log10(request.optimizer.lr));
    $("live-lr-value").textContent = num(request.optimizer.lr);
    show(answer, true);
    listen();
  } catch (error) {
    setupError(error.message);
  }
}

async function control(action, extra = {}) {
  try {
    const answer = await api("/api/train/control", { action, ...extra });
    if (action === "reset") clearInspect();
    if (action !== "lr" && train.travel !== null) setTravel(null);
    show(answer, true);
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
    train.events.addEventListener("state", (event) => show(JSON.parse(event.data), true));
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

// A state arrives (live: from the stream or an answer to a control) or is asked for (time travel).
function show(state, live) {
  if (!state) return;
  if (state.run) {
    train.run = state.run;
  } else if (state.run === null && state.run_id !== train.runId && state.status === "idle") {
    train.run = null;
  }
  if (state.run_id !== undefined && state.run_id !== train.runId) {
    if (train.runId !== null) clearInspect();
    train.runId = state.run_id;
  }
  if (live) {
    train.latest = state;
    setStatus(state.status || "idle");
    setKept(state.snapshots);
    if (train.travel !== null) return; // looking at the past: the live run goes on underneath
  }
  train.shown = state;
  if (state.status === "idle" && !state.run_id && state.step === undefined) return;
  render(state);
}

function setStatus(value) {
  train.status = value;
  document.body.dataset.run = value;
  const running = value === "running";
  const some = value !== "idle" && value !== "none";
  const finished = value === "finished"; // its epochs are done: Reset or Start again, or fork from a kept step
  $("pause").disabled = !some || finished;
  $("pause").textContent = running ? "Pause" : "Resume";
  $("step").disabled = running || !some || finished;
  $("reset").disabled = !some;
  $("start").disabled = running;
  $("save").disabled = !some;
  $("sample-show").disabled = !some;
  $("download").classList.toggle("disabled", !some);
  $("download").setAttribute("aria-disabled", String(!some));
}

// The slider goes over the kept steps: every `every` steps from `first` to `last`.
function setKept(snapshots) {
  const slider = $("travel");
  const kept = snapshots && snapshots.last !== null && snapshots.last !== undefined;
  slider.disabled = !kept;
  if (!kept) return;
  slider.min = String(snapshots.first);
  slider.max = String(snapshots.last);
  slider.step = String(snapshots.every || 1);
  if (train.travel === null) slider.value = slider.max;
}

// ---- the views of one snapshot ----

// The curves are columns: {step: [...], train_loss: [...], ...}; a missing measure is null.
function curve(state, name) {
  const curves = state.curves || {};
  const steps = curves.step || [];
  const values = curves[name] || [];
  const points = [];
  for (let k = 0; k < steps.length; k++) {
    if (typeof values[k] === "number" && Number.isFinite(values[k])) points.push([steps[k], values[k]]);
  }
  return points;
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
  const source = train.latest && train.latest.run_id === snapshot.run_id ? train.latest : snapshot;
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
  if (twoD) drawRegions($("regions"), snapshot.regions, train.run ? train.run.points : null, classCount());
  if (snapshot.filters) drawFilters(snapshot.filters);
  const activations = snapshot.activations || {};
  drawActivations(activations.layers, activations.sample);
  drawWeights(weightsFor(snapshot, weightShapes(activations.layers)));
  drawDiagnostics(snapshot.diagnostics, snapshot.warnings);
}

function classCount() {
  return train.run && Array.isArray(train.run.class_names) ? train.run.class_names.length : null;
}

function runLine(state) {
  const parts = [];
  const run = train.run;
  if (run) {
    const network = run.network || {};
    parts.push(`<b>${escapeHtml(network.layers ?? network.notation ?? "")}</b>`);
    if (network.parameters !== undefined) parts.push(`${network.parameters} parameters`);
    const data = run.data || {};
    parts.push(escapeHtml(data.kind === "toy" ? `${data.name}, ${data.points} points` : data.kind ?? ""));
    parts.push(escapeHtml(`${run.backend ?? ""}`));
  }
  parts.push(`step ${state.step}`);
  if (typeof state.epoch === "number") parts.push(`epoch ${state.epoch.toFixed(2)}`);
  if (typeof state.lr === "number") parts.push(`lr ${num(state.lr)}`);
  const what = train.travel === null ? escapeHtml(train.status) : `<b>kept step ${train.travel}</b> (the run is ${escapeHtml(train.status)})`;
  parts.push(what + (state.reason ? `: ${escapeHtml(state.reason)}` : ""));
  $("run-line").innerHTML = parts.filter((p) => p !== "").join(" · ");
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
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
  setKept(null);
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

async function travelTo(step) {
  const slider = $("travel");
  if (step >= Number(slider.max) && train.status === "running") {
    backToLive();
    return;
  }
  setTravel(step);
  try {
    const state = await api(`/api/train/snapshot?step=${step}`);
    if (train.travel === step) show(state, false);
  } catch (error) {
    status(error.message, true);
  }
}

function backToLive() {
  setTravel(null);
  $("travel").value = $("travel").max;
  if (train.latest) show(train.latest, false);
}

async function fork() {
  if (train.travel === null) return;
  const step = train.travel;
  try {
    const answer = await api("/api/train/fork", { step });
    setTravel(null);
    status(`resumed from step ${step}: the later snapshots are dropped`);
    show(answer, true);
  } catch (error) {
    status(error.message, true);
  }
}

// ---- the model ----

async function save() {
  try {
    const answer = await api("/api/train/save", { name: $("save-name").value });
    $("save-note").textContent = `saved as ${answer.path}; use it with: ${answer.load}`;
  } catch (error) {
    $("save-note").textContent = error.message;
  }
}

// ---- the sample shown (activations) and differentiated (one step, made visible) ----

async function chooseSample() {
  const index = Number($("sample-index").value);
  if ($("sample-index").value.trim() === "" || !Number.isInteger(index)) {
    status("the sample's index is a whole number", true);
    return;
  }
  const answer = await control("sample", { split: $("sample-split").value, index });
  if (answer && train.picked && train.status !== "running") inspect(train.picked.parameter, train.picked.index, train.picked.cell);
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
  if (train.status !== "idle") control("lr", { lr });
});
$("travel").addEventListener("input", () => travelTo(Number($("travel").value)));
$("travel-live").addEventListener("click", backToLive);
$("fork").addEventListener("click", fork);
$("save").addEventListener("click", save);
$("sample-show").addEventListener("click", chooseSample);
$("sample-index").addEventListener("keydown", (event) => { if (event.key === "Enter") chooseSample(); });

// The controls the server offers (GET /api/train/info), then the run already going, if any: a second
// tab watches the same run.
async function boot() {
  setStatus("idle");
  setTravel(null);
  try {
    train.info = await api("/api/train/info");
    applyInfo(train.info);
    const state = await api("/api/train/state");
    show(state, true);
    if (state.status !== "idle") listen();
  } catch (error) {
    status(`the train API does not answer: ${error.message}`, true);
  }
}

function applyInfo(info) {
  const limits = info.limits || {};
  if (limits.upload_bytes) {
    $("csv-bound").dataset.bytes = String(limits.upload_bytes);
    $("csv-bound").textContent = `${(limits.upload_bytes / 1048576).toFixed(limits.upload_bytes % 1048576 ? 2 : 0)} MB`;
  }
  for (const [name, about] of Object.entries(info.datasets || {})) {
    const option = $("data-kind").querySelector(`option[value="${name}"]`);
    if (option && !about.available) {
      option.disabled = true;
      option.textContent += " (not in the data folder)";
    }
  }
  if (!info.model_mode) $("to-predict").hidden = true;
}

boot();
