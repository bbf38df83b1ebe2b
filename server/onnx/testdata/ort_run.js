// Runs ONNX models with ONNX Runtime (onnxruntime-node, CPU) for qdq_ort_test.cc.
//   NODE_PATH=third_party/node/node_modules node ort_run.js RUNS.json RESULTS.json
// RUNS.json:    [{"model": PATH, "optimization": "disabled" | "all",
//                 "feeds": {NAME: {"dims": [..], "data": [..]}}}, ...]
// RESULTS.json: [{OUTPUT_NAME: {"dims": [..], "data": [..]}}, ...], one object per run.
// Exits non-zero, with the error on stderr, when any model fails to load or run.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [runsPath, resultsPath] = process.argv.slice(2);
  const runs = JSON.parse(fs.readFileSync(runsPath, 'utf8'));
  const results = [];
  for (const run of runs) {
    let session;
    try {
      session = await ort.InferenceSession.create(run.model, {
        executionProviders: ['cpu'],
        graphOptimizationLevel: run.optimization,
      });
    } catch (e) {
      throw new Error(`${run.model}: ${e.message}`);
    }
    const feeds = {};
    for (const [name, t] of Object.entries(run.feeds)) {
      feeds[name] = new ort.Tensor('float32', Float32Array.from(t.data), t.dims);
    }
    const outputs = await session.run(feeds);
    const result = {};
    for (const [name, t] of Object.entries(outputs)) {
      result[name] = {dims: Array.from(t.dims), data: Array.from(t.data)};
    }
    results.push(result);
    await session.release();
  }
  fs.writeFileSync(resultsPath, JSON.stringify(results));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
