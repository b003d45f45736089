'use strict';

// What the tests share: the server they run against and its samples, from the environment that
// tests/test_node_client.py (make test) sets:
//   ONNXPLAIN_ADDRESS       host:port of the server (required)
//   ONNXPLAIN_MODEL         a loaded model's name (default 'shapes')
//   ONNXPLAIN_SAMPLE        path to a PNG/JPEG the model classifies correctly (required)
//   ONNXPLAIN_SAMPLE_LABEL  that image's true class index (required)
//   ONNXPLAIN_SAMPLE_2      another such image (default ONNXPLAIN_SAMPLE)
//   ONNXPLAIN_DATASET       a dataset inside the server's data directory, for Audit (its tests skip without)
//   ONNXPLAIN_DATASET_ITEMS how many images it lists
//   ONNXPLAIN_MODEL_FILE    a local .onnx file to upload with LoadModel (its test skips without)
//   ONNXPLAIN_TOKEN         bearer token, when the server wants one

const assert = require('node:assert/strict');
const fs = require('node:fs');
const { OnnxplainClient } = require('../..');

function connect() {
  for (const name of ['ONNXPLAIN_ADDRESS', 'ONNXPLAIN_SAMPLE', 'ONNXPLAIN_SAMPLE_LABEL']) {
    assert.ok(process.env[name], `${name} is not set: these tests need a running onnxplain server (see README.md)`);
  }
  return new OnnxplainClient(process.env.ONNXPLAIN_ADDRESS, { token: process.env.ONNXPLAIN_TOKEN });
}

const env = {
  model: process.env.ONNXPLAIN_MODEL || 'shapes',
  samplePath: process.env.ONNXPLAIN_SAMPLE,
  secondSamplePath: process.env.ONNXPLAIN_SAMPLE_2 || process.env.ONNXPLAIN_SAMPLE,
  label: Number(process.env.ONNXPLAIN_SAMPLE_LABEL),
  dataset: process.env.ONNXPLAIN_DATASET,
  datasetItems: Number(process.env.ONNXPLAIN_DATASET_ITEMS || 0),
  modelFile: process.env.ONNXPLAIN_MODEL_FILE,
  image: () => fs.readFileSync(process.env.ONNXPLAIN_SAMPLE),
};

/** Occlusion parameters of about 4 x 4 windows whatever the input size, to keep the tests quick. */
function coarseOcclusion(model) {
  const window = Math.max(2, Math.floor(Math.min(model.height, model.width) / 4));
  return { window: [window], stride: [window] };
}

module.exports = { connect, env, coarseOcclusion };
