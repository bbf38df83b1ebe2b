// Runs an ONNX model with ONNX Runtime (onnxruntime-node, CPU, all graph optimizations, so Q/DQ
// pairs run as ORT's int8/fp8 kernels) on raw float32 inputs, for the e2e tests.
//
//   node ort_logits.mjs MODEL.onnx INPUT.f32 D0,D1,... OUTPUT.f32 [BATCH]
//
// INPUT.f32: little-endian float32, shape D0,D1,... (D0 the batch); the model's first input is
// fed BATCH rows at a time (default 64) and its first output is written, rows concatenated, as
// little-endian float32 to OUTPUT.f32. Prints the output's dims as JSON. Exits 2 on bad
// arguments, 1 (with the error on stderr) when the model fails to load or run.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../third_party/node/package.json', import.meta.url));
const ort = require('onnxruntime-node');

const [model, inputPath, dimsText, outputPath, batchText] = process.argv.slice(2);
if (!outputPath) {
  console.error('usage: node ort_logits.mjs MODEL INPUT.f32 D0,D1,... OUTPUT.f32 [BATCH]');
  process.exit(2);
}
const dims = dimsText.split(',').map(Number);
const rowElements = dims.slice(1).reduce((a, b) => a * b, 1);
const bytes = readFileSync(inputPath);
if (bytes.length !== dims[0] * rowElements * 4) {
  console.error(`${inputPath}: ${bytes.length} bytes, expected ${dims[0] * rowElements * 4}`);
  process.exit(2);
}
// Copy into an aligned Float32Array (a Buffer's byte offset need not be a multiple of 4).
const input = new Float32Array(bytes.length / 4);
new Uint8Array(input.buffer).set(bytes);
const batch = Number(batchText || 64);

try {
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: 2,
    interOpNumThreads: 1,
  });
  const chunks = [];
  let outDims = null;
  for (let first = 0; first < dims[0]; first += batch) {
    const n = Math.min(batch, dims[0] - first);
    const rows = input.subarray(first * rowElements, (first + n) * rowElements);
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', rows, [n, ...dims.slice(1)]) };
    const out = (await session.run(feeds))[session.outputNames[0]];
    chunks.push(Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
    outDims = [dims[0], ...out.dims.slice(1)];
  }
  writeFileSync(outputPath, Buffer.concat(chunks));
  console.log(JSON.stringify(outDims));
} catch (e) {
  console.error(`${model}: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
}
