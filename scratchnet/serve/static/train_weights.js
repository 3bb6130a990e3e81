// scratchnet serve, Train page: the run's weights for the weight maps, read from GET /api/train/download
// (a zip of NAME.json and NAME.npz, the model file format): a small zip reader (stored or deflated
// entries) and a .npy reader (little-endian float32 or float64, C order). Used when the state itself
// carries no "weights".
"use strict";

const WEIGHTS_EVERY_MS = 2000; // while running, the maps are refreshed at most this often
const WEIGHTS_MAX_PARAMETERS = 100000; // beyond this, the maps are refreshed only when paused

function u16(view, at) { return view.getUint16(at, true); }
function u32(view, at) { return view.getUint32(at, true); }

// {name: Uint8Array} of a zip archive's entries, by its central directory.
async function unzip(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = bytes.length - 22;
  while (end >= 0 && u32(view, end) !== 0x06054b50) end--;
  if (end < 0) throw new Error("the download is not a zip archive");
  const count = u16(view, end + 10);
  let at = u32(view, end + 16);
  const entries = {};
  for (let k = 0; k < count; k++) {
    if (u32(view, at) !== 0x02014b50) throw new Error("the download's zip directory is damaged");
    const method = u16(view, at + 10);
    const size = u32(view, at + 20);
    const nameLength = u16(view, at + 28);
    const skip = nameLength + u16(view, at + 30) + u16(view, at + 32);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    const local = u32(view, at + 42);
    const start = local + 30 + u16(view, local + 26) + u16(view, local + 28);
    const data = bytes.subarray(start, start + size);
    entries[name] = method === 0 ? data : await inflate(data);
    at += 46 + skip;
  }
  return entries;
}

async function inflate(data) {
  const stream = new Blob([data]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// {shape, values} of a .npy file of float32 or float64 (little-endian, C order).
function readNpy(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const headerLength = major === 1 ? u16(view, 8) : u32(view, 8);
  const start = major === 1 ? 10 + headerLength : 12 + headerLength;
  const header = new TextDecoder().decode(bytes.subarray(major === 1 ? 10 : 12, start));
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)[1].match(/\d+/g) || []).map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error("a Fortran-order array");
  const count = shape.reduce((a, b) => a * b, 1);
  const body = bytes.slice(start, start + count * (descr === "<f8" ? 8 : 4));
  if (descr === "<f4") return { shape, values: Array.from(new Float32Array(body.buffer)) };
  if (descr === "<f8") return { shape, values: Array.from(new Float64Array(body.buffer)) };
  throw new Error(`an array of ${descr}`);
}

// {name: {shape, values}} of the run's arrays now.
async function downloadWeights() {
  const response = await fetch("/api/train/download");
  if (!response.ok) throw new Error(`the download answers ${response.status}`);
  const files = await unzip(new Uint8Array(await response.arrayBuffer()));
  const npz = Object.keys(files).find((name) => name.endsWith(".npz"));
  if (!npz) throw new Error("the download holds no .npz");
  const arrays = {};
  for (const [name, bytes] of Object.entries(await unzip(files[npz]))) {
    if (name.endsWith(".npy")) arrays[name.slice(0, -4)] = readNpy(bytes);
  }
  return arrays;
}

const weightsCache = { key: null, arrays: null, at: 0, loading: false };

// The weights to draw for a state: its own, else the ones last downloaded for this run (refreshed
// when the run has moved: at once when paused, at most every WEIGHTS_EVERY_MS while running).
function weightsFor(state, shapes) {
  if (Array.isArray(state.weights)) return state.weights;
  if (!Array.isArray(shapes)) return shapes;
  const key = `${state.run_id}:${state.step}`;
  const running = state.status === "running";
  const parameters = train.run && train.run.network ? train.run.network.parameters : 0;
  const due = running ? parameters <= WEIGHTS_MAX_PARAMETERS && performance.now() - weightsCache.at > WEIGHTS_EVERY_MS : true;
  const past = state.past !== null && state.past !== undefined; // a kept step's state: not the run's weights now
  if (key !== weightsCache.key && due && !weightsCache.loading && !past) fetchWeights(key);
  const fresh = weightsCache.arrays && String(weightsCache.key).split(":")[0] === String(state.run_id);
  const usable = fresh && !past;
  return shapes.map((w) => ({ ...w, values: usable && weightsCache.arrays[w.name] ? weightsCache.arrays[w.name].values : null }));
}

async function fetchWeights(key) {
  weightsCache.loading = true;
  weightsCache.at = performance.now();
  train.requests++;
  markBusy();
  try {
    weightsCache.arrays = await downloadWeights();
    weightsCache.key = key;
    if (train.shown && train.travel === null) drawWeights(weightsFor(train.shown, weightShapes(train.shown.activations?.layers)));
  } catch (error) {
    status(`the weight maps: ${error.message}`, true);
  } finally {
    weightsCache.loading = false;
    train.requests--;
    setTimeout(markBusy, 0);
  }
}
