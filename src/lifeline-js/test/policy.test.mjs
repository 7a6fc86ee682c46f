import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  nextDelay, reactionFor, defaultReaction, resolveReconnectOptions, exponentialDelay, DEFAULT_RECONNECT_OPTIONS,
} from '../lifeline.js';

// A random source that always returns r, so full jitter gives r × capped exactly.
const fixed = (r) => () => r;
const ctx = (over) => ({ attempt: 1, elapsed: 0, kind: 'closed', code: 1006, reason: '', ...over });

describe('nextDelay', () => {
  test('nextDelay_1006_FullJitterOverExponentialBackoff', () => {
    // delay = random × min(cap, 1 s × 2^(attempt-1))
    assert.equal(nextDelay(ctx({ attempt: 1 }), undefined, fixed(0.5)), 500);
    assert.equal(nextDelay(ctx({ attempt: 2 }), undefined, fixed(0.5)), 1000);
    assert.equal(nextDelay(ctx({ attempt: 4 }), undefined, fixed(0.5)), 4000);
    assert.equal(nextDelay(ctx({ attempt: 4 }), undefined, fixed(0)), 0);
    assert.equal(nextDelay(ctx({ attempt: 4 }), undefined, fixed(0.999)), 7992);
  });

  test('nextDelay_1011_BackoffCappedAt30s', () => {
    assert.equal(nextDelay(ctx({ code: 1011, attempt: 6 }), undefined, fixed(0.5)), 15_000);
    assert.equal(nextDelay(ctx({ code: 1011, attempt: 7 }), undefined, fixed(0.5)), 15_000); // 64 s capped to 30 s
    assert.equal(nextDelay(ctx({ code: 1011, attempt: 5000 }), undefined, fixed(1 - 2 ** -53)) <= 30_000, true); // no overflow
  });

  test('nextDelay_BackoffCodes_EveryCatalogueEntryAndRangeBacksOff', () => {
    for (const code of [1004, 1005, 1006, 1011, 1014, 3008, 1016, 2999, 3001, 4000, 4008, 4999]) {
      assert.equal(nextDelay(ctx({ code, attempt: 2 }), undefined, fixed(0.25)), 500, `code ${code}`);
    }
  });

  test('nextDelay_1006_HintLengthensButNeverShortensBackoff', () => {
    assert.equal(nextDelay(ctx({ attempt: 3, reason: 'retry-after-ms=9000' }), undefined, fixed(0.5)), 9000);
    assert.equal(nextDelay(ctx({ attempt: 3, reason: 'retry-after-ms=0' }), undefined, fixed(0.5)), 2000);
  });

  test('nextDelay_1012_UsesHintClampedToBounds', () => {
    assert.equal(nextDelay(ctx({ code: 1012, reason: 'Service Restart; retry-after-ms=2350' }), undefined, fixed(0.9)), 2350);
    assert.equal(nextDelay(ctx({ code: 1012, reason: 'retry-after-ms=5' }), undefined, fixed(0.9)), 100); // min hint 100 ms
    assert.equal(nextDelay(ctx({ code: 1012, reason: 'retry-after-ms=600000' }), undefined, fixed(0.9)), 60_000); // max hint 60 s
    assert.equal(nextDelay(ctx({ code: 1012, hint: 1234 }), undefined, fixed(0.9)), 1234); // an explicit hint wins
  });

  test('nextDelay_1012Or1001WithoutHint_SoonDelayBetween1And5s', () => {
    for (const code of [1012, 1001]) {
      assert.equal(nextDelay(ctx({ code }), undefined, fixed(0)), 1000);
      assert.equal(nextDelay(ctx({ code }), undefined, fixed(0.5)), 3000);
      assert.equal(nextDelay(ctx({ code, attempt: 9 }), undefined, fixed(0.5)), 3000); // no growth with attempts
    }
  });

  test('nextDelay_1013_TheLargerBasePlusTheJitteredBackoff', () => {
    assert.equal(nextDelay(ctx({ code: 1013, attempt: 1 }), undefined, fixed(0.1)), 5500); // 5 s + 0.1 × 5 s
    assert.equal(nextDelay(ctx({ code: 1013, attempt: 3 }), undefined, fixed(0.5)), 15_000); // 5 s + 0.5 × 20 s
    assert.equal(nextDelay(ctx({ code: 1013, attempt: 9 }), undefined, fixed(0.5)), 20_000); // 5 s + 0.5 × 30 s (capped)
  });

  test('nextDelay_1013_ClientsShedTogetherComeBackSpreadOut', () => {
    const delays = [0.05, 0.2, 0.4, 0.6, 0.8, 0.95].map((r) => nextDelay(ctx({ code: 1013, attempt: 1 }), undefined, fixed(r)));
    assert.ok(delays.every((d) => d >= 5000), `${delays} has a delay below the 5 s base`);
    assert.equal(new Set(delays).size, delays.length, `${delays} repeats a delay`);
  });

  test('nextDelay_1013_HintOnlyLengthens', () => {
    assert.equal(nextDelay(ctx({ code: 1013, attempt: 1, reason: 'busy; retry-after-ms=12000' }), undefined, fixed(0.1)), 12_000);
    assert.equal(nextDelay(ctx({ code: 1013, attempt: 3, reason: 'busy; retry-after-ms=200' }), undefined, fixed(0.5)), 15_000);
  });

  test('nextDelay_StopCodes_ReturnNullEvenWithHint', () => {
    for (const code of [1000, 1002, 1003, 1007, 1008, 1009, 1010, 1015, 3000, 3003, 999, 5000]) {
      assert.equal(nextDelay(ctx({ code, reason: 'retry-after-ms=1000' }), undefined, fixed(0.5)), null, `code ${code}`);
    }
  });

  test('nextDelay_RefusedConnectDuringAnnouncedRestart_CeilingGrowsWithTimeSinceTheLoss', () => {
    const refused = { kind: 'connect-failed', code: 1006, outageCode: 1012, attempt: 5 };
    assert.equal(nextDelay(ctx({ ...refused, elapsed: 10_000 }), undefined, fixed(0)), 250);
    assert.equal(nextDelay(ctx({ ...refused, elapsed: 10_000 }), undefined, fixed(0.5)), 1625);
    // up to 1 s for the first second (whatever the attempt number), then the time since the loss, up to 3 s
    assert.equal(nextDelay(ctx({ ...refused, attempt: 7, elapsed: 800 }), undefined, fixed(1)), 1000);
    assert.equal(nextDelay(ctx({ ...refused, elapsed: 2000 }), undefined, fixed(1)), 2000);
    assert.equal(nextDelay(ctx({ ...refused, elapsed: 6000 }), undefined, fixed(1)), 3000);
    assert.equal(nextDelay(ctx({ ...refused, elapsed: 20_000 }), undefined, fixed(1)), 3000);
    // after the restart window: ordinary backoff for attempt 5 (0.5 × 16 s)
    assert.equal(nextDelay(ctx({ ...refused, elapsed: 30_000 }), undefined, fixed(0.5)), 8000);
    // refused after a 1006 outage: backoff
    assert.equal(nextDelay(ctx({ ...refused, outageCode: 1006, elapsed: 1000 }), undefined, fixed(0.5)), 8000);
  });

  test('nextDelay_RefusedConnect_RestartScheduleOnlyAfterTheCodesThatAnnounceARestart', () => {
    // protocol.md 3: "within 30 s of a 1012 or 1001", as the .NET client does; a code the application maps to 'soon'
    // announces no restart. Before, such a code (and not a 1012 mapped to 'backoff') put refused connects on it.
    const refused = { kind: 'connect-failed', code: 1006, attempt: 5, elapsed: 2000 };
    assert.equal(nextDelay(ctx({ ...refused, outageCode: 4500 }), { codeReactions: { 4500: 'soon' } }, fixed(0.5)), 8000);
    assert.equal(nextDelay(ctx({ ...refused, outageCode: 1012 }), { codeReactions: { 1012: 'backoff' } }, fixed(1)), 2000);
  });

  test('nextDelay_ConnectFailed_BacksOffEvenAfterStopOutage', () => {
    assert.equal(nextDelay(ctx({ kind: 'connect-failed', code: 1006, attempt: 2 }), undefined, fixed(0.5)), 1000);
  });

  test('nextDelay_MaxAttemptsAndMaxElapsed_Stop', () => {
    const o = { maxAttempts: 3, maxElapsed: 60_000 };
    assert.equal(nextDelay(ctx({ attempt: 3 }), o, fixed(0.5)), 2000);
    assert.equal(nextDelay(ctx({ attempt: 4 }), o, fixed(0.5)), null);
    assert.equal(nextDelay(ctx({ attempt: 1, elapsed: 60_000 }), o, fixed(0.5)), null);
  });

  test('nextDelay_CodeReactionsOverride_Applies', () => {
    const o = { codeReactions: { 4001: 'stop', 1000: 'backoff', 4100: 'soon' } };
    assert.equal(nextDelay(ctx({ code: 4001 }), o, fixed(0.5)), null);
    assert.equal(nextDelay(ctx({ code: 1000, attempt: 2 }), o, fixed(0.5)), 1000);
    assert.equal(nextDelay(ctx({ code: 4100 }), o, fixed(0.5)), 3000);
  });

  test('nextDelay_DecorrelatedAndNoJitter_FollowTheDotNetMaths', () => {
    assert.equal(nextDelay(ctx({ attempt: 3 }), { jitter: 'none' }, fixed(0.5)), 4000);
    // decorrelated: random in [base, min(cap, 3 × previous)]
    assert.equal(nextDelay(ctx({ attempt: 3, previousDelay: 4000 }), { jitter: 'decorrelated' }, fixed(0.5)), 6500);
    assert.equal(nextDelay(ctx({ attempt: 3, previousDelay: 20_000 }), { jitter: 'decorrelated' }, fixed(1)), 30_000);
  });
});

