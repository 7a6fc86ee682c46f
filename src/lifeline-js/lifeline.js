// lifeline.js: the browser client of Lifeline. One ES module, no dependencies.
//
// - Close-code-aware reconnects (the same policy as the .NET DefaultReconnectPolicy).
// - A bounded send queue while the link is down.
// - `lifeline.v1` sessions (docs/protocol.md section 5): exactly once, in order, across reconnects.
//
// The pure parts (retry hint, policy, varints, frames) are exported so they can be tested on their own.

// ---------------------------------------------------------------------------------------------------------------
// Retry hint (docs/protocol.md section 2)
// ---------------------------------------------------------------------------------------------------------------

const HINT_NAME = 'retry-after-ms=';
/** The largest hint honoured (one day, in ms); larger values are read as this. */
export const MAX_RETRY_HINT_MS = 86_400_000;

const isAsciiDigit = (c) => c >= 0x30 && c <= 0x39;
// Letters and digits in the Unicode sense, as .NET's char.IsLetter / IsLetterOrDigit.
const isLetter = (ch) => /\p{L}/u.test(ch);
const isLetterOrDigit = (ch) => /[\p{L}\p{Nd}]/u.test(ch);

/**
 * Finds the `retry-after-ms=N` token in a close reason.
 * @param {string | null | undefined} reason
 * @returns {number | null} the hint in milliseconds (at most one day), or null when there is none.
 */
export function parseRetryHint(reason) {
  if (typeof reason !== 'string' || reason.length === 0) return null;
  const lower = reason.toLowerCase();
  let from = 0;
  for (;;) {
    const at = lower.indexOf(HINT_NAME, from);
    if (at < 0) return null;
    from = at + HINT_NAME.length;
    if (at > 0 && isLetterOrDigit(reason[at - 1])) continue; // part of another word
    let end = from;
    while (end < reason.length && isAsciiDigit(reason.charCodeAt(end))) end++;
    if (end === from) continue;
    if (end < reason.length && isLetter(reason[end])) continue; // "retry-after-ms=12s"
    // More than 8 digits is more than a day whatever they say; do not parse a number we cannot hold.
    const digits = reason.slice(from, end).replace(/^0+(?=\d)/, '');
    const ms = digits.length > 9 ? MAX_RETRY_HINT_MS : Number(digits);
    return Math.min(ms, MAX_RETRY_HINT_MS);
  }
}

/** Builds `text; retry-after-ms=N` (as a Lifeline server writes it). Mostly for tests and demos. */
export function formatRetryHint(ms, text) {
  const token = `${HINT_NAME}${Math.min(Math.max(0, Math.floor(ms)), MAX_RETRY_HINT_MS)}`;
  return text ? `${text}; ${token}` : token;
}

// ---------------------------------------------------------------------------------------------------------------
// Close codes and the reconnect policy (docs/protocol.md section 3)
// ---------------------------------------------------------------------------------------------------------------

/** What a client does after a close: stop, come back soon, or back off. */
export const Reaction = Object.freeze({ Stop: 'stop', Soon: 'soon', Backoff: 'backoff' });

// The catalogue's default reactions (src/Lifeline/CloseCodes/CloseCodeCatalog.cs).
const CATALOGUE = new Map([
  [1000, Reaction.Stop], [1001, Reaction.Soon], [1002, Reaction.Stop], [1003, Reaction.Stop],
  [1004, Reaction.Backoff], [1005, Reaction.Backoff], [1006, Reaction.Backoff], [1007, Reaction.Stop],
  [1008, Reaction.Stop], [1009, Reaction.Stop], [1010, Reaction.Stop], [1011, Reaction.Backoff],
  [1012, Reaction.Soon], [1013, Reaction.Backoff], [1014, Reaction.Backoff], [1015, Reaction.Stop],
  [3000, Reaction.Stop], [3003, Reaction.Stop], [3008, Reaction.Backoff],
]);

/** Close codes with names, for logs and UIs. */
export const CloseCode = Object.freeze({
  NormalClosure: 1000, GoingAway: 1001, ProtocolError: 1002, UnsupportedData: 1003, NoStatusReceived: 1005,
  AbnormalClosure: 1006, InvalidPayloadData: 1007, PolicyViolation: 1008, MessageTooBig: 1009,
  MandatoryExtension: 1010, InternalError: 1011, ServiceRestart: 1012, TryAgainLater: 1013, BadGateway: 1014,
  TlsHandshakeFailure: 1015, Timeout: 3008, HandshakeTimeout: 4000, SessionTakenOver: 4001, SlowConsumer: 4008,
});

