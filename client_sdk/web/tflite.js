// What a browser needs to read from a .tflite file itself, beyond what LiteRT.js exposes: the declared shape
// of the input (LiteRT.js runs only that shape), the output's quantization (to turn uint8 scores into
// probabilities, as client_sdk/runtime.py does) and the labels file tflite-support packs in (a ZIP appended
// to the flatbuffer, as client_sdk/runtime.py's packed_labels reads it).
//
// The FlatBuffers reading follows the format's layout (little-endian; a table starts with the signed
// offset back to its vtable, whose uint16 entries are field offsets) and the TFLite schema's field order.

const MODEL = { subgraphs: 2 };
const SUBGRAPH = { tensors: 0, inputs: 1, outputs: 2 };
const TENSOR = { shape: 0, type: 1, quantization: 4, shape_signature: 7 };
const QUANTIZATION = { scale: 2, zero_point: 3 };
const LABELS_FILE = "labels.txt"; // client_sdk.runtime.LABELS_FILE

export class ModelFileError extends Error {}

class Reader {
  constructor(bytes) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  check(position, size) {
    if (position < 0 || position + size > this.view.byteLength) throw new ModelFileError("not a TFLite flatbuffer (offset out of range)");
  }

  u32(p) { this.check(p, 4); return this.view.getUint32(p, true); }

  // The absolute position of field `id` of the table at `table`, or 0 when the field is absent.
  field(table, id) {
    this.check(table, 4);
    const vtable = table - this.view.getInt32(table, true);
    this.check(vtable, 4);
    const entry = 4 + 2 * id;
    if (entry >= this.view.getUint16(vtable, true)) return 0;
    const offset = this.view.getUint16(vtable + entry, true);
    return offset ? table + offset : 0;
  }

  // A field holding an offset to a table or vector, followed.
  ref(table, id) {
    const at = this.field(table, id);
    return at ? at + this.u32(at) : 0;
  }

  vector(table, id) { // [start, length] of a vector field, [0, 0] when absent
    const at = this.ref(table, id);
    return at ? [at + 4, this.u32(at)] : [0, 0];
  }

  ints(table, id) {
    const [start, length] = this.vector(table, id);
    this.check(start, 4 * length);
    return Array.from({ length }, (_, i) => this.view.getInt32(start + 4 * i, true));
  }

  table(table, id, index) { // element `index` of a vector of tables
    const [start, length] = this.vector(table, id);
    if (index >= length) throw new ModelFileError(`not a TFLite flatbuffer (no element ${index})`);
    const at = start + 4 * index;
    return at + this.u32(at);
  }
}

function tensor(reader, subgraph, listField) {
  const indices = reader.ints(subgraph, listField);
  if (!indices.length) throw new ModelFileError("the model's graph has no input or output tensor");
  const at = reader.table(subgraph, SUBGRAPH.tensors, indices[0]);
  const shape = reader.ints(at, TENSOR.shape);
  const signature = reader.ints(at, TENSOR.shape_signature);
  const quantization = reader.ref(at, TENSOR.quantization);
  let scale = 0;
  let zeroPoint = 0;
  if (quantization) {
    const [scales, count] = reader.vector(quantization, QUANTIZATION.scale);
    if (count) scale = reader.view.getFloat32(scales, true);
    const [points, pointCount] = reader.vector(quantization, QUANTIZATION.zero_point);
    if (pointCount) zeroPoint = Number(reader.view.getBigInt64(points, true));
  }
  return { shape, declaredShape: signature.length ? signature : shape, scale, zeroPoint };
}

// {input, output}: each {shape, declaredShape, scale, zeroPoint} of the first subgraph's first tensor.
export function describe(bytes) {
  const reader = new Reader(bytes);
  const root = reader.u32(0);
  const subgraph = reader.table(root, MODEL.subgraphs, 0);
  return { input: tensor(reader, subgraph, SUBGRAPH.inputs), output: tensor(reader, subgraph, SUBGRAPH.outputs) };
}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const STORED = 0;
const DEFLATED = 8;

// The labels packed in the model (one per line), as client_sdk.runtime.packed_labels reads them.
export async function packedLabels(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  for (let p = bytes.byteLength - 22; p >= Math.max(0, bytes.byteLength - 22 - 0xffff); p -= 1) {
    if (view.getUint32(p, true) === EOCD) { end = p; break; }
  }
  if (end < 0) throw new ModelFileError("no packed labels file (the model carries no ZIP of associated files)");
  const entries = view.getUint16(end + 10, true);
  const directorySize = view.getUint32(end + 12, true);
  const directoryOffset = view.getUint32(end + 16, true);
  const base = end - directorySize - directoryOffset; // the ZIP starts after the flatbuffer
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const files = [];
  for (let i = 0, p = base + directoryOffset; i < entries; i += 1) {
    if (view.getUint32(p, true) !== CENTRAL) throw new ModelFileError("the packed ZIP's directory is damaged");
    const nameLength = view.getUint16(p + 28, true);
    files.push({
      method: view.getUint16(p + 10, true), size: view.getUint32(p + 20, true), local: base + view.getUint32(p + 42, true),
      name: decoder.decode(bytes.subarray(p + 46, p + 46 + nameLength)),
    });
    p += 46 + nameLength + view.getUint16(p + 30, true) + view.getUint16(p + 32, true);
  }
  const file = files.find((f) => f.name === LABELS_FILE) ?? files.find((f) => f.name.endsWith(".txt"));
  if (!file) throw new ModelFileError(`no labels file among the packed files ${JSON.stringify(files.map((f) => f.name))}`);
  if (view.getUint32(file.local, true) !== LOCAL) throw new ModelFileError("the packed labels file is damaged");
  const start = file.local + 30 + view.getUint16(file.local + 26, true) + view.getUint16(file.local + 28, true);
  let data = bytes.subarray(start, start + file.size);
  if (file.method === DEFLATED) {
    data = new Uint8Array(await new Response(new Blob([data]).stream().pipeThrough(new DecompressionStream("deflate-raw"))).arrayBuffer());
  } else if (file.method !== STORED) {
    throw new ModelFileError(`the packed labels file uses ZIP method ${file.method}`);
  }
  return decoder.decode(data).split(/\r?\n/).map((line) => line.trim()).filter(Boolean);
}
