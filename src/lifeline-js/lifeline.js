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
// setTimeout runs a delay over 2^31 - 1 ms at once: a longer one (a custom policy's) waits this long, about 24.8 days.
const MAX_TIMER_MS = 2_147_483_647;

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
  const lower = reason.replace(/[A-Z]/g, (c) => c.toLowerCase()); // ASCII only: the same length, so positions match `reason`
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
  if (typeof ms !== 'number' || Number.isNaN(ms)) throw new RangeError(`a retry hint needs a number of milliseconds (got ${ms}).`);
  const token = `${HINT_NAME}${Math.min(Math.max(0, Math.floor(ms)), MAX_RETRY_HINT_MS)}`;
  // A close reason holds at most 123 bytes of UTF-8: the text gives way, the hint stays whole.
  return text ? `${truncateUtf8(String(text), 123 - 2 - token.length)}; ${token}` : token;
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
  restartRetryMaxDelay: 3000,
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
 * 250 ms up to the time since the loss (1 s at least, 3 s at most); 1012/1001 wait the server's hint (clamped to [minHintDelay, maxHintDelay]) or 1-5 s; backoff codes
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
      && defaultReaction(context.outageCode) === Reaction.Soon // a code that announces a restart (1012, 1001), as in .NET
      && elapsed < o.restartWindow) {
    // The server said it is restarting: the new process is still starting. Knock again soon, up to a ceiling of the
    // time since the loss (at least 4 × the minimum, at most restartRetryMaxDelay: 1 s growing to 3 s by default), so
    // the clients refused while it starts come back spread over as long as they gathered, not all in the second after
    // the new process is up.
    const ceiling = Math.min(Math.max(elapsed, o.restartRetryMinDelay * 4), o.restartRetryMaxDelay);
    return between(o.restartRetryMinDelay, ceiling, random);
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
  // The server asked for room: never sooner than the larger base, and spread above it (raising the jittered delay to
  // the base instead brought most clients shed together back at the same instant).
  if (tryAgainLater) delay = base + delay;
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

// ---------------------------------------------------------------------------------------------------------------
// LifelineSocket
// ---------------------------------------------------------------------------------------------------------------

/** Thrown by `send` when the send queue is full and its mode is 'fail'. */
export class SendQueueFullError extends Error {
  constructor(message) {
    super(message);
    this.name = 'SendQueueFullError';
  }
}

/** Thrown by `send` on a socket that has stopped for good, and given to pending 'wait' sends when it stops. */
export class SocketClosedError extends Error {
  constructor(message) {
    super(message);
    this.name = 'SocketClosedError';
  }
}

const DEFAULT_OPTIONS = Object.freeze({
  protocols: [],
  session: false,
  sendQueue: Object.freeze({ maxMessages: 1000, maxBytes: 1_048_576, fullMode: 'fail' }),
  replay: Object.freeze({ maxMessages: 10_000, maxBytes: 1_048_576, maxAge: 300_000 }),
  ack: Object.freeze({ messages: 4096, bytes: 262_144, delay: 200 }),
  heartbeat: Object.freeze({ interval: 15_000, timeout: 30_000 }),
  receiveTimeout: null,
  connectTimeout: 10_000,
  handshakeTimeout: 10_000,
  maxReceiveBytes: 4_194_304,
  closeTimeout: 5000,
  retryNewSessionAfterRefusedResume: true,
});

const defaultClock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (id) => globalThis.clearTimeout(id),
});

function makeEvent(type, props) {
  const event = new Event(type);
  for (const [key, value] of Object.entries(props ?? {})) {
    Object.defineProperty(event, key, { value, enumerable: true });
  }
  return event;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }) /* keep a leading U+FEFF, as a WebSocket does */;
const byteLengthOf = (data) => (typeof data === 'string' ? utf8Encoder.encode(data).length : toBytes(data).byteLength);

function truncateUtf8(text, maxBytes) {
  let out = text;
  while (utf8Encoder.encode(out).length > maxBytes) out = out.slice(0, -1);
  return out;
}

function positiveOrNull(value, name) {
  if (value == null || value === 0 || value === false) return null;
  if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`${name} must be a positive number of ms, or null (got ${value}).`);
  return value;
}

function positiveInt(value, name) {
  if (!(Number.isInteger(value) && value >= 1)) throw new RangeError(`${name} must be an integer of at least 1 (got ${value}).`);
  return value;
}

/**
 * A WebSocket that survives the real world: it reads every close code and reconnects (or not) as the Lifeline
 * catalogue says, queues sends while down within bounds, and in session mode (`lifeline.v1`) delivers every
 * message exactly once and in order across reconnects.
 *
 * Events: 'open', 'message', 'close', 'reconnecting', 'resumed', 'sessionlost', 'ack', 'drop', 'error'.
 */
