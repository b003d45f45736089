'use strict';

// Runs against a real onnxplain server:
//   ONNXPLAIN_ADDRESS       host:port of the server (required)
//   ONNXPLAIN_MODEL         a loaded model's name (default 'shapes')
//   ONNXPLAIN_SAMPLE        path to a PNG/JPEG the model classifies correctly (required)
//   ONNXPLAIN_SAMPLE_LABEL  that image's true class index (required)
//   ONNXPLAIN_TOKEN         bearer token, when the server wants one

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const grpc = require('@grpc/grpc-js');
const { OnnxplainClient, tensorToFloat32Array } = require('..');

const MODEL = process.env.ONNXPLAIN_MODEL || 'shapes';
const SEED = 1234;

let client;
let model; // ModelInfo
let image; // Buffer
let label; // true class index of the sample
let occlusion; // parameters sized to the model's input

before(async () => {
  for (const name of ['ONNXPLAIN_ADDRESS', 'ONNXPLAIN_SAMPLE', 'ONNXPLAIN_SAMPLE_LABEL']) {
    assert.ok(process.env[name], `${name} is not set: these tests need a running onnxplain server (see README.md)`);
  }
  client = new OnnxplainClient(process.env.ONNXPLAIN_ADDRESS, { token: process.env.ONNXPLAIN_TOKEN });
  image = fs.readFileSync(process.env.ONNXPLAIN_SAMPLE);
  label = Number(process.env.ONNXPLAIN_SAMPLE_LABEL);
  assert.ok(Number.isInteger(label), `ONNXPLAIN_SAMPLE_LABEL must be a class index, got '${process.env.ONNXPLAIN_SAMPLE_LABEL}'`);
  model = await client.getModel(MODEL);
  // About 7 x 7 windows whatever the input size, to keep the test quick.
  const window = Math.max(2, Math.floor(Math.min(model.height, model.width) / 4));
  occlusion = { window: [window], stride: [Math.ceil(window / 2)] };
});

after(() => client?.close());

function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

test('listModels includes the model', async () => {
  const models = await client.listModels();
  assert.ok(models.some((m) => m.name === MODEL), `'${MODEL}' not in [${models.map((m) => m.name)}]`);
});

test('getModel describes an input size and classes that agree with each other', () => {
  assert.equal(model.name, MODEL);
  assert.ok(model.height > 0 && model.width > 0, `input ${model.height} x ${model.width}`);
  assert.ok(model.numClasses > 1);
  assert.equal(model.labels.length, model.numClasses);
  assert.ok(label >= 0 && label < model.numClasses, `ONNXPLAIN_SAMPLE_LABEL ${label} is not a class`);
  const [h, w] = model.layout === 'LAYOUT_NHWC' ? model.input.shape.slice(1, 3) : model.input.shape.slice(2, 4);
  if (h > 0) assert.equal(h, model.height);
  if (w > 0) assert.equal(w, model.width);
});

test('predict ranks the true class first', async () => {
  const response = await client.predict(MODEL, image, { topK: 3 });
  assert.equal(response.predictions.length, 1);
  const { top, scores } = response.predictions[0];
  assert.equal(top[0].classIndex, label);
  assert.equal(top[0].label, model.labels[label]);
  for (let i = 1; i < top.length; i++) assert.ok(top[i - 1].score >= top[i].score, 'top is not sorted');
  const all = tensorToFloat32Array(scores);
  assert.deepEqual(all.shape, [1, model.numClasses]);
  assert.equal(argmax(all.data), label);
  assert.ok(response.forwardPasses > 0);
  assert.equal(response.scoreSpace, 'SCORE_SPACE_RAW'); // Predict's default, echoed
  const probabilities = await client.predict(MODEL, image, { scoreSpace: 'SCORE_SPACE_PROBABILITY' });
  assert.equal(probabilities.scoreSpace, 'SCORE_SPACE_PROBABILITY');
  const sum = tensorToFloat32Array(probabilities.predictions[0].scores).data.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - 1) < 1e-4, `probabilities sum to ${sum}`);
});

test('explain (occlusion) returns one finite, non-zero map for the predicted class', async () => {
  const prediction = await client.predict(MODEL, image, { topK: 1 });
  const predicted = prediction.predictions[0].top[0].classIndex;
  const response = await client.explain(MODEL, image, { method: 'occlusion', params: occlusion, seed: SEED });
  assert.equal(response.method, 'occlusion');
  assert.equal(response.seed, SEED);
  assert.ok(response.forwardPasses > 0);
  assert.equal(response.scoreSpace, 'SCORE_SPACE_LOGIT'); // explanations default to logits
  assert.equal(response.metricScoreSpace, 'SCORE_SPACE_PROBABILITY');
  assert.equal(response.attributions.length, 1);
  const [attribution] = response.attributions;
  assert.equal(attribution.classIndex, predicted);
  assert.equal(attribution.label, model.labels[predicted]);
  const map = tensorToFloat32Array(attribution.map);
  assert.deepEqual(map.shape, [model.height, model.width]);
  assert.ok(map.data.every(Number.isFinite), 'map has non-finite values');
  assert.ok(map.data.some((v) => v !== 0), 'map is all zero');
});

test('explainStream reports progress, then the same map as explain', async () => {
  const options = { method: 'occlusion', params: occlusion, seed: SEED };
  const events = [];
  const streamed = await client.explainStream(MODEL, image, options, (p) => events.push(p));
  const unary = await client.explain(MODEL, image, options);

  assert.ok(events.length > 0, 'no progress events');
  for (const { stage, done, total } of events) {
    assert.ok(done <= total, `${stage}: done ${done} > total ${total}`);
  }
  const last = events.at(-1);
  assert.equal(last.done, last.total);

  assert.equal(streamed.seed, SEED);
  assert.equal(streamed.attributions.length, unary.attributions.length);
  streamed.attributions.forEach((attribution, i) => {
    assert.equal(attribution.classIndex, unary.attributions[i].classIndex);
    assert.deepEqual(tensorToFloat32Array(attribution.map), tensorToFloat32Array(unary.attributions[i].map));
  });
});

test('getModelStatistics counts an explanation: one success, its forward passes under its method', async () => {
  const none = { requestCount: 0, forwardPasses: 0 };
  const occlusionOf = (stats) => stats.methods.find((m) => m.method === 'occlusion') ?? none;
  const [before] = await client.getModelStatistics(MODEL);
  const response = await client.explain(MODEL, image, { method: 'occlusion', params: occlusion, seed: SEED });
  const [after] = await client.getModelStatistics(MODEL);
  assert.equal(after.name, MODEL);
  assert.equal(after.success.count - before.success.count, 1);
  assert.equal(after.failure.count, before.failure.count);
  assert.equal(after.forwardPasses - before.forwardPasses, response.forwardPasses);
  assert.equal(occlusionOf(after).forwardPasses - occlusionOf(before).forwardPasses, response.forwardPasses);
  assert.equal(occlusionOf(after).requestCount - occlusionOf(before).requestCount, 1);
});

test('an unknown model is NOT_FOUND', async () => {
  const notFound = { code: grpc.status.NOT_FOUND };
  await assert.rejects(client.getModel('no-such-model'), notFound);
  await assert.rejects(client.predict('no-such-model', image), notFound);
});

test('occlusion with stride 0 is INVALID_ARGUMENT', async () => {
  const params = { ...occlusion, stride: [0] };
  await assert.rejects(client.explain(MODEL, image, { params }), { code: grpc.status.INVALID_ARGUMENT });
});
