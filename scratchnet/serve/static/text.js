// scratchnet serve: the page of a language model. Plain JavaScript, no framework, no build step,
// nothing from the network but this server's own API (docs/serve.md, "A language model").
"use strict";

const TOP = 10; // next characters listed
const SHOWN_VALUES = 8; // a vector of at most this many values is shown whole

const state = {
  model: null, // GET /api/model
  prediction: null, // the last /api/text/predict answer
  selected: null, // {place, head, t, s}: the clicked cell
  requests: 0, // requests in flight
  pending: false, // the text changed while a prediction was in flight
  inFlight: false,
  termsInFlight: false, // a /api/text/terms request is in flight
  termsPending: null, // the cell to explain when it is back
  generating: false,
};

// body[data-busy] is "1" while a request is in flight or waiting, "0" when the page shows the latest
// answers (the browser tests wait for it).
function markBusy() {
  const busy = state.requests > 0 || state.pending || state.generating || state.termsPending !== null;
  document.body.dataset.busy = busy ? "1" : "0";
}

// $ and el: dom.js

function num(value) { // 6 significant digits, as scratchnet explain prints
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs < 1e-4 || abs >= 1e6) return value.toExponential(5).replace(/\.?0+e/, "e");
  return String(Number(value.toPrecision(6)));
}

function vector(values, most = SHOWN_VALUES) { // as explain --text shows a vector: 4 digits, a long one cut
  const cut = values.length > most;
  const shown = cut ? values.slice(0, Math.min(4, most)) : values;
  const text = shown.map((v) => String(Number(v.toPrecision(4)))).join(", ");
  return cut ? `[${text}, ... ${values.length} values]` : `[${text}]`;
}

function tokenName(label) { // the boundary token reads "\n": shown as the end of a document
  return label === "\\n" ? (state.model.layout === "documents" ? "⏎ end" : "⏎") : label === " " ? "␣" : label;
}