export class LifelineSocket extends EventTarget {
  /**
   * @param {string | URL | LifelineOptions} urlOrOptions
   * @param {LifelineOptions} [options]
   */
  constructor(urlOrOptions, options) {
    super();
    const given = typeof urlOrOptions === 'string' || urlOrOptions instanceof URL ? { ...(options ?? {}), url: urlOrOptions } : { ...(urlOrOptions ?? {}) };
    if (given.url == null) throw new TypeError('LifelineSocket needs a url.');
    this.url = String(given.url);
    // null or undefined: the default.
    if (given.session != null && typeof given.session !== 'boolean') throw new TypeError(`session must be true or false (got ${typeof given.session} ${String(given.session)}).`);
    if (given.random != null && typeof given.random !== 'function') throw new TypeError('random must be a function returning a number in [0, 1), like Math.random.');
    if (given.clock != null && (typeof given.clock !== 'object' || !['now', 'setTimeout', 'clearTimeout'].every((k) => given.clock[k] === undefined || typeof given.clock[k] === 'function'))) {
      throw new TypeError('clock must be an object whose now, setTimeout and clearTimeout (each optional) are functions.');
    }
    if (given.onlineTarget != null && (typeof given.onlineTarget.addEventListener !== 'function' || typeof given.onlineTarget.removeEventListener !== 'function')) {
      throw new TypeError('onlineTarget must be an event target (with addEventListener and removeEventListener), or null for none.');
    }
    this.session = given.session === true;
    const o = { ...DEFAULT_OPTIONS, ...given };
    o.sendQueue = { ...DEFAULT_OPTIONS.sendQueue, ...(given.sendQueue ?? {}) };
    o.replay = { ...DEFAULT_OPTIONS.replay, ...(given.replay ?? {}) };
    o.ack = { ...DEFAULT_OPTIONS.ack, ...(given.ack ?? {}) };
    o.heartbeat = given.heartbeat === false || given.heartbeat === null ? { interval: null, timeout: null } : { ...DEFAULT_OPTIONS.heartbeat, ...(given.heartbeat ?? {}) };
    positiveInt(o.sendQueue.maxMessages, 'sendQueue.maxMessages');
    positiveInt(o.sendQueue.maxBytes, 'sendQueue.maxBytes');
    if (!['wait', 'fail', 'drop-oldest'].includes(o.sendQueue.fullMode)) throw new RangeError(`sendQueue.fullMode must be 'wait', 'fail' or 'drop-oldest' (got ${o.sendQueue.fullMode}).`);
    positiveInt(o.replay.maxMessages, 'replay.maxMessages');
    positiveInt(o.replay.maxBytes, 'replay.maxBytes');
    o.replay.maxAge = positiveOrNull(o.replay.maxAge, 'replay.maxAge');
    positiveInt(o.ack.messages, 'ack.messages');
    positiveInt(o.ack.bytes, 'ack.bytes');
    o.ack.delay = positiveOrNull(o.ack.delay, 'ack.delay') ?? 0;
    o.heartbeat.interval = positiveOrNull(o.heartbeat.interval, 'heartbeat.interval');
    o.heartbeat.timeout = positiveOrNull(o.heartbeat.timeout, 'heartbeat.timeout');
    if (o.session && o.heartbeat.timeout != null && (o.heartbeat.interval == null || o.heartbeat.interval >= o.heartbeat.timeout)) {
      // Without a heartbeat inside the timeout, nothing asks a busy server to answer in time: a live link would be dropped.
      throw new RangeError(`heartbeat.interval must be set and below heartbeat.timeout (got ${o.heartbeat.interval} and ${o.heartbeat.timeout}); use heartbeat: false to turn both off.`);
    }
    o.receiveTimeout = positiveOrNull(o.receiveTimeout, 'receiveTimeout');
    o.connectTimeout = positiveOrNull(o.connectTimeout, 'connectTimeout');
    o.handshakeTimeout = positiveOrNull(o.handshakeTimeout, 'handshakeTimeout');
    o.closeTimeout = positiveOrNull(o.closeTimeout, 'closeTimeout');
    positiveInt(o.maxReceiveBytes, 'maxReceiveBytes');

    // Reconnect: false (never), a function (context => ms | null), or options for the default policy.
    if (given.reconnect === false) {
      this._policy = () => null;
    } else if (typeof given.reconnect === 'function') {
      this._policy = given.reconnect;
    } else {
      // 4001 backs off and resumes, as an unassigned code does: the server sends it on a socket whose session another
      // connection or node now serves, or that its store lost (docs/protocol.md 5.9). The resume then finds the session
      // where it is now, or is told SessionLost and starts a new one.
      const resolved = resolveReconnectOptions({ ...(given.reconnect ?? {}) });
      this._policy = (context) => nextDelay(context, resolved, this._random);
    }
    this._stablePeriod = given.reconnect?.stablePeriod ?? DEFAULT_RECONNECT_OPTIONS.stablePeriod;
    this._options = o;
    this._WebSocket = given.WebSocket ?? globalThis.WebSocket;
    if (typeof this._WebSocket !== 'function') throw new TypeError('No WebSocket constructor: pass options.WebSocket.');
    this._clock = { ...defaultClock, ...(given.clock ?? {}) };
    this._random = given.random ?? Math.random;
    const userProtocols = o.protocols == null ? [] : Array.isArray(o.protocols) ? [...o.protocols] : [o.protocols];
    this._protocols = this.session ? [SESSION_SUBPROTOCOL, ...userProtocols.filter((p) => p !== SESSION_SUBPROTOCOL)] : userProtocols;

    /** 'connecting' | 'open' | 'reconnecting' | 'closing' | 'closed' */
    this.state = 'connecting';
    this._ws = null;
    this._timers = new Map();
    // Send queue: application messages not yet handed to a socket (session mode: not yet numbered).
    this._queue = [];
    this._queueBytes = 0;
    this._waiters = [];
    // Reconnect bookkeeping (as ReconnectAttemptTracker in .NET).
    this._attempt = 1;
    this._outageStart = this._clock.now();
    this._previousDelay = null;
    this._outageCode = null;
    this._serverAskedToWait = false; // the last close was 1001, 1012, 1013 or carried a retry hint
    this._linkLostAt = null;
    this._refusedRetryUsed = false;
    this.stats = { messagesSent: 0, messagesReceived: 0, duplicatesDropped: 0, replayedOut: 0, reconnects: 0 };
    this._resetSession();
    this._heartbeatPending = null;
    this._heartbeatAsked = false; // an idle heartbeat went out and its answer may still come
    this._heartbeatProbed = false; // this socket asked at once whether the server answers heartbeats
    this._heartbeatsAnswered = false; // learned from the server: see _onMessage

    this._onOnline = () => {
      // Not a wait the server asked for (1012, 1013, or a retry hint): cutting it short would bring every client back
      // at once to a server that is restarting or shedding load.
      if (this.state === 'reconnecting' && this._timers.has('reconnect') && !this._serverAskedToWait) {
        this._clearTimer('reconnect');
        this._connect();
      }
    };
    this._onlineTarget = given.onlineTarget !== undefined ? given.onlineTarget
      : typeof window !== 'undefined' && typeof window.addEventListener === 'function' ? window : null;
    this._onlineTarget?.addEventListener('online', this._onOnline);

    this._signal = given.signal ?? null;
    if (this._signal) {
      this._onAbort = () => this.close(1000, 'aborted');
      if (this._signal.aborted) {
        this.state = 'closed';
        this._onlineTarget?.removeEventListener('online', this._onOnline);
        return;
      }
      this._signal.addEventListener('abort', this._onAbort, { once: true });
    }
    this._connect(true);
  }

