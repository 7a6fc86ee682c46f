import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRetryHint, formatRetryHint } from '../lifeline.js';

test('parseRetryHint_ServerFormat_ReadsMilliseconds', () => {
  assert.equal(parseRetryHint('Service Restart; retry-after-ms=2350'), 2350);
  assert.equal(parseRetryHint('retry-after-ms=0'), 0);
  assert.equal(parseRetryHint('x, retry-after-ms=15 then'), 15);
});

test('parseRetryHint_NameIsCaseInsensitive', () => {
  assert.equal(parseRetryHint('Retry-After-MS=700'), 700);
});

test('parseRetryHint_NoToken_ReturnsNull', () => {
  for (const reason of [null, undefined, '', 'Service Restart', 'retry-after-ms=', 'retry-after-ms=abc']) {
    assert.equal(parseRetryHint(reason), null, String(reason));
  }
});

test('parseRetryHint_TokenInsideAWord_IsIgnored', () => {
  assert.equal(parseRetryHint('xretry-after-ms=10'), null);
  assert.equal(parseRetryHint('9retry-after-ms=10'), null);
  assert.equal(parseRetryHint('xretry-after-ms=10 retry-after-ms=20'), 20);
});

test('parseRetryHint_DigitsFollowedByLetter_IsNotAToken', () => {
  assert.equal(parseRetryHint('retry-after-ms=12s'), null);
  assert.equal(parseRetryHint('retry-after-ms=12s; retry-after-ms=40'), 40); // the first valid one counts
  assert.equal(parseRetryHint('retry-after-ms=12.5'), 12); // a dot ends the digits
});

test('parseRetryHint_AboveOneDay_ReadAsOneDay', () => {
  assert.equal(parseRetryHint('retry-after-ms=86400001'), 86_400_000);
  assert.equal(parseRetryHint('retry-after-ms=99999999999999999999999'), 86_400_000);
  assert.equal(parseRetryHint('retry-after-ms=000000000000042'), 42);
});

test('formatRetryHint_RoundTrips', () => {
  assert.equal(formatRetryHint(2350, 'Service Restart'), 'Service Restart; retry-after-ms=2350');
  assert.equal(parseRetryHint(formatRetryHint(1234.9)), 1234);
});

test('parseRetryHint_NonAsciiTextBeforeTheHint_StillFound', () => {
  // Lower-casing 'İ' gives two code units: positions in a fully lower-cased copy drift from the original's.
  assert.equal(parseRetryHint('İ; retry-after-ms=2000'), 2000);
  assert.equal(parseRetryHint('Redémarrage ÉTÉ; Retry-After-Ms=1500'), 1500);
});

test('formatRetryHint_LongTextOrNoNumber_FitsACloseReasonOrThrows', () => {
  const reason = formatRetryHint(2350, 'é'.repeat(100));
  assert.ok(new TextEncoder().encode(reason).length <= 123, reason);
  assert.ok(reason.endsWith('; retry-after-ms=2350'), reason);
  assert.equal(parseRetryHint(reason), 2350);
  assert.throws(() => formatRetryHint(Number.NaN), RangeError); // before: 'retry-after-ms=NaN'
});
