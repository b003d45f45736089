'use strict';

/**
 * Node.js client of the onnxplain gRPC service (package `xai.v1`).
 *
 * Messages are plain objects with camelCase field names, enums as their
 * names (e.g. 'LAYOUT_NCHW'), 64-bit integers as Numbers and bytes as
 * Buffers; unset fields carry their proto3 defaults.
 */

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const DEFAULT_PROTOS_DIR = path.resolve(__dirname, '../../protos');
const PROTO_FILES = ['xai/v1/model_service.proto', 'xai/v1/explain_service.proto'];
const LOADER_OPTIONS = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true };

/**
 * @typedef {object} ExplainOptions
 * @property {string} [method='occlusion'] The explanation method, as `listMethods()` names it.
 * @property {object} [params={}] The method's parameters, e.g. `{ window: [8], stride: [4] }` for occlusion.
 * @property {number|number[]|{classIndices?: number[], topK?: number}} [target]
 *   Classes to explain: an index, a list of indices or a `Target`; default the predicted class.
 * @property {number} [seed] Seed of the method's randomness; the server echoes the one it used.
 * @property {string} [scoreSpace] The space the method explains: 'SCORE_SPACE_LOGIT' (the server's default: logits
 *   never saturate), 'SCORE_SPACE_PROBABILITY', 'SCORE_SPACE_LOG_PROBABILITY' or 'SCORE_SPACE_RAW'; the response's
 *   `scoreSpace` says which was used.
 * @property {number} [batchSize] Perturbed images per session call; 0 keeps the model's.
 * @property {number} [deadlineMs] Fail with DEADLINE_EXCEEDED after this many milliseconds.
 */

class OnnxplainClient {
  /**
   * @param {string} address Server address, e.g. '127.0.0.1:50051'.
   * @param {object} [options]
   * @param {string} [options.token] Sent as `authorization: Bearer <token>` on every call.
   * @param {Buffer} [options.rootCerts] PEM root certificates; when given the channel uses TLS, otherwise it is insecure.
   * @param {string} [options.protosDir] Directory holding `xai/v1/*.proto`; defaults to the repository's `protos/`.
   * @param {number} [options.maxMessageBytes] Largest message sent or received; default 64 MiB.
   */
  constructor(address, { token, rootCerts, protosDir = DEFAULT_PROTOS_DIR, maxMessageBytes = 64 * 1024 * 1024 } = {}) {
    const definition = protoLoader.loadSync(PROTO_FILES, { ...LOADER_OPTIONS, includeDirs: [protosDir] });
    const xai = grpc.loadPackageDefinition(definition).xai.v1;
    const credentials = rootCerts ? grpc.credentials.createSsl(rootCerts) : grpc.credentials.createInsecure();
    const channelOptions = {
      'grpc.max_send_message_length': maxMessageBytes,
      'grpc.max_receive_message_length': maxMessageBytes,
    };
    this._models = new xai.ModelService(address, credentials, channelOptions);
    this._explainer = new xai.ExplainService(address, credentials, channelOptions);
    this._token = token;
  }

  /**
   * Lists the loaded models.
   * @returns {Promise<object[]>} The `ModelInfo` of each model.
   */
  async listModels() {
    const response = await this._unary(this._models, 'ListModels', {});
    return response.models;
  }

  /**
   * Describes one loaded model (input size, layout, preprocessing, labels, provider).
   * @param {string} name
   * @returns {Promise<object>} Its `ModelInfo`; rejects with NOT_FOUND for an unknown name.
   */
  async getModel(name) {
    const response = await this._unary(this._models, 'GetModel', { name });
    return response.model;
  }

  /**
   * Counts and durations of the work done for models since the server started (requests, forward passes,
   * queue and model time, in total and per method).
   * @param {string} [name=''] A loaded model's name; empty for every loaded model.
   * @returns {Promise<object[]>} One `ModelStatistics` per model.
   */
  async getModelStatistics(name = '') {
    const response = await this._unary(this._models, 'GetModelStatistics', { name });
    return response.models;
  }

  /**
   * Loads a model on the server.
   * @param {object} request A `LoadModelRequest`: `{name, path}` for a file in the
   *   server's models directory, or `{name, onnxModel: Buffer}`; optionally `overrides`, `replace`.
   * @returns {Promise<object>} The loaded model's `ModelInfo`.
   */
  async loadModel(request) {
    const response = await this._unary(this._models, 'LoadModel', request);
    return response.model;
  }

  /**
   * Unloads a model and frees its session.
   * @param {string} name
   * @returns {Promise<void>}
   */
  async unloadModel(name) {
    await this._unary(this._models, 'UnloadModel', { name });
  }

  /**
   * Classifies one image.
   * @param {string} modelName
   * @param {Buffer} imageBytes PNG or JPEG bytes.
   * @param {object} [options]
   * @param {number} [options.topK] Classes returned in `predictions[0].top`; the server's default is 5.
   * @param {string} [options.scoreSpace] 'SCORE_SPACE_RAW' (the server's default), 'SCORE_SPACE_LOGIT',
   *   'SCORE_SPACE_PROBABILITY' or 'SCORE_SPACE_LOG_PROBABILITY'.
   * @returns {Promise<object>} The `PredictResponse`, with one entry in `predictions` (a sigmoid model's
   *   predicted classes in `predictions[0].aboveThreshold`) and the space used in `scoreSpace`.
   */
  predict(modelName, imageBytes, { topK, scoreSpace } = {}) {
    const request = { modelName, images: [{ encoded: imageBytes }], topK, scoreSpace };
    return this._unary(this._explainer, 'Predict', request);
  }

