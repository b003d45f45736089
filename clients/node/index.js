'use strict';

/**
 * Node.js client of the onnxplain gRPC service (package `xai.v1`): one Promise-returning helper per RPC.
 *
 * Requests are plain objects (snake_case or camelCase, enums by short name: 'logit', 'blur'), checked against
 * the protos before they are sent (lib/requests.js). Responses are plain objects with camelCase field names,
 * enums as their full names (e.g. 'LAYOUT_NCHW'), 64-bit integers as Numbers and bytes as Buffers; unset fields
 * carry their proto3 defaults. Every failure rejects with an {@link OnnxplainError} (lib/errors.js).
 *
 * Every helper takes, in its options, `deadlineMs` (or `deadline`, a Date) and `signal` (an AbortSignal that
 * cancels the call); the streaming ones also `onProgress`, called with each `{stage, done, total, elapsedMs}`.
 */

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { OnnxplainError, fromGrpcError } = require('./lib/errors');
const { RequestBuilder, float32Tensor, image: toImage } = require('./lib/requests');

const DEFAULT_PROTOS_DIR = path.resolve(__dirname, '../../protos');
const PROTO_FILES = ['xai/v1/model_service.proto', 'xai/v1/explain_service.proto'];
const LOADER_OPTIONS = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true };
const CALL_OPTIONS = ['deadlineMs', 'deadline', 'signal', 'onProgress'];

/**
 * @typedef {object} CallOptions
 * @property {number} [deadlineMs] Fail with DEADLINE_EXCEEDED after this many milliseconds.
 * @property {Date|number} [deadline] The same as an absolute time.
 * @property {AbortSignal} [signal] Aborting it cancels the call (the server stops the job); the promise rejects
 *   with an OnnxplainError whose codeName is 'CANCELLED'.
 */

