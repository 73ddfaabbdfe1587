// What an exported .tflite says about itself, read from its own bytes (as predict reads it in Python):
// the class names and the unknown-species rule packed after the model (an uncompressed zip, TFLite
// Support's associated files: labels.txt, unknown.json), and the quantisation of its input and output.

const utf8 = new TextDecoder('utf-8');

// {name: Uint8Array} of the files zipped after the model; offsets count from the file's start.
export function packedFiles(bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const files = {};
  let eocd = -1;
  for (let p = bytes.length - 22; p >= Math.max(0, bytes.length - 22 - 65535); p--) {
    if (dv.getUint32(p, true) === 0x06054b50) { eocd = p; break; }
  }
  if (eocd < 0) return files;
  const count = dv.getUint16(eocd + 10, true);
  let p = dv.getUint32(eocd + 16, true);
  for (let i = 0; i < count && p + 46 <= bytes.length; i++) {
    if (dv.getUint32(p, true) !== 0x02014b50) break;
    const method = dv.getUint16(p + 10, true);
    const size = dv.getUint32(p + 20, true);
    const nameLen = dv.getUint16(p + 28, true);
    const skip = nameLen + dv.getUint16(p + 30, true) + dv.getUint16(p + 32, true);
    const local = dv.getUint32(p + 42, true);
    const name = utf8.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    if (method === 0 && dv.getUint32(local, true) === 0x04034b50) {
      const start = local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true);
      files[name] = bytes.subarray(start, start + size);
    }
    p += 46 + skip;
  }
  return files;
}

// One name per line, or a JSON list; leading/trailing blank lines dropped (inference/labels.py).
export function parseLabels(text) {
  text = text.replace(/^\n+|\n+$/g, '');
  if (!text.trim()) return null;
  if (text.trimStart().startsWith('[')) {
    try {
      const names = JSON.parse(text);
      if (Array.isArray(names)) return names.map(String);
    } catch (e) { /* one name per line */ }
  }
  return text.split(/\r\n|\r|\n/);
}

// A tiny flatbuffer reader: just enough of the TFLite schema (Model -> SubGraph -> Tensor -> quantization).
class Table {
  constructor(dv, pos) { this.dv = dv; this.pos = pos; this.vt = pos - dv.getInt32(pos, true); }
  field(slot) {
    const o = 4 + 2 * slot;
    if (o >= this.dv.getUint16(this.vt, true)) return 0;
    const rel = this.dv.getUint16(this.vt + o, true);
    return rel ? this.pos + rel : 0;
  }
  ref(slot) { const f = this.field(slot); return f ? f + this.dv.getUint32(f, true) : 0; }
  table(slot) { const r = this.ref(slot); return r ? new Table(this.dv, r) : null; }
  vector(slot) { const r = this.ref(slot); return r ? {start: r + 4, length: this.dv.getUint32(r, true)} : null; }
  tables(slot) {
    const v = this.vector(slot);
    if (!v) return [];
    return Array.from({length: v.length}, (_, i) => {
      const at = v.start + 4 * i;
      return new Table(this.dv, at + this.dv.getUint32(at, true));
    });
  }
  ints(slot) {
    const v = this.vector(slot);
    return v ? Array.from({length: v.length}, (_, i) => this.dv.getInt32(v.start + 4 * i, true)) : [];
  }
  floats(slot) {
    const v = this.vector(slot);
    return v ? Array.from({length: v.length}, (_, i) => this.dv.getFloat32(v.start + 4 * i, true)) : [];
  }
  longs(slot) {
    const v = this.vector(slot);
    return v ? Array.from({length: v.length}, (_, i) => Number(this.dv.getBigInt64(v.start + 8 * i, true))) : [];
  }
  byte(slot) { const f = this.field(slot); return f ? this.dv.getInt8(f) : 0; }
}

const TENSOR_TYPES = {0: 'float32', 1: 'float16', 2: 'int32', 3: 'uint8', 9: 'int8'};

// Shape, type and (scale, zero point) of the first subgraph's first input and first output.
export function ioDetails(bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const model = new Table(dv, dv.getUint32(0, true));
  const graph = model.tables(2)[0];
  const tensors = graph.tables(0);
  const describe = (index) => {
    const t = tensors[index];
    const q = t.table(4);
    return {
      shape: t.ints(0), dtype: TENSOR_TYPES[t.byte(1)] || `type ${t.byte(1)}`,
      scale: q ? (q.floats(2)[0] || 0) : 0, zeroPoint: q ? (q.longs(3)[0] || 0) : 0,
    };
  };
  return {input: describe(graph.ints(1)[0]), output: describe(graph.ints(2)[0])};
}

// Everything the page needs from the file: {labels, rule, input, output}.
export function readModelFile(bytes) {
  const packed = packedFiles(bytes);
  const labels = packed['labels.txt'] ? parseLabels(utf8.decode(packed['labels.txt'])) : null;
  let rule = null;
  if (packed['unknown.json']) {
    const stored = JSON.parse(utf8.decode(packed['unknown.json']));
    rule = {score: String(stored.score), threshold: Number(stored.threshold), text: stored.rule || ''};
  }
  return {labels, rule, ...ioDetails(bytes)};
}
