'use strict';

/**
 * One error class for everything a call can fail with: a refusal of the server (its gRPC status, with the
 * field a google.rpc.BadRequest names), a cancellation, a deadline, or a request this client would not send.
 */

const grpc = require('@grpc/grpc-js');

const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([name, code]) => [code, name]));
const STATUS_DETAILS_KEY = 'grpc-status-details-bin';
const BAD_REQUEST_TYPE = 'type.googleapis.com/google.rpc.BadRequest';

class OnnxplainError extends Error {
  /**
   * @param {object} options
   * @param {string} options.codeName The gRPC status name, e.g. 'INVALID_ARGUMENT', 'NOT_FOUND', 'CANCELLED'.
   * @param {string} options.message What the server (or this client) said, without the field.
   * @param {string|null} [options.field] The request field at fault, as BadRequest names it (e.g. 'method.occlusion.stride').
   * @param {boolean} [options.local] True when this client refused to send the request.
   * @param {Error} [options.cause] The grpc-js error, or the AbortSignal's reason.
   */
  constructor({ codeName, message, field = null, local = false, cause, metadata }) {
    super(field ? `${codeName}: ${field}: ${message}` : `${codeName}: ${message}`, cause ? { cause } : undefined);
    this.name = 'OnnxplainError';
    this.codeName = codeName;
    /** The numeric gRPC status (grpc.status[codeName]). */
    this.code = grpc.status[codeName];
    this.field = field;
    this.details = message;
    this.local = local;
    this.metadata = metadata;
  }
}

/** An OnnxplainError from a grpc-js error (a ServiceError), reading the field from its status details. */
function fromGrpcError(err) {
  if (err instanceof OnnxplainError) return err;
  if (typeof err?.code !== 'number') return err; // not a status: a bug of ours, left as it is
  const codeName = CODE_NAMES[err.code] ?? `CODE_${err.code}`;
  const field = badRequestField(err.metadata);
  let message = err.details ?? err.message;
  if (field && message.startsWith(`${field}: `)) message = message.slice(field.length + 2);
  return new OnnxplainError({ codeName, message, field, cause: err, metadata: err.metadata });
}

/** The first field a BadRequest in the status details names, or null. */
function badRequestField(metadata) {
  const [raw] = metadata?.get?.(STATUS_DETAILS_KEY) ?? [];
  if (!raw) return null;
  try {
    // google.rpc.Status: 3 = repeated google.protobuf.Any details (1 = type_url, 2 = value).
    for (const any of fieldsOf(raw).filter((f) => f.number === 3)) {
      const parts = fieldsOf(any.bytes);
      const typeUrl = parts.find((f) => f.number === 1)?.bytes.toString('utf8');
      if (typeUrl !== BAD_REQUEST_TYPE) continue;
      // BadRequest: 1 = repeated FieldViolation (1 = field, 2 = description).
      for (const violation of fieldsOf(parts.find((f) => f.number === 2)?.bytes ?? Buffer.alloc(0))) {
        const name = fieldsOf(violation.bytes).find((f) => f.number === 1);
        if (violation.number === 1 && name) return name.bytes.toString('utf8');
      }
    }
  } catch {
    return null; // malformed details: the message still says what went wrong
  }
  return null;
}

/**
 * The fields of a protobuf message's wire form, enough to read the length-delimited ones. A tiny reader rather
 * than a dependency: the status details are three small, stable messages.
 */
function fieldsOf(buffer) {
  const fields = [];
  let offset = 0;
  const varint = () => {
    let value = 0;
    let shift = 0;
    for (;;) {
      if (offset >= buffer.length) throw new RangeError('truncated varint');
      const byte = buffer[offset++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
      shift += 7;
    }
  };
  while (offset < buffer.length) {
    const key = varint();
    const number = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) fields.push({ number, value: varint() });
    else if (wire === 1) offset += 8;
    else if (wire === 5) offset += 4;
    else if (wire === 2) {
      const length = varint();
      if (offset + length > buffer.length) throw new RangeError('truncated field');
      fields.push({ number, bytes: buffer.subarray(offset, offset + length) });
      offset += length;
    } else throw new RangeError(`wire type ${wire}`);
  }
  return fields;
}

module.exports = { OnnxplainError, fromGrpcError, badRequestField };
