import { test, describe, beforeEach, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';
import { LifelineSocket, encodeFrame, toHex } from '../lifeline.js';
import { fakeWebSocketClass } from './fake-websocket.mjs';

const EVENTS = ['open', 'message', 'close', 'reconnecting', 'resumed', 'sessionlost', 'ack', 'drop', 'error'];
const range = (from, n) => Uint8Array.from({ length: n }, (_, i) => from + i);
const SESSION_ID = range(0x00, 16);
const TOKEN = range(0x20, 32);
const WELCOME = {
  type: 'welcome', version: 1, sessionId: SESSION_ID, token: TOKEN, resumeWindowMs: 120000,
  maxFrameBytes: 1048576, replayMaxMessages: 10000, replayMaxBytes: 1048576,
};
const show = (bytes) => toHex(bytes).toUpperCase().replace(/(..)(?!$)/g, '$1 ');
const text = (s) => new TextEncoder().encode(s);

beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 }));
afterEach(() => mock.timers.reset());

function setup(options = {}) {
  const Fake = fakeWebSocketClass();
  const events = [];
  const socket = new LifelineSocket('ws://127.0.0.1/ws', { session: true, WebSocket: Fake, random: () => 0.5, onlineTarget: null, ...options });
  for (const type of EVENTS) socket.addEventListener(type, (e) => events.push(e));
  const of = (type) => events.filter((e) => e.type === type);
  const ws = () => Fake.instances.at(-1);
  /** Opens the current socket as a lifeline.v1 server would and answers the new-session Hello with Welcome. */
  const establish = () => {
    ws().open('lifeline.v1');
    ws().receiveFrame(WELCOME);
  };
  return { socket, Fake, events, of, ws, establish };
}

/**
 * The link drops; the resume's Hello is answered only after 5 s (a loaded server). Nothing of the dead socket's (a
 * pending heartbeat, unacknowledged data) may bound that handshake: no second close, and the Resumed is taken.
 */
function dropThenResumeAnsweredAfter5s({ ws, of, Fake }) {
  ws().serverClose(1006, '', false);
  mock.timers.tick(of('close')[0].delay);
  assert.equal(Fake.instances.length, 2);
  ws().open('lifeline.v1');
  for (let t = 0; t < 5_000; t += 500) mock.timers.tick(500);
  assert.equal(of('close').length, 1);
  ws().receiveFrame({ type: 'resumed', lastReceived: 0, replayCount: 0 });
  assert.equal(of('resumed').length, 1);
}