  /** The session id as 32 hex digits, or null outside a session. */
  get sessionId() { return this._sessionId ? toHex(this._sessionId) : null; }
  /** Messages waiting in the send queue (not yet handed to a socket). */
  get queuedMessages() { return this._queue.length; }
  /** UTF-8 bytes waiting in the send queue. */
  get queuedBytes() { return this._queueBytes; }
  /** Session mode: sent messages not yet acknowledged by the server (held for replay). */
  get unacknowledged() { return this._replay.length; }
  /** The subprotocol the server selected on the current socket. */
  get protocol() { return this._ws?.protocol ?? ''; }

  /**
   * Sends a message: a string (text) or an ArrayBuffer / typed array / DataView (binary). While the link is down
   * (or, in session mode, while the replay buffer is full) it waits in the bounded send queue. When the queue is
   * full: 'fail' throws SendQueueFullError, 'drop-oldest' drops the oldest queued message (a 'drop' event tells
   * which), 'wait' returns a Promise that settles once the message is queued. Returns a Promise in 'wait' mode only.
   * @param {string | ArrayBuffer | ArrayBufferView} data
   */
  send(data) {
    if (this.state === 'closed' || this.state === 'closing') throw new SocketClosedError(`send on a ${this.state} LifelineSocket`);
    const text = typeof data === 'string';
    if (!text && !(data instanceof ArrayBuffer) && !ArrayBuffer.isView(data)) throw new TypeError('send takes a string, an ArrayBuffer or an ArrayBuffer view (read a Blob with blob.arrayBuffer() first).');
    // Copy binary data now: the caller may reuse its buffer while the message waits.
    const bytes = text ? (this.session ? utf8Encoder.encode(data) : null) : toBytes(data).slice();
    const size = text ? (bytes ? bytes.length : byteLengthOf(data)) : bytes.length;
    const item = { data: text ? data : bytes, bytes, text, size };
    const q = this._options.sendQueue;
    if (size > q.maxBytes) throw new RangeError(`a message of ${size} bytes exceeds sendQueue.maxBytes (${q.maxBytes})`);
    if (this.session && size > this._options.replay.maxBytes) throw new RangeError(`a message of ${size} bytes exceeds replay.maxBytes (${this._options.replay.maxBytes})`);
    if (this.session && this._maxFrameBytes && size + 21 > this._maxFrameBytes) throw new RangeError(`a message of ${size} bytes exceeds the server's max frame bytes (${this._maxFrameBytes})`);
    const wait = q.fullMode === 'wait';
    if (this._waiters.length === 0 && this._fits(size)) {
      this._enqueue(item);
      this._flush();
      return wait ? Promise.resolve() : undefined;
    }
    if (q.fullMode === 'fail') throw new SendQueueFullError(`send queue full (${this._queue.length} messages, ${this._queueBytes} bytes; limits ${q.maxMessages} and ${q.maxBytes})`);
    if (q.fullMode === 'drop-oldest') {
      while (!this._fits(size) && this._queue.length > 0) {
        const dropped = this._queue.shift();
        this._queueBytes -= dropped.size;
        this._emit('drop', { data: dropped.data, reason: 'send queue full' });
      }
      this._enqueue(item);
      this._flush();
      return undefined;
    }
    return new Promise((resolve, reject) => this._waiters.push({ item, resolve, reject }));
  }

  /**
   * Stops for good: closes the socket with `code` (1000 or 3000-4999, as browsers allow) and reason, cancels any
   * pending reconnect and rejects pending 'wait' sends. The 'close' event follows with willReconnect false. In
   * session mode the client forgets the session; the server keeps it until its resume window ends (docs/protocol.md
   * 5.9: only 1002, 1003, 1008, 1009 and 4001 have a session meaning), and nobody resumes it.
   */
  close(code = 1000, reason = '') {
    if (code !== 1000 && !(Number.isInteger(code) && code >= 3000 && code <= 4999)) {
      throw new RangeError(`close code must be 1000 or in 3000-4999 (got ${code}).`);
    }
    if (utf8Encoder.encode(reason).length > 123) throw new RangeError('close reason must be at most 123 bytes of UTF-8.');
    if (this.state === 'closed' || this.state === 'closing') return;
    this._clearAllTimers();
    const ws = this._ws;
    if (ws && ws.readyState !== 3) {
      this.state = 'closing';
      try { ws.close(code, reason); } catch { /* already closing */ }
      // A dead link may never deliver the close event: finish anyway after closeTimeout.
      // closeTimeout null: wait for the close event, however long it takes.
      if (this._options.closeTimeout != null) {
        this._setTimer('close', this._options.closeTimeout, () => {
          this._detach(ws);
          this._finish({ code: 1006, reason: 'close timeout', wasClean: false });
        });
      }
      return;
    }
    this._detach(ws);
    this._finish({ code, reason, wasClean: true });
  }

  // ----- connection lifecycle -----

