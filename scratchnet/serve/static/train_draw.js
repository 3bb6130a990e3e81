// scratchnet serve, Train page: drawing a state (curves, decision regions, images, heat maps, the
// activations and the diagnostics); $ and el come from train.js, loaded after this file.
// Plain JavaScript, no framework: the functions here draw what a snapshot holds and keep no state.
"use strict";

const CLASS_COLOURS = [
  [47, 111, 222], [228, 87, 46], [31, 157, 85], [155, 89, 182], [241, 196, 15], [23, 162, 184],
  [214, 51, 132], [120, 120, 120], [139, 87, 42], [0, 0, 0],
];
const TRAIN_COLOUR = "#2f6fde";
const TEST_COLOUR = "#e4572e";

// Numbers as scratchnet explain prints them: 6 significant digits.
function num(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (typeof value !== "number") return String(value);
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs < 1e-4 || abs >= 1e6) return value.toExponential(5).replace(/\.?0+e/, "e");
  return String(Number(value.toPrecision(6)));
}

function short(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return String(Number(value.toPrecision(digits)));
}

// Curves on one pair of axes: series = [{points, colour}], with the steps on x and a y range
// [low, high] (null: from the data). marker: a step drawn as a vertical line (time travel).
function drawCurves(canvas, series, low, high, marker = null) {
  const context = canvas.getContext("2d");
  const width = canvas.width;
  const height = canvas.height;
  const left = 44;
  const bottom = 18;
  context.clearRect(0, 0, width, height);
  context.font = "11px system-ui, sans-serif";
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) {
    context.fillStyle = "#667085";
    context.fillText("no steps yet", left + 8, height / 2);
    return;
  }
  let x0 = Math.min(...all.map((p) => p[0]));
  let x1 = Math.max(...all.map((p) => p[0]));
  if (x1 <= x0) x1 = x0 + 1;
  let y0 = low === null ? Math.min(...all.map((p) => p[1])) : low;
  let y1 = high === null ? Math.max(...all.map((p) => p[1])) : high;
  if (low === null) y0 = Math.min(y0, 0);
  if (y1 <= y0) y1 = y0 + 1;
  const X = (x) => left + ((x - x0) / (x1 - x0)) * (width - left - 8);
  const Y = (y) => 6 + (1 - (y - y0) / (y1 - y0)) * (height - bottom - 6);
  context.strokeStyle = "#e3e6ea";
  context.fillStyle = "#667085";
  context.lineWidth = 1;
  for (let k = 0; k <= 4; k++) {
    const y = y0 + ((y1 - y0) * k) / 4;
    context.beginPath();
    context.moveTo(left, Y(y));
    context.lineTo(width - 8, Y(y));
    context.stroke();
    context.fillText(short(y, 3), 2, Y(y) + 4);
  }
  context.fillText(`step ${x0}`, left, height - 4);
  const end = `${x1}`;
  context.fillText(end, width - 8 - context.measureText(end).width, height - 4);
  for (const s of series) {
    if (s.points.length === 0) continue;
    context.strokeStyle = s.colour;
    context.lineWidth = 2;
    context.beginPath();
    s.points.forEach((p, k) => (k === 0 ? context.moveTo(X(p[0]), Y(p[1])) : context.lineTo(X(p[0]), Y(p[1]))));
    context.stroke();
  }
  if (marker !== null) {
    context.strokeStyle = "#1d2330";
    context.setLineDash([4, 3]);
    context.beginPath();
    context.moveTo(X(marker), 4);
    context.lineTo(X(marker), height - bottom);
    context.stroke();
    context.setLineDash([]);
  }
}

