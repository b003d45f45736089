'use strict';

// ModelService's helpers and ListMethods: upload an ONNX model, describe it, unload it.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const { connect, env } = require('./support/env');

let client;

before(() => {
  client = connect();
});

after(() => client?.close());

test('loadModel uploads ONNX bytes: served as "upload" with the file\'s sha256, then unloaded', { skip: !env.modelFile && 'ONNXPLAIN_MODEL_FILE is not set' }, async () => {
  const bytes = fs.readFileSync(env.modelFile);
  const name = `uploaded-${process.pid}`;
  const labels = ['one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];
  const served = await client.getModel(env.model);
  const info = await client.loadModel({ name, onnxModel: bytes, overrides: { labels: labels.slice(0, served.numClasses) } });
  try {
    assert.equal(info.name, name);
    assert.equal(info.source, 'upload');
    assert.equal(info.sha256, crypto.createHash('sha256').update(bytes).digest('hex'));
    assert.deepEqual(info.labels, labels.slice(0, served.numClasses));
    assert.ok((await client.listModels()).some((m) => m.name === name));
    // A path to a local file uploads the same bytes.
    const again = await client.loadModel({ name, onnxModel: env.modelFile, replace: true });
    assert.equal(again.sha256, info.sha256);
  } finally {
    await client.unloadModel(name);
  }
  await assert.rejects(client.getModel(name), { name: 'OnnxplainError', codeName: 'NOT_FOUND' });
});

test('inspectModel describes a served model with its forward timings, and refuses repeats out of range by field', async () => {
  const served = await client.getModel(env.model);
  const inspected = await client.inspectModel(env.model, { verify: false, repeats: 2 });
  assert.equal(inspected.model.name, env.model);
  assert.equal(inspected.model.sha256, served.sha256);
  assert.ok(inspected.model.layoutSource.length > 0);
  assert.ok(inspected.forwardTimings.length >= 1);
  assert.equal(inspected.forwardTimings[0].batchSize, 1);
  for (const timing of inspected.forwardTimings) {
    assert.equal(timing.repeats, 2);
    assert.ok(timing.medianMs > 0);
  }
  await assert.rejects(client.inspectModel(env.model, { verify: false, repeats: 21 }),
    { name: 'OnnxplainError', codeName: 'INVALID_ARGUMENT', field: 'repeats' });
});

test('listMethods names every method of MethodSpec, listMetrics every metric of MetricSpec', async () => {
  const methods = (await client.listMethods()).map((m) => m.name);
  const metrics = (await client.listMetrics()).map((m) => m.name);
  // The protos' oneofs are the ground truth of what a request can name.
  for (const name of client.requests.oneofNames('MethodSpec').filter((n) => n !== 'eva')) {
    assert.ok(methods.includes(name), `${name} not in [${methods}]`);
  }
  for (const name of ['deletion', 'insertion', 'mu_fidelity']) assert.ok(metrics.includes(name), `${name} not in [${metrics}]`);
});

test('predict takes several images and file paths: one prediction each, the true class first', async () => {
  const response = await client.predict(env.model, [env.image(), env.samplePath], { topK: 2, scoreSpace: 'probability' });
  assert.equal(response.predictions.length, 2);
  assert.equal(response.scoreSpace, 'SCORE_SPACE_PROBABILITY');
  for (const prediction of response.predictions) assert.equal(prediction.top[0].classIndex, env.label);
  assert.deepEqual(response.predictions[0].top, response.predictions[1].top); // the same image twice
});