/**
 * The catalogue's default reaction to a close code: registered codes as catalogued; other codes by range
 * (1000-2999 back off; 3000-4999 are the application's, back off by default; below 1000 and 5000+ stop).
 * @param {number} code
 * @returns {'stop' | 'soon' | 'backoff'}
 */
export function defaultReaction(code) {
  const known = CATALOGUE.get(code);
  if (known) return known;
  if (!Number.isInteger(code) || code < 1000 || code >= 5000) return Reaction.Stop;
  return Reaction.Backoff;
}

/** The policy's defaults; the same values as the .NET `ReconnectPolicyOptions`. Times in milliseconds. */
export const DEFAULT_RECONNECT_OPTIONS = Object.freeze({
  baseDelay: 1000,
  multiplier: 2,
  maxDelay: 30_000,
  jitter: 'full',
  tryAgainLaterBaseDelay: 5000,
  soonMinDelay: 1000,
  soonMaxDelay: 5000,
  minHintDelay: 100,
  maxHintDelay: 60_000,
  restartWindow: 30_000,
  restartRetryMinDelay: 250,
  restartRetryMaxDelay: 1000,
  maxAttempts: null,
  maxElapsed: null,
  codeReactions: Object.freeze({}),
  stablePeriod: 10_000,
});

/**
 * Merges reconnect options over the defaults and checks them; throws RangeError naming the bad option.
 * @returns {Readonly<typeof DEFAULT_RECONNECT_OPTIONS>}
 */
export function resolveReconnectOptions(options) {
  const o = { ...DEFAULT_RECONNECT_OPTIONS, ...(options ?? {}) };
  o.codeReactions = { ...DEFAULT_RECONNECT_OPTIONS.codeReactions, ...(options?.codeReactions ?? {}) };
  const positive = ['baseDelay', 'maxDelay', 'tryAgainLaterBaseDelay', 'soonMaxDelay', 'minHintDelay', 'maxHintDelay',
    'restartRetryMinDelay', 'restartRetryMaxDelay'];
  for (const name of positive) {
    if (!(Number.isFinite(o[name]) && o[name] > 0)) throw new RangeError(`reconnect.${name} must be a positive number of ms (got ${o[name]}).`);
  }
  for (const name of ['soonMinDelay', 'restartWindow', 'stablePeriod']) {
    if (!(Number.isFinite(o[name]) && o[name] >= 0)) throw new RangeError(`reconnect.${name} must be zero or more ms (got ${o[name]}).`);
  }
  if (!(Number.isFinite(o.multiplier) && o.multiplier >= 1)) throw new RangeError(`reconnect.multiplier must be a finite number of at least 1 (got ${o.multiplier}).`);
  if (!['full', 'decorrelated', 'none'].includes(o.jitter)) throw new RangeError(`reconnect.jitter must be 'full', 'decorrelated' or 'none' (got ${o.jitter}).`);
  if (o.maxAttempts != null && !(Number.isInteger(o.maxAttempts) && o.maxAttempts >= 1)) throw new RangeError(`reconnect.maxAttempts must be null or an integer of at least 1 (got ${o.maxAttempts}).`);
  if (o.maxElapsed != null && !(Number.isFinite(o.maxElapsed) && o.maxElapsed > 0)) throw new RangeError(`reconnect.maxElapsed must be null or a positive number of ms (got ${o.maxElapsed}).`);
  const pairs = [['soonMinDelay', 'soonMaxDelay'], ['minHintDelay', 'maxHintDelay'], ['restartRetryMinDelay', 'restartRetryMaxDelay'], ['baseDelay', 'maxDelay']];
  for (const [lo, hi] of pairs) {
    if (o[lo] > o[hi]) throw new RangeError(`reconnect.${lo} (${o[lo]}) must not exceed reconnect.${hi} (${o[hi]}).`);
  }
  for (const [code, reaction] of Object.entries(o.codeReactions)) {
    if (!Object.values(Reaction).includes(reaction)) throw new RangeError(`reconnect.codeReactions[${code}] must be 'stop', 'soon' or 'backoff' (got ${reaction}).`);
  }
  Object.freeze(o);
  RESOLVED.add(o);
  return o;
}

