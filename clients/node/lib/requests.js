'use strict';

/**
 * Requests from plain JS objects, checked against the protos before anything is sent.
 *
 * proto-loader drops a field it does not know without a word, so a misspelt parameter would silently take its
 * default on the server. Every request therefore goes through {@link RequestBuilder#build}, which walks the
 * message's descriptor: it accepts snake_case or camelCase names, wraps a scalar given for a repeated field,
 * writes enums by their short name ('logit' for SCORE_SPACE_LOGIT), turns a Buffer or a file path into an
 * encoded image and a Float32Array into a tensor, and names the field of anything it cannot place in an
 * INVALID_ARGUMENT {@link OnnxplainError} (nothing is sent).
 */

const fs = require('node:fs');
const { OnnxplainError } = require('./errors');

const PACKAGE = 'xai.v1';

function camel(name) {
  return name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

function snake(name) {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function invalid(field, message) {
  return new OnnxplainError({ codeName: 'INVALID_ARGUMENT', field, message, local: true });
}

/**
 * A FLOAT32 `Tensor` from values in row-major order.
 * @param {Float32Array|number[]} data
 * @param {number[]} shape
 * @returns {{datatype: string, shape: number[], rawData: Buffer}}
 */
function float32Tensor(data, shape) {
  const values = data instanceof Float32Array ? data : Float32Array.from(data);
  const count = shape.reduce((a, b) => a * b, 1);
  if (values.length !== count) throw invalid('tensor', `shape [${shape}] needs ${count} values, got ${values.length}`);
  const raw = Buffer.alloc(count * 4);
  for (let i = 0; i < count; i++) raw.writeFloatLE(values[i], i * 4);
  return { datatype: 'DATA_TYPE_FLOAT32', shape, rawData: raw };
}

/**
 * An `Image`: PNG or JPEG bytes (Buffer or Uint8Array), a path to such a file, `{height, width, channels, data}`
 * pixels (UINT8 for a Uint8Array, FLOAT32 in [0, 1] for a Float32Array, H x W x C RGB), or an `Image` message.
 */
function image(value, field = 'image') {
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return { encoded: Buffer.from(value) };
  if (typeof value === 'string') {
    try {
      return { encoded: fs.readFileSync(value) };
    } catch (err) {
      throw invalid(field, `cannot read ${value}: ${err.code || err.message}`);
    }
  }
  if (value && value.data && value.height && value.width) {
    const { height, width, channels = 3, data } = value;
    const shape = [height, width, channels];
    if (data instanceof Float32Array) return { pixels: float32Tensor(data, shape) };
    if (data.length !== height * width * channels) {
      throw invalid(field, `${height} x ${width} x ${channels} pixels need ${height * width * channels} values, got ${data.length}`);
    }
    return { pixels: { datatype: 'DATA_TYPE_UINT8', shape, rawData: Buffer.from(data) } };
  }
  if (value && (value.encoded || value.pixels)) return value;
  throw invalid(field, 'expected PNG/JPEG bytes (a Buffer), a file path, {height, width, channels, data} or an Image');
}

/** Checks and completes requests against the message descriptors of a proto-loader package definition. */
class RequestBuilder {
  constructor(definition) {
    // Every message and enum by full name, nested ones (Baseline's Kind) included: proto-loader lists only the
    // top-level ones.
    this._types = {};
    const add = (name, type) => {
      this._types[name] = type;
      for (const nested of type.nestedType ?? []) add(`${name}.${nested.name}`, nested);
      for (const nested of type.enumType ?? []) add(`${name}.${nested.name}`, nested);
    };
    for (const [name, entry] of Object.entries(definition)) if (entry.type) add(name, entry.type);
  }

  /** The descriptor of a message or enum, by a name relative to xai.v1 or fully qualified. */
  _type(name) {
    const bare = name.replace(/^\./, '');
    // A nested type is named relative to its parent (Baseline's 'Kind'): find it by its suffix.
    const found = this._types[`${PACKAGE}.${bare}`] ?? this._types[bare]
      ?? Object.entries(this._types).find(([key]) => key.startsWith(`${PACKAGE}.`) && key.endsWith(`.${bare}`))?.[1];
    if (!found) throw new Error(`no type ${name} in the protos`);
    return found;
  }

  /** The names of an enum's values, without the _UNSPECIFIED one. */
  enumNames(enumName) {
    return this._type(enumName).value.map((v) => v.name).filter((n) => !n.endsWith('_UNSPECIFIED'));
  }

  /** The field names (snake_case) of a oneof message such as MethodSpec: the method or metric names. */
  oneofNames(messageName) {
    return this._type(messageName).field.map((f) => snake(f.name));
  }

  /**
   * An enum value from its full name ('SCORE_SPACE_LOGIT') or short name ('logit'); undefined stays undefined.
   * @throws {OnnxplainError} INVALID_ARGUMENT naming `field` for a name the enum lacks.
   */
  enumValue(enumName, value, field) {
    if (value === undefined || value === null || value === '') return undefined;
    const names = this._type(enumName).value.map((v) => v.name);
    const prefix = names[0].replace(/UNSPECIFIED$/, '');
    if (typeof value === 'number') {
      const entry = this._type(enumName).value.find((v) => v.number === value);
      if (entry) return entry.name;
    } else {
      const full = String(value).toUpperCase().startsWith(prefix) ? String(value).toUpperCase()
        : prefix + String(value).toUpperCase();
      if (names.includes(full)) return full;
    }
    const choices = names.filter((n) => !n.endsWith('_UNSPECIFIED')).map((n) => n.slice(prefix.length).toLowerCase());
    throw invalid(field, `'${value}' is not one of ${choices.join(', ')}`);
  }

  /**
   * `{ [name]: params }` of a oneof spec (MethodSpec, MetricSpec), checked.
   * @param {'MethodSpec'|'MetricSpec'} specName
   */
  spec(specName, name, params = {}, field = 'method') {
    if (typeof name !== 'string' || !this.oneofNames(specName).includes(snake(camel(name)))) {
      throw invalid(field, `unknown ${specName === 'MethodSpec' ? 'explanation method' : 'metric'} '${name}' ` +
        `(one of ${this.oneofNames(specName).join(', ')})`);
    }
    return this.build(specName, { [camel(name)]: params ?? {} }, field);
  }

  /**
   * Specs from `{name: params}`, `[[name, params], ...]`, `['name', ...]` or `[{name, params}]`.
   */
  specs(specName, given, field) {
    if (!given) return [];
    const pairs = Array.isArray(given) ? given : Object.entries(given);
    return pairs.map((item, i) => {
      const where = `${field}[${i}]`;
      if (typeof item === 'string') return this.spec(specName, item, {}, where);
      if (Array.isArray(item)) return this.spec(specName, item[0], item[1], where);
      return this.spec(specName, item.name, item.params, where);
    });
  }

  /**
   * A message of type `typeName` from a plain object, checked field by field.
   * @throws {OnnxplainError} INVALID_ARGUMENT naming the first field it cannot place.
   */
  build(typeName, value, path = '') {
    if (value === undefined || value === null) return undefined;
    if (typeName === 'Image') return image(value, path || 'image');
    if (typeName === 'Tensor' && value && value.data && value.shape && !value.rawData) {
      return float32Tensor(value.data, value.shape);
    }
    if (typeof value !== 'object' || Array.isArray(value) || Buffer.isBuffer(value)) {
      throw invalid(path, `expected an object for ${typeName}`);
    }
    const fields = new Map(this._type(typeName).field.map((f) => [f.name, f]));
    const message = {};
    for (const [key, given] of Object.entries(value)) {
      if (given === undefined) continue;
      const descriptor = fields.get(camel(key));
      const where = path ? `${path}.${snake(camel(key))}` : snake(camel(key));
      if (!descriptor) {
        const known = [...fields.keys()].map(snake).join(', ');
        throw invalid(where, `${typeName} has no field '${key}' (it has ${known})`);
      }
      const repeated = descriptor.label === 'LABEL_REPEATED';
      if (repeated && !Array.isArray(given) && !ArrayBuffer.isView(given)) {
        message[descriptor.name] = [this._field(descriptor, given, `${where}[0]`)];
      } else if (repeated) {
        message[descriptor.name] = Array.from(given, (item, i) => this._field(descriptor, item, `${where}[${i}]`));
      } else {
        message[descriptor.name] = this._field(descriptor, given, where);
      }
    }
    return message;
  }

  _field(descriptor, value, where) {
    switch (descriptor.type) {
      case 'TYPE_MESSAGE':
        return this.build(descriptor.typeName, value, where);
      case 'TYPE_ENUM':
        return this.enumValue(descriptor.typeName, value, where);
      case 'TYPE_STRING':
        if (typeof value !== 'string') throw invalid(where, `expected a string, got ${typeof value}`);
        return value;
      case 'TYPE_BOOL':
        if (typeof value !== 'boolean') throw invalid(where, `expected true or false, got ${JSON.stringify(value)}`);
        return value;
      case 'TYPE_BYTES':
        if (!Buffer.isBuffer(value) && !(value instanceof Uint8Array)) throw invalid(where, 'expected a Buffer');
        return Buffer.from(value);
      default: {
        const number = Number(value);
        if (typeof value === 'boolean' || !Number.isFinite(number)) {
          throw invalid(where, `expected a number, got ${JSON.stringify(value)}`);
        }
        if (/INT/.test(descriptor.type) && !Number.isInteger(number)) {
          throw invalid(where, `expected an integer, got ${value}`);
        }
        if (/UINT|FIXED/.test(descriptor.type) && number < 0) {
          throw invalid(where, `expected a non-negative integer, got ${value}`);
        }
        return number;
      }
    }
  }
}

module.exports = { RequestBuilder, float32Tensor, image, camel, snake };