// The decision regions: a grid of n x n cells over the data's box, each the colour of its
// predicted class, paler where the network is less sure; then the points (train: dots, test: rings).
// regions: {size, x: [low, high], y: [low, high], predicted: [n*n], confidence: [n*n]}, rows from the top;
// points: {train: {x, y, label}, test: {x, y, label}}.
function drawRegions(canvas, regions, points, classCount) {
  const context = canvas.getContext("2d");
  const width = canvas.width;
  const height = canvas.height;
  context.fillStyle = "#fff";
  context.fillRect(0, 0, width, height);
  if (!regions) return;
  const n = regions.size;
  const classes = classCount ?? Math.max(1, ...regions.predicted) + 1;
  const grid = document.createElement("canvas");
  grid.width = n;
  grid.height = n;
  const gridContext = grid.getContext("2d");
  const image = gridContext.createImageData(n, n);
  for (let k = 0; k < n * n; k++) {
    const colour = CLASS_COLOURS[regions.predicted[k] % CLASS_COLOURS.length];
    const sure = regions.confidence ? regions.confidence[k] : 1;
    // 1/classes (a guess) is white; certainty is a strong tint
    const t = Math.max(0, Math.min(1, (sure - 1 / classes) / (1 - 1 / classes)));
    const mix = 0.15 + 0.55 * t;
    for (let c = 0; c < 3; c++) image.data[4 * k + c] = Math.round(255 + (colour[c] - 255) * mix);
    image.data[4 * k + 3] = 255;
  }
  gridContext.putImageData(image, 0, 0);
  context.imageSmoothingEnabled = true;
  context.drawImage(grid, 0, 0, width, height);
  const [xmin, xmax] = regions.x;
  const [ymin, ymax] = regions.y;
  const X = (x) => ((x - xmin) / (xmax - xmin)) * width;
  const Y = (y) => (1 - (y - ymin) / (ymax - ymin)) * height;
  for (const [set, ring] of [[points?.train, false], [points?.test, true]]) {
    if (!set) continue;
    for (let k = 0; k < set.x.length; k++) {
      const [x, y, label] = [set.x[k], set.y[k], set.label[k]];
      const colour = CLASS_COLOURS[label % CLASS_COLOURS.length];
      context.beginPath();
      context.arc(X(x), Y(y), ring ? 3.2 : 2.8, 0, 2 * Math.PI);
      if (ring) {
        context.strokeStyle = `rgb(${colour.join(",")})`;
        context.lineWidth = 1.6;
        context.fillStyle = "#fff";
        context.fill();
        context.stroke();
      } else {
        context.fillStyle = `rgb(${colour.join(",")})`;
        context.strokeStyle = "#fff";
        context.lineWidth = 0.8;
        context.fill();
        context.stroke();
      }
    }
  }
}

// A diverging colour for v in [-1, 1]: blue (negative), white (0), orange (positive).
function diverging(v) {
  const t = Math.max(-1, Math.min(1, v));
  const [r, g, b] = t >= 0 ? [217, 113, 60] : [60, 123, 217];
  const a = Math.abs(t);
  return [Math.round(255 + (r - 255) * a), Math.round(255 + (g - 255) * a), Math.round(255 + (b - 255) * a)];
}

function largest(values) {
  let m = 0;
  for (const v of values) m = Math.max(m, Math.abs(v));
  return m || 1;
}

// values (flat, rows x cols) painted on a canvas of cols x rows pixels, in the diverging colours,
// scaled by the largest magnitude (or by scale); grey: black to white from low to high.
function paintValues(canvas, values, rows, cols, { grey = false, scale = null } = {}) {
  canvas.width = cols;
  canvas.height = rows;
  const context = canvas.getContext("2d");
  const image = context.createImageData(cols, rows);
  const m = values === null ? 1 : scale ?? largest(values);
  let low = Infinity;
  let high = -Infinity;
  if (grey && values !== null) for (const v of values) { low = Math.min(low, v); high = Math.max(high, v); }
  for (let k = 0; k < rows * cols; k++) {
    let rgb;
    if (values === null) {
      rgb = (Math.floor(k / cols) + k % cols) % 2 ? [236, 239, 243] : [246, 247, 249]; // no values: a checkerboard
    } else if (grey) {
      const g = high > low ? Math.round((255 * (values[k] - low)) / (high - low)) : 0;
      rgb = [g, g, g];
    } else {
      rgb = diverging(values[k] / m);
    }
    image.data.set([...rgb, 255], 4 * k);
  }
  context.putImageData(image, 0, 0);
}

