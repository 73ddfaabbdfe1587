// The page: photos in, species out, all on this device. The model file answers by its own contents
// (labels, unknown rule, quantisation: tflite.js), on predict's preprocessing (imaging.js), through
// LiteRT.js on WebAssembly: the same TFLite kernels as `keras-birds predict`.
import {loadLiteRt, loadAndCompile, supportsFeature, Tensor} from '@litertjs/core';
import {ImageError, loadRGB} from './imaging.js';
import {readModelFile} from './tflite.js';

const TOP_K = 5;
const $ = (sel) => document.querySelector(sel);

// What tests and benchmarks read: one entry per photo, in the order given; prepare(blob, size): the
// model's input bytes for an image, as the page computes them.
window.kb = {ready: false, loadMs: null, error: null, runtime: null, results: [],
             prepare: async (blob, size) => Array.from((await loadRGB(blob, size || state.size)).pixels)};

const state = {model: null, file: null, size: 0, queue: Promise.resolve()};

function niceName(label) {
  return label.toLowerCase().replace(/(^|[\s(-])([a-z])/g, (m, pre, c) => pre + c.toUpperCase()).replace(/\s+/g, ' ');
}

function megabytes(bytes) {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.round(bytes / 1e3)} kB`;
}

// numpy's rint: halves to the even neighbour.
function rintEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function percent(p) {
  return `${(100 * p).toFixed(p >= 0.995 || p < 0.001 ? 0 : 1)}%`;
}

// The unknown rule's scores over the output vector p (openset/scores.py: DEPLOYABLE).
const SCORES = {
  max_probability: (p) => Math.max(...p),
  margin: (p) => {
    if (p.length < 2) return p[0];
    let a = -Infinity, b = -Infinity;
    for (const v of p) { if (v > a) { b = a; a = v; } else if (v > b) b = v; }
    return a - b;
  },
  neg_entropy: (p) => p.reduce((s, v) => {
    const c = Math.min(Math.max(v, 0), 1);
    return s + (c > 0 ? c * Math.log(c) : 0);
  }, 0),
};

function setStatus(text, kind = '') {
  const el = $('#status');
  el.textContent = text;
  el.className = `status ${kind}`;
}

async function start() {
  const t0 = performance.now();
  try {
    const info = await (await fetch('model.json')).json();
    showModel(info);
    const bytes = new Uint8Array(await (await fetch(info.file)).arrayBuffer());
    state.file = readModelFile(bytes);
    if (!state.file.labels) throw new Error(`${info.file} carries no labels.txt: export it again with keras-birds`);
    state.size = state.file.input.shape[1];
    // LiteRT picks its relaxed-SIMD build where the browser has relaxed SIMD, else the compat build;
    // ?runtime=compat forces the latter (to check, in Chromium, what Safari and Firefox run).
    const compat = new URLSearchParams(location.search).get('runtime') === 'compat';
    const wasm = new URL('vendor/litertjs-core/wasm/' + (compat ? 'litert_wasm_compat_internal.js' : ''), location.href);
    await loadLiteRt(wasm.href);
    window.kb.runtime = compat || !(await supportsFeature('relaxedSimd')) ? 'wasm compat' : 'wasm relaxed-simd';
    state.model = await loadAndCompile(bytes, {accelerator: 'wasm'});
    await classify(new Uint8Array(state.size * state.size * 3));  // the first run sets up the kernels
    window.kb.loadMs = performance.now() - t0;
    window.kb.ready = true;
    document.body.dataset.ready = '1';
    const rule = state.file.rule;
    setStatus(`Ready: ${state.file.labels.length} species. Photos stay on this device.` +
              (rule ? '' : ' This model has no "unknown" rule: it always names one of its species.'), 'ok');
    $('#drop').classList.remove('disabled');
  } catch (e) {
    window.kb.error = String(e && e.message || e);
    setStatus(`The model could not be loaded: ${window.kb.error}`, 'bad');
    document.body.dataset.ready = 'error';
  }
}

function showModel(info) {
  const date = info.exported ? new Date(info.exported) : null;
  const parts = [info.model, info.quantize === 'int8' ? 'int8' : info.quantize === 'none' ? 'float32' : info.quantize,
                 megabytes(info.size_bytes),
                 date && !isNaN(date) ? `exported ${date.toLocaleDateString(undefined, {year: 'numeric', month: 'short', day: 'numeric'})}` : null];
  $('#model').textContent = parts.filter(Boolean).join(' · ');
  $('#model').title = `${info.file}, sha256 ${info.sha256}` + (info.run ? `, run ${info.run}` : '');
  $('#species-count').textContent = `${info.n_classes} species`;
}

// Float32Array of probabilities for one S x S x 3 image: the file's own input/output quantisation
// (inference/runners.py TFLiteRunner._quantize / _dequantize, in float32 as numpy does).
async function classify(pixels) {
  const {input, output} = state.file;
  let data;
  if (input.dtype === 'float32') {
    data = Float32Array.from(pixels);
  } else if (input.dtype === 'uint8' && (input.scale === 1 || !input.scale) && !input.zeroPoint) {
    data = pixels;
  } else if (input.dtype === 'uint8') {
    data = new Uint8Array(pixels.length);
    const s = Math.fround(input.scale);
    for (let i = 0; i < pixels.length; i++) {
      const q = Math.fround(Math.fround(pixels[i] / s) + input.zeroPoint);
      const r = rintEven(q);
      data[i] = Math.min(255, Math.max(0, r));
    }
  } else {
    throw new Error(`this page feeds uint8 or float32 inputs, not ${input.dtype}`);
  }
  const tensor = new Tensor(data, [1, state.size, state.size, 3]);
  let outputs;
  try {
    outputs = await state.model.run(tensor);
  } finally {
    tensor.delete();
  }
  const raw = outputs[0].toTypedArray();
  for (const t of outputs) t.delete();
  if (output.dtype === 'float32') return Float32Array.from(raw);
  const scale = Math.fround(output.scale || 1), zero = output.zeroPoint;
  return Float32Array.from(raw, (q) => Math.fround(Math.fround(q - zero) * scale));
}

function answer(probs) {
  const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b);
  const top = order.slice(0, Math.min(TOP_K, probs.length)).map((i) => ({species: state.file.labels[i], probability: probs[i]}));
  const rule = state.file.rule;
  let sure = true, score = null;
  if (rule) {
    const f = SCORES[rule.score];
    if (!f) throw new Error(`unknown-species rule "${rule.score}" is not one this page computes`);
    score = f(Array.from(probs));
    sure = score >= rule.threshold;
  }
  return {species: sure ? top[0].species : 'unknown', probability: top[0].probability, top, score};
}

function addCard(file) {
  const card = document.createElement('article');
  card.className = 'card pending';
  card.dataset.name = file.name;
  card.dataset.state = 'queued';
  const thumb = document.createElement('div');
  thumb.className = 'thumb';
  if (file.type.startsWith('image/') || !file.type) {
    const img = document.createElement('img');
    img.alt = '';
    img.src = URL.createObjectURL(file);
    img.onload = () => URL.revokeObjectURL(img.src);
    img.onerror = () => { URL.revokeObjectURL(img.src); img.remove(); thumb.classList.add('none'); };
    thumb.append(img);
  } else {
    thumb.classList.add('none');
  }
  const body = document.createElement('div');
  body.className = 'body';
  body.innerHTML = '<p class="file"></p><h2 class="answer">Waiting…</h2><p class="sub"></p><ol class="bars"></ol><p class="meta"></p>';
  body.querySelector('.file').textContent = file.name;
  card.append(thumb, body);
  $('#results').prepend(card);
  $('#results-section').hidden = false;
  return card;
}

function showResult(card, result) {
  card.className = `card ${result.species === 'unknown' ? 'unknown' : 'known'}`;
  const best = result.top[0];
  card.querySelector('.answer').textContent = result.species === 'unknown' ? 'Unknown species' : niceName(best.species);
  const rule = state.file.rule;
  card.querySelector('.sub').textContent = result.species === 'unknown'
    ? `Not sure enough to name it: best guess ${niceName(best.species)} at ${percent(best.probability)}` +
      (rule ? ` (${rule.score.replace('_', ' ')} ${result.score.toFixed(3)} < ${rule.threshold.toFixed(3)})` : '')
    : `${percent(best.probability)} sure`;
  const bars = card.querySelector('.bars');
  bars.replaceChildren(...result.top.map((t, i) => {
    const li = document.createElement('li');
    if (i === 0 && result.species !== 'unknown') li.className = 'first';
    li.innerHTML = '<span class="name"></span><span class="pct"></span><span class="track"><span class="fill"></span></span>';
    li.querySelector('.name').textContent = niceName(t.species);
    li.querySelector('.name').title = t.species;
    li.querySelector('.pct').textContent = percent(t.probability);
    li.querySelector('.fill').style.width = `${Math.max(0.5, 100 * t.probability)}%`;
    return li;
  }));
  card.querySelector('.meta').textContent =
    `Model ${result.modelMs.toFixed(0)} ms · image ${result.width} × ${result.height}, prepared in ${result.prepMs.toFixed(0)} ms`;
  card.dataset.state = 'done';
  card.dataset.top1 = best.species;
  card.dataset.answer = result.species;
}

function showError(card, message) {
  card.className = 'card error';
  card.querySelector('.answer').textContent = 'Cannot read this file';
  card.querySelector('.sub').textContent = message;
  card.dataset.state = 'error';
}

async function process(file, card, entry) {
  card.querySelector('.answer').textContent = 'Looking…';
  try {
    const t0 = performance.now();
    const {pixels, width, height} = await loadRGB(file, state.size);
    const t1 = performance.now();
    const probs = await classify(pixels);
    const t2 = performance.now();
    const result = {...answer(probs), modelMs: t2 - t1, prepMs: t1 - t0, width, height};
    Object.assign(entry, {state: 'done', ...result, top: result.top.map((t) => ({...t}))});
    showResult(card, result);
  } catch (e) {
    const message = e instanceof ImageError ? e.message : `something went wrong: ${e && e.message || e}`;
    Object.assign(entry, {state: 'error', error: message});
    showError(card, message);
  }
}

function addFiles(files) {
  if (!state.model) return;
  for (const file of files) {
    const card = addCard(file);
    const entry = {name: file.name, state: 'queued'};
    window.kb.results.push(entry);
    // One photo at a time: a big one is decoded, resized and released before the next starts.
    state.queue = state.queue.then(() => process(file, card, entry));
  }
}

function wire() {
  const drop = $('#drop');
  if (navigator.maxTouchPoints > 0 || matchMedia('(pointer: coarse)').matches) {  // a phone: pick or shoot
    $('.camera').classList.add('shown');
    $('.drop-title').textContent = 'Add bird photos';
    $('.drop-sub').hidden = true;
  }
  for (const id of ['#pick', '#camera']) {
    $(id).addEventListener('change', (e) => { addFiles([...e.target.files]); e.target.value = ''; });
  }
  // The whole window takes dropped photos (a drop outside the zone would open the file instead).
  window.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  window.addEventListener('dragleave', (e) => { if (!e.relatedTarget) drop.classList.remove('over'); });
  window.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    addFiles([...e.dataTransfer.files]);
  });
  document.addEventListener('paste', (e) => addFiles([...(e.clipboardData?.files || [])]));
  $('#clear').addEventListener('click', () => {
    $('#results').replaceChildren();
    $('#results-section').hidden = true;
  });
}

wire();
start();
