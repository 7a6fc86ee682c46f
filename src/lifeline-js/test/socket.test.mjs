import { test, describe, beforeEach, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';
import { LifelineSocket, SendQueueFullError, SocketClosedError } from '../lifeline.js';
import { fakeWebSocketClass } from './fake-websocket.mjs';

const EVENTS = ['open', 'message', 'close', 'reconnecting', 'resumed', 'sessionlost', 'ack', 'drop', 'error'];

beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 }));
afterEach(() => mock.timers.reset());

function setup(options = {}) {
  const Fake = fakeWebSocketClass();
  const events = [];
  const socket = new LifelineSocket({ url: 'ws://127.0.0.1/ws', WebSocket: Fake, random: () => 0.5, onlineTarget: null, ...options });
  for (const type of EVENTS) socket.addEventListener(type, (e) => events.push(e));
  const of = (type) => events.filter((e) => e.type === type);
  return { socket, Fake, events, of, ws: () => Fake.instances.at(-1) };
}

describe('LifelineSocket, plain mode', () => {
  test('send_WhileConnecting_QueuedAndFlushedInOrderOnOpen', () => {
    const { socket, ws, of } = setup({ protocols: 'chat' });
    assert.deepEqual(ws().protocols, ['chat']);
    assert.equal(ws().binaryType, 'arraybuffer');
    socket.send('a');
    socket.send(Uint8Array.of(1, 2));
    assert.equal(socket.queuedMessages, 2);
    ws().open();
    assert.equal(of('open').length, 1);
    assert.equal(of('open')[0].reconnected, false);
    assert.deepEqual(ws().sent, ['a', Uint8Array.of(1, 2)]);
    socket.send('b');
    assert.equal(ws().sent.at(-1), 'b');
    assert.equal(socket.queuedMessages, 0);
  });

  test('message_FromServer_DispatchedWithData', () => {
    const { ws, of } = setup();
    ws().open();
    ws().receive('hello');
    ws().receive(Uint8Array.of(9).buffer);
    assert.deepEqual(of('message').map((e) => e.data), ['hello', Uint8Array.of(9).buffer]);
  });

  test('close1006_AfterMessages_BackoffAttempt1WithFullJitter', () => {
    const { ws, of, Fake, socket } = setup();
    ws().open();
    ws().receive('x');
    mock.timers.tick(1_000); // carried a message and stayed up a tenth of the stable period
    ws().serverClose(1006, '', false);
    const close = of('close')[0];
    assert.deepEqual([close.code, close.wasClean, close.willReconnect, close.delay], [1006, false, true, 500]);
    assert.deepEqual([of('reconnecting')[0].attempt, of('reconnecting')[0].delay, of('reconnecting')[0].code], [1, 500, 1006]);
    assert.equal(socket.state, 'reconnecting');
    mock.timers.tick(499);
    assert.equal(Fake.instances.length, 1);
    mock.timers.tick(1);
    assert.equal(Fake.instances.length, 2);
    ws().open();
    assert.equal(of('open')[1].reconnected, true);
  });

  test('close1006_RepeatedFailures_DelayGrows', () => {
    const { ws, of } = setup();
    ws().open();
    ws().serverClose(1006, '', false); // dropped at once, no message: a failed attempt (attempt 2)
    assert.equal(of('reconnecting')[0].delay, 1000);
    mock.timers.tick(1000);
    ws().refuse(); // attempt 3
    assert.equal(of('reconnecting')[1].delay, 2000);
    mock.timers.tick(2000);
    ws().refuse(); // attempt 4
    assert.deepEqual(of('reconnecting').map((e) => e.attempt), [2, 3, 4]);
    assert.equal(of('reconnecting')[2].delay, 4000);
  });

  test('close1011_GreetingThenClosedAtOnce_AttemptKeepsGrowing', () => {
    // A server that greets and closes at once (its database is down, say): the greeting must not make each connection a
    // success, or every client retries at attempt 1's delay for good.
    const { ws, of } = setup();
    ws().open();
    ws().receive('hello');
    ws().serverClose(1011, 'boom', true);
    mock.timers.tick(of('reconnecting')[0].delay);
    ws().open();
    ws().receive('hello');
    ws().serverClose(1011, 'boom', true);
    assert.deepEqual(of('reconnecting').map((e) => e.attempt), [2, 3]);
  });

  test('close1006_MessagesThenUpATenthOfTheStablePeriod_AttemptRestartsAt1', () => {
    const { ws, of } = setup();
    ws().open();
    ws().receive('x');
    mock.timers.tick(1_000);
    ws().serverClose(1006, '', false);
    assert.equal(of('reconnecting')[0].attempt, 1);
  });

  test('close1006_AfterStablePeriod_AttemptRestartsAt1', () => {
    const { ws, of } = setup();
    ws().open();
    mock.timers.tick(10_000);
    ws().serverClose(1011, 'boom', true);
    assert.equal(of('reconnecting')[0].attempt, 1);
    assert.equal(of('reconnecting')[0].delay, 500);
  });

  test('close1012_WithHint_ReconnectsAfterHintThenRefusedConnectsRetrySoon', () => {
    const { ws, of, Fake } = setup();
    ws().open();
    ws().receive('x');
    ws().serverClose(1012, 'Service Restart; retry-after-ms=2350');
    assert.equal(of('close')[0].delay, 2350);
    mock.timers.tick(2350);
    assert.equal(Fake.instances.length, 2);
    ws().refuse(); // the new process is not listening yet
    // 2.35 s after the loss the ceiling is 2.35 s: 250 + 0.5 × 2100, not a long backoff
    assert.equal(of('reconnecting')[1].delay, 1300);
    mock.timers.tick(1300);
    ws().open();
    assert.equal(of('open').length, 2);
  });

  test('close1013_WithoutHint_WaitsAtLeast5s', () => {
    const { ws, of } = setup({ random: () => 0.1 });
    ws().open();
    ws().receive('x');
    mock.timers.tick(1_000); // a success: attempt 1
    ws().serverClose(1013, 'busy');
    assert.equal(of('close')[0].delay, 5500); // the 5 s base plus 0.1 × 5 s
  });

  for (const code of [1000, 1008, 1002, 1003, 1007, 1009, 1010, 1015]) {
    test(`close${code}_Stops`, () => {
      const { ws, of, socket, Fake } = setup();
      ws().open();
      ws().serverClose(code, 'retry-after-ms=100');
      const close = of('close');
      assert.equal(close.length, 1);
      assert.deepEqual([close[0].code, close[0].willReconnect, close[0].delay], [code, false, null]);
      assert.equal(of('reconnecting').length, 0);
      assert.equal(socket.state, 'closed');
      mock.timers.tick(120_000);
      assert.equal(Fake.instances.length, 1);
      assert.throws(() => socket.send('x'), SocketClosedError);
    });
  }

  test('maxAttempts_Reached_Stops', () => {
    const { ws, of, socket } = setup({ reconnect: { maxAttempts: 2 } });
    ws().refuse(); // attempt 2 next
    mock.timers.tick(of('reconnecting')[0].delay);
    ws().refuse(); // attempt 3 > 2
    assert.equal(of('close').at(-1).willReconnect, false);
    assert.equal(socket.state, 'closed');
  });

  test('reconnectFunction_ReceivesContext', () => {
    const contexts = [];
    const { ws, of } = setup({ reconnect: (c) => { contexts.push(c); return 42; } });
    ws().open();
    ws().serverClose(1008, 'no');
    assert.equal(of('close')[0].delay, 42);
    assert.deepEqual([contexts[0].code, contexts[0].kind, contexts[0].reason], [1008, 'closed', 'no']);
  });

  test('onlineEvent_WhileWaiting_ReconnectsAtOnce', () => {
    const online = new EventTarget();
    const { ws, Fake } = setup({ onlineTarget: online });
    ws().open();
    ws().serverClose(1006, '', false);
    assert.equal(Fake.instances.length, 1);
    online.dispatchEvent(new Event('online'));
    assert.equal(Fake.instances.length, 2);
    mock.timers.tick(60_000);
    assert.equal(Fake.instances.length, 2); // the cancelled timer does not connect again
  });

  test('onlineEvent_WhileWaitingOnTheServersHint_DoesNotCutTheWaitShort', () => {
    // Before, `online` reconnected at once after a 1013 (or 1012) with a hint: every client back together at a server
    // that asked them to stay away.
    const online = new EventTarget();
    const { ws, Fake } = setup({ onlineTarget: online });
    ws().open();
    ws().serverClose(1013, 'busy; retry-after-ms=30000');
    online.dispatchEvent(new Event('online'));
    assert.equal(Fake.instances.length, 1);
    mock.timers.tick(60_000);
    assert.equal(Fake.instances.length, 2); // the hinted wait still ends in a reconnect
    ws().refuse(); // still shedding: the request stands through failed attempts
    online.dispatchEvent(new Event('online'));
    assert.equal(Fake.instances.length, 2);
  });

  test('signalAbort_WhileOpen_ClosesWith1000AndStops', () => {
    const controller = new AbortController();
    const { ws, of, socket } = setup({ signal: controller.signal });
    ws().open();
    controller.abort();
    assert.deepEqual(ws().closeCalls, [{ code: 1000, reason: 'aborted' }]);
    assert.equal(socket.state, 'closing');
    ws().serverClose(1000, 'aborted');
    assert.deepEqual([of('close')[0].code, of('close')[0].willReconnect], [1000, false]);
    assert.equal(socket.state, 'closed');
  });

  test('signalAbort_WhileWaitingToReconnect_StopsAtOnce', () => {
    const controller = new AbortController();
    const { ws, of, socket, Fake } = setup({ signal: controller.signal });
    ws().open();
    ws().serverClose(1006, '', false);
    controller.abort();
    assert.equal(socket.state, 'closed');
    assert.equal(of('close').at(-1).willReconnect, false);
    mock.timers.tick(60_000);
    assert.equal(Fake.instances.length, 1);
  });

  test('signalAlreadyAborted_NeverConnects', () => {
    const { socket, Fake } = setup({ signal: AbortSignal.abort() });
    assert.equal(socket.state, 'closed');
    assert.equal(Fake.instances.length, 0);
  });

  test('close_UserStop_NoReconnectAndCloseEvent', () => {
    const { ws, of, socket, Fake } = setup();
    ws().open();
    socket.close(4000, 'bye');
    assert.deepEqual(ws().closeCalls, [{ code: 4000, reason: 'bye' }]);
    ws().serverClose(4000, 'bye');
    assert.deepEqual([of('close')[0].code, of('close')[0].willReconnect], [4000, false]);
    mock.timers.tick(60_000);
    assert.equal(Fake.instances.length, 1);
    assert.throws(() => socket.close(1001), RangeError); // browsers only send 1000 and 3000-4999
  });

  test('close_PeerNeverAnswers_FinishesAfterCloseTimeout', () => {
    const { ws, of, socket } = setup();
    ws().open();
    socket.close();
    mock.timers.tick(5000);
    assert.equal(socket.state, 'closed');
    assert.deepEqual([of('close')[0].code, of('close')[0].reason], [1006, 'close timeout']);
  });

  test('receiveTimeout_NoMessage_DeadLinkReportedAs1006AndReconnects', () => {
    const { ws, of } = setup({ receiveTimeout: 5000 });
    ws().open();
    mock.timers.tick(3000);
    ws().receive('tick');
    mock.timers.tick(4999);
    assert.equal(of('close').length, 0);
    mock.timers.tick(1);
    const close = of('close')[0];
    assert.deepEqual([close.code, close.reason, close.willReconnect], [1006, 'receive watchdog', true]);
    assert.deepEqual(ws().closeCalls, [{ code: 3008, reason: 'receive watchdog' }]);
  });

  test('connectTimeout_NoOpen_FailedAttemptAndBackoff', () => {
    const { of, Fake } = setup({ connectTimeout: 3000 });
    mock.timers.tick(3000);
    assert.deepEqual([of('close')[0].code, of('close')[0].reason], [1006, 'connect timeout']);
    assert.equal(of('reconnecting')[0].attempt, 2);
    mock.timers.tick(1000);
    assert.equal(Fake.instances.length, 2);
  });
});