/**
 * @typedef {object} ExplainOptions
 * @property {string} [method='occlusion'] The explanation method, as `listMethods()` names it.
 * @property {object} [params={}] The method's parameters, e.g. `{ window: [8], stride: [4] }` for occlusion.
 * @property {number|number[]|{classIndices?: number[], topK?: number}} [target]
 *   Classes to explain: an index, a list of indices or a `Target`; default the predicted class.
 * @property {number} [seed] Seed of the method's randomness; the server echoes the one it used.
 * @property {string} [scoreSpace] The space the method explains: 'logit' (the server's default: logits never
 *   saturate), 'probability', 'log_probability' or 'raw' (or the full 'SCORE_SPACE_...' names); the response's
 *   `scoreSpace` says which was used.
 * @property {string|number|object} [baseline] What removed pixels become: 'black', 'white', 'dataset_mean',
 *   'blur', ... a pixel value in [0, 1], or a `Baseline`.
 * @property {Array|object} [metrics] Metrics computed on every map: `['deletion', ['insertion', {steps: 16}]]`.
 * @property {Buffer|string} [mask] Ground-truth object mask for the localisation metrics.
 * @property {string} [metricScoreSpace] The metrics' space; default 'probability'.
 * @property {number} [batchSize] Perturbed images per session call; 0 keeps the model's.
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
    /** The request checker, for building messages by hand (`client.requests.build('Baseline', {...})`). */
    this.requests = new RequestBuilder(definition);
  }

  // --- ModelService ------------------------------------------------------------------------------------------

  /**
   * Lists the loaded models.
   * @param {CallOptions} [options]
   * @returns {Promise<object[]>} The `ModelInfo` of each model.
   */
  async listModels(options = {}) {
    const response = await this._unary(this._models, 'ListModels', {}, options);
    return response.models;
  }

  /**
   * Describes one loaded model (input size, layout, preprocessing, labels, provider, EVA verification).
   * @param {string} name
   * @param {CallOptions} [options]
   * @returns {Promise<object>} Its `ModelInfo`; rejects with NOT_FOUND for an unknown name.
   */
  async getModel(name, options = {}) {
    const response = await this._unary(this._models, 'GetModel', { name }, options);
    return response.model;
  }

  /**
   * Counts and durations of the work done for models since the server started (requests, forward passes,
   * queue and model time, in total and per method).
   * @param {string} [name=''] A loaded model's name; empty for every loaded model.
   * @param {CallOptions} [options]
   * @returns {Promise<object[]>} One `ModelStatistics` per model.
   */
  async getModelStatistics(name = '', options = {}) {
    const response = await this._unary(this._models, 'GetModelStatistics', { name }, options);
    return response.models;
  }

  /**
   * Loads a model on the server: a file in the server's models directory (`path`), or an uploaded ONNX model
   * (`onnxModel`: its bytes, or the path of a local .onnx file to upload).
   * @param {{name?: string, path?: string, onnxModel?: Buffer|string, overrides?: object, replace?: boolean}} request
   *   `overrides` is a `ModelOverrides` (e.g. `{ labels: [...], preprocessing: { resize: 'letterbox' } }`).
   * @param {CallOptions} [options]
   * @returns {Promise<object>} The loaded model's `ModelInfo`.
   */
  async loadModel(request, options = {}) {
    const { onnxModel, ...rest } = request;
    let bytes = onnxModel;
    if (typeof onnxModel === 'string') {
      try {
        bytes = fs.readFileSync(onnxModel);
      } catch (err) {
        throw new OnnxplainError({ codeName: 'INVALID_ARGUMENT', field: 'onnx_model', local: true,
          message: `cannot read ${onnxModel}: ${err.code || err.message}` });
      }
    }
    const message = this.requests.build('LoadModelRequest', { ...rest, onnxModel: bytes });
    const response = await this._unary(this._models, 'LoadModel', message, options);
    return response.model;
  }

  /**
   * Unloads a model and frees its session.
   * @param {string} name
   * @param {CallOptions} [options]
   * @returns {Promise<void>}
   */
  async unloadModel(name, options = {}) {
    await this._unary(this._models, 'UnloadModel', { name }, options);
  }

  /**
   * What the server makes of a loaded model (as `onnxplain inspect`): its `ModelInfo` (layout and output kind
   * with how each was decided, preprocessing with each value's source, provider, EVA's verdict per bound
   * method), forward-pass timings and warnings.
   * @param {string} name A loaded model's name.
   * @param {CallOptions & {verify?: boolean, repeats?: number}} [options] `verify: false` skips EVA's check
   *   (it builds the PyTorch mirror); `repeats`: passes timed per batch size, 1 to 20 (server default 5).
   * @returns {Promise<object>} The `InspectModelResponse`: `model`, `forwardTimings`, `warnings`.
   */
  async inspectModel(name, options = {}) {
    const { verify = true, repeats } = options;
    const request = this.requests.build('InspectModelRequest', { name, skipVerification: !verify, repeats });
    return this._unary(this._models, 'InspectModel', request, options);
  }

  // --- ExplainService ----------------------------------------------------------------------------------------

  /**
   * Classifies one image or several.
   * @param {string} modelName
   * @param {Buffer|string|Array<Buffer|string>} images PNG or JPEG bytes, or file paths.
   * @param {CallOptions & {topK?: number, scoreSpace?: string, batchSize?: number}} [options]
   *   `topK`: classes returned per image (server default 5); `scoreSpace`: 'raw' (the default), 'logit',
   *   'probability' or 'log_probability'.
   * @returns {Promise<object>} The `PredictResponse`: one entry in `predictions` per image (a sigmoid model's
   *   predicted classes in `aboveThreshold`) and the space used in `scoreSpace`.
   */
  async predict(modelName, images, options = {}) {
    const { topK, scoreSpace, batchSize } = options;
    const list = Array.isArray(images) ? images : [images];
    const request = this.requests.build('PredictRequest', { modelName, images: list, topK, scoreSpace, batchSize });
    return this._unary(this._explainer, 'Predict', request, options);
  }

  /**
   * Explains the model's decision on one image.
   * @param {string} modelName
   * @param {Buffer|string} image PNG or JPEG bytes, or a file path.
   * @param {ExplainOptions & CallOptions} [options]
   * @returns {Promise<object>} The `ExplainResponse`; decode each `attributions[i].map`
   *   with {@link tensorToFloat32Array}. `mapFrame` says which frame the maps are in:
   *   `MAP_FRAME_IMAGE` (a letterbox model: the image's own height and width, `placement` saying
   *   where it lay in `modelInputImage`) or `MAP_FRAME_MODEL_INPUT` (the size of `modelInputImage`).
   *   A randomized method (RISE, Sobol, HSIC, LIME, KernelSHAP, WCAM) also sets `attributions[i].precision`
   *   (null otherwise): `standardError` (a tensor like the map, in the same frame), `reliability`, `samples` of
   *   `maxSamples`, `stopReason`.
   */
  async explain(modelName, image, options = {}) {
    const request = this._explainRequest(modelName, image, options);
    return this._unary(this._explainer, 'Explain', request, options);
  }

  /**
   * Like {@link OnnxplainClient#explain}, but reports progress while the server works.
   * @param {string} modelName
   * @param {Buffer|string} image PNG or JPEG bytes, or a file path.
   * @param {ExplainOptions & CallOptions} [options]
   * @param {(progress: {stage: string, done: number, total: number, elapsedMs: number}) => void} [onProgress]
   *   Called for each progress event (or give `options.onProgress`); if it throws, the call is cancelled and
   *   the promise rejects with what it threw.
   * @returns {Promise<object>} The final `ExplainResponse`.
   */
  async explainStream(modelName, image, options = {}, onProgress = options.onProgress) {
    const request = { request: this._explainRequest(modelName, image, options) };
    return this._stream('ExplainStream', request, { ...options, onProgress });
  }

  /**
   * Scores a map (any map, the caller's own too) with fidelity and localisation metrics.
   * @param {string} modelName
   * @param {Buffer|string} image
   * @param {{data: Float32Array|number[], shape: number[]}|object} attribution The map, [height, width] (what
   *   {@link tensorToFloat32Array} returns), or a `Tensor`.
   * @param {CallOptions & {metrics?: Array|object, classIndex?: number, mask?: Buffer|string, baseline?: any,
   *   seed?: number, scoreSpace?: string, batchSize?: number, attributionDomain?: string}} [options]
   *   `metrics` default deletion and insertion; `attributionDomain` 'pixel' or 'wavelet' (a WCAM layout).
   * @returns {Promise<object>} The `EvaluateResponse`: `results` holds one `MetricResult` per metric.
   */
  async evaluate(modelName, image, attribution, options = {}) {
    const { metrics = ['deletion', 'insertion'], baseline, ...rest } = withoutCallOptions(options);
    const request = this.requests.build('EvaluateRequest', {
      ...rest, modelName, image, attribution,
      metrics: this.requests.specs('MetricSpec', metrics, 'metrics'),
      baseline: baselineOf(baseline),
    });
    return this._unary(this._explainer, 'Evaluate', request, options);
  }

  /**
   * Runs several explanation settings on one image: how much their maps agree, and how a metric's ranking of
   * them changes with the metric's baseline (Brunke et al. 2020).
   * @param {string} modelName
   * @param {Buffer|string} image
   * @param {CallOptions & {settings: Array<{label?: string, method: string, params?: object, baseline?: any}>,
   *   metric?: string|Array, metricBaselines?: any[], topFraction?: number, classIndex?: number, seed?: number,
   *   scoreSpace?: string, metricScoreSpace?: string, batchSize?: number, returnMaps?: boolean,
   *   onProgress?: Function}} options
   * @returns {Promise<object>} The `ConsistencyResult` (`spearman`, `ssim`, `topIou` matrices, `rankings`).
   */
  async consistency(modelName, image, options) {
    const { settings = [], metric = 'deletion', metricBaselines = [], ...rest } = withoutCallOptions(options);
    const request = this.requests.build('ConsistencyRequest', {
      ...rest, modelName, image,
      settings: settings.map((s, i) => ({
        label: s.label ?? `${s.method}`,
        method: this.requests.spec('MethodSpec', s.method, s.params, `settings[${i}].method`),
        baseline: baselineOf(s.baseline),
      })),
      metric: this.requests.specs('MetricSpec', [metric], 'metric')[0],
      metricBaselines: metricBaselines.map(baselineOf),
    });
    return this._stream('Consistency', request, options);
  }

  /**
   * WCAM on an image and on corrupted or zoomed versions of it: how the prediction and the importance per
   * scale shift (Kasmi et al. 2023).
   * @param {string} modelName
   * @param {Buffer|string} image
   * @param {CallOptions & {wcam?: object, corruptions?: string[], severities?: number[], zooms?: number[],
   *   classIndex?: number, seed?: number, scoreSpace?: string, batchSize?: number, returnMaps?: boolean,
   *   onProgress?: Function}} [options] `wcam`: WCAM's parameters (`{ numDesigns: 4, levels: 3 }`);
   *   `corruptions`: 'gaussian_noise', 'gaussian_blur', 'jpeg', 'contrast'.
   * @returns {Promise<object>} The `AnalyzeScalesResult`: one `variants` entry per image analysed, clean first.
   */
  async analyzeScales(modelName, image, options = {}) {
    const request = this.requests.build('AnalyzeScalesRequest', { ...withoutCallOptions(options), modelName, image });
    return this._stream('AnalyzeScales', request, options);
  }

  /**
   * Combines several explanations of the same images into one (Mahlau & Nolde 2022) and scores every member
   * and the aggregate by one fidelity metric.
   * @param {string} modelName
   * @param {Buffer|string|Array<Buffer|string>} images
   * @param {CallOptions & {methods?: Array|object, maps?: object[], normalisation?: string, aggregator?: string,
   *   kappa?: number, metric?: string|Array, search?: boolean, baseline?: any, classIndex?: number, seed?: number,
   *   returnMembers?: boolean, validationFraction?: number, numSplits?: number, onProgress?: Function}} options
   *   `methods`: `['occlusion', ['rise', {numMasks: 64}]]` or `{occlusion: {}, rise: {numMasks: 64}}`; `maps`:
   *   maps of your own, `{data, shape}` as [images, height, width] per member.
   * @returns {Promise<object>} The `AggregateResult` (`members`, `memberScores`, `chosen`, `aggregates`, `gain`).
   */
  async aggregate(modelName, images, options) {
    const { methods, metric = 'deletion', baseline, ...rest } = withoutCallOptions(options);
    const request = this.requests.build('AggregateRequest', {
      ...rest, modelName, images: Array.isArray(images) ? images : [images],
      methods: this.requests.specs('MethodSpec', methods, 'methods'),
      metric: this.requests.specs('MetricSpec', [metric], 'metric')[0],
      baseline: baselineOf(baseline),
    });
    return this._stream('Aggregate', request, options);
  }

  /**
   * The salience measures of one method's maps over a set of images (Crum et al. 2023).
   * @param {string} modelName
   * @param {Array<Buffer|string>} images
   * @param {CallOptions & {method?: string, params?: object, measures?: string[], stabilityModels?: string[],
   *   noiseLevels?: number[], baseline?: any, seed?: number, scoreSpace?: string, batchSize?: number,
   *   onProgress?: Function}} [options] `measures`: 'entropy', 'out_of_set', 'transforms', 'stability'
   *   (with `stabilityModels`), 'degradation'; default all the request allows.
   * @returns {Promise<object>} The `MeasureResult` (`entropy`, `outOfSet`, `transforms`, `stability`,
   *   `degradation`: one `Series` per explained class).
   */
  async measure(modelName, images, options = {}) {
    const { method = 'occlusion', params, baseline, ...rest } = withoutCallOptions(options);
    const request = this.requests.build('MeasureRequest', {
      ...rest, modelName, images: Array.isArray(images) ? images : [images],
      method: this.requests.spec('MethodSpec', method, params, 'method'),
      baseline: baselineOf(baseline),
    });
    return this._stream('Measure', request, options);
  }

  /**
   * Explains and scores a dataset on the server with loaded models; results are committed as they come, and
   * the same request resumes an interrupted audit.
   * @param {CallOptions & {dataset: string, models: string[], name: string, methods?: Array|object,
   *   metrics?: Array|object, seed?: number, measures?: string[], ensemble?: object, scales?: object,
   *   onProgress?: Function}} options `dataset`: a folder or manifest inside the server's data directory;
   *   results go to `<data dir>/audits/<name>`.
   * @returns {Promise<object>} The `AuditResult`, with `summary` (its `summaryJson`, parsed) added.
   */
  async audit(options) {
    const { methods, metrics, ...rest } = withoutCallOptions(options);
    const request = this.requests.build('AuditRequest', {
      ...rest,
      methods: this.requests.specs('MethodSpec', methods, 'methods'),
      metrics: this.requests.specs('MetricSpec', metrics, 'metrics'),
    });
    const result = await this._stream('Audit', request, options);
    return { ...result, summary: JSON.parse(result.summaryJson || '{}') };
  }

  /**
   * Lists the explanation methods the server offers, with their parameters and defaults.
   * @param {CallOptions} [options]
   * @returns {Promise<object[]>} The `MethodInfo` of each method.
   */
  async listMethods(options = {}) {
    const response = await this._unary(this._explainer, 'ListMethods', {}, options);
    return response.methods;
  }

  /**
   * Lists the metrics (Explain's `metrics`, Evaluate, ...) with their parameters and defaults.
   * @param {CallOptions} [options]
   * @returns {Promise<object[]>} The `MethodInfo` of each metric.
   */
  async listMetrics(options = {}) {
    const response = await this._unary(this._explainer, 'ListMethods', {}, options);
    return response.metrics;
  }

  /** Closes the connection; calls in flight are cancelled. */
  close() {
    this._models.close();
    this._explainer.close();
  }

  _explainRequest(modelName, image, options) {
    const { method = 'occlusion', params = {}, target, baseline, metrics, ...rest } = withoutCallOptions(options);
    return this.requests.build('ExplainRequest', {
      ...rest, modelName, image,
      target: toTarget(target),
      baseline: baselineOf(baseline),
      method: this.requests.spec('MethodSpec', method, params, 'method'),
      metrics: this.requests.specs('MetricSpec', metrics, 'metrics'),
    });
  }

  _unary(client, method, request, options = {}) {
    return new Promise((resolve, reject) => {
      const { signal } = options;
      if (signal?.aborted) {
        reject(aborted(signal));
        return;
      }
      const call = client[method](request, this._metadata(), callOptions(options), (err, response) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(fromGrpcError(err));
        else resolve(response);
      });
      const onAbort = () => call.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The result of a progress-then-result stream, handing progress events to `options.onProgress`. */
  _stream(method, request, options = {}) {
    const { signal, onProgress } = options;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(aborted(signal));
        return;
      }
      const call = this._explainer[method](request, this._metadata(), callOptions(options));
      let result = null;
      let settled = false;
      const settle = (fn, value) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        fn(value);
      };
      const onAbort = () => call.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
      call.on('data', (event) => {
        if (event.event === 'result') {
          result = event.result;
          return;
        }
        try {
          onProgress?.(event.progress);
        } catch (err) {
          settle(reject, err);
          call.cancel();
        }
      });
      call.on('error', (err) => settle(reject, fromGrpcError(err)));
      call.on('end', () => {
        if (result) settle(resolve, result);
        else settle(reject, new OnnxplainError({ codeName: 'UNKNOWN', message: `${method} ended without a result` }));
      });
    });
  }

  _metadata() {
    const metadata = new grpc.Metadata();
    if (this._token) metadata.set('authorization', `Bearer ${this._token}`);
    return metadata;
  }
}

