'use strict';

// The streamed study helpers (Consistency, AnalyzeScales, Aggregate, Measure, Audit) and Evaluate, against the
// real server, each checked against what is known without the code under test: identical settings agree
// perfectly, an ensemble of identical members gains nothing, shares sum to one, an audit covers every item.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { decodeTensor, tensorToFloat32Array } = require('..');
const { connect, env, coarseOcclusion } = require('./support/env');

let client;
let model;
let occlusion;
let image;

before(async () => {
  client = connect();
  model = await client.getModel(env.model);
  occlusion = coarseOcclusion(model);
  image = env.image();
});

after(() => client?.close());

function assertProgress(events) {
  assert.ok(events.length > 0, 'no progress events');
  for (const { stage, done, total } of events) assert.ok(done <= total, `${stage}: done ${done} > total ${total}`);
}

test('evaluate scores a map as Explain scored it inline, for the class it names', async () => {
  const metrics = [['deletion', { steps: 8 }]];
  const explained = await client.explain(env.model, image, { params: occlusion, metrics, seed: 3 });
  const [attribution] = explained.attributions;
  const map = tensorToFloat32Array(attribution.map); // {shape, data}: what evaluate takes back
  const evaluated = await client.evaluate(env.model, image, map, { metrics, classIndex: attribution.classIndex, seed: 3 });
  assert.equal(evaluated.classIndex, attribution.classIndex);
  assert.equal(evaluated.label, model.labels[attribution.classIndex]);
  assert.deepEqual(evaluated.results.map((r) => r.name), ['deletion']);
  assert.ok(Math.abs(evaluated.results[0].score - attribution.metrics[0].score) < 1e-9,
    `${evaluated.results[0].score} vs inline ${attribution.metrics[0].score}`);
});

test('consistency: two identical settings agree perfectly, a different one less, with streamed progress', async () => {
  const events = [];
  const result = await client.consistency(env.model, image, {
    settings: [
      { label: 'a', method: 'occlusion', params: occlusion, baseline: 'black' },
      { label: 'same as a', method: 'occlusion', params: occlusion, baseline: 'black' },
      { label: 'white', method: 'occlusion', params: occlusion, baseline: 'white' },
    ],
    metric: ['deletion', { steps: 8 }],
    metricBaselines: ['black'],
    seed: 5,
    onProgress: (p) => events.push(p),
  });
  assertProgress(events);
  assert.deepEqual(result.settings, ['a', 'same as a', 'white']);
  const { size, values } = result.spearman;
  assert.equal(size, 3);
  const at = (i, j) => values[i * size + j];
  for (let i = 0; i < size; i++) assert.ok(Math.abs(at(i, i) - 1) < 1e-9);
  assert.ok(Math.abs(at(0, 1) - 1) < 1e-9, `identical settings: spearman ${at(0, 1)}`);
  assert.equal(result.rankings.length, 1);
  const [scores] = [result.rankings[0].scores];
  assert.equal(scores[0], scores[1]);
});

test('analyzeScales: the clean image and each corruption, level shares summing to one', async () => {
  const events = [];
  const result = await client.analyzeScales(env.model, image, {
    wcam: { numDesigns: 2, levels: 2 }, corruptions: ['gaussian_blur'], severities: [3], seed: 1,
    onProgress: (p) => events.push(p),
  });
  assertProgress(events);
  assert.deepEqual(result.variants.map((v) => v.name), ['clean', 'gaussian_blur 3']);
  assert.equal(result.variants[1].corruption, 'CORRUPTION_GAUSSIAN_BLUR');
  for (const variant of result.variants) {
    assert.equal(variant.levelImportance.length, 3); // the approximation, then levels 2 and 1
    const sum = variant.levelImportance.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-6, `${variant.name}: shares sum to ${sum}`);
  }
});

test('aggregate: an ensemble of two identical members scores as they do (gain 0)', async () => {
  const events = [];
  const result = await client.aggregate(env.model, [image, env.secondSamplePath], {
    methods: [['occlusion', occlusion], { name: 'occlusion', params: occlusion }],
    aggregator: 'mean', normalisation: 'max_abs', metric: ['deletion', { steps: 8 }], seed: 2,
    onProgress: (p) => events.push(p),
  });
  assertProgress(events);
  assert.deepEqual(result.members, ['occlusion #1', 'occlusion #2']);
  assert.equal(result.chosen.aggregator, 'AGGREGATOR_MEAN');
  const members = decodeTensor(result.memberScores); // FLOAT64 [images, members]
  assert.deepEqual(members.shape, [2, 2]);
  for (let i = 0; i < 2; i++) {
    assert.equal(members.data[2 * i], members.data[2 * i + 1], `image ${i}: identical members score alike`);
    assert.ok(Math.abs(result.aggregateScores[i] - members.data[2 * i]) < 1e-6, `image ${i}`);
  }
  assert.ok(Math.abs(result.gain) < 1e-6, `gain ${result.gain}`);
});

test('measure: only the measures asked for, one value per image', async () => {
  const events = [];
  const result = await client.measure(env.model, [image, env.secondSamplePath], {
    method: 'occlusion', params: occlusion, measures: ['entropy'], seed: 4, onProgress: (p) => events.push(p),
  });
  assertProgress(events);
  assert.equal(result.method, 'occlusion');
  assert.ok(result.entropy.length > 0);
  for (const series of result.entropy) assert.equal(series.values.length, 2, series.name);
  assert.deepEqual([result.outOfSet, result.transforms, result.stability, result.degradation], [[], [], [], []]);
});

test('audit: every item of the dataset, then a resumed call that computes nothing', { skip: !env.dataset && 'ONNXPLAIN_DATASET is not set' }, async () => {
  const request = {
    dataset: env.dataset, models: [env.model], name: `node-${process.pid}`, methods: [['occlusion', occlusion]],
    metrics: [['deletion', { steps: 4 }]], seed: 7,
  };
  const events = [];
  const first = await client.audit({ ...request, onProgress: (p) => events.push(p) });
  assertProgress(events);
  assert.equal(first.total, env.datasetItems);
  assert.equal(first.computed, env.datasetItems);
  const [group] = first.summary.groups;
  assert.deepEqual([group.model, group.items], [env.model, env.datasetItems]);
  assert.match(group.method, /^occlusion/);
  const again = await client.audit(request);
  assert.equal(again.computed, 0);
  assert.equal(again.total, env.datasetItems);
});