  /**
   * Explains the model's decision on one image.
   * @param {string} modelName
   * @param {Buffer} imageBytes PNG or JPEG bytes.
   * @param {ExplainOptions} [options]
   * @returns {Promise<object>} The `ExplainResponse`; decode each `attributions[i].map`
   *   with {@link tensorToFloat32Array}. `mapFrame` says which frame the maps are in:
   *   `MAP_FRAME_IMAGE` (a letterbox model: the image's own height and width, `placement` saying
   *   where it lay in `modelInputImage`) or `MAP_FRAME_MODEL_INPUT` (the size of `modelInputImage`).
   *   A randomized method (RISE, Sobol, HSIC, LIME, KernelSHAP, WCAM) also sets `attributions[i].precision`
   *   (null otherwise): `standardError` (a tensor like the map, in the same frame), `reliability`, `samples` of
   *   `maxSamples`, `stopReason` ('STOP_REASON_RELIABILITY', 'STOP_REASON_SAMPLES', 'STOP_REASON_TIME' or
   *   'STOP_REASON_EXACT').
   */
  async explain(modelName, imageBytes, options = {}) {
    const request = this._explainRequest(modelName, imageBytes, options);
    return this._unary(this._explainer, 'Explain', request, options.deadlineMs);
  }

  /**
   * Like {@link OnnxplainClient#explain}, but reports progress while the server works.
   * @param {string} modelName
   * @param {Buffer} imageBytes PNG or JPEG bytes.
   * @param {ExplainOptions} [options]
   * @param {(progress: {stage: string, done: number, total: number, elapsedMs: number}) => void} [onProgress]
   *   Called for each progress event; if it throws, the call is cancelled and the promise rejects.
   * @returns {Promise<object>} The final `ExplainResponse`.
   */
  explainStream(modelName, imageBytes, options = {}, onProgress = () => {}) {
    return new Promise((resolve, reject) => {
      const request = { request: this._explainRequest(modelName, imageBytes, options) };
      const call = this._explainer.ExplainStream(request, this._metadata(), callOptions(options.deadlineMs));
      let result = null;
      call.on('data', (event) => {
        if (event.event === 'result') {
          result = event.result;
          return;
        }
        try {
          onProgress(event.progress);
        } catch (err) {
          call.cancel();
          reject(err);
        }
      });
      call.on('error', reject);
      call.on('end', () => {
        if (result) resolve(result);
        else reject(new Error('ExplainStream ended without a result'));
      });
    });
  }

  /**
   * Lists the explanation methods the server offers, with their parameters and defaults.
   * @returns {Promise<object[]>} The `MethodInfo` of each method.
   */
  async listMethods() {
    const response = await this._unary(this._explainer, 'ListMethods', {});
    return response.methods;
  }

  /** Closes the connection; calls in flight are cancelled. */
  close() {
    this._models.close();
    this._explainer.close();
  }

  _explainRequest(modelName, imageBytes, { method = 'occlusion', params = {}, target, seed, scoreSpace, batchSize }) {
    const field = method.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
    // proto-loader drops unknown fields silently, so catch a misspelt method here.
    const { requestSerialize, requestDeserialize } = this._explainer.constructor.service.Explain;
    if (requestDeserialize(requestSerialize({ method: { [field]: {} } })).method?.params !== field) {
      throw new TypeError(`unknown explanation method '${method}'`);
    }
    return {
      modelName,
      image: { encoded: imageBytes },
      target: toTarget(target),
      seed,
      scoreSpace,
      batchSize,
      method: { [field]: params },
    };
  }

  _unary(client, method, request, deadlineMs) {
    return new Promise((resolve, reject) => {
      client[method](request, this._metadata(), callOptions(deadlineMs), (err, response) => {
        if (err) reject(err);
        else resolve(response);
      });
    });
  }

  _metadata() {
    const metadata = new grpc.Metadata();
    if (this._token) metadata.set('authorization', `Bearer ${this._token}`);
    return metadata;
  }
}

function toTarget(target) {
  if (typeof target === 'number') return { classIndices: [target] };
  if (Array.isArray(target)) return { classIndices: target };
  return target;
}

function callOptions(deadlineMs) {
  return deadlineMs ? { deadline: Date.now() + deadlineMs } : {};
}

/**
 * Decodes a FLOAT32 `Tensor` (row-major, little-endian).
 * @param {{datatype: string, shape: number[], rawData: Buffer}} tensor
 * @returns {{shape: number[], data: Float32Array}}
 */
function tensorToFloat32Array(tensor) {
  if (tensor.datatype !== 'DATA_TYPE_FLOAT32') {
    throw new TypeError(`expected a DATA_TYPE_FLOAT32 tensor, got ${tensor.datatype}`);
  }
  const shape = tensor.shape.map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const raw = tensor.rawData;
  if (raw.length !== count * 4) {
    throw new RangeError(`tensor of shape [${shape}] needs ${count * 4} bytes, got ${raw.length}`);
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.length);
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = view.getFloat32(i * 4, true);
  return { shape, data };
}

module.exports = { OnnxplainClient, tensorToFloat32Array };