function withoutCallOptions(options = {}) {
  const rest = { ...options };
  for (const key of CALL_OPTIONS) delete rest[key];
  return rest;
}

function aborted(signal) {
  return new OnnxplainError({ codeName: 'CANCELLED', message: 'aborted before it was sent', local: true,
    cause: signal.reason });
}

function toTarget(target) {
  if (typeof target === 'number') return { classIndices: [target] };
  if (Array.isArray(target)) return { classIndices: target };
  return target;
}

/** A `Baseline` from 'black', 'blur', ... (its kind), a pixel value in [0, 1] (a constant), or a `Baseline`. */
function baselineOf(baseline) {
  if (baseline === undefined || baseline === null) return undefined;
  if (typeof baseline === 'number') return { kind: 'KIND_CONSTANT', value: baseline };
  if (typeof baseline === 'string') return { kind: baseline };
  return baseline;
}

function callOptions({ deadlineMs, deadline } = {}) {
  if (deadline !== undefined) return { deadline };
  return deadlineMs ? { deadline: Date.now() + deadlineMs } : {};
}

/**
 * Decodes a FLOAT32 `Tensor` (row-major, little-endian).
 * @param {{datatype: string, shape: number[], rawData: Buffer}} tensor
 * @returns {{shape: number[], data: Float32Array}}
 */