describe('reactions and options', () => {
  test('defaultReaction_MatchesCatalogue', () => {
    const expected = {
      1000: 'stop', 1001: 'soon', 1002: 'stop', 1003: 'stop', 1004: 'backoff', 1005: 'backoff', 1006: 'backoff',
      1007: 'stop', 1008: 'stop', 1009: 'stop', 1010: 'stop', 1011: 'backoff', 1012: 'soon', 1013: 'backoff',
      1014: 'backoff', 1015: 'stop', 3000: 'stop', 3003: 'stop', 3008: 'backoff', 1100: 'backoff', 3500: 'backoff',
      4500: 'backoff', 500: 'stop', 6000: 'stop',
    };
    for (const [code, reaction] of Object.entries(expected)) assert.equal(defaultReaction(Number(code)), reaction, `code ${code}`);
  });

  test('reactionFor_ConnectFailed_IsBackoff', () => {
    assert.equal(reactionFor({ kind: 'connect-failed', code: 1006 }), 'backoff');
  });

  test('resolveReconnectOptions_DefaultsMirrorDotNet', () => {
    const o = resolveReconnectOptions();
    assert.equal(o.baseDelay, 1000);
    assert.equal(o.multiplier, 2);
    assert.equal(o.maxDelay, 30_000);
    assert.equal(o.jitter, 'full');
    assert.equal(o.tryAgainLaterBaseDelay, 5000);
    assert.deepEqual([o.soonMinDelay, o.soonMaxDelay], [1000, 5000]);
    assert.deepEqual([o.minHintDelay, o.maxHintDelay], [100, 60_000]);
    assert.deepEqual([o.restartWindow, o.restartRetryMinDelay, o.restartRetryMaxDelay], [30_000, 250, 3000]);
    assert.equal(o.maxAttempts, null);
    assert.equal(o.maxElapsed, null);
    assert.equal(DEFAULT_RECONNECT_OPTIONS.stablePeriod, 10_000);
  });

  test('resolveReconnectOptions_BadValues_ThrowNamingTheOption', () => {
    assert.throws(() => resolveReconnectOptions({ baseDelay: 0 }), /baseDelay/);
    assert.throws(() => resolveReconnectOptions({ multiplier: 0.5 }), /multiplier/);
    assert.throws(() => resolveReconnectOptions({ soonMinDelay: 6000 }), /soonMinDelay/);
    assert.throws(() => resolveReconnectOptions({ baseDelay: 40_000 }), /baseDelay/);
    assert.throws(() => resolveReconnectOptions({ maxAttempts: 0 }), /maxAttempts/);
    assert.throws(() => resolveReconnectOptions({ jitter: 'half' }), /jitter/);
    assert.throws(() => resolveReconnectOptions({ codeReactions: { 4001: 'later' } }), /codeReactions/);
  });

  test('exponentialDelay_HugeAttempt_ReturnsCap', () => {
    assert.equal(exponentialDelay(100_000, 1000, 2, 30_000), 30_000);
    assert.equal(exponentialDelay(1, 1000, 2, 30_000), 1000);
  });
});