describe('LifelineSocket, close() from a listener', () => {
  test('closeListener_CallsCloseOnTheFinalClose_OneCloseEvent', () => {
    const { socket, ws, of } = setup({ reconnect: false });
    ws().open();
    socket.addEventListener('close', () => socket.close());
    ws().serverClose(1006, '', false);
    // Before, the final close event came while the state still said 'reconnecting', so close() sent a second one.
    assert.deepEqual(of('close').map((e) => [e.code, e.willReconnect]), [[1006, false]]);
    assert.equal(socket.state, 'closed');
  });

  test('errorListener_CallsCloseWhenTheWebSocketConstructorThrows_OneCloseEvent', () => {
    const Fake = fakeWebSocketClass();
    let made = 0;
    class Flaky extends Fake {
      constructor(url, protocols) {
        if (++made === 2) throw new Error('out of sockets');
        super(url, protocols);
      }
    }
    const events = [];
    const socket = new LifelineSocket({ url: 'ws://127.0.0.1/ws', WebSocket: Flaky, random: () => 0.5, onlineTarget: null });
    socket.addEventListener('close', (e) => events.push(e));
    socket.addEventListener('error', () => socket.close());
    Fake.instances.at(-1).open();
    Fake.instances.at(-1).serverClose(1006, '', false);
    mock.timers.tick(events[0].delay); // the retry's constructor throws
    // One close event: the listener's close() (1000). Before, the failed attempt's own followed it, reconnecting.
    assert.deepEqual(events.map((e) => [e.code, e.willReconnect]), [[1006, true], [1000, false]]);
    assert.equal(socket.state, 'closed');
    mock.timers.tick(60_000);
    assert.equal(made, 2);
  });
});