describe('LifelineSocket, session mode (docs/protocol.md section 5)', () => {
  test('session_ProtocolExample_BytesMatchSection5_10', () => {
    // The example shows no heartbeats (nor the first one, sent as soon as nothing of ours is outstanding).
    const { socket, ws, of } = setup({ protocols: ['chat'], heartbeat: false });
    assert.deepEqual(ws().protocols, ['lifeline.v1', 'chat']);
    ws().open('lifeline.v1');
    assert.equal(show(ws().sent[0]), '01 01 00'); // Hello, version 1, new session
    assert.equal(of('open').length, 0); // not open until Welcome
    socket.send(text('hi')); // queued until Welcome
    assert.equal(ws().sent.length, 1);
    ws().receiveFrame(WELCOME);
    assert.equal(of('open')[0].sessionId, '000102030405060708090a0b0c0d0e0f');
    assert.equal(show(ws().sent[1]), '06 01 00 68 69'); // Data seq 1, ack 0, binary "hi"
    ws().receiveFrame({ type: 'data', seq: 1, ack: 1, text: true, payload: 'ok' });
    ws().receiveFrame({ type: 'data', seq: 2, ack: 1, text: true, payload: 'ok2' });
    assert.deepEqual(of('message').map((e) => [e.data, e.seq]), [['ok', 1], ['ok2', 2]]);
    assert.equal(of('ack')[0].ack, 1);
    assert.equal(socket.unacknowledged, 0);
    mock.timers.tick(200); // ack delay
    assert.equal(show(ws().sent[2]), '05 02'); // Ack 2
    socket.send(Uint8Array.of(0xff));
    assert.equal(show(ws().sent[3]), '06 02 02 FF'); // Data seq 2 (lost with the socket)
    ws().serverClose(1006, '', false);
    assert.equal(of('close')[0].willReconnect, true);
    mock.timers.tick(of('close')[0].delay);
    ws().open('lifeline.v1');
    assert.equal(show(ws().sent[0]), `01 01 01 ${show(SESSION_ID)} ${show(TOKEN)} 02`); // Hello, resume, last received 2
    ws().receiveFrame({ type: 'resumed', lastReceived: 1, replayCount: 0 });
    assert.equal(show(ws().sent[1]), '06 02 02 FF'); // Data seq 2 resent
    const resumed = of('resumed')[0];
    assert.deepEqual([resumed.replayedByServer, resumed.replayedByClient, resumed.serverLastReceived], [0, 1, 1]);
    assert.equal(of('open')[1].resumed, true);
  });

  test('session_MessagesInOrderAndDuplicatesDropped', () => {
    const { socket, ws, of, establish } = setup();
    establish();
    for (let i = 1; i <= 3; i++) ws().receiveFrame({ type: 'data', seq: i, ack: 0, text: true, payload: `m${i}` });
    ws().receiveFrame({ type: 'data', seq: 2, ack: 0, text: true, payload: 'm2' }); // duplicate
    ws().receiveFrame({ type: 'data', seq: 4, ack: 0, text: false, payload: Uint8Array.of(4) });
    assert.deepEqual(of('message').map((e) => e.seq), [1, 2, 3, 4]);
    assert.deepEqual(new Uint8Array(of('message')[3].data), Uint8Array.of(4));
    assert.equal(socket.stats.duplicatesDropped, 1);
  });

  test('session_ResumeAfter1006_ServerReplayDeliveredOnceAndClientReplaysUnacked', () => {
    const { socket, ws, of, establish, Fake } = setup();
    establish();
    ws().receiveFrame({ type: 'data', seq: 1, ack: 0, text: true, payload: 'a' });
    socket.send('x1');
    socket.send('x2');
    socket.send('x3');
    ws().receiveFrame({ type: 'ack', ack: 1 });
    assert.equal(socket.unacknowledged, 2);
    mock.timers.tick(1_000);
    ws().serverClose(1006, '', false);
    assert.equal(of('reconnecting')[0].delay, 500); // attempt 1: the link carried messages for a tenth of the stable period
    mock.timers.tick(499);
    assert.equal(Fake.instances.length, 1);
    mock.timers.tick(1);
    socket.send('x4'); // queued while down; goes after the replay
    ws().open('lifeline.v1');
    const hello = ws().frames()[0];
    assert.deepEqual([hello.resume, hello.lastReceived], [true, 1]);
    ws().receiveFrame({ type: 'resumed', lastReceived: 2, replayCount: 2 });
    // x2 was received by the server (S = 2): only x3 is replayed, then x4 new.
    assert.deepEqual(ws().frames().slice(1).map((f) => [f.seq, new TextDecoder().decode(f.payload)]), [[3, 'x3'], [4, 'x4']]);
    // The server replays 1 (a duplicate: it crossed the failure) and 2.
    ws().receiveFrame({ type: 'data', seq: 1, ack: 2, text: true, payload: 'a' });
    ws().receiveFrame({ type: 'data', seq: 2, ack: 2, text: true, payload: 'b' });
    assert.deepEqual(of('message').map((e) => e.data), ['a', 'b']);
    assert.equal(of('resumed')[0].replayedByClient, 1);
    assert.equal(of('resumed')[0].replayedByServer, 2);
  });

  test('session_SessionLostOnResume_ReportedAndNewSessionStarted', () => {
    const { socket, ws, of, establish } = setup();
    establish();
    socket.send('x1');
    socket.send('x2');
    ws().serverClose(1006, '', false);
    mock.timers.tick(of('close')[0].delay);
    ws().open('lifeline.v1');
    ws().receiveFrame({ type: 'sessionlost', reason: 1, lastReceived: 0, lostFirst: 0, lostCount: 0 });
    const lost = of('sessionlost')[0];
    assert.deepEqual([lost.reason, lost.reasonCode, lost.initiator, lost.sessionId], ['not-found', 1, 'server', '000102030405060708090a0b0c0d0e0f']);
    assert.deepEqual([lost.unconfirmed.first, lost.unconfirmed.count, lost.unconfirmed.messages], [1, 2, ['x1', 'x2']]);
    assert.deepEqual(lost.lostIncoming, { first: 0, count: 0 });
    assert.equal(show(ws().sent.at(-1)), '01 01 00'); // a new-session Hello on the same socket
    ws().receiveFrame({ type: 'data', seq: 7, ack: 0, text: true, payload: 'old' }); // in flight from the lost session: ignored
    ws().receiveFrame({ type: 'ack', ack: 9 }); // ignored too
    assert.equal(of('close').length, 1);
    ws().receiveFrame(WELCOME);
    assert.equal(of('open').at(-1).resumed, false);
    socket.send('n1');
    assert.equal(ws().frames().at(-1).seq, 1); // numbering restarts
    ws().receiveFrame({ type: 'data', seq: 1, ack: 1, text: true, payload: 'new' });
    assert.deepEqual(of('message').map((e) => e.data), ['new']);
  });

  test('session_ResumeAnsweredWithWelcome_OldSessionReportedLostThenTheNewOneOpens', () => {
    // A server that lost the session but answers the resume with a Welcome instead of SessionLost (5.6 asks for the
    // SessionLost first). Before, the client closed with 1002, a stop, and its unacknowledged messages went unreported.
    const { socket, ws, of, establish } = setup();
    establish();
    socket.send('x1');
    ws().serverClose(1006, '', false);
    mock.timers.tick(of('close')[0].delay);
    ws().open('lifeline.v1');
    ws().receiveFrame({ ...WELCOME, sessionId: new Uint8Array(16).fill(7) });
    const lost = of('sessionlost')[0];
    assert.deepEqual([lost.reason, lost.initiator, lost.sessionId], ['not-found', 'server', '000102030405060708090a0b0c0d0e0f']);
    assert.deepEqual([lost.unconfirmed.count, lost.unconfirmed.messages], [1, ['x1']]);
    assert.equal(of('close').length, 1); // only the 1006
    assert.equal(of('open').at(-1).resumed, false);
    assert.equal(socket.sessionId, '07'.repeat(16));
    socket.send('n1');
    assert.equal(ws().frames().at(-1).seq, 1); // numbering restarts
  });

  test('session_MessageUnacknowledgedLongerThanReplayMaxAge_SessionEndsWithSessionLost04_NextMessageGoesToANewSession', () => {
    // protocol.md 5.8: replay buffers are bounded in age too. As the .NET client, the next message after the oldest
    // unacknowledged one passed replay.maxAge (5 min) ends the session: SessionLost 04, the unacknowledged ones reported
    // unconfirmed, a new session on the same socket. Before, the browser client held them for good.
    const { socket, ws, of, establish } = setup({ heartbeat: false });
    establish();
    socket.send('x1'); // never acknowledged
    mock.timers.tick(300_001);
    socket.send('x2');
    const lost = of('sessionlost')[0];
    assert.deepEqual([lost.reason, lost.reasonCode, lost.initiator], ['expired', 4, 'client']);
    assert.deepEqual([lost.unconfirmed.count, lost.unconfirmed.messages], [1, ['x1']]);
    const frames = ws().frames();
    const told = frames.find((f) => f.type === 'sessionlost');
    assert.deepEqual([told.reason, told.lostFirst, told.lostCount], [4, 1, 1]);
    assert.equal(show(ws().sent.at(-1)), '01 01 00'); // a new-session Hello
    ws().receiveFrame(WELCOME);
    const data = ws().frames().filter((f) => f.type === 'data');
    assert.deepEqual([data.at(-1).seq, new TextDecoder().decode(data.at(-1).payload)], [1, 'x2']); // x2 opens the new session
  });

  test('session_ReplayMaxAgeNull_NoAgeBound', () => {
    const { socket, of, establish } = setup({ heartbeat: false, replay: { maxAge: null } });
    establish();
    socket.send('x1');
    mock.timers.tick(3_600_000);
    socket.send('x2');
    assert.equal(of('sessionlost').length, 0);
  });

  test('session_ResendFromSessionLostListener_GoesIntoTheNewSession_NotOntoTheOldNumbers', () => {
    const { socket, ws, establish } = setup();
    establish();
    socket.send('a');
    // The server ends the established session (a stuck group send ends a member this way); the listener sends the
    // unconfirmed messages again, as the event invites.
    socket.addEventListener('sessionlost', (e) => e.unconfirmed.messages.forEach((m) => socket.send(m)));
    ws().receiveFrame({ type: 'sessionlost', reason: 1, lastReceived: 0, lostFirst: 0, lostCount: 0 });
    // Before, 'a' went out at once as seq 2 of the lost session (whose Data the server ignores) and was then dropped
    // with that session's replay buffer: in no session, no queue and no event.
    const afterLost = ws().frames().slice(3); // Hello, the first heartbeat and Data 1 of the first session
    assert.deepEqual(afterLost.map((f) => f.type), ['hello']);
    ws().receiveFrame(WELCOME);
    const data = ws().frames().slice(4);
    assert.deepEqual(data.map((f) => [f.type, f.seq, new TextDecoder().decode(f.payload)]), [['data', 1, 'a']]);
    assert.equal(socket.unacknowledged, 1);
  });

  test('session_SessionLostReplayUnavailable_ReportsRanges', () => {
    const { socket, ws, of, establish } = setup();
    establish();
    socket.send('x1');
    socket.send('x2');
    socket.send('x3');
    ws().serverClose(1012, 'retry-after-ms=1000');
    mock.timers.tick(1000);
    ws().open('lifeline.v1');
    ws().receiveFrame({ type: 'sessionlost', reason: 2, lastReceived: 1, lostFirst: 5, lostCount: 5 });
    const lost = of('sessionlost')[0];
    assert.equal(lost.reason, 'replay-unavailable');
    assert.deepEqual(lost.lostIncoming, { first: 5, count: 5 });
    assert.deepEqual([lost.undelivered.first, lost.undelivered.count, lost.undelivered.messages], [2, 2, ['x2', 'x3']]);
    assert.deepEqual(lost.unconfirmed.messages, []); // x1 is up to the server's last received: its application has it
  });

  test('session_ResumeRefused1008_SessionLostThenOneNewSessionAttempt', () => {
    const { ws, of, establish, socket, Fake } = setup();
    establish();
    ws().serverClose(1006, '', false);
    mock.timers.tick(of('close')[0].delay);
    ws().open('lifeline.v1');
    ws().serverClose(1008, 'session refused');
    assert.equal(of('sessionlost')[0].reason, 'refused');
    assert.equal(of('close').at(-1).willReconnect, true);
    mock.timers.tick(of('close').at(-1).delay);
    ws().open('lifeline.v1');
    assert.equal(show(ws().sent[0]), '01 01 00'); // new session: the refused token is never tried again
    ws().serverClose(1008, 'forbidden');
    assert.equal(of('close').at(-1).willReconnect, false);
    assert.equal(socket.state, 'closed');
    assert.equal(Fake.instances.length, 3);
  });

  test('session_Unauthorized1008DuringAResume_IsNotARefusedResume_ThePolicyDecides_TheSessionIsKept', () => {
    // An application that retries 1008 (its credentials refreshed): the server's Authorize refusal is not a refused
    // resume. Before, the session was reported lost and the next socket started a new one.
    const { ws, of, establish } = setup({ reconnect: () => 100 });
    establish();
    ws().serverClose(1006, '', false);
    mock.timers.tick(100);
    ws().open('lifeline.v1');
    ws().serverClose(1008, 'unauthorized');
    assert.equal(of('sessionlost').length, 0);
    assert.equal(of('close').at(-1).willReconnect, true);
    mock.timers.tick(100);
    ws().open('lifeline.v1');
    assert.ok(show(ws().sent[0]).startsWith('01 01 01'), show(ws().sent[0])); // a resume again, with the same token
  });

  test('session_Close1008OnNewSession_Stops', () => {
    const { ws, of, socket } = setup();
    ws().open('lifeline.v1');
    ws().serverClose(1008, 'unauthorized');
    assert.deepEqual([of('close')[0].code, of('close')[0].willReconnect], [1008, false]);
    assert.equal(socket.state, 'closed');
  });

  test('session_Close4001_ReconnectsAndResumes', () => {
    // A server closes a session's socket with 4001 when another node took the session over, or its store lost it (a
    // Redis restart). Before, the browser client stopped for good; the .NET client and the server's design resume: the
    // resume finds the session, or is told SessionLost and starts a new one.
    const { ws, of, establish } = setup();
    establish();
    ws().serverClose(4001, 'session resumed elsewhere');
    assert.equal(of('close')[0].willReconnect, true);
    mock.timers.tick(of('close')[0].delay);
    ws().open('lifeline.v1');
    assert.ok(show(ws().sent[0]).startsWith('01 01 01'), show(ws().sent[0]));
  });

  test('session_SequenceGap_Closes1002AndStops', () => {
    const { ws, of, establish, socket } = setup();
    establish();
    ws().receiveFrame({ type: 'data', seq: 1, ack: 0, text: true, payload: 'a' });
    ws().receiveFrame({ type: 'data', seq: 3, ack: 0, text: true, payload: 'c' });
    const close = of('close')[0];
    assert.deepEqual([close.code, close.willReconnect], [1002, false]);
    assert.match(close.reason, /sequence gap/);
    // Browsers cannot send 1002: the wire carries 1000 with the code in the reason.
    assert.equal(ws().closeCalls[0].code, 1000);
    assert.match(ws().closeCalls[0].reason, /^1002 sequence gap/);
    assert.equal(socket.state, 'closed');
  });

  test('session_AckBeyondSent_Closes1002', () => {
    const { ws, of, establish } = setup();
    establish();
    ws().receiveFrame({ type: 'ack', ack: 1 });
    assert.equal(of('close')[0].code, 1002);
  });

  test('session_DataBeforeWelcome_Closes1002', () => {
    const { ws, of } = setup();
    ws().open('lifeline.v1');
    ws().receiveFrame({ type: 'data', seq: 1, ack: 0, text: true, payload: 'early' });
    assert.equal(of('close')[0].code, 1002);
  });

  test('session_TextWebSocketMessage_Closes1003', () => {
    const { ws, of, establish } = setup();
    establish();
    ws().receive('not a frame');
    assert.equal(of('close')[0].code, 1003);
  });

  test('session_InvalidUtf8Text_Closes1007', () => {
    const { ws, of, establish } = setup();
    establish();
    ws().receiveFrame({ type: 'data', seq: 1, ack: 0, text: true, payload: Uint8Array.of(0xc3, 0x28) });
    assert.equal(of('close')[0].code, 1007);
    assert.equal(of('message').length, 0);
  });

  test('session_ServerWithoutSubprotocol_Closes1010AndStops', () => {
    const { ws, of, socket } = setup();
    ws().open('');
    assert.deepEqual([of('close')[0].code, of('close')[0].willReconnect], [1010, false]);
    assert.equal(socket.state, 'closed');
  });

  test('session_AckBatchedByCount', () => {
    const { ws, establish } = setup({ ack: { messages: 3 } });
    establish();
    for (let i = 1; i <= 2; i++) ws().receiveFrame({ type: 'data', seq: i, ack: 0, text: true, payload: 'm' });
    assert.deepEqual(ws().frames().map((f) => [f.type, f.ack]), [['hello', undefined], ['ack', 0]]); // the Hello and the first heartbeat
    ws().receiveFrame({ type: 'data', seq: 3, ack: 0, text: true, payload: 'm' });
    assert.deepEqual(ws().frames().at(-1), { type: 'ack', ack: 3 });
  });

  test('session_AckPiggyBackedOnData_NoSeparateAck', () => {
    const { socket, ws, establish } = setup();
    establish();
    ws().receiveFrame({ type: 'data', seq: 1, ack: 0, text: true, payload: 'm' });
    socket.send('reply');
    mock.timers.tick(1000);
    const frames = ws().frames();
    assert.deepEqual(frames.slice(2).map((f) => [f.type, f.ack]), [['data', 1]]); // after the Hello and the first heartbeat
  });

  test('session_ReplyFromTheMessageListener_CarriesTheAck_NoSeparateAck', () => {
    const { socket, ws, establish } = setup();
    establish();
    socket.addEventListener('message', () => socket.send('reply'));
    ws().receiveFrame({ type: 'data', seq: 1, ack: 0, text: true, payload: 'm' });
    mock.timers.tick(1000);
    // Before, the ack timer was armed after the reply had carried ack 1: an Ack 1 followed, which the server answers.
    assert.deepEqual(ws().frames().slice(2).map((f) => [f.type, f.ack]), [['data', 1]]); // after the Hello and the first heartbeat
  });

  test('session_CloseWhileTheHelloIsAnswered_ALateWelcomeDoesNotReopen', () => {
    const { socket, ws, of, Fake } = setup();
    socket.send('queued');
    ws().open('lifeline.v1');
    socket.close();
    ws().receiveFrame(WELCOME);
    // Before, the Welcome set the state back to 'open', fired 'open' and flushed the queue into the closing socket;
    // a 1006 that followed then reconnected a socket the application had closed.
    assert.equal(socket.state, 'closing');
    assert.equal(of('open').length, 0);
    assert.deepEqual(ws().frames().map((f) => f.type), ['hello']);
    ws().serverClose(1006, '', false);
    mock.timers.tick(10000);
    assert.deepEqual(of('close').map((e) => [e.code, e.willReconnect]), [[1006, false]]);
    assert.equal(Fake.instances.length, 1);
  });

  test('session_ReplayBufferFull_HoldsSendsUntilAck', () => {
    const { socket, ws, establish } = setup({ replay: { maxMessages: 2 } });
    establish();
    socket.send('a');
    socket.send('b');
    socket.send('c');
    assert.equal(ws().frames().filter((f) => f.type === 'data').length, 2);
    assert.equal(socket.queuedMessages, 1);
    ws().receiveFrame({ type: 'ack', ack: 1 });
    assert.equal(ws().frames().filter((f) => f.type === 'data').length, 3);
    assert.equal(socket.queuedMessages, 0);
  });

  test('session_Heartbeat_SendsAckEveryInterval', () => {
    const { ws, establish } = setup({ heartbeat: { interval: 15_000, timeout: 30_000 } });
    establish();
    assert.deepEqual(ws().frames().at(-1), { type: 'ack', ack: 0 }); // the first, at once: does the server answer?
    mock.timers.tick(15_000);
    assert.equal(ws().frames().filter((f) => f.type === 'ack').length, 2);
    mock.timers.tick(15_000);
    assert.equal(ws().frames().filter((f) => f.type === 'ack').length, 3);
  });

  test('session_IdleSessionWhoseServerAnswersHeartbeats_BlackHoleFoundByTheHeartbeat', () => {
    const { ws, of, establish, Fake } = setup({ heartbeat: { interval: 15_000, timeout: 30_000 } });
    establish();
    ws().receiveFrame({ type: 'data', seq: 1, ack: 0, text: true, payload: 'pushed' }); // receive-only: the server pushes
    mock.timers.tick(15_000); // the ack (200 ms), then the first heartbeat, answered as a Lifeline server does
    ws().receiveFrame({ type: 'ack', ack: 0 });
    // In steps: the mocked clock runs a timer set inside a tick only at a later tick.
    for (let t = 0; t < 15_000 + 29_000; t += 1_000) mock.timers.tick(1_000); // the next heartbeat goes unanswered: a black hole
    mock.timers.tick(999);
    assert.equal(of('close').length, 0);
    mock.timers.tick(1);
    // Before, a session with nothing of its own outstanding was never declared dead: it sat 'open' on a black hole
    // while the server gave the session up.
    const close = of('close')[0];
    assert.deepEqual([close.code, close.reason, close.willReconnect], [1006, 'heartbeat timeout', true]);
    mock.timers.tick(close.delay);
    assert.equal(Fake.instances.length, 2);
  });

  test('session_Heartbeat_RepeatsTheLastAckSent_SoTheServerAnswersIt_EvenWithADeliveryNotYetAcknowledged', () => {
    const { ws, establish } = setup({ heartbeat: { interval: 15_000, timeout: 30_000 } });
    establish();
    ws().receiveFrame({ type: 'data', seq: 1, ack: 0, text: true, payload: 'a' });
    mock.timers.tick(14_900); // Ack 1 after 200 ms
    ws().receiveFrame({ type: 'data', seq: 2, ack: 0, text: true, payload: 'b' }); // its ack is due in 200 ms
    mock.timers.tick(100); // the heartbeat
    // A Lifeline server answers only an Ack that acknowledges nothing new; Ack 2 here would be a plain ack.
    assert.deepEqual(ws().frames().slice(2).map((f) => f.ack), [1, 1]); // after the Hello and the first heartbeat
    mock.timers.tick(100);
    assert.deepEqual(ws().frames().slice(2).map((f) => f.ack), [1, 1, 2]); // the due ack, on its timer
  });

  test('session_IdleSessionBlackHoledBeforeItsFirstTimedHeartbeat_FoundByTheHeartbeat', () => {
    const { ws, of, establish } = setup({ heartbeat: { interval: 15_000, timeout: 30_000 } });
    establish();
    assert.deepEqual(ws().frames().map((f) => f.type), ['hello', 'ack']); // asked at once
    ws().receiveFrame({ type: 'ack', ack: 0 }); // answered, as a Lifeline server does; then the link goes black
    for (let t = 0; t < 15_000 + 29_000; t += 1_000) mock.timers.tick(1_000);
    mock.timers.tick(999);
    assert.equal(of('close').length, 0);
    mock.timers.tick(1);
    // Before, the first question was the heartbeat at 15 s, which the black hole swallowed: the session sat 'open' on
    // it for good.
    assert.deepEqual([of('close')[0].code, of('close')[0].reason], [1006, 'heartbeat timeout']);
  });

  test('session_AsksOncePerSocketWhetherHeartbeatsAreAnswered_AsSoonAsNothingOfOursIsOutstanding', () => {
    const { socket, ws, of, establish } = setup({ heartbeat: { interval: 15_000, timeout: 30_000 } });
    socket.send('q'); // queued: outstanding at the Welcome, so an Ack then could be its acknowledgement
    establish();
    assert.deepEqual(ws().frames().map((f) => f.type), ['hello', 'data']);
    ws().receiveFrame({ type: 'data', seq: 1, ack: 1, text: true, payload: 'a' }); // acknowledged: now it asks
    assert.deepEqual(ws().frames().map((f) => [f.type, f.ack]), [['hello', undefined], ['data', 0], ['ack', 0]]);
    socket.send('q2');
    ws().receiveFrame({ type: 'data', seq: 2, ack: 2, text: true, payload: 'b' }); // no answer yet: it does not ask again
    assert.equal(ws().frames().filter((f) => f.type === 'ack').length, 1);
    ws().serverClose(1006, '', false);
    mock.timers.tick(of('close')[0].delay);
    ws().open('lifeline.v1');
    ws().receiveFrame({ type: 'resumed', lastReceived: 2, replayCount: 0 });
    assert.deepEqual(ws().frames().map((f) => f.type), ['hello', 'ack']); // a new socket asks again, nothing learned yet
    ws().receiveFrame({ type: 'ack', ack: 2 }); // answered
    ws().serverClose(1006, '', false);
    mock.timers.tick(of('close')[1].delay);
    ws().open('lifeline.v1');
    ws().receiveFrame({ type: 'resumed', lastReceived: 2, replayCount: 0 });
    assert.deepEqual(ws().frames().map((f) => f.type), ['hello']); // learned: no more questions
  });

  test('session_ARedundantAckAfterOurDataWasAcknowledged_DoesNotTeachThatHeartbeatsAreAnswered', () => {
    const { socket, ws, of, establish } = setup({ heartbeat: { interval: 15_000, timeout: 30_000 } });
    establish(); // the first heartbeat goes out at once; this server (another make) never answers heartbeats
    socket.send('a');
    ws().receiveFrame({ type: 'ack', ack: 1 }); // acknowledges 'a'
    ws().receiveFrame({ type: 'ack', ack: 1 }); // its ack timer repeats it: no answer to a heartbeat
    for (let t = 0; t < 300_000; t += 1_000) mock.timers.tick(1_000);
    // Before, the question asked at the Welcome stayed open for good, and the repeated Ack was taken as its answer: an
    // idle session on a live link was then dropped 45 s later, and again after every resume.
    assert.equal(of('close').length, 0);
  });

  test('session_AckOfTheLostSessionBeforeTheNewWelcome_DoesNotTeachThatHeartbeatsAreAnswered', () => {
    const { ws, of, establish } = setup({ heartbeat: { interval: 15_000, timeout: 30_000 } });
    establish(); // asked at once, unanswered
    ws().receiveFrame({ type: 'sessionlost', reason: 1, lastReceived: 0, lostFirst: 0, lostCount: 0 });
    ws().receiveFrame({ type: 'ack', ack: 0 }); // in flight from the lost session: ignored until the Welcome
    ws().receiveFrame(WELCOME);
    for (let t = 0; t < 300_000; t += 1_000) mock.timers.tick(1_000);
    assert.equal(of('close').length, 0);
  });

  test('session_CloseThenAFrameThatIsAProtocolError_OneCloseEvent_Closed', () => {
    const { socket, ws, of, establish } = setup({ closeTimeout: 5_000 });
    establish();
    socket.close();
    ws().receiveFrame({ type: 'data', seq: 5, ack: 0, text: true, payload: 'gap' }); // a gap: 1002
    // Before, the error's close event came while the socket stayed 'closing', and the close timeout sent a second one.
    assert.equal(socket.state, 'closed');
    mock.timers.tick(5_000);
    assert.deepEqual(of('close').map((e) => [e.code, e.willReconnect]), [[1002, false]]);
  });

  test('session_CloseThenAnAck_ReceiveWatchdogNotArmedAgain', () => {
    const { socket, ws, of, establish } = setup({ receiveTimeout: 1_000, closeTimeout: 5_000 });
    establish();
    socket.send('a');
    socket.close();
    ws().receiveFrame({ type: 'ack', ack: 1 }); // still delivered while closing
    mock.timers.tick(1_000);
    // Before, the ack armed the watchdog again, which reported a dead link (willReconnect true) on a closing socket.
    assert.equal(of('close').length, 0);
    ws().serverClose(1000, '');
    assert.deepEqual(of('close').map((e) => [e.code, e.willReconnect]), [[1000, false]]);
    assert.equal(socket.state, 'closed');
  });

  test('session_CloseFromTheSessionLostListenerOfARefusedResume_OneCloseEvent', () => {
    const { socket, ws, of, establish, Fake } = setup();
    establish();
    ws().serverClose(1006, '', false);
    mock.timers.tick(of('close')[0].delay);
    socket.addEventListener('sessionlost', () => socket.close());
    ws().open('lifeline.v1');
    ws().serverClose(1008, 'session refused');
    // One close event: the listener's close() (1000). Before, the refusal's own followed it, saying it would reconnect.
    assert.deepEqual(of('close').map((e) => [e.code, e.willReconnect]), [[1006, true], [1000, false]]);
    assert.equal(socket.state, 'closed');
    mock.timers.tick(60_000);
    assert.equal(Fake.instances.length, 2);
  });

  test('session_ServerResumesBelowWhatItAcknowledged_TheClientsSessionLostCountsEveryMessageAfterIt', () => {
    const { socket, ws, of, establish } = setup({ heartbeat: false });
    establish();
    for (const m of ['a', 'b', 'c']) socket.send(m);
    ws().receiveFrame({ type: 'ack', ack: 2 }); // 'a' and 'b' released; 'c' held
    ws().serverClose(1006, '', false);
    mock.timers.tick(of('close')[0].delay);
    ws().open('lifeline.v1');
    ws().receiveFrame({ type: 'resumed', lastReceived: 0, replayCount: 0 }); // it lost what it acknowledged
    const lost = ws().frames().find((f) => f.type === 'sessionlost');
    // Before: lost 1-2 (the messages no longer held) on the wire, and 'c' reported unconfirmed though S = 0 proves the
    // server never got it.
    assert.deepEqual([lost.lostFirst, lost.lostCount], [1, 3]);
    const event = of('sessionlost')[0];
    assert.deepEqual([event.undelivered.first, event.undelivered.count, event.undelivered.messages], [1, 3, ['c']]);
    assert.equal(event.unconfirmed.count, 0);
  });

  test('session_UnacknowledgedDataOfTheLastSocket_DoesNotBoundTheNextHandshake', () => {
    const t = setup({ heartbeat: { interval: 1_000, timeout: 3_000 }, handshakeTimeout: 10_000 });
    t.establish();
    t.socket.send('a'); // unacknowledged when the link drops
    // Before, the last socket's unacknowledged data bounded this handshake by the 3 s heartbeat timeout.
    dropThenResumeAnsweredAfter5s(t);
    assert.equal(t.ws().frames().at(-1).seq, 1); // replayed
  });

  test('session_SessionLostWhoseLastReceivedIsBeyondWhatWasSent_ProtocolError1002', () => {
    const { socket, ws, of, establish } = setup();
    establish();
    socket.send('x1');
    ws().receiveFrame({ type: 'sessionlost', reason: 2, lastReceived: 99, lostFirst: 0, lostCount: 0 });
    // Before, every message was taken as handled (neither undelivered nor unconfirmed) and the session started anew.
    assert.equal(of('sessionlost').length, 0);
    assert.equal(of('close')[0].code, 1002);
  });

  test('session_StreamWhoseDataComesBeforeTheHeartbeatsAnswer_StillLearnsThatTheServerAnswers', () => {
    const { ws, of, establish } = setup({ heartbeat: { interval: 15_000, timeout: 30_000 } });
    establish();
    mock.timers.tick(15_000); // the heartbeat
    ws().receiveFrame({ type: 'data', seq: 1, ack: 0, text: true, payload: 'pushed' }); // a push overtakes the answer
    ws().receiveFrame({ type: 'ack', ack: 0 }); // the answer
    for (let t = 0; t < 15_000 + 29_000; t += 1_000) mock.timers.tick(1_000); // then a black hole
    mock.timers.tick(999);
    assert.equal(of('close').length, 0);
    mock.timers.tick(1);
    assert.deepEqual([of('close')[0].code, of('close')[0].reason], [1006, 'heartbeat timeout']);
  });

  test('session_CloseOnAnEstablishedSession_WhatArrivesBeforeTheCloseEventIsStillDelivered', () => {
    const { socket, ws, of, establish } = setup();
    establish();
    socket.close();
    ws().receiveFrame({ type: 'data', seq: 1, ack: 0, text: true, payload: 'in flight' });
    assert.deepEqual(of('message').map((e) => e.data), ['in flight']);
  });

  test('session_HeartbeatPendingWhenTheLinkDropped_DoesNotBoundTheNextHandshake', () => {
    const t = setup({ heartbeat: { interval: 1_000, timeout: 3_000 }, handshakeTimeout: 10_000 });
    t.establish();
    mock.timers.tick(1_000);
    t.ws().receiveFrame({ type: 'ack', ack: 0 }); // answered: silence now counts
    mock.timers.tick(1_000); // a heartbeat, pending when the link drops
    // Before, the dead socket's pending heartbeat bounded this handshake by the 3 s heartbeat timeout.
    dropThenResumeAnsweredAfter5s(t);
  });

  test('session_IdleSessionWhoseServerNeverAnswersHeartbeats_NotDeclaredDead', () => {
    const { ws, of, establish } = setup({ heartbeat: { interval: 15_000, timeout: 30_000 } });
    establish();
    ws().receiveFrame({ type: 'data', seq: 1, ack: 0, text: true, payload: 'pushed' });
    mock.timers.tick(15_000);
    ws().receiveFrame({ type: 'data', seq: 2, ack: 0, text: true, payload: 'pushed' }); // data, not an answer
    for (let t = 0; t < 300_000; t += 1_000) mock.timers.tick(1_000);
    assert.equal(of('close').length, 0);
  });

  test('session_HeartbeatTimeout_UnackedDataAndSilence_DeadLinkReconnectsAndResumes', () => {
    const { socket, ws, of, establish, Fake } = setup({ heartbeat: { interval: 15_000, timeout: 30_000 } });
    establish();
    mock.timers.tick(60_000); // idle with nothing outstanding: not dead
    assert.equal(of('close').length, 0);
    socket.send('ping?');
    mock.timers.tick(29_999);
    assert.equal(of('close').length, 0);
    mock.timers.tick(1);
    const close = of('close')[0];
    assert.deepEqual([close.code, close.reason, close.willReconnect], [1006, 'heartbeat timeout', true]);
    assert.deepEqual(ws().closeCalls, [{ code: 3008, reason: 'heartbeat timeout' }]);
    mock.timers.tick(close.delay);
    assert.equal(Fake.instances.length, 2);
    ws().open('lifeline.v1');
    ws().receiveFrame({ type: 'resumed', lastReceived: 0, replayCount: 0 });
    assert.equal(ws().frames().at(-1).seq, 1); // replayed
  });

  test('session_HandshakeTimeout_NoWelcome_Reconnects', () => {
    const { ws, of } = setup({ handshakeTimeout: 10_000 });
    ws().open('lifeline.v1');
    mock.timers.tick(10_000);
    assert.deepEqual([of('close')[0].code, of('close')[0].reason, of('close')[0].willReconnect], [1006, 'handshake timeout', true]);
  });

  test('session_HandshakeThenCloseEveryTime_BackoffGrows', () => {
    // A server that completes the handshake and closes at once (a handler that fails on start) must meet a growing
    // delay, as in plain mode (docs/protocol.md section 3): only a received message or the stable period resets it.
    const { ws, of, establish } = setup();
    for (let i = 0; i < 4; i++) {
      if (i === 0) establish();
      else { ws().open('lifeline.v1'); ws().receiveFrame({ type: 'resumed', lastReceived: 0, replayCount: 0 }); }
      ws().serverClose(1011, 'handler failed');
      mock.timers.tick(of('close').at(-1).delay);
    }
    // As a plain-mode link that carried nothing: each drop counts as one more attempt (random 0.5 of 2 s, 4 s, 8 s, 16 s).
    assert.deepEqual(of('close').map((e) => e.delay), [1000, 2000, 4000, 8000]);
    assert.deepEqual(of('reconnecting').map((e) => e.attempt), [2, 3, 4, 5]);
  });

  test('session_MessageReceivedThenClose_BackoffStartsOver', () => {
    const { ws, of, establish } = setup();
    for (let i = 0; i < 2; i++) {
      if (i === 0) establish();
      else { ws().open('lifeline.v1'); ws().receiveFrame({ type: 'resumed', lastReceived: 0, replayCount: 0 }); }
      ws().serverClose(1011, 'handler failed');
      mock.timers.tick(of('close').at(-1).delay);
    }
    ws().open('lifeline.v1');
    ws().receiveFrame({ type: 'resumed', lastReceived: 0, replayCount: 0 });
    ws().receiveFrame({ type: 'data', seq: 1, ack: 0, text: true, payload: 'carried' });
    mock.timers.tick(1_000);
    ws().serverClose(1011, 'handler failed');
    assert.deepEqual(of('close').map((e) => e.delay), [1000, 2000, 500]); // the link that carried a message (up 1 s) starts over
  });

  test('session_CloseInResumedListener_StaysClosing_NothingFlushedAndNoReconnect', () => {
    const { socket, ws, of, establish } = setup();
    establish();
    ws().serverClose(1006, '', false);
    mock.timers.tick(of('close')[0].delay);
    socket.send(text('queued while down'));
    socket.addEventListener('resumed', () => socket.close(1000, 'done'));
    ws().open('lifeline.v1');
    ws().receiveFrame({ type: 'resumed', lastReceived: 0, replayCount: 0 });
    // Before, the resume went on to 'open': state open again, the queue flushed into the closing socket, and the
    // server's echo of the close was taken as a drop to reconnect from.
    assert.equal(socket.state, 'closing');
    assert.equal(of('open').length, 1);
    assert.equal(ws().frames().filter((f) => f.type === 'data').length, 0);
  });

  test('session_QueuedBeforeWelcomeLargerThanTheServersFrames_DroppedWithEvent_SessionGoesOn', () => {
    const { socket, ws, of } = setup();
    ws().open('lifeline.v1');
    socket.send(new Uint8Array(200)); // queued: the frame limit is not known before Welcome
    socket.send(text('small'));
    ws().receiveFrame({ ...WELCOME, maxFrameBytes: 100 });
    // Before, the big one was sent: the server closed with 1009, which stops the client for good.
    assert.deepEqual(of('drop').map((e) => e.reason), ["larger than the server's max frame bytes (100)"]);
    assert.deepEqual(ws().frames().filter((f) => f.type === 'data').map((f) => f.seq), [1]);
    assert.equal(socket.state, 'open');
  });

  test('session_TextWithByteOrderMark_KeptAsSent', () => {
    const { ws, of, establish } = setup();
    establish();
    ws().receiveFrame({ type: 'data', seq: 1, ack: 0, text: true, payload: '\uFEFFhi' });
    assert.equal(of('message')[0].data, '\uFEFFhi'); // as a plain browser WebSocket delivers it
  });

  test('session_OversizedInbound_Closes1009', () => {
    const { ws, of, establish } = setup({ maxReceiveBytes: 64 });
    establish();
    assert.equal(of('open').length, 1);
    ws().receiveFrame({ type: 'data', seq: 1, ack: 0, text: false, payload: new Uint8Array(62) });
    assert.deepEqual([of('close')[0].code, of('close')[0].willReconnect], [1009, false]);
  });
  test('session_DataWhoseAckEndsAnExpiredSession_IsNotTakenAsAGap_ANewSessionStarts', () => {
    // The ack lets the queue move on, the queue finds the oldest message past replay.maxAge and ends the session: the
    // frame that carried the ack belongs to the old session. Before, it was then read as the new session's, a sequence
    // gap: 1002, and the client stopped for good. The client's clock is moved on its own, so that no timer runs first.
    let now = 0;
    const { socket, ws, of, establish } = setup({ heartbeat: false, replay: { maxMessages: 2 }, clock: { now: () => now } });
    establish();
    socket.send('a');
    socket.send('b');
    socket.send('c'); // queued: the replay buffer is full
    ws().receiveFrame({ type: 'data', seq: 1, ack: 0, text: true, payload: 'm1' });
    now = 300_001; // past maxAge
    ws().receiveFrame({ type: 'data', seq: 2, ack: 1, text: true, payload: 'm2' });
    assert.equal(of('close').length, 0);
    assert.deepEqual(of('sessionlost').map((e) => e.reason), ['expired']);
    assert.deepEqual(of('message').map((e) => e.data), ['m1']);
    const sent = ws().frames();
    assert.deepEqual([sent.at(-2).type, sent.at(-2).lastReceived], ['sessionlost', 1]); // m2 not counted as received
    assert.deepEqual([sent.at(-1).type, sent.at(-1).resume], ['hello', false]);
  });

  test('session_ResumedAfterAnOutageLongerThanMaxAge_OnlyTheTimeUpCounts', () => {
    // Nobody could acknowledge while the link was down. Before, that time counted: the resume succeeded and the next
    // send ended the session, reporting the message just resent as unconfirmed.
    const { socket, ws, of, establish, Fake } = setup({ heartbeat: false, connectTimeout: null, replay: { maxAge: 10_000 } });
    establish();
    socket.send('a');
    mock.timers.tick(2_000);
    ws().serverClose(1006, '', false);
    mock.timers.tick(of('close')[0].delay);
    assert.equal(Fake.instances.length, 2);
    mock.timers.tick(20_000); // the outage outlasts maxAge
    ws().open('lifeline.v1');
    ws().receiveFrame({ type: 'resumed', lastReceived: 0, replayCount: 0 });
    socket.send('b');
    assert.equal(of('sessionlost').length, 0);
    assert.deepEqual(ws().frames().filter((f) => f.type === 'data').map((f) => [f.seq, new TextDecoder().decode(f.payload)]), [[1, 'a'], [2, 'b']]);
    mock.timers.tick(8_001); // 10 s up in all, still not acknowledged: the bound applies again
    socket.send('c');
    assert.deepEqual(of('sessionlost').map((e) => e.reason), ['expired']);
  });

  test('session_ReplayFullAndNeverAcknowledged_TheQueueEndsTheSessionAtMaxAge', () => {
    // A server that stays connected but never acknowledges: before, the queue behind the full replay buffer (and a
    // 'wait' sender) waited for as long as the socket lived; the age bound of 5.8 never applied.
    const { socket, ws, of, establish } = setup({ heartbeat: false, replay: { maxMessages: 1 }, sendQueue: { maxMessages: 1, fullMode: 'wait' } });
    establish();
    socket.send('a');
    socket.send('b'); // queued
    let settled = false;
    socket.send('c').then(() => { settled = true; }); // waits for room in the queue
    mock.timers.tick(300_000);
    assert.equal(of('sessionlost').length, 0);
    mock.timers.tick(1);
    assert.deepEqual(of('sessionlost').map((e) => e.reason), ['expired']);
    ws().receiveFrame(WELCOME);
    const data = ws().frames().filter((f) => f.type === 'data').slice(1); // after the old session's a
    assert.deepEqual(data.map((f) => [f.seq, new TextDecoder().decode(f.payload)]), [[1, 'b']]);
    ws().receiveFrame({ type: 'ack', ack: 1 });
    return Promise.resolve().then(() => assert.equal(settled, true));
  });

  test('session_MessagesAcknowledgedByResumed_AreReportedByAnAckEvent', () => {
    const { socket, ws, of, establish } = setup({ heartbeat: false });
    establish();
    socket.send('a');
    socket.send('b');
    ws().serverClose(1006, '', false);
    mock.timers.tick(of('close')[0].delay);
    ws().open('lifeline.v1');
    ws().receiveFrame({ type: 'resumed', lastReceived: 2, replayCount: 0 });
    assert.equal(socket.unacknowledged, 0);
    assert.deepEqual(of('ack').map((e) => [e.ack, e.released]), [[2, 2]]);
    assert.equal(of('resumed').length, 1);
  });

  test('options_HeartbeatIntervalNotBelowItsTimeout_RangeError', () => {
    const make = (heartbeat) => () => new LifelineSocket('ws://127.0.0.1/ws', { session: true, heartbeat, WebSocket: fakeWebSocketClass(), onlineTarget: null });
    assert.throws(make({ interval: 60_000, timeout: 30_000 }), /heartbeat\.interval must be set and below heartbeat\.timeout/);
    assert.throws(make({ interval: null }), RangeError); // the default timeout with no heartbeat to keep a busy link alive
    make({ interval: 10_000, timeout: null })();
    make(false)();
    make({ interval: 10_000, timeout: 30_000 })();
    new LifelineSocket('ws://127.0.0.1/ws', { heartbeat: { interval: null }, WebSocket: fakeWebSocketClass(), onlineTarget: null }); // plain mode: no heartbeats
  });
});
