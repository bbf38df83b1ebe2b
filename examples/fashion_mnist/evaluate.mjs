// Top-1 accuracy of an ONNX classifier on the Fashion-MNIST test set, with ONNX Runtime
// (onnxruntime-node, installed into third_party/node by scripts/install-deps.sh).
//
//   node evaluate.mjs --model M.onnx --images test_images.f32 --labels test_labels.u8
//                     [--count N] [--batch-size B] [--threads T] [--optimization LEVEL]
//
// images: float32 little-endian [N, 1, 28, 28], already normalized (data.py write_eval_set);
// labels: uint8 [N]. The model takes "images" (first input) and gives logits [batch, classes].
// --optimization: ONNX Runtime's graph optimization level, "all" (default: Q/DQ pairs run as
// int8 kernels) or "basic" (what FP8 Q/DQ models need: at "extended" and above onnxruntime 1.31
// fuses FP8 pairs into QLinearConv, which has no FP8 kernel, and the model fails to load).
// Prints one JSON line: {"model", "top1" (fraction), "correct", "total", "seconds"}.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

// Resolve onnxruntime-node from the repo's third_party/node (NODE_PATH still works as a fallback).
const require = createRequire(new URL('../../third_party/node/package.json', import.meta.url));
const ort = require('onnxruntime-node');

const IMAGE_ELEMENTS = 28 * 28;

function fail(message) {
  console.error(`evaluate.mjs: ${message}`);
  process.exit(2);
}

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    images: { type: 'string' },
    labels: { type: 'string' },
    count: { type: 'string' },
    'batch-size': { type: 'string', default: '500' },
    threads: { type: 'string', default: '2' },
    optimization: { type: 'string', default: 'all' },
  },
});
for (const required of ['model', 'images', 'labels']) {
  if (!args[required]) fail(`--${required} is required`);
}

const imageBytes = readFileSync(args.images);
const labels = new Uint8Array(readFileSync(args.labels));
if (imageBytes.length !== labels.length * IMAGE_ELEMENTS * 4) {
  fail(`${args.images} holds ${imageBytes.length} bytes, expected ${labels.length} images of ` +
       `${IMAGE_ELEMENTS} float32 values`);
}
// Copy into an aligned Float32Array (a Buffer's byte offset need not be a multiple of 4).
const images = new Float32Array(imageBytes.length / 4);
new Uint8Array(images.buffer).set(imageBytes);

const total = args.count ? Math.min(Number(args.count), labels.length) : labels.length;
const batchSize = Number(args['batch-size']);
if (!(total > 0) || !(batchSize > 0)) fail('--count and --batch-size must be positive');

const start = process.hrtime.bigint();
const session = await ort.InferenceSession.create(args.model, {
  intraOpNumThreads: Number(args.threads),
  interOpNumThreads: 1,
  graphOptimizationLevel: args.optimization,
});
const inputName = session.inputNames[0];
const outputName = session.outputNames[0];

let correct = 0;
for (let first = 0; first < total; first += batchSize) {
  const n = Math.min(batchSize, total - first);
  const batch = images.subarray(first * IMAGE_ELEMENTS, (first + n) * IMAGE_ELEMENTS);
  const feeds = { [inputName]: new ort.Tensor('float32', batch, [n, 1, 28, 28]) };
  const logits = (await session.run(feeds))[outputName];
  const classes = logits.dims[1];
  for (let i = 0; i < n; ++i) {
    let best = 0;
    for (let c = 1; c < classes; ++c) {
      if (logits.data[i * classes + c] > logits.data[i * classes + best]) best = c;
    }
    if (best === labels[first + i]) ++correct;
  }
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
console.log(JSON.stringify({ model: args.model, top1: correct / total, correct, total, seconds }));
