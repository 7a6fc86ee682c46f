import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { encodeVarint, decodeVarint, encodeFrame, decodeFrame, FrameError, toHex } from '../lifeline.js';

const hex = (s) => Uint8Array.from(s.trim().split(/\s+/).filter(Boolean).map((b) => parseInt(b, 16)));
const show = (bytes) => toHex(bytes).toUpperCase().replace(/(..)(?!$)/g, '$1 ');
const range = (from, n) => Uint8Array.from({ length: n }, (_, i) => from + i);

// docs/protocol.md 5.10: the example session's ids and tokens.
const SESSION_ID = range(0x00, 16);
const TOKEN = range(0x20, 32);

function roundTrip(hexText, frame) {
  const bytes = hex(hexText);
  assert.equal(show(encodeFrame(frame)), show(bytes), `encode ${frame.type}`);
  assert.deepEqual(decodeFrame(bytes), frame, `decode ${hexText}`);
}

describe('varint', () => {
  test('encodeVarint_ProtocolExamples_MatchByteForByte', () => {
    const cases = [[0, '00'], [5, '05'], [127, '7F'], [128, '80 01'], [300, 'AC 02'], [120000, 'C0 A9 07'],
      [(1n << 63n) - 1n, 'FF FF FF FF FF FF FF FF 7F']];
    for (const [value, bytes] of cases) {
      assert.equal(show(encodeVarint(value)), bytes, String(value));
      assert.deepEqual(decodeVarint(hex(bytes)), { value, next: hex(bytes).length });
    }
  });

  test('decodeVarint_AroundTwoTo53_NumberThenBigInt', () => {
    const safe = Number.MAX_SAFE_INTEGER;
    assert.equal(decodeVarint(encodeVarint(safe)).value, safe);
    assert.equal(decodeVarint(encodeVarint(BigInt(safe) + 1n)).value, BigInt(safe) + 1n);
    assert.equal(decodeVarint(encodeVarint(2 ** 49)).value, 2 ** 49);
    assert.equal(show(encodeVarint(BigInt(safe))), show(encodeVarint(safe)));
  });

  test('decodeVarint_LongerForms_AcceptedWithin10Bytes', () => {
    assert.deepEqual(decodeVarint(hex('80 00')), { value: 0, next: 2 });
    assert.deepEqual(decodeVarint(hex('85 80 80 80 80 80 80 80 80 00')), { value: 5, next: 10 });
    assert.deepEqual(decodeVarint(hex('FF FF FF FF FF FF FF FF FF 01')).value, (1n << 64n) - 1n);
    assert.deepEqual(decodeVarint(hex('AA AC 02'), 1), { value: 300, next: 3 });
  });

  test('decodeVarint_Malformed_Throws1002', () => {
    for (const bad of ['', '80', 'FF FF', '80 80 80 80 80 80 80 80 80 02', '80 80 80 80 80 80 80 80 80 80 00']) {
      assert.throws(() => decodeVarint(hex(bad)), (e) => e instanceof FrameError && e.code === 1002, bad);
    }
  });

  test('encodeVarint_BadValues_Throw', () => {
    assert.throws(() => encodeVarint(-1), RangeError);
    assert.throws(() => encodeVarint(1.5), RangeError);
    assert.throws(() => encodeVarint(2 ** 53), RangeError);
    assert.throws(() => encodeVarint(1n << 64n), RangeError);
  });
});