function tensorToFloat32Array(tensor) {
  if (tensor.datatype === 'DATA_TYPE_FLOAT64') {
    const { shape, data } = decodeTensor(tensor);
    return { shape, data: Float32Array.from(data) };
  }
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

const TYPED_ARRAYS = {
  DATA_TYPE_UINT8: [Uint8Array, 1, (view, i) => view.getUint8(i)],
  DATA_TYPE_INT32: [Int32Array, 4, (view, i) => view.getInt32(i, true)],
  DATA_TYPE_FLOAT32: [Float32Array, 4, (view, i) => view.getFloat32(i, true)],
  DATA_TYPE_FLOAT64: [Float64Array, 8, (view, i) => view.getFloat64(i, true)],
};

/**
 * Decodes a `Tensor` of any type into the typed array of its element type (FLOAT16 excepted): UINT8 images,
 * INT32 segments, FLOAT32 maps, FLOAT64 scores.
 * @returns {{shape: number[], data: Uint8Array|Int32Array|Float32Array|Float64Array}}
 */
function decodeTensor(tensor) {
  const entry = TYPED_ARRAYS[tensor.datatype];
  if (!entry) throw new TypeError(`cannot decode a ${tensor.datatype} tensor`);
  const [ArrayType, size, read] = entry;
  const shape = tensor.shape.map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const raw = tensor.rawData;
  if (raw.length !== count * size) {
    throw new RangeError(`tensor of shape [${shape}] needs ${count * size} bytes, got ${raw.length}`);
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.length);
  const data = new ArrayType(count);
  for (let i = 0; i < count; i++) data[i] = read(view, i * size);
  return { shape, data };
}

module.exports = { OnnxplainClient, OnnxplainError, tensorToFloat32Array, decodeTensor, float32Tensor, toImage };