describe('LifelineSocket, options', () => {
  test('options_RandomClockOrOnlineTargetOfTheWrongKind_TypeErrorAtConstruction', () => {
    const Fake = fakeWebSocketClass();
    const make = (extra) => () => new LifelineSocket({ url: 'ws://127.0.0.1/ws', WebSocket: Fake, onlineTarget: null, ...extra });
    assert.throws(make({ random: 0.5 }), (e) => e instanceof TypeError && /random/.test(e.message));
    assert.throws(make({ clock: { now: 5 } }), (e) => e instanceof TypeError && /clock/.test(e.message));
    assert.throws(make({ onlineTarget: {} }), (e) => e instanceof TypeError && /onlineTarget/.test(e.message));
    assert.throws(make({ session: 'false' }), (e) => e instanceof TypeError && /session/.test(e.message));
    assert.throws(make({ clock: 5 }), (e) => e instanceof TypeError && /clock/.test(e.message));
    assert.equal(Fake.instances.length, 0); // refused before any socket was opened
    // null stands for the default, as before
    const socket = new LifelineSocket({ url: 'ws://127.0.0.1/ws', WebSocket: Fake, onlineTarget: null, random: null, session: null, clock: null });
    assert.equal(socket.session, false);
    socket.close();
  });
});

describe('LifelineSocket, send queue bounds', () => {
  test('send_QueueFullFailMode_ThrowsSendQueueFullError', () => {
    const { socket } = setup({ sendQueue: { maxMessages: 2, fullMode: 'fail' } });
    socket.send('a');
    socket.send('b');
    assert.throws(() => socket.send('c'), SendQueueFullError);
    assert.equal(socket.queuedMessages, 2);
  });

  test('send_QueueFullByBytes_Throws', () => {
    const { socket } = setup({ sendQueue: { maxBytes: 10 } });
    socket.send('12345');
    assert.throws(() => socket.send('é1234'), SendQueueFullError); // 6 bytes of UTF-8: 11 > 10
    socket.send('1234é'.slice(0, 4) + 'é'.slice(1)); // 4 more bytes fit: 9 <= 10
    assert.equal(socket.queuedBytes, 9);
  });

  test('send_MessageLargerThanQueue_RangeError', () => {
    const { socket } = setup({ sendQueue: { maxBytes: 4 } });
    assert.throws(() => socket.send('12345'), RangeError);
    assert.throws(() => socket.send(new Blob(['x'])), TypeError);
  });

  test('send_DropOldestMode_DropsAndReports', () => {
    const { socket, of, ws } = setup({ sendQueue: { maxMessages: 2, fullMode: 'drop-oldest' } });
    socket.send('a');
    socket.send('b');
    assert.equal(socket.send('c'), undefined);
    assert.deepEqual(of('drop').map((e) => e.data), ['a']);
    ws().open();
    assert.deepEqual(ws().sent, ['b', 'c']);
  });

  test('send_WaitMode_PromiseSettlesWhenQueuedInOrder', async () => {
    const { socket, ws } = setup({ sendQueue: { maxMessages: 1, fullMode: 'wait' } });
    const first = socket.send('a');
    assert.ok(first instanceof Promise);
    let settled = false;
    const second = socket.send('b').then(() => { settled = true; });
    const third = socket.send('c');
    await Promise.resolve();
    assert.equal(settled, false);
    ws().open();
    await second;
    await third;
    assert.deepEqual(ws().sent, ['a', 'b', 'c']);
  });

  test('send_WaitMode_RejectedWhenSocketStops', async () => {
    const { socket, ws } = setup({ sendQueue: { maxMessages: 1, fullMode: 'wait' } });
    ws().open();
    ws().serverClose(1006, '', false);
    socket.send('a');
    const pending = socket.send('b');
    socket.close();
    await assert.rejects(pending, SocketClosedError);
  });

  test('send_BinaryCopiedAtSend', () => {
    const { socket, ws } = setup();
    const buffer = Uint8Array.of(1, 2, 3);
    socket.send(buffer);
    buffer[0] = 99;
    ws().open();
    assert.deepEqual(ws().sent[0], Uint8Array.of(1, 2, 3));
  });

  test('close_CloseTimeoutNull_WaitsForTheCloseEvent', () => {
    const { socket, ws, of } = setup({ closeTimeout: null });
    ws().open();
    socket.close(1000, 'bye');
    mock.timers.tick(60000);
    // Before, null made a 0 ms timer: every close ended at once as 1006 'close timeout'.
    assert.equal(of('close').length, 0);
    ws().serverClose(1000, 'bye');
    assert.deepEqual(of('close').map((e) => [e.code, e.wasClean]), [[1000, true]]);
  });

  test('connect_ConstructorThrowsSyntaxError_ThrownToTheCaller_NoRetry', () => {
    let calls = 0;
    class Refusing {
      constructor() {
        calls++;
        throw new DOMException('The URL is invalid.', 'SyntaxError');
      }
    }
    // Before, every retry threw the same, with a backoff up to 30 s, for ever.
    assert.throws(() => new LifelineSocket({ url: 'ws://127.0.0.1/ws', WebSocket: Refusing, onlineTarget: null }), { name: 'SyntaxError' });
    mock.timers.tick(600000);
    assert.equal(calls, 1);
  });

  test('connect_FirstConstructorThrowsARetriableError_ListenersAttachedAfterwardsSeeTheErrorAndTheClose', () => {
    let refuse = true;
    const Fake = fakeWebSocketClass();
    class FailingOnce extends Fake {
      constructor(url, protocols) {
        if (refuse) { refuse = false; throw new Error('too many sockets'); }
        super(url, protocols);
      }
    }
    const events = [];
    const socket = new LifelineSocket({ url: 'ws://127.0.0.1/ws', WebSocket: FailingOnce, random: () => 0.5, onlineTarget: null });
    for (const type of EVENTS) socket.addEventListener(type, (e) => events.push(e));
    // Before, both events fired inside the constructor, before any listener existed.
    mock.timers.tick(0);
    assert.deepEqual(events.filter((e) => e.type === 'error').map((e) => e.error.message), ['too many sockets']);
    assert.deepEqual(events.filter((e) => e.type === 'close').map((e) => [e.code, e.willReconnect]), [[1006, true]]);
    mock.timers.tick(600000);
    assert.equal(Fake.instances.length, 1);
    Fake.instances[0].open();
    assert.equal(socket.state, 'open');
  });

  test('connect_FirstConstructorThrows_CloseBeforeItIsReported_NoRetryAndOneClose', () => {
    const Fake = fakeWebSocketClass();
    class Failing extends Fake {
      constructor() { throw new Error('too many sockets'); }
    }
    const events = [];
    const socket = new LifelineSocket({ url: 'ws://127.0.0.1/ws', WebSocket: Failing, onlineTarget: null });
    for (const type of EVENTS) socket.addEventListener(type, (e) => events.push(e));
    socket.close();
    mock.timers.tick(600000);
    assert.equal(socket.state, 'closed');
    assert.deepEqual(events.filter((e) => e.type === 'close').map((e) => [e.code, e.willReconnect]), [[1000, false]]);
    assert.equal(events.filter((e) => e.type === 'error').length, 0);
  });

  test('connect_SecurityErrorOnARetry_StopsWithAnErrorEvent', () => {
    let refuse = false;
    const Fake = fakeWebSocketClass();
    class SometimesRefusing extends Fake {
      constructor(url, protocols) {
        if (refuse) throw new DOMException('blocked', 'SecurityError');
        super(url, protocols);
      }
    }
    const events = [];
    const socket = new LifelineSocket({ url: 'ws://127.0.0.1/ws', WebSocket: SometimesRefusing, random: () => 0.5, onlineTarget: null });
    for (const type of EVENTS) socket.addEventListener(type, (e) => events.push(e));
    Fake.instances[0].open();
    refuse = true;
    Fake.instances[0].serverClose(1006, '', false);
    mock.timers.tick(600000);
    assert.equal(socket.state, 'closed');
    assert.deepEqual(events.filter((e) => e.type === 'close').map((e) => e.willReconnect), [true, false]);
    assert.equal(events.filter((e) => e.type === 'error').length, 1);
  });

  test('reconnect_DelayBeyondTheTimerRange_WaitsTheLongestATimerCan', () => {
    // A browser's setTimeout runs a delay over 2^31 - 1 ms at once (the mocked one does not): record what it is given.
    const delays = [];
    const clock = { setTimeout: (fn, ms) => { delays.push(ms); return setTimeout(fn, ms); } };
    const { ws, of } = setup({ reconnect: () => 30 * 86_400_000, clock });
    ws().open();
    ws().serverClose(1006, '', false);
    assert.equal(of('close')[0].willReconnect, true);
    // Before, the 30 days went to setTimeout as they were: a reconnect loop with no delay in a browser.
    assert.ok(delays.length > 0);
    assert.ok(delays.every((ms) => ms <= 2_147_483_647), `delays ${delays}`);
    assert.ok(delays.includes(2_147_483_647));
  });
});