// ---- the panels of a state: first-layer filters, one sample's activations, diagnostics ----

// filters: {layer, count, height, width, low, high, values (flat, count x height x width)}
function drawFilters(filters) {
  const box = $("filters");
  const size = filters.height * filters.width;
  const list = [];
  for (let k = 0; k < filters.count; k++) {
    list.push({ rows: filters.height, cols: filters.width, values: filters.values.slice(k * size, (k + 1) * size) });
  }
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

// activations: [{index, name, shape, low, high, values}] for one sample (flat values), one strip each
function drawActivations(activations, sample) {
  const box = $("activations");
  let note = "";
  if (sample) {
    note = `${sample.split} sample ${sample.index}, label ${sample.label}`;
    if (sample.predicted !== undefined && sample.predicted !== null) note += `, predicted ${sample.predicted}`;
  }
  $("sample-note").textContent = note;
  if (!Array.isArray(activations)) {
    box.replaceChildren();
    return;
  }
  box.replaceChildren(...activations.map((layer) => {
    const values = layer.values;
    const low = layer.low ?? Math.min(...values);
    const high = layer.high ?? Math.max(...values);
    const canvas = el("canvas", { "data-index": String(layer.index) });
    paintValues(canvas, values, 1, values.length, { grey: true });
    return el("div", { class: "act" }, [
      el("h4", {}, [`${layer.index} ${layer.name ?? ""} `, el("span", { text: `${values.length} values, ${short(low, 3)} to ${short(high, 3)}` })]),
      canvas,
    ]);
  }));
}

// diagnostics: the latest sample of train --diagnostics: {step, layers: [{layer, type, mean, std,
// saturated}], grad_std: {param: std}, update_ratio: {param: log10 ratio}}; warnings: lines.
function drawDiagnostics(diagnostics, warnings) {
  const box = $("diagnostics");
  if (!diagnostics || !Array.isArray(diagnostics.layers)) {
    box.replaceChildren(el("p", { class: "hint", text: "none yet" }));
    return;
  }
  const heads = ["layer", "activations: mean", "std", "saturated", "gradient std", "log10 update / data"];
  const head = el("tr", {}, heads.map((t) => el("th", { text: t })));
  const grads = diagnostics.grad_std || {};
  const ratios = diagnostics.update_ratio || {};
  const rows = diagnostics.layers.map((d) => {
    const ratio = ratios[`${d.layer}.weight`];
    const saturated = d.saturated;
    const off = typeof ratio === "number" && (ratio < -4 || ratio > -2); // the sane band, 1e-4 to 1e-2
    return el("tr", { "data-layer": String(d.layer) }, [
      el("td", { text: `${d.layer} ${d.type}` }),
      el("td", { text: short(d.mean, 3) }),
      el("td", { text: short(d.std, 3) }),
      el("td", { text: typeof saturated === "number" ? `${(100 * saturated).toFixed(0)}%` : "", class: saturated > 0.5 ? "warn" : "" }),
      el("td", { text: grads[`${d.layer}.weight`] === undefined ? "" : short(grads[`${d.layer}.weight`], 3) }),
      el("td", { text: ratio === undefined ? "" : short(ratio, 3), class: off ? "warn" : "" }),
    ]);
  });
  const parts = [
    el("p", { class: "hint", text: `step ${diagnostics.step}; saturated: tanh beyond 0.97, ReLU dead on the whole batch; the sane band of the update ratio is -4 to -2 (about -3)` }),
    el("table", { class: "diag" }, [head, ...rows]),
  ];
  for (const warning of (warnings || []).slice(-3)) parts.push(el("p", { class: "warning", text: warning }));
  box.replaceChildren(...parts);
}