  /** @param {boolean} [first] the constructor's attempt: an error no retry can mend is thrown to the caller, as `new WebSocket` does. */
  _connect(first = false) {
    this._clearTimer('reconnect');
    this.state = 'connecting';
    this._opened = false;
    this._carried = false;
    let ws;
    try {
      ws = this._protocols.length ? new this._WebSocket(this.url, this._protocols) : new this._WebSocket(this.url);
    } catch (error) {
      // A bad URL or subprotocol (SyntaxError) and a page that may not open it (SecurityError: ws:// from https, a
      // blocked port) throw synchronously, and the same again on every retry: stop. Anything else counts as a failed attempt.
      const permanent = error?.name === 'SyntaxError' || error?.name === 'SecurityError';
      if (permanent && first) {
        this._finish(null);
        throw error;
      }
      if (first) {
        // Still inside the constructor: no listener is attached yet. Report the failure from a timer, as a browser
        // reports a failed `new WebSocket`; close() before then cancels it.
        this._setTimer('failed', 0, () => this._failedAttempt(error, permanent));
        return;
      }
      this._failedAttempt(error, permanent);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this._ws = ws;
    ws.onopen = () => this._onOpen(ws);
    ws.onmessage = (event) => this._onMessage(ws, event.data);
    ws.onerror = () => { /* the close event follows; it carries what the browser tells */ };
    ws.onclose = (event) => this._onClose(ws, event);
    if (this._options.connectTimeout) {
      this._setTimer('connect', this._options.connectTimeout, () => this._drop(ws, 1006, 'connect timeout'));
    }
  }

  /** A WebSocket constructor threw: report it, then stop (permanent) or ask the policy as for any failed attempt. */
  _failedAttempt(error, permanent) {
    this._emit('error', { error });
    if (this.state === 'closed' || this.state === 'closing') return; // a listener called close()
    const info = { code: 1006, reason: String(error?.message ?? error), wasClean: false };
    if (permanent) this._finish(info);
    else this._lost(info);
  }

  _onOpen(ws) {
    if (ws !== this._ws) return;
    this._heartbeatPending = null; // the last socket's: this one's handshake has its own bound
    this._unackedSince = null; // likewise; the replay after Resumed sets it again
    this._clearTimer('connect');
    this._opened = true;
    this._connectedAt = this._clock.now();
    this._lastInbound = this._connectedAt;
    this._armLiveness();
    if (!this.session) {
      this._opened = true;
      this._becameOpen({});
      return;
    }
    if (ws.protocol !== SESSION_SUBPROTOCOL) {
      this._fail(1010, `server did not select ${SESSION_SUBPROTOCOL}`);
      return;
    }
    this._sendHello();
    if (this._options.handshakeTimeout) {
      this._setTimer('handshake', this._options.handshakeTimeout, () => this._drop(ws, 1006, 'handshake timeout'));
    }
  }

  _becameOpen(props) {
    if (this.state === 'closing' || this.state === 'closed') return; // the application closed it first
    const reconnected = Boolean(this._everOpen);
    this._everOpen = true;
    this.state = 'open';
    this._emit('open', { reconnected, ...props });
    if (this.state !== 'open') return; // a listener closed the socket
    this._flush();
    this._askWhetherHeartbeatsAreAnswered();
  }

  _onMessage(ws, data) {
    if (ws !== this._ws) return;
    this._lastInbound = this._clock.now();
    if (!this.session) {
      this._carried = true;
      this.stats.messagesReceived++;
      this._emit('message', { data });
      return;
    }
    // Closed by the application while the handshake was in flight: a late Welcome or Resumed must not reopen it.
    // (Once established, what arrives before the close event is still delivered, as a WebSocket's messages are.)
    if (this.state === 'closing' && this._phase !== 'established') return;
    if (typeof data === 'string') {
      this._fail(1003, 'text message on a session connection');
      return;
    }
    let frame;
    try {
      frame = decodeFrame(data, this._options.maxReceiveBytes);
    } catch (error) {
      if (error instanceof FrameError) this._fail(error.code, error.message);
      else this._fail(1002, String(error?.message ?? error));
      return;
    }
    // The server answers heartbeats (a Lifeline server does; another make need not): from now on an unanswered one
    // means a dead link. Learned once per LifelineSocket, from an Ack that comes while a heartbeat waits for its answer
    // and nothing of ours is outstanding (the server then has nothing else to acknowledge), Data before it or not.
    if (frame.type === 'ack' && this._phase === 'established' && !this._ignoreUntilWelcome) {
      if (this._heartbeatAsked && this._replay.length === 0) this._heartbeatsAnswered = true;
      this._heartbeatAsked = false; // one Ack answers one question: a later one may be the server's own repeat
    }
    this._heartbeatPending = null; // anything inbound shows the link alive
    this._onFrame(frame);
  }

  _onClose(ws, event) {
    if (ws !== this._ws) return;
    this._detach(ws);
    const code = event?.code || 1005;
    const closeInfo = { code, reason: event?.reason ?? '', wasClean: Boolean(event?.wasClean) };
    if (this.state === 'closing') {
      this._finish(closeInfo);
      return;
    }
    this._lost(closeInfo);
  }

  /** Drops a socket that is still open in the browser's eyes (dead link, timeout) and reports `code`. */
  _drop(ws, code, reason, wireCode = 3008) {
    if (ws !== this._ws) return;
    this._detach(ws);
    try { ws.close(wireCode, truncateUtf8(reason, 123)); } catch { /* best effort */ }
    this._lost({ code, reason, wasClean: false });
  }

  /**
   * A protocol error found here. Browsers may only send 1000 or 3000-4999, so the wire carries 1000 (every such
   * error stops the client, which forgets the session) with the intended code in the reason; events report `code`.
   */
  _fail(code, reason) {
    const ws = this._ws;
    if (!ws) return;
    this._detach(ws);
    try { ws.close(1000, truncateUtf8(`${code} ${reason}`, 123)); } catch { /* best effort */ }
    this._lost({ code, reason, wasClean: false, local: true });
  }

  _detach(ws) {
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    if (this._ws === ws) this._ws = null;
    for (const name of ['connect', 'handshake', 'liveness', 'heartbeat', 'ack', 'replayAge']) this._clearTimer(name);
  }

  /** The transport is gone (not by the user's close): ask the policy what next. */
  _lost(info) {
    if (this.state === 'closing') {
      // The application closed the socket, and it ended otherwise first (an error in a frame still read, a dead link):
      // that is the end the application asked for, reported once.
      this._finish(info);
      return;
    }
    const now = this._clock.now();
    const opened = this._opened;
    this._opened = false;
    if (opened) this._linkLostAt = now; // the start of the time down, which a resume does not count toward replay.maxAge
    if (this.state === 'open') this.state = 'reconnecting';
    let context;
    let forcedReaction;
    if (this.session && this._phase === 'hello-resume' && info.code === 1008 && info.reason === 'session refused') {
      // Resume refused: report the loss, never use this token again, maybe start one new session. Only with that reason
      // (docs/protocol.md 5.9): another 1008 (the server's authorization refused the socket) says nothing of the session.
      this._sessionLost({ reason: 'refused', reasonCode: null, initiator: 'server', lastReceived: null, lostFirst: 0, lostCount: 0 });
      if (this.state === 'closed' || this.state === 'closing') return; // a listener called close()
      if (this._options.retryNewSessionAfterRefusedResume && !this._refusedRetryUsed) {
        this._refusedRetryUsed = true;
        forcedReaction = Reaction.Backoff;
      }
    }
    if (!opened) {
      this._attempt++;
      context = { kind: 'connect-failed' };
    } else {
      const upFor = now - (this._connectedAt ?? now);
      // Up for the stable period, or carrying messages for a tenth of it (a flapping link that works between drops);
      // a server that greets and closes at once still meets a growing delay.
      if (upFor >= this._stablePeriod || (this._carried && upFor >= this._stablePeriod / 10)) {
        this._attempt = 1;
        this._outageStart = now;
      } else {
        this._attempt++;
      }
      this._outageCode = info.code;
      context = { kind: 'closed' };
    }
    // Kept through failed attempts: the server's request stands until a connection opens again.
    if (opened) this._serverAskedToWait = info.code === 1001 || info.code === 1012 || info.code === 1013 || parseRetryHint(info.reason) != null;
    if (this.session && this._phase !== 'none') this._phase = 'none';
    Object.assign(context, {
      attempt: this._attempt,
      elapsed: now - this._outageStart,
      code: info.code,
      reason: info.reason,
      hint: parseRetryHint(info.reason),
      previousDelay: this._previousDelay,
      outageCode: this._outageCode,
      reaction: forcedReaction,
    });
    let delay = null;
    if (!this._signal?.aborted) {
      try {
        delay = this._policy(context);
      } catch (error) {
        this._emit('error', { error });
        if (this.state === 'closed' || this.state === 'closing') return; // a listener called close()
        delay = null;
      }
    }
    const willReconnect = typeof delay === 'number' && Number.isFinite(delay) && delay >= 0;
    if (!willReconnect) {
      this._finish(info); // 'closed' before the event: a listener's close() then does nothing
      return;
    }
    this._emit('close', { ...info, willReconnect, delay });
    if (this.state === 'closed' || this.state === 'closing') return; // a listener called close()
    this.state = 'reconnecting';
    this._previousDelay = delay;
    this.stats.reconnects++;
    this._emit('reconnecting', { attempt: this._attempt, delay, code: info.code, reason: info.reason });
    if (this.state !== 'reconnecting') return;
    this._setTimer('reconnect', delay, () => this._connect());
  }

  /** Stopped for good. `info` null: the 'close' event was already sent. */
  _finish(info) {
    this._clearAllTimers();
    this._ws = null;
    this.state = 'closed';
    this._onlineTarget?.removeEventListener('online', this._onOnline);
    this._signal?.removeEventListener('abort', this._onAbort);
    const waiters = this._waiters.splice(0);
    for (const w of waiters) w.reject(new SocketClosedError('the LifelineSocket closed before the message was queued'));
    if (info) this._emit('close', { ...info, willReconnect: false, delay: null });
  }

  // ----- timers and liveness -----

  _setTimer(name, ms, fn) {
    this._clearTimer(name);
    const id = this._clock.setTimeout(() => {
      if (this._timers.get(name) === id) this._timers.delete(name);
      fn();
    }, Math.min(ms, MAX_TIMER_MS));
    this._timers.set(name, id);
  }

  _clearTimer(name) {
    if (!this._timers.has(name)) return;
    this._clock.clearTimeout(this._timers.get(name));
    this._timers.delete(name);
  }

  _clearAllTimers() {
    for (const name of [...this._timers.keys()]) this._clearTimer(name);
  }

  /**
   * Liveness. Plain and session mode: `receiveTimeout` (no inbound message within it is a dead link). Session
   * mode: `heartbeat.timeout` (data sent and unacknowledged, and nothing inbound for that long, is a dead link;
   * a Lifeline server acknowledges within 200 ms once its handler took the message, and answers each heartbeat).
   * Once the server has answered a heartbeat, a heartbeat with nothing inbound for `heartbeat.timeout` is a dead
   * link too: an idle or receive-only session then finds a black hole as well.
   */
  _armLiveness() {
    if (this.state === 'closing' || this.state === 'closed') return; // close() cleared it; its own timer bounds the rest
    const { receiveTimeout } = this._options;
    const heartbeatTimeout = this.session ? this._options.heartbeat.timeout : null;
    if (!receiveTimeout && !heartbeatTimeout) return;
    const now = this._clock.now();
    let deadline = Infinity;
    let cause = '';
    if (receiveTimeout) { deadline = this._lastInbound + receiveTimeout; cause = 'receive watchdog'; }
    if (heartbeatTimeout && this._unackedSince != null) {
      const d = Math.max(this._lastInbound, this._unackedSince) + heartbeatTimeout;
      if (d < deadline) { deadline = d; cause = 'heartbeat timeout'; }
    }
    if (heartbeatTimeout && this._heartbeatsAnswered && this._heartbeatPending) {
      const d = Math.max(this._lastInbound, this._heartbeatPending.at) + heartbeatTimeout;
      if (d < deadline) { deadline = d; cause = 'heartbeat timeout'; }
    }
    if (deadline === Infinity) { this._clearTimer('liveness'); return; }
    const ws = this._ws;
    if (deadline <= now) { this._drop(ws, 1006, cause); return; }
    this._setTimer('liveness', deadline - now, () => this._armLiveness());
  }

  _emit(type, props) {
    this.dispatchEvent(makeEvent(type, props));
  }

  // ----- send queue -----

  _fits(size) {
    const q = this._options.sendQueue;
    return this._queue.length < q.maxMessages && this._queueBytes + size <= q.maxBytes;
  }

  _enqueue(item) {
    this._queue.push(item);
    this._queueBytes += item.size;
  }

  _admitWaiters() {
    while (this._waiters.length > 0 && this._fits(this._waiters[0].item.size)) {
      const w = this._waiters.shift();
      this._enqueue(w.item);
      w.resolve();
    }
  }

  /** Hands queued messages to the socket while it is open (and, in session mode, while the replay buffer has room). */
  _flush() {
    for (;;) {
      while (this._queue.length > 0 && this.state === 'open' && this._ws && (!this.session || this._phase === 'established')) {
        const item = this._queue[0];
        if (this.session) {
          if (this._replayExpired()) { this._expireSession(); return; }
          const r = this._options.replay;
          if (this._replay.length >= r.maxMessages || (this._replay.length > 0 && this._replayBytes + item.size > r.maxBytes)) {
            this._armReplayAge();
            break;
          }
        }
        this._queue.shift();
        this._queueBytes -= item.size;
        if (this.session && this._maxFrameBytes && item.size + 21 > this._maxFrameBytes) {
          // Queued before Welcome said the limit (send() refuses it after): sent, it would close the session with 1009.
          this._emit('drop', { data: item.data, reason: `larger than the server's max frame bytes (${this._maxFrameBytes})` });
          continue;
        }
        if (this.session) this._sendData(item);
        else {
          this._ws.send(item.data);
          this.stats.messagesSent++;
        }
      }
      const before = this._queue.length;
      this._admitWaiters();
      if (this._queue.length === before || this.state !== 'open') return;
    }
  }

  // ----- session mode (docs/protocol.md section 5) -----

  _resetSession() {
    this._phase = 'none'; // 'none' | 'hello-new' | 'hello-resume' | 'established'
    this._ignoreUntilWelcome = false;
    this._sessionId = null;
    this._token = null;
    this._maxFrameBytes = null;
    this._serverReplay = null;
    this._resumeWindowMs = null;
    this._resetSequences();
  }

  _resetSequences() {
    this._nextSeq = 1; // our next outbound sequence
    this._replay = []; // { seq, text, bytes, size, data, sentAt } sent and not yet acknowledged
    this._replayBytes = 0;
    this._ackReceived = 0; // the highest ack from the server
    this._lastDelivered = 0; // L: the last inbound sequence handed to the application
    this._ackSent = 0;
    this._unackedMessages = 0;
    this._unackedBytes = 0;
    this._unackedSince = null;
  }

  _sendFrame(frame) {
    this._ws.send(encodeFrame(frame));
  }

  _sendHello() {
    this._ignoreUntilWelcome = false;
    if (this._sessionId && this._token) {
      this._phase = 'hello-resume';
      this._sendFrame({ type: 'hello', version: PROTOCOL_VERSION, resume: true, sessionId: this._sessionId, token: this._token, lastReceived: this._lastDelivered });
    } else {
      this._phase = 'hello-new';
      this._sendFrame({ type: 'hello', version: PROTOCOL_VERSION, resume: false });
    }
  }

  _onFrame(frame) {
    switch (frame.type) {
      case 'hello':
        this._fail(1002, 'Hello from the server');
        return;
      case 'welcome':
        if (this._phase === 'hello-resume') {
          // A resume answered with a new session: the server no longer has the old one but did not say so (5.6 asks for
          // SessionLost first). Reported as that SessionLost (not found) would be, then the Welcome is taken.
          const ws = this._ws;
          this._sessionLost({ reason: 'not-found', reasonCode: SessionLostReason.NotFound, initiator: 'server', lastReceived: 0, lostFirst: 0, lostCount: 0 },
            () => { this._phase = 'hello-new'; });
          if (this._ws !== ws || this.state === 'closing' || this.state === 'closed') return; // a listener closed it
        }
        if (this._phase !== 'hello-new') { this._fail(1002, 'unexpected Welcome'); return; }
        if (frame.version !== PROTOCOL_VERSION) { this._fail(1002, `Welcome with version ${frame.version}`); return; }
        this._clearTimer('handshake');
        this._ignoreUntilWelcome = false;
        this._sessionId = frame.sessionId;
        this._token = frame.token;
        this._resumeWindowMs = frame.resumeWindowMs;
        this._maxFrameBytes = frame.maxFrameBytes;
        this._serverReplay = { messages: Number(frame.replayMaxMessages), bytes: Number(frame.replayMaxBytes) };
        this._resetSequences();
        this._refusedRetryUsed = false;
        this._established();
        this._becameOpen({ resumed: false, sessionId: toHex(frame.sessionId) });
        return;
      case 'resumed':
        this._onResumed(frame);
        return;
      case 'sessionlost':
        if (this._ignoreUntilWelcome) return; // belongs to the session already lost
        if (this._phase !== 'hello-resume' && this._phase !== 'established') { this._fail(1002, 'unexpected SessionLost'); return; }
        if (typeof frame.lastReceived !== 'number' || frame.lastReceived > this._nextSeq - 1) {
          this._fail(1002, `SessionLost with last received ${frame.lastReceived} beyond the last sent ${this._nextSeq - 1}`);
          return;
        }
        this._clearTimer('handshake');
        this._sessionLost({
          reason: sessionLostReasonName(frame.reason), reasonCode: frame.reason, initiator: 'server',
          lastReceived: frame.lastReceived, lostFirst: frame.lostFirst, lostCount: frame.lostCount,
        }, () => this._startNewSession());
        return;
      case 'ack':
        if (!this._gate('Ack')) return;
        this._onAck(frame.ack);
        return;
      case 'data': {
        if (!this._gate('Data')) return;
        const ws = this._ws;
        if (!this._onAck(frame.ack)) return;
        // The ack may have ended the session (the queue moved on and found its oldest message past replay.maxAge; a new
        // session starts on this socket), or a listener of its 'ack' event dropped the socket: the frame belongs to the
        // old session (or to no socket), and the SessionLost just sent did not count it as received.
        if (this._phase !== 'established' || this._ws !== ws) return;
        this._onData(frame);
        return;
      }
      default:
        this._fail(1002, 'unknown frame');
    }
  }

  /** Data and Ack are only valid on an established session; after a SessionLost they are ignored until Welcome. */
  _gate(what) {
    if (this._phase === 'established') return true;
    if (this._ignoreUntilWelcome) return false;
    this._fail(1002, `${what} before Welcome or Resumed`);
    return false;
  }

  _established() {
    this._phase = 'established';
    this._heartbeatPending = null; // { at }: a heartbeat sent on this socket and nothing heard since
    this._heartbeatProbed = false;
    this._heartbeatAsked = false; // a question on the last socket is not answered on this one
    // A completed handshake alone does not reset the backoff: a server that welcomes and then closes at once (a handler
    // that fails on start) must meet a growing delay. A delivered message does (_deliver), as in plain mode.
    if (this._options.heartbeat.interval) this._scheduleHeartbeat();
  }

  _scheduleHeartbeat() {
    // Browsers cannot send protocol pings: an Ack frame (the last acknowledgement sent) is the heartbeat. It keeps
    // idle-killing proxies from cutting the link and tells the server we are alive (a Lifeline server answers it).
    this._setTimer('heartbeat', this._options.heartbeat.interval, () => {
      if (this._phase !== 'established' || !this._ws) return;
      this._sendHeartbeat();
      this._scheduleHeartbeat();
    });
  }

  _sendHeartbeat() {
    // It repeats the last ack sent, so it acknowledges nothing new: that is the heartbeat a Lifeline server answers
    // (5.4). An ack that is due goes out with its own timer. With nothing of ours outstanding the server has nothing
    // else to acknowledge, so an Ack that comes back is the answer.
    if (!this._heartbeatPending) {
      this._heartbeatPending = { at: this._clock.now() };
      this._heartbeatAsked ||= this._replay.length === 0;
    }
    this._sendFrame({ type: 'ack', ack: this._ackSent });
    this._armLiveness();
  }

  /**
   * Until the server has been seen answering a heartbeat, silence on an idle or receive-only session proves nothing
   * (5.4). So a socket asks once, as soon as an answer can be told apart: established, with nothing of ours
   * outstanding (at the Welcome or Resumed, or when an ack empties the replay buffer). Before, the first question was
   * the heartbeat 15 s after the Welcome, and a link that went black before its answer left such a session open on
   * it for good.
   */
  _askWhetherHeartbeatsAreAnswered() {
    if (!this.session || this._heartbeatsAnswered || this._heartbeatProbed || !this._options.heartbeat.interval) return;
    if (this.state !== 'open' || this._phase !== 'established' || !this._ws || this._replay.length !== 0) return;
    this._heartbeatProbed = true;
    this._sendHeartbeat();
  }

  _onResumed(frame) {
    if (this._phase !== 'hello-resume') { this._fail(1002, 'unexpected Resumed'); return; }
    const s = frame.lastReceived;
    const lastSent = this._nextSeq - 1;
    if (typeof s !== 'number' || s > lastSent) { this._fail(1002, `Resumed with last received ${s} beyond the last sent ${lastSent}`); return; }
    this._clearTimer('handshake');
    const released = this._release(s);
    // Nobody could acknowledge while the link was down: that time does not count toward replay.maxAge (as in .NET).
    const down = this._linkLostAt == null ? 0 : this._clock.now() - this._linkLostAt;
    for (const entry of this._replay) entry.appendedAt += down;
    // We must still hold every message after S: the replay buffer starts at S+1 (or everything after S was acked).
    const first = this._replay.length ? this._replay[0].seq : this._nextSeq;
    if (first > s + 1) {
      // The server wants messages we no longer hold: tell it, report, and start a new session on this socket.
      // Every message of ours after S is lost with the session (5.6): those no longer held and those still held alike.
      const lostFirst = s + 1;
      const lostCount = this._nextSeq - lostFirst;
      this._sendFrame({ type: 'sessionlost', reason: SessionLostReason.ReplayUnavailable, lastReceived: this._lastDelivered, lostFirst, lostCount });
      const held = this._replay.map((e) => e.data);
      this._sessionLost({ reason: 'replay-unavailable', reasonCode: SessionLostReason.ReplayUnavailable, initiator: 'client', lastReceived: s, lostFirst: 0, lostCount: 0, ownLost: { first: lostFirst, count: lostCount, messages: held } }, () => this._startNewSession());
      return;
    }
    this._established();
    const replayCount = this._replay.length;
    this.state = 'open';
    this._unackedSince = null;
    for (const entry of this._replay) this._writeData(entry);
    this.stats.replayedOut += replayCount;
    const ws = this._ws;
    this._emit('resumed', { sessionId: this.sessionId, replayedByServer: frame.replayCount, replayedByClient: replayCount, serverLastReceived: s });
    if (ws !== this._ws || this.state !== 'open') return; // a listener closed the socket
    // What the Resumed acknowledged is confirmed as an Ack frame's would be: an application that confirms delivery by
    // 'ack' events would otherwise never hear of those messages.
    if (released > 0) this._emit('ack', { ack: s, released });
    if (ws !== this._ws || this.state !== 'open') return;
    this._becameOpen({ resumed: true, sessionId: this.sessionId });
  }

  /**
   * Forgets a lost session (sequence numbers restart with the next Welcome), runs `next` (the new session's Hello), and
   * only then reports the loss to the application: a listener that sends the messages again (as the event invites)
   * finds the old session gone, so they wait in the queue and go into the new one, not onto the old session's numbers.
   */
  _sessionLost({ reason, reasonCode, initiator, lastReceived, lostFirst, lostCount, ownLost }, next) {
    const entries = this._replay;
    const pick = (list) => ({
      first: list.length ? list[0].seq : 0,
      count: list.length,
      messages: list.map((e) => e.data),
    });
    // With a record (the peer stated its last received), our messages after it certainly did not reach its
    // application and those up to it certainly did (they are in neither list); without one (not found, refused) they
    // are unconfirmed: they may or may not have been handled.
    const hasRecord = initiator === 'server' && reasonCode != null && reason !== 'not-found' && reason !== 'unknown' && typeof lastReceived === 'number';
    const undelivered = hasRecord ? entries.filter((e) => e.seq > lastReceived) : [];
    const unconfirmed = hasRecord ? [] : entries;
    const lost = {
      reason,
      reasonCode,
      initiator,
      sessionId: this.sessionId,
      lostIncoming: initiator === 'server' ? { first: lostFirst, count: lostCount } : { first: 0, count: 0 },
      undelivered: ownLost ? { first: ownLost.first, count: ownLost.count, messages: ownLost.messages } : pick(undelivered),
      unconfirmed: ownLost ? pick([]) : pick(unconfirmed),
      lastDelivered: this._lastDelivered,
    };
    this._sessionId = null;
    this._token = null;
    this._resetSequences();
    next?.();
    this._emit('sessionlost', lost);
  }

  _startNewSession() {
    this._ignoreUntilWelcome = true;
    this._clearTimer('heartbeat');
    this._clearTimer('ack');
    this._phase = 'hello-new';
    this._sendFrame({ type: 'hello', version: PROTOCOL_VERSION, resume: false });
    const ws = this._ws;
    if (this._options.handshakeTimeout) this._setTimer('handshake', this._options.handshakeTimeout, () => this._drop(ws, 1006, 'handshake timeout'));
  }

  /** Handles an acknowledgement; false when it was a protocol error (the socket is then gone). */
  _onAck(ack) {
    const lastSent = this._nextSeq - 1;
    if (typeof ack !== 'number' || ack > lastSent) { this._fail(1002, `ack ${ack} beyond the last sent ${lastSent}`); return false; }
    if (ack <= this._ackReceived) return true;
    const released = this._release(ack);
    this._emit('ack', { ack, released });
    this._flush();
    this._askWhetherHeartbeatsAreAnswered();
    return true;
  }

  _release(ack) {
    if (ack <= this._ackReceived) return 0;
    this._ackReceived = ack;
    let n = 0;
    while (this._replay.length && this._replay[0].seq <= ack) {
      this._replayBytes -= this._replay.shift().size;
      n++;
    }
    this._unackedSince = this._replay.length ? this._replay[0].sentAt : null;
    this._armLiveness();
    return n;
  }

  _onData(frame) {
    const s = frame.seq;
    const expected = this._lastDelivered + 1;
    if (typeof s !== 'number' || s > expected) { this._fail(1002, `sequence gap: got ${s}, expected ${expected}`); return; }
    if (s < expected) { this.stats.duplicatesDropped++; return; }
    let data;
    if (frame.text) {
      try { data = utf8Decoder.decode(frame.payload); } catch { this._fail(1007, 'invalid UTF-8 in a text message'); return; }
    } else {
      data = frame.payload.buffer.byteLength === frame.payload.byteLength ? frame.payload.buffer : frame.payload.slice().buffer;
    }
    this._lastDelivered = s;
    this.stats.messagesReceived++;
    this._carried = true;
    const ws = this._ws;
    this._emit('message', { data, seq: s });
    if (ws !== this._ws || this._phase !== 'established') return; // a listener closed the socket
    if (this._ackSent >= s) return; // a listener's reply carried the ack already
    // Acknowledge what the application was handed: batched by count, bytes or delay.
    this._unackedMessages++;
    this._unackedBytes += frame.payload.byteLength;
    const a = this._options.ack;
    const half = this._serverReplay ? Math.max(1, Math.floor(this._serverReplay.messages / 2)) : Infinity;
    const halfBytes = this._serverReplay ? Math.max(1, Math.floor(this._serverReplay.bytes / 2)) : Infinity;
    if (this._unackedMessages >= Math.min(a.messages, half) || this._unackedBytes >= Math.min(a.bytes, halfBytes) || !a.delay) {
      this._sendAck();
    } else if (!this._timers.has('ack')) {
      this._setTimer('ack', a.delay, () => { if (this._ws && this._phase === 'established') this._sendAck(); });
    }
  }

  _sendAck() {
    this._sendFrame({ type: 'ack', ack: this._lastDelivered });
    this._ackSent = this._lastDelivered;
    this._unackedMessages = 0;
    this._unackedBytes = 0;
    this._clearTimer('ack');
  }

  /**
   * A queue waiting for room in a full replay buffer looks again when the oldest message reaches replay.maxAge: else a
   * server that stays connected and answers heartbeats but never acknowledges held the queue, and its senders, for as
   * long as the socket lived (5.8; the .NET client's wait for room ends the same way).
   */
  _armReplayAge() {
    const maxAge = this._options.replay.maxAge;
    if (maxAge == null || this._replay.length === 0) return;
    this._setTimer('replayAge', Math.max(0, this._replay[0].appendedAt + maxAge - this._clock.now()) + 1, () => this._flush());
  }

  /** Whether the oldest unacknowledged message is older than replay.maxAge (5.8). */
  _replayExpired() {
    const maxAge = this._options.replay.maxAge;
    return maxAge != null && this._replay.length > 0 && this._clock.now() - this._replay[0].appendedAt > maxAge;
  }

  /**
   * A message stayed unacknowledged longer than replay.maxAge: the session ends with SessionLost 04 (5.8), as the .NET
   * client's does, checked as the next message would be numbered. The server may or may not have handled what it did
   * not acknowledge: reported unconfirmed. A new session starts on this socket; the queued messages go into it.
   */
  _expireSession() {
    const lostFirst = this._replay[0].seq;
    const lostCount = this._nextSeq - lostFirst;
    this._sendFrame({ type: 'sessionlost', reason: SessionLostReason.Expired, lastReceived: this._lastDelivered, lostFirst, lostCount });
    this._sessionLost({ reason: 'expired', reasonCode: SessionLostReason.Expired, initiator: 'client', lastReceived: null, lostFirst: 0, lostCount: 0 },
      () => this._startNewSession());
  }

  _sendData(item) {
    const entry = { seq: this._nextSeq++, text: item.text, bytes: item.bytes, size: item.size, data: item.data, sentAt: 0, appendedAt: this._clock.now() };
    this._replay.push(entry);
    this._replayBytes += entry.size;
    this._writeData(entry);
    this.stats.messagesSent++;
  }

  _writeData(entry) {
    entry.sentAt = this._clock.now();
    this._heartbeatAsked = false; // an Ack from now on may acknowledge this, not answer a heartbeat
    this._sendFrame({ type: 'data', seq: entry.seq, ack: this._lastDelivered, text: entry.text, payload: entry.bytes });
    this._ackSent = this._lastDelivered;
    this._unackedMessages = 0;
    this._unackedBytes = 0;
    this._clearTimer('ack');
    if (this._unackedSince == null) {
      this._unackedSince = entry.sentAt;
      this._armLiveness();
    }
  }
}