async function api(path, body) {
  state.requests++;
  markBusy();
  try {
    const response = await fetch(path, body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    return answer;
  } finally {
    state.requests--;
    setTimeout(markBusy, 0);
  }
}

function showError(message) {
  const error = $("text-error");
  error.textContent = message || "";
  error.hidden = !message;
  $("text").setAttribute("aria-invalid", message ? "true" : "false");
}

// ---- the next character and the heads, as you type ----

async function predict() {
  if (state.inFlight) { state.pending = true; markBusy(); return; }
  const text = $("text").value;
  if (text === "" && state.model.layout !== "documents") { clearAnswers("Type a text: the model reads it and guesses the next character."); return; }
  state.inFlight = true;
  state.pending = false;
  try {
    const answer = await api("/api/text/predict", { text, top: TOP });
    showError("");
    state.prediction = answer;
    drawBars(answer);
    drawHeads(answer);
    $("status").textContent = `${answer.ids.length} positions, ${answer.milliseconds} ms in the model`;
    if (state.selected) {
      if (state.selected.t < answer.ids.length) explainCell(state.selected); else clearTerms();
    }
  } catch (error) {
    showError(error.message);
  } finally {
    state.inFlight = false;
    if (state.pending) predict(); else markBusy();
  }
}

function clearAnswers(hint) {
  state.prediction = null;
  $("bars").replaceChildren(el("p", { class: "hint", text: hint }));
  $("heads").replaceChildren();
  clearTerms();
  showError("");
  markBusy();
}

function drawBars(answer) {
  const rows = answer.top.map((item, rank) => {
    const fill = el("i", { class: "fill" });
    fill.style.width = `${(100 * item.p).toFixed(1)}%`;
    return el("div", { class: rank === 0 ? "prob top" : "prob", role: "listitem", "data-id": String(item.id) }, [
      el("span", { class: "name mono", text: tokenName(item.label) }),
      el("span", { class: "track" }, [fill]),
      el("span", { class: "value", text: `${(100 * item.p).toFixed(1)}%` }),
    ]);
  });
  $("bars").replaceChildren(...rows);
}

function cellSize(length) { return Math.max(8, Math.min(26, Math.floor(240 / length))); }

function drawHeads(answer) {
  const labels = answer.labels.map(tokenName);
  const groups = state.model.attention.map((layer) => {
    const maps = answer.heads.filter((h) => h.place === layer.place).map((h) => headMap(h, labels));
    return el("div", { class: "layer-heads" }, [
      el("h4", {}, [`layer ${layer.place} `, el("span", { text: layer.name })]),
      el("div", { class: "head-maps" }, maps),
    ]);
  });
  $("heads").replaceChildren(...groups);
}

function headMap(head, labels) {
  const T = head.weights.length, cell = cellSize(T), margin = 30;
  const canvas = el("canvas", {
    width: String(margin + T * cell + 2), height: String(margin + T * cell + 2),
    "data-place": head.place, "data-head": String(head.head), "aria-label": `layer ${head.place}, head ${head.head}`,
  });
  const g = canvas.getContext("2d");
  g.font = "11px ui-monospace, DejaVu Sans Mono, monospace";
  g.fillStyle = "#667085";
  g.textAlign = "center";
  g.textBaseline = "middle";
  labels.forEach((label, k) => {
    if (cell >= 10 || k % 2 === 0) {
      g.fillText(label.slice(0, 2), margin + k * cell + cell / 2, margin / 2); // key s, above
      g.fillText(label.slice(0, 2), margin / 2, margin + k * cell + cell / 2); // query t, on the left
    }
  });
  g.fillStyle = "#f4f5f7"; // the masked cells, s > t
  g.fillRect(margin, margin, T * cell, T * cell);
  head.weights.forEach((row, t) => row.forEach((a, s) => {
    const light = Math.round(255 - 220 * a); // 0: white, 1: a deep blue
    g.fillStyle = `rgb(${light - 20 * a | 0}, ${light - 5 * a | 0}, 255)`;
    g.fillRect(margin + s * cell, margin + t * cell, cell - 1, cell - 1);
  }));
  g.strokeStyle = "#e3e6ea";
  g.strokeRect(margin - 0.5, margin - 0.5, T * cell + 1, T * cell + 1);
  const chosen = state.selected;
  if (chosen && chosen.place === head.place && chosen.head === head.head && chosen.t < T) {
    g.strokeStyle = "#e4572e";
    g.lineWidth = 2;
    g.strokeRect(margin + chosen.s * cell - 1, margin + chosen.t * cell - 1, cell + 1, cell + 1);
  }
  canvas.addEventListener("click", (event) => {
    const box = canvas.getBoundingClientRect();
    const scale = canvas.width / box.width; // 1 unless a narrow screen shrinks the map
    const s = Math.floor(((event.clientX - box.left) * scale - margin) / cell);
    const t = Math.floor(((event.clientY - box.top) * scale - margin) / cell);
    if (t < 0 || t >= T || s < 0 || s > t) return; // a masked cell (s > t) has no terms
    state.selected = { place: head.place, head: head.head, t, s };
    drawHeads(state.prediction);
    explainCell(state.selected);
  });
  return el("div", { class: "head" }, [el("span", { text: `head ${head.head}` }), canvas]);
}

// ---- a clicked cell: its terms ----

function clearTerms() {
  state.selected = null;
  $("terms").replaceChildren(el("p", { class: "hint", text: "Click a cell of a head's map to see its terms." }));
}

async function explainCell(cell) {
  // One request at a time (the loops backend takes seconds on a large model): a cell asked for meanwhile waits.
  if (state.termsInFlight) { state.termsPending = cell; markBusy(); return; }
  if (!$("terms").querySelector(".title")) {
    $("terms").replaceChildren(el("p", { class: "hint", text: "computing the terms with the loops backend…" }));
  }
  state.termsInFlight = true;
  state.termsPending = null;
  try {
    const answer = await api("/api/text/terms", {
      text: $("text").value, place: cell.place, head: cell.head, position: cell.t,
    });
    if (state.selected === cell && !state.termsPending) showTerms(answer, cell.s);
  } catch (error) {
    if (!state.termsPending) $("terms").replaceChildren(el("p", { class: "error", text: error.message }));
  } finally {
    state.termsInFlight = false;
    const next = state.termsPending;
    if (next && next === state.selected) explainCell(next); else { state.termsPending = null; markBusy(); }
  }
}

function equation(entry) {
  return el("p", { class: "equation" }, [el("b", { text: `(${entry[0]})` }), ` ${entry[1]}`]);
}

function showTerms(x, clicked) {
  const t = x.position, label = tokenName(x.token);
  const eq = x.equations;
  const header = el("tr", {}, ["s", "token", "q . k_s", "score", "e^(score - m)", "a", ""].map((h) => el("th", { text: h })));
  const rows = x.terms.map((term) => {
    const bar = el("i", { class: "wbar" });
    bar.style.width = `${(100 * term.weight).toFixed(1)}%`;
    return el("tr", { class: term.s === clicked ? "clicked" : "" }, [
      el("td", { text: String(term.s) }), el("td", { class: "mono", text: tokenName(term.token) }),
      el("td", { text: num(term.dot) }), el("td", { text: num(term.score) }),
      el("td", { text: num(term.exp) }), el("td", { text: num(term.weight) }),
      el("td", { class: "bar" }, [bar]),
    ]);
  });
  const sums = el("tr", { class: "sum" }, [
    el("td", { text: "" }), el("td", { text: "sum" }), el("td"), el("td", { text: `m = ${num(x.m)}` }),
    el("td", { text: num(x.total) }), el("td", { text: num(x.weights_sum) }), el("td"),
  ]);
  const values = x.terms.map((term) => el("p", { class: "vector mono", text:
    `s = ${term.s} ('${tokenName(term.token)}'): ${num(term.weight)} × ${vector(term.value, 3)} = ${vector(term.weighted, 3)}` }));
  const pick = x.terms[clicked];
  $("terms").replaceChildren(
    el("p", { class: "title", text: `Layer ${x.place} (${x.name}), head ${x.head}, position ${t} ('${label}')` }),
    el("p", { class: "why", text: pick ? `the cell clicked: a_${t},${clicked} = ${num(pick.weight)}, the weight of key position ${clicked} ('${tokenName(pick.token)}')` : "" }),
    equation(eq.query), el("p", { class: "vector mono", text: `q_${t} = ${vector(x.query)}` }),
    equation(eq.scores), equation(eq.softmax),
    el("div", { class: "scroll" }, [el("table", { class: "terms" }, [header, ...rows, sums])]),
    equation(eq.sum), ...values,
    el("p", { class: "vector mono", text: `= o_${t} ${vector(x.weighted_sum)}; the layer's own: ${vector(x.layer_output)} (largest difference ${x.difference.toExponential(1)})` }),
    equation(eq.projection), el("p", { class: "vector mono", text: `y_${t} = ${vector(x.projected)}` }),
    el("details", {}, [el("summary", { text: "as scratchnet explain --text prints it" }), el("pre", { text: x.lines.join("\n") })]),
  );
}

// ---- generate: a sample streamed as it is drawn ----

function setting(id, parse) {
  const text = $(id).value.trim();
  return text === "" ? undefined : parse(text);
}

async function generate() {
  if (state.generating) return;
  const text = $("text").value;
  const body = { text, length: setting("length", Number), temperature: setting("temperature", Number),
    top_k: setting("top-k", Number), seed: setting("seed", Number) };
  for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
  const sample = $("sample"), status = $("generate-status");
  state.generating = true;
  markBusy();
  $("generate").disabled = true;
  status.textContent = "generating…";
  sample.replaceChildren(el("b", { text }));
  const output = document.createTextNode("");
  sample.append(output);
  try {
    const response = await fetch("/api/text/generate", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error((await response.json()).error || `HTTP ${response.status}`);
    const reader = response.body.getReader(), decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split("\n");
      buffer = lines.pop();
      for (const line of lines) {
        if (!line) continue;
        const event = JSON.parse(line);
        if (event.text !== undefined) output.appendData(event.text);
        else if (event.done) status.textContent = doneText(event);
        else if (event.error) throw new Error(event.error);
      }
      sample.scrollTop = sample.scrollHeight;
    }
  } catch (error) {
    status.textContent = "";
    showError(error.message);
  } finally {
    state.generating = false;
    $("generate").disabled = false;
    markBusy();
  }
}

function doneText(event) {
  const why = { boundary: "the document ended", length: "the length was reached", time: "the time limit was reached" };
  return `${event.count} character${event.count === 1 ? "" : "s"} in ${(event.milliseconds / 1000).toFixed(2)} s: ${why[event.reason] || event.reason}`;
}

// ---- start ----

async function start() {
  try {
    const model = await api("/api/model");
    state.model = model;
    $("model-line").replaceChildren(el("b", { text: model.model }), ` ${model.architecture}`);
    const boundary = model.layout === "documents" ? "; a document (a line) starts with the boundary token, ⏎" : "";
    $("text-hint").textContent = `at most ${model.max_text} characters, from the ${model.vocabulary.length} tokens of its vocabulary${boundary}`;
    $("text").maxLength = model.max_text;
    $("length").max = String(model.limits.max_generate);
    $("length").value = String(model.limits.default_generate);
    $("text").addEventListener("input", predict);
    $("generate").addEventListener("click", generate);
    clearTerms();
    await predict();
  } catch (error) {
    $("model-line").textContent = `the model could not be loaded: ${error.message}`;
  } finally {
    markBusy();
  }
}

start();
