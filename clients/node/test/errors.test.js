'use strict';

// Failures: one OnnxplainError class with the gRPC code name, the field a BadRequest names, and the message;
// cancellation by AbortSignal, deadlines, a throwing progress callback, requests refused before sending.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { OnnxplainError } = require('..');
const { connect, env, coarseOcclusion } = require('./support/env');

let client;
let occlusion;
// A RISE run far longer than any test: every mask drawn (no reliability stop), so only a cancel ends it.
const LONG = { method: 'rise', params: { numMasks: 200000, targetReliability: 0 }, seed: 1 };

before(async () => {
  client = connect();
  occlusion = coarseOcclusion(await client.getModel(env.model));
});

after(() => client?.close());

test('the server\'s INVALID_ARGUMENT carries the field its BadRequest names', async () => {
  const error = await client.explain(env.model, env.image(), { params: { ...occlusion, stride: [0] } }).then(
    () => assert.fail('a stride of 0 was accepted'), (err) => err);
  assert.ok(error instanceof OnnxplainError);
  assert.equal(error.codeName, 'INVALID_ARGUMENT');
  assert.equal(error.code, 3);
  assert.equal(error.field, 'occlusion.stride');
  assert.match(error.details, /stride/);
  assert.ok(!error.details.startsWith('occlusion.stride:'), 'the field is not repeated in the message');
  assert.equal(error.local, false);
});

test('an unknown model is NOT_FOUND, from unary and streamed calls alike', async () => {
  const notFound = { name: 'OnnxplainError', codeName: 'NOT_FOUND' };
  await assert.rejects(client.getModel('no-such-model'), notFound);
  await assert.rejects(client.explainStream('no-such-model', env.image(), { params: occlusion }), notFound);
  await assert.rejects(client.measure('no-such-model', [env.image()], { params: occlusion }), notFound);
});

test('a misspelt parameter, method or enum is refused before sending, naming the field', async () => {
  await assert.rejects(client.explain(env.model, env.image(), { params: { strides: [2] } }),
    { codeName: 'INVALID_ARGUMENT', field: 'method.occlusion.strides', local: true });
  await assert.rejects(client.explain(env.model, env.image(), { method: 'occlussion' }),
    { codeName: 'INVALID_ARGUMENT', field: 'method', local: true });
  await assert.rejects(client.explain(env.model, env.image(), { scoreSpace: 'logits' }),
    { codeName: 'INVALID_ARGUMENT', field: 'score_space', local: true });
  await assert.rejects(client.aggregate(env.model, [env.image()], { methods: ['occlusion'], aggregator: 'average' }),
    { codeName: 'INVALID_ARGUMENT', field: 'aggregator', local: true });
});

test('aborting the signal cancels a streamed call mid-way', async () => {
  const controller = new AbortController();
  const events = [];
  const started = Date.now();
  const call = client.explainStream(env.model, env.image(), { ...LONG, signal: controller.signal }, (p) => {
    events.push(p);
    controller.abort();
  });
  await assert.rejects(call, { name: 'OnnxplainError', codeName: 'CANCELLED' });
  assert.ok(events.length >= 1);
  assert.ok(Date.now() - started < 20000);
  // An already aborted signal sends nothing.
  await assert.rejects(client.listModels({ signal: controller.signal }), { codeName: 'CANCELLED', local: true });
});

test('aborting the signal cancels a unary call', async () => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 200);
  await assert.rejects(client.explain(env.model, env.image(), { ...LONG, signal: controller.signal }),
    { codeName: 'CANCELLED' });
});

test('a deadline ends a call with DEADLINE_EXCEEDED', async () => {
  await assert.rejects(client.explain(env.model, env.image(), { ...LONG, deadlineMs: 300 }),
    { name: 'OnnxplainError', codeName: 'DEADLINE_EXCEEDED' });
  await assert.rejects(client.consistency(env.model, env.image(), {
    settings: [{ method: 'rise', params: LONG.params }, { method: 'rise', params: LONG.params }], deadline: new Date(Date.now() + 300),
  }), { codeName: 'DEADLINE_EXCEEDED' });
});

test('a progress callback that throws cancels the call and rejects with what it threw', async () => {
  const thrown = new Error('stop here');
  await assert.rejects(client.explainStream(env.model, env.image(), LONG, () => { throw thrown; }), (err) => err === thrown);
});