describe('frames: docs/protocol.md 5.10 byte for byte', () => {
  test('Hello_New_RoundTrips', () => roundTrip('01 01 00', { type: 'hello', version: 1, resume: false }));

  test('Welcome_RoundTrips', () => roundTrip(`02 01
      00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F
      20 21 22 23 24 25 26 27 28 29 2A 2B 2C 2D 2E 2F
      30 31 32 33 34 35 36 37 38 39 3A 3B 3C 3D 3E 3F
      C0 A9 07  80 80 40  90 4E  80 80 40`, {
    type: 'welcome', version: 1, sessionId: SESSION_ID, token: TOKEN, resumeWindowMs: 120000,
    maxFrameBytes: 1048576, replayMaxMessages: 10000, replayMaxBytes: 1048576,
  }));

  test('Data_Binary_RoundTrips', () => roundTrip('06 01 00 68 69', { type: 'data', seq: 1, ack: 0, text: false, payload: hex('68 69') }));
  test('Data_Text_RoundTrips', () => {
    roundTrip('07 01 01 6F 6B', { type: 'data', seq: 1, ack: 1, text: true, payload: hex('6F 6B') });
    roundTrip('07 02 01 6F 6B 32', { type: 'data', seq: 2, ack: 1, text: true, payload: hex('6F 6B 32') });
    assert.equal(show(encodeFrame({ type: 'data', seq: 300, ack: 5, text: true, payload: 'hello' })), '07 AC 02 05 68 65 6C 6C 6F');
    roundTrip('07 AC 02 05 68 65 6C 6C 6F', { type: 'data', seq: 300, ack: 5, text: true, payload: hex('68 65 6C 6C 6F') });
  });
  test('Data_EmptyPayload_RoundTrips', () => roundTrip('06 02 02', { type: 'data', seq: 2, ack: 2, text: false, payload: new Uint8Array(0) }));
  test('Data_Resent_RoundTrips', () => roundTrip('06 02 02 FF', { type: 'data', seq: 2, ack: 2, text: false, payload: hex('FF') }));

  test('Ack_RoundTrips', () => {
    roundTrip('05 02', { type: 'ack', ack: 2 });
    roundTrip('05 AC 02', { type: 'ack', ack: 300 });
  });

  test('Hello_Resume_RoundTrips', () => {
    const bytes = `01 01 01 ${show(SESSION_ID)} ${show(TOKEN)} 02`;
    roundTrip(bytes, { type: 'hello', version: 1, resume: true, sessionId: SESSION_ID, token: TOKEN, lastReceived: 2 });
  });

  test('Resumed_RoundTrips', () => {
    roundTrip('03 01 00', { type: 'resumed', lastReceived: 1, replayCount: 0 });
    roundTrip('03 29 03', { type: 'resumed', lastReceived: 41, replayCount: 3 });
  });

  test('SessionLost_RoundTrips', () => {
    roundTrip('04 01 00 00 00', { type: 'sessionlost', reason: 1, lastReceived: 0, lostFirst: 0, lostCount: 0 });
    roundTrip('04 02 11 05 05', { type: 'sessionlost', reason: 2, lastReceived: 17, lostFirst: 5, lostCount: 5 });
  });

  test('decodeFrame_AcceptsArrayBuffer', () => {
    assert.deepEqual(decodeFrame(hex('05 02').buffer), { type: 'ack', ack: 2 });
  });
});

describe('frames: malformed input closes with 1002 (or 1009)', () => {
  const bad = {
    'empty message': '',
    'unknown type 00': '00',
    'unknown type 08': '08 01',
    'Hello version 0': '01 00 00',
    'Hello mode 02': '01 01 02',
    'Hello truncated id': '01 01 01 00 01 02',
    'Hello trailing byte': '01 01 00 00',
    'Welcome max frame 0': `02 01 ${show(SESSION_ID)} ${show(TOKEN)} 00 00 01 01`,
    'Welcome window above 2^32-1': `02 01 ${show(SESSION_ID)} ${show(TOKEN)} 80 80 80 80 10 01 01 01`,
    'Welcome replay bytes 0': `02 01 ${show(SESSION_ID)} ${show(TOKEN)} 00 01 01 00`,
    'Resumed truncated': '03 01',
    'SessionLost reason 0': '04 00 00 00 00',
    'SessionLost range starting at 0': '04 02 00 00 03',
    'SessionLost empty range not at 0': '04 02 00 05 00',
    'Ack trailing byte': '05 01 00',
    'Ack above 2^63-1': '05 80 80 80 80 80 80 80 80 80 01',
    'Data sequence 0': '06 00 00 68',
    'Data truncated ack': '07 01',
  };
  for (const [name, bytes] of Object.entries(bad)) {
    test(`decodeFrame_${name.replace(/\W+/g, '_')}_Throws1002`, () => {
      assert.throws(() => decodeFrame(hex(bytes)), (e) => e instanceof FrameError && e.code === 1002);
    });
  }

  test('decodeFrame_LongerThanLimit_Throws1009', () => {
    assert.throws(() => decodeFrame(hex('06 01 00 01 02 03'), 5), (e) => e instanceof FrameError && e.code === 1009);
    assert.equal(decodeFrame(hex('06 01 00 01 02'), 5).seq, 1);
  });

  test('encodeFrame_BadFields_Throw', () => {
    assert.throws(() => encodeFrame({ type: 'data', seq: 0, ack: 0, payload: new Uint8Array(0) }), RangeError);
    assert.throws(() => encodeFrame({ type: 'hello', version: 1, resume: true, sessionId: new Uint8Array(15), token: TOKEN, lastReceived: 0 }), RangeError);
    assert.throws(() => encodeFrame({ type: 'sessionlost', reason: 2, lastReceived: 0, lostFirst: 0, lostCount: 2 }), RangeError);
    assert.throws(() => encodeFrame({ type: 'ack', ack: 1n << 63n }), RangeError);
    assert.throws(() => encodeFrame({ type: 'nope' }), TypeError);
  });
});