const RESOLVED = new WeakSet([DEFAULT_RECONNECT_OPTIONS]);

/**
 * The reaction the policy applies to a context, before limits and delays.
 * @param {ReconnectContext} context
 */
export function reactionFor(context, options = DEFAULT_RECONNECT_OPTIONS) {
  if (context.reaction) return context.reaction; // forced by the caller (e.g. a refused resume's one new-session retry)
  if (context.kind === 'connect-failed' || context.code == null) return Reaction.Backoff;
  const override = options.codeReactions?.[context.code];
  if (override) return override;
  return defaultReaction(context.code);
}

/** base × multiplier^(attempt-1), capped; never overflows. */
export function exponentialDelay(attempt, baseDelay, multiplier, cap) {
  const value = baseDelay * Math.pow(multiplier, Math.max(1, attempt) - 1);
  return Number.isFinite(value) && value < cap ? value : cap;
}

const between = (min, max, random) => min + random() * (max - min);

/**
 * The delay before the next attempt, in ms, or null to stop. A pure function of its arguments, mirroring the
 * .NET `DefaultReconnectPolicy.NextDelay`:
 * stop codes stop; refused connects during an announced restart (1012/1001 within `restartWindow`) retry after
 * 250 ms-1 s; 1012/1001 wait the server's hint (clamped to [minHintDelay, maxHintDelay]) or 1-5 s; backoff codes
 * wait random(0, min(cap, base × multiplier^(attempt-1))) (full jitter), from a 5 s base and never under 5 s after
 * 1013; a hint may lengthen a backoff, never shorten it.
 *
 * @param {ReconnectContext} context `{ attempt, elapsed, kind, code, reason, hint, previousDelay, outageCode }`
 * @param {object} [options] reconnect options (merged over the defaults)
 * @param {() => number} [random] uniform in [0, 1)
 * @returns {number | null}
 */
export function nextDelay(context, options = DEFAULT_RECONNECT_OPTIONS, random = Math.random) {
  const o = RESOLVED.has(options) ? options : resolveReconnectOptions(options);
  const attempt = context.attempt ?? 1;
  const elapsed = context.elapsed ?? 0;
  if (o.maxAttempts != null && attempt > o.maxAttempts) return null;
  if (o.maxElapsed != null && elapsed >= o.maxElapsed) return null;
  const reaction = reactionFor(context, o);
  if (reaction === Reaction.Stop) return null;

  if (context.kind === 'connect-failed' && context.outageCode != null
      && (o.codeReactions[context.outageCode] ?? defaultReaction(context.outageCode)) === Reaction.Soon
      && elapsed < o.restartWindow) {
    // The server said it is restarting: the new process is still starting. Knock again soon.
    return between(o.restartRetryMinDelay, o.restartRetryMaxDelay, random);
  }

  const rawHint = context.hint ?? parseRetryHint(context.reason);
  const hint = rawHint == null ? null : Math.min(Math.max(rawHint, o.minHintDelay), o.maxHintDelay);
  if (reaction === Reaction.Soon) return hint ?? between(o.soonMinDelay, o.soonMaxDelay, random);

  const tryAgainLater = context.kind !== 'connect-failed' && context.code === 1013;
  const base = tryAgainLater ? o.tryAgainLaterBaseDelay : o.baseDelay;
  const cap = tryAgainLater ? Math.max(o.maxDelay, base) : o.maxDelay;
  const capped = exponentialDelay(attempt, base, o.multiplier, cap);
  let delay;
  if (o.jitter === 'full') {
    delay = random() * capped;
  } else if (o.jitter === 'decorrelated') {
    const upper = Math.min(cap, Math.max(base, context.previousDelay ?? base) * 3);
    const lower = Math.min(base, upper);
    delay = between(lower, upper, random);
  } else {
    delay = capped;
  }
  if (tryAgainLater) delay = Math.max(delay, base); // the server asked for room: never sooner than the larger base
  return hint != null && hint > delay ? hint : delay;
}

// ---------------------------------------------------------------------------------------------------------------
// Varints (unsigned LEB128, docs/protocol.md 5.2)
// ---------------------------------------------------------------------------------------------------------------

/** The largest value a sequence number, ack or count may take on the wire: 2^63-1. */
export const MAX_WIRE_VALUE = (1n << 63n) - 1n;
const MAX_U64 = (1n << 64n) - 1n;

/** The wire format's error: `code` is the close code it calls for (1002, or 1009 for an oversized frame). */
export class FrameError extends Error {
  constructor(message, code = 1002) {
    super(message);
    this.name = 'FrameError';
    this.code = code;
  }
}

/**
 * Encodes an unsigned integer (a safe non-negative Number, or a BigInt below 2^64) in the shortest form.
 * @param {number | bigint} value
 * @returns {Uint8Array}
 */
export function encodeVarint(value) {
  const out = [];
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint value must be a non-negative safe integer or a BigInt (got ${value}).`);
    while (value >= 0x80) {
      out.push((value % 0x80) | 0x80);
      value = Math.floor(value / 0x80);
    }
    out.push(value);
  } else if (typeof value === 'bigint') {
    if (value < 0n || value > MAX_U64) throw new RangeError(`varint value must be in [0, 2^64) (got ${value}).`);
    while (value >= 0x80n) {
      out.push(Number(value & 0x7fn) | 0x80);
      value >>= 7n;
    }
    out.push(Number(value));
  } else {
    throw new TypeError('varint value must be a number or a bigint.');
  }
  return Uint8Array.from(out);
}

/**
 * Decodes a varint at `offset`. Accepts longer-than-shortest forms within 10 bytes; the tenth byte may only be 0 or 1.
 * @param {Uint8Array} bytes
 * @param {number} [offset]
 * @returns {{ value: number | bigint, next: number }} value as a Number when at most 2^53-1, else a BigInt.
 */
export function decodeVarint(bytes, offset = 0) {
  let small = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (offset + i >= bytes.length) throw new FrameError('truncated varint');
    const b = bytes[offset + i];
    if (i === 9 && b > 1) throw new FrameError('varint over 64 bits');
    if (i < 7) {
      small += (b & 0x7f) * scale; // exact: at most 49 bits
      scale *= 0x80;
    }
    if (b < 0x80) {
      if (i < 7) return { value: small, next: offset + i + 1 };
      let big = 0n;
      for (let j = i; j >= 0; j--) big = (big << 7n) | BigInt(bytes[offset + j] & 0x7f);
      return { value: big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big, next: offset + i + 1 };
    }
  }
  throw new FrameError('varint longer than 10 bytes');
}

// ---------------------------------------------------------------------------------------------------------------
// Session frames (docs/protocol.md 5.2)
// ---------------------------------------------------------------------------------------------------------------

/** The subprotocol a session client offers. */
export const SESSION_SUBPROTOCOL = 'lifeline.v1';
/** The protocol revision this module speaks. */
export const PROTOCOL_VERSION = 1;

/** Frame type bytes. */
export const FrameType = Object.freeze({
  Hello: 0x01, Welcome: 0x02, Resumed: 0x03, SessionLost: 0x04, Ack: 0x05, DataBinary: 0x06, DataText: 0x07,
});

/** SessionLost reasons. Unknown reasons are treated like NotFound. */
export const SessionLostReason = Object.freeze({ NotFound: 1, ReplayUnavailable: 2, BufferFull: 3, Expired: 4 });
const LOST_REASON_NAMES = { 1: 'not-found', 2: 'replay-unavailable', 3: 'buffer-full', 4: 'expired' };
/** The name of a SessionLost reason byte: 'not-found', 'replay-unavailable', 'buffer-full', 'expired' or 'unknown'. */
export const sessionLostReasonName = (reason) => LOST_REASON_NAMES[reason] ?? 'unknown';

const ID_LENGTH = 16;
const TOKEN_LENGTH = 32;

function checkWire(value, name, max = MAX_WIRE_VALUE, min = 0n) {
  const big = typeof value === 'bigint' ? value : Number.isSafeInteger(value) ? BigInt(value) : null;
  if (big == null || big < min || big > max) throw new RangeError(`${name} must be an integer in [${min}, ${max}] (got ${value}).`);
}

function checkBytes(value, length, name) {
  if (!(value instanceof Uint8Array) || value.length !== length) throw new RangeError(`${name} must be a Uint8Array of ${length} bytes.`);
}

class Writer {
  constructor() { this.parts = []; this.length = 0; }
  byte(b) { this.bytes(Uint8Array.of(b)); return this; }
  varint(v) { return this.bytes(encodeVarint(v)); }
  bytes(b) { this.parts.push(b); this.length += b.length; return this; }
  finish() {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) { out.set(p, at); at += p.length; }
    return out;
  }
}

const utf8Encoder = new TextEncoder();

/**
 * Encodes a session frame. Frame shapes (sequence fields are Number or BigInt):
 * - `{ type: 'hello', version, resume: false }` / `{ type: 'hello', version, resume: true, sessionId, token, lastReceived }`
 * - `{ type: 'welcome', version, sessionId, token, resumeWindowMs, maxFrameBytes, replayMaxMessages, replayMaxBytes }`
 * - `{ type: 'resumed', lastReceived, replayCount }`
 * - `{ type: 'sessionlost', reason, lastReceived, lostFirst, lostCount }`
 * - `{ type: 'ack', ack }`
 * - `{ type: 'data', seq, ack, text: boolean, payload: Uint8Array | string }`
 * @returns {Uint8Array}
 */
export function encodeFrame(frame) {
  const w = new Writer();
  switch (frame.type) {
    case 'hello':
      checkWire(frame.version ?? PROTOCOL_VERSION, 'version', MAX_WIRE_VALUE, 1n);
      w.byte(FrameType.Hello).varint(frame.version ?? PROTOCOL_VERSION);
      if (!frame.resume) return w.byte(0).finish();
      checkBytes(frame.sessionId, ID_LENGTH, 'sessionId');
      checkBytes(frame.token, TOKEN_LENGTH, 'token');
      checkWire(frame.lastReceived, 'lastReceived');
      return w.byte(1).bytes(frame.sessionId).bytes(frame.token).varint(frame.lastReceived).finish();
    case 'welcome':
      checkWire(frame.version ?? PROTOCOL_VERSION, 'version', MAX_WIRE_VALUE, 1n);
      checkBytes(frame.sessionId, ID_LENGTH, 'sessionId');
      checkBytes(frame.token, TOKEN_LENGTH, 'token');
      checkWire(frame.resumeWindowMs, 'resumeWindowMs', 0xffff_ffffn);
      checkWire(frame.maxFrameBytes, 'maxFrameBytes', 0x7fff_ffffn, 1n);
      checkWire(frame.replayMaxMessages, 'replayMaxMessages', 0x7fff_ffffn, 1n);
      checkWire(frame.replayMaxBytes, 'replayMaxBytes', MAX_WIRE_VALUE, 1n);
      return w.byte(FrameType.Welcome).varint(frame.version ?? PROTOCOL_VERSION).bytes(frame.sessionId).bytes(frame.token)
        .varint(frame.resumeWindowMs).varint(frame.maxFrameBytes).varint(frame.replayMaxMessages).varint(frame.replayMaxBytes).finish();
    case 'resumed':
      checkWire(frame.lastReceived, 'lastReceived');
      checkWire(frame.replayCount, 'replayCount');
      return w.byte(FrameType.Resumed).varint(frame.lastReceived).varint(frame.replayCount).finish();
    case 'sessionlost': {
      if (!Number.isInteger(frame.reason) || frame.reason < 1 || frame.reason > 255) throw new RangeError('SessionLost reason must be 1-255.');
      checkWire(frame.lastReceived, 'lastReceived');
      checkWire(frame.lostFirst ?? 0, 'lostFirst');
      checkWire(frame.lostCount ?? 0, 'lostCount');
      checkRange(frame.lostFirst ?? 0, frame.lostCount ?? 0, RangeError);
      return w.byte(FrameType.SessionLost).byte(frame.reason).varint(frame.lastReceived)
        .varint(frame.lostFirst ?? 0).varint(frame.lostCount ?? 0).finish();
    }
    case 'ack':
      checkWire(frame.ack, 'ack');
      return w.byte(FrameType.Ack).varint(frame.ack).finish();
    case 'data': {
      checkWire(frame.seq, 'seq', MAX_WIRE_VALUE, 1n);
      checkWire(frame.ack, 'ack');
      const payload = typeof frame.payload === 'string' ? utf8Encoder.encode(frame.payload) : toBytes(frame.payload ?? new Uint8Array(0));
      return w.byte(frame.text ? FrameType.DataText : FrameType.DataBinary).varint(frame.seq).varint(frame.ack).bytes(payload).finish();
    }
    default:
      throw new TypeError(`unknown frame type ${frame.type}`);
  }
}

function checkRange(first, count, ErrorType) {
  const empty = count === 0 || count === 0n;
  const zeroFirst = first === 0 || first === 0n;
  if (empty ? !zeroFirst : zeroFirst) throw new ErrorType('a lost range is written 0 0 when empty and starts at 1 or more otherwise');
}

class Reader {
  constructor(bytes) { this.bytes = bytes; this.at = 1; }
  byte() {
    if (this.at >= this.bytes.length) throw new FrameError('truncated field');
    return this.bytes[this.at++];
  }
  fixed(n) {
    if (this.at + n > this.bytes.length) throw new FrameError('truncated field');
    const out = this.bytes.slice(this.at, this.at + n);
    this.at += n;
    return out;
  }
  varint(name, max = MAX_WIRE_VALUE, min = 0n) {
    const { value, next } = decodeVarint(this.bytes, this.at);
    this.at = next;
    const big = BigInt(value);
    if (big < min || big > max) throw new FrameError(`${name} out of range (${value})`);
    return value;
  }
  end() {
    if (this.at !== this.bytes.length) throw new FrameError('bytes after the last field');
  }
}

/**
 * Decodes one session frame (one whole binary WebSocket message). Throws FrameError (code 1002, or 1009 when
 * longer than `maxFrameBytes`). Data payloads are copies (`Uint8Array`); the text flag is reported, not decoded.
 * @param {Uint8Array | ArrayBuffer} message
 * @param {number} [maxFrameBytes]
 */
export function decodeFrame(message, maxFrameBytes = Infinity) {
  const bytes = toBytes(message);
  if (bytes.length === 0) throw new FrameError('empty frame');
  if (bytes.length > maxFrameBytes) throw new FrameError(`frame of ${bytes.length} bytes exceeds the limit of ${maxFrameBytes}`, 1009);
  const r = new Reader(bytes);
  let frame;
  switch (bytes[0]) {
    case FrameType.Hello: {
      const version = r.varint('version', MAX_WIRE_VALUE, 1n);
      const mode = r.byte();
      if (mode === 0) frame = { type: 'hello', version, resume: false };
      else if (mode === 1) frame = { type: 'hello', version, resume: true, sessionId: r.fixed(ID_LENGTH), token: r.fixed(TOKEN_LENGTH), lastReceived: r.varint('lastReceived') };
      else throw new FrameError(`unknown Hello mode ${mode}`);
      break;
    }
    case FrameType.Welcome:
      frame = {
        type: 'welcome',
        version: r.varint('version', MAX_WIRE_VALUE, 1n),
        sessionId: r.fixed(ID_LENGTH),
        token: r.fixed(TOKEN_LENGTH),
        resumeWindowMs: r.varint('resume window', 0xffff_ffffn),
        maxFrameBytes: r.varint('max frame bytes', 0x7fff_ffffn, 1n),
        replayMaxMessages: r.varint('replay max messages', 0x7fff_ffffn, 1n),
        replayMaxBytes: r.varint('replay max bytes', MAX_WIRE_VALUE, 1n),
      };
      break;
    case FrameType.Resumed:
      frame = { type: 'resumed', lastReceived: r.varint('last received'), replayCount: r.varint('replay count') };
      break;
    case FrameType.SessionLost: {
      const reason = r.byte();
      if (reason === 0) throw new FrameError('SessionLost reason 0');
      frame = { type: 'sessionlost', reason, lastReceived: r.varint('last received'), lostFirst: r.varint('lost first'), lostCount: r.varint('lost count') };
      checkRange(frame.lostFirst, frame.lostCount, FrameError);
      break;
    }
    case FrameType.Ack:
      frame = { type: 'ack', ack: r.varint('ack') };
      break;
    case FrameType.DataBinary:
    case FrameType.DataText: {
      const seq = r.varint('sequence', MAX_WIRE_VALUE, 1n);
      const ack = r.varint('ack');
      return { type: 'data', seq, ack, text: bytes[0] === FrameType.DataText, payload: bytes.slice(r.at) };
    }
    default:
      throw new FrameError(`unknown frame type 0x${bytes[0].toString(16).padStart(2, '0')}`);
  }
  r.end();
  return frame;
}

/** Views any binary value (ArrayBuffer, typed array, DataView) as a Uint8Array without copying. */
function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('expected an ArrayBuffer or an ArrayBuffer view');
}

/** Formats bytes as lower-case hex (for session ids in logs). */
export const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
