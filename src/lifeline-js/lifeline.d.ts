// Type declarations for lifeline.js (the Lifeline browser client). Times are in milliseconds.

export type Reaction = 'stop' | 'soon' | 'backoff';
export declare const Reaction: Readonly<{ Stop: 'stop'; Soon: 'soon'; Backoff: 'backoff' }>;

export declare const CloseCode: Readonly<{
  NormalClosure: 1000; GoingAway: 1001; ProtocolError: 1002; UnsupportedData: 1003; NoStatusReceived: 1005;
  AbnormalClosure: 1006; InvalidPayloadData: 1007; PolicyViolation: 1008; MessageTooBig: 1009;
  MandatoryExtension: 1010; InternalError: 1011; ServiceRestart: 1012; TryAgainLater: 1013; BadGateway: 1014;
  TlsHandshakeFailure: 1015; Timeout: 3008; HandshakeTimeout: 4000; SessionTakenOver: 4001; SlowConsumer: 4008;
}>;

// ----- retry hint -----

/** The largest hint honoured: one day. */
export declare const MAX_RETRY_HINT_MS: number;
/** Finds `retry-after-ms=N` in a close reason (docs/protocol.md section 2); null when absent. */
export declare function parseRetryHint(reason: string | null | undefined): number | null;
/** Builds `text; retry-after-ms=N` (N clamped to 0-86,400,000), the text shortened so the whole fits a close reason (123 bytes of UTF-8). Throws a RangeError for NaN. */
export declare function formatRetryHint(ms: number, text?: string): string;

// ----- policy -----

export interface ReconnectOptions {
  /** First backoff delay before jitter. Default 1000. */
  baseDelay?: number;
  /** Growth factor per attempt. Default 2. */
  multiplier?: number;
  /** Cap on a backoff delay, applied before jitter. Default 30000. */
  maxDelay?: number;
  /** Default 'full': random(0, capped). */
  jitter?: 'full' | 'decorrelated' | 'none';
  /** Base and floor of the backoff after 1013. Default 5000. */
  tryAgainLaterBaseDelay?: number;
  /** Random delay after 1012/1001 without a hint: [soonMinDelay, soonMaxDelay]. Defaults 1000 and 5000. */
  soonMinDelay?: number;
  soonMaxDelay?: number;
  /** A server hint is clamped to [minHintDelay, maxHintDelay]. Defaults 100 and 60000. */
  minHintDelay?: number;
  maxHintDelay?: number;
  /** After 1012/1001, refused connects within this window retry after restartRetryMinDelay up to a ceiling of the time since the loss, at least 4 × that minimum, at most restartRetryMaxDelay. Default 30000 (0: off). */
  restartWindow?: number;
  /** Default 250. */
  restartRetryMinDelay?: number;
  /** Default 3000. */
  restartRetryMaxDelay?: number;
  /** Stop after this many consecutive attempts. Default null: no limit. */
  maxAttempts?: number | null;
  /** Stop once the link has been down this long. Default null: no limit. */
  maxElapsed?: number | null;
  /** Reactions replacing the catalogue's for given codes, e.g. `{ 4100: 'stop' }`. */
  codeReactions?: Record<number, Reaction>;
  /** A connection up this long (or one that carried a message and was up a tenth of it) resets the attempt count to 1. Default 10000. */
  stablePeriod?: number;
}

export interface ReconnectContext {
  /** The attempt about to be made, from 1. */
  attempt: number;
  /** Time since the outage began. */
  elapsed: number;
  /** 'connect-failed': the socket never opened (a browser shows a refused connect as close 1006 before open). */
  kind: 'closed' | 'connect-failed';
  code?: number | null;
  reason?: string;
  /** The server's hint; when absent it is read from `reason`. */
  hint?: number | null;
  previousDelay?: number | null;
  /** The close code that began this outage (e.g. 1012), kept for the failed attempts that follow. */
  outageCode?: number | null;
  /** Forces a reaction (used for the one new-session attempt after a refused resume). */
  reaction?: Reaction;
}

export declare const DEFAULT_RECONNECT_OPTIONS: Readonly<Required<ReconnectOptions>>;
export declare function resolveReconnectOptions(options?: ReconnectOptions): Readonly<Required<ReconnectOptions>>;
/** The catalogue's default reaction to a close code. */
export declare function defaultReaction(code: number): Reaction;
export declare function reactionFor(context: ReconnectContext, options?: ReconnectOptions): Reaction;
export declare function exponentialDelay(attempt: number, baseDelay: number, multiplier: number, cap: number): number;
/** The delay before the next attempt, or null to stop. Pure; `random` returns [0, 1). */
export declare function nextDelay(context: ReconnectContext, options?: ReconnectOptions, random?: () => number): number | null;

// ----- wire format -----

export declare const MAX_WIRE_VALUE: bigint;
export declare const SESSION_SUBPROTOCOL: 'lifeline.v1';
export declare const PROTOCOL_VERSION: 1;
export declare const FrameType: Readonly<{ Hello: 1; Welcome: 2; Resumed: 3; SessionLost: 4; Ack: 5; DataBinary: 6; DataText: 7 }>;
export declare const SessionLostReason: Readonly<{ NotFound: 1; ReplayUnavailable: 2; BufferFull: 3; Expired: 4 }>;
export declare function sessionLostReasonName(reason: number): 'not-found' | 'replay-unavailable' | 'buffer-full' | 'expired' | 'unknown';

export declare class FrameError extends Error {
  /** The close code the error calls for: 1002, or 1009 for an oversized frame. */
  code: number;
  constructor(message: string, code?: number);
}

/** A sequence number, ack or count: a Number while at most 2^53-1, else a BigInt. */
export type WireNumber = number | bigint;

export declare function encodeVarint(value: WireNumber): Uint8Array;
export declare function decodeVarint(bytes: Uint8Array, offset?: number): { value: WireNumber; next: number };

export type Frame =
  | { type: 'hello'; version: WireNumber; resume: false }
  | { type: 'hello'; version: WireNumber; resume: true; sessionId: Uint8Array; token: Uint8Array; lastReceived: WireNumber }
  | {
      type: 'welcome'; version: WireNumber; sessionId: Uint8Array; token: Uint8Array; resumeWindowMs: WireNumber;
      maxFrameBytes: WireNumber; replayMaxMessages: WireNumber; replayMaxBytes: WireNumber;
    }
  | { type: 'resumed'; lastReceived: WireNumber; replayCount: WireNumber }
  | { type: 'sessionlost'; reason: number; lastReceived: WireNumber; lostFirst: WireNumber; lostCount: WireNumber }
  | { type: 'ack'; ack: WireNumber }
  | { type: 'data'; seq: WireNumber; ack: WireNumber; text: boolean; payload: Uint8Array };

export declare function encodeFrame(frame: Frame | { type: 'data'; seq: WireNumber; ack: WireNumber; text: boolean; payload: Uint8Array | string }): Uint8Array;
export declare function decodeFrame(message: Uint8Array | ArrayBuffer, maxFrameBytes?: number): Frame;
export declare function toHex(bytes: Uint8Array): string;

// ----- LifelineSocket -----

export declare class SendQueueFullError extends Error {}
export declare class SocketClosedError extends Error {}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

export interface LifelineOptions {
  url?: string | URL;
  /** Subprotocols to offer; session mode puts `lifeline.v1` first. */
  protocols?: string | string[];
  /** Speak `lifeline.v1` (docs/protocol.md section 5). Default false. */
  session?: boolean;
  /** Reconnect policy options, a custom policy (context => delay or null), or false for never. */
  reconnect?: ReconnectOptions | ((context: ReconnectContext) => number | null) | false;
  /** Bounds of the queue of messages not yet handed to a socket. Defaults 1000 messages, 1 MiB, 'fail'. */
  sendQueue?: { maxMessages?: number; maxBytes?: number; fullMode?: 'wait' | 'fail' | 'drop-oldest' };
  /**
   * Session mode: bounds of the replay buffer (sent, not yet acknowledged). Defaults 10000 messages, 1 MiB. When full,
   * sends wait in the send queue. `maxAge` (default 300000 ms, null for none): a message unacknowledged longer ends the
   * session with SessionLost 04 when the next message is sent (a `sessionlost` event, reason 'expired').
   */
  replay?: { maxMessages?: number; maxBytes?: number; maxAge?: number | null };
  /** Session mode: send an Ack after this many deliveries, bytes or ms, whichever first. Defaults 4096, 262144, 200. */
  ack?: { messages?: number; bytes?: number; delay?: number };
  /**
   * Session mode: every `interval` an Ack frame that acknowledges nothing new is sent as a heartbeat (browsers cannot
   * send pings). A link with data sent and unacknowledged and nothing received for `timeout` is dead (reported as 1006
   * 'heartbeat timeout', then reconnect and resume); so, once the server has answered a heartbeat (a Lifeline server
   * does), is an idle or receive-only link whose heartbeat goes unanswered for `timeout`. To learn that at once, each
   * socket sends its first heartbeat as soon as nothing of its own is outstanding. Defaults 15000 and 30000; false
   * turns both off. With a timeout, the interval must be set and below it (RangeError otherwise).
   */
  heartbeat?: { interval?: number | null; timeout?: number | null } | false;
  /** Both modes: no inbound message within this is a dead link (1006 'receive watchdog'). Default null: off. */
  receiveTimeout?: number | null;
  /** A socket not open within this is a failed attempt. Default 10000. */
  connectTimeout?: number | null;
  /** Session mode: no Welcome/Resumed within this after Hello is a lost link. Default 10000. */
  handshakeTimeout?: number | null;
  /** Session mode: a longer inbound frame closes with 1009. Default 4 MiB. */
  maxReceiveBytes?: number;
  /** After close(), give up waiting for the peer's Close after this (then 1006 'close timeout'). Default 5000; null or 0: wait for the close event however long it takes. */
  closeTimeout?: number | null;
  /** After a refused resume (1008 with the reason `session refused`), try one new session. Default true. */
  retryNewSessionAfterRefusedResume?: boolean;
  /** Stops the socket for good when aborted (close 1000 'aborted'). */
  signal?: AbortSignal;
  /** Reconnect at once on its 'online' event. Default `window` in a browser; null to disable. */
  onlineTarget?: EventTarget | null;
  /** For tests: the WebSocket constructor, the clock and the random source. */
  WebSocket?: new (url: string, protocols?: string | string[]) => WebSocket;
  clock?: Partial<Clock>;
  random?: () => number;
}

export type LifelineState = 'connecting' | 'open' | 'reconnecting' | 'closing' | 'closed';

export interface LifelineOpenEvent extends Event {
  readonly reconnected: boolean;
  /** Session mode: whether the session was resumed (false: a new session). */
  readonly resumed?: boolean;
  readonly sessionId?: string;
}
export interface LifelineMessageEvent extends Event {
  readonly data: string | ArrayBuffer;
  /** Session mode: the message's sequence number. */
  readonly seq?: number;
}
export interface LifelineCloseEvent extends Event {
  /** The code observed (1006: no Close frame; locally detected protocol errors carry their own code, e.g. 1002). */
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
  readonly willReconnect: boolean;
  /** The delay before the next attempt, or null. */
  readonly delay: number | null;
  /** True when this client detected the error (the wire carried 1000 with the code in the reason). */
  readonly local?: boolean;
}
export interface LifelineReconnectingEvent extends Event {
  readonly attempt: number;
  readonly delay: number;
  readonly code: number;
  readonly reason: string;
}
export interface LifelineResumedEvent extends Event {
  readonly sessionId: string;
  /** Messages the server said it replays to us. */
  readonly replayedByServer: WireNumber;
  /** Messages this client resent. */
  readonly replayedByClient: number;
  readonly serverLastReceived: number;
}
export interface LostMessages {
  readonly first: WireNumber;
  readonly count: WireNumber;
  /** The messages' data (strings or Uint8Arrays), so the application can decide what to resend. */
  readonly messages: Array<string | Uint8Array>;
}
export interface LifelineSessionLostEvent extends Event {
  readonly reason: 'not-found' | 'replay-unavailable' | 'buffer-full' | 'expired' | 'unknown' | 'refused';
  readonly reasonCode: number | null;
  readonly initiator: 'server' | 'client';
  readonly sessionId: string | null;
  /** The server's messages that will never arrive. */
  readonly lostIncoming: { first: WireNumber; count: WireNumber };
  /** Our messages the server's application certainly did not get. */
  readonly undelivered: LostMessages;
  /** Our messages without confirmation either way (none when the server stated its last received: those up to it were handled). */
  readonly unconfirmed: LostMessages;
  /** The last sequence this client delivered in the lost session. */
  readonly lastDelivered: number;
}
export interface LifelineAckEvent extends Event {
  readonly ack: number;
  readonly released: number;
}
export interface LifelineDropEvent extends Event {
  readonly data: string | Uint8Array;
  readonly reason: string;
}
export interface LifelineErrorEvent extends Event {
  readonly error: unknown;
}

export interface LifelineEventMap {
  open: LifelineOpenEvent;
  message: LifelineMessageEvent;
  close: LifelineCloseEvent;
  reconnecting: LifelineReconnectingEvent;
  resumed: LifelineResumedEvent;
  sessionlost: LifelineSessionLostEvent;
  ack: LifelineAckEvent;
  drop: LifelineDropEvent;
  error: LifelineErrorEvent;
}

export declare class LifelineSocket extends EventTarget {
  /**
   * Starts connecting at once. Throws what `new WebSocket` throws for an error no retry can mend (`SyntaxError`: a bad
   * URL or subprotocol; `SecurityError`: a page that may not open it); on a later attempt the same stops the socket
   * with an `error` event and a final `close`.
   */
  constructor(url: string | URL, options?: LifelineOptions);
  constructor(options: LifelineOptions & { url: string | URL });
  readonly url: string;
  readonly session: boolean;
  readonly state: LifelineState;
  readonly sessionId: string | null;
  readonly queuedMessages: number;
  readonly queuedBytes: number;
  readonly unacknowledged: number;
  readonly protocol: string;
  readonly stats: { messagesSent: number; messagesReceived: number; duplicatesDropped: number; replayedOut: number; reconnects: number };
  /** Returns a Promise in sendQueue.fullMode 'wait' only. Throws SendQueueFullError ('fail'), RangeError (too large), SocketClosedError (stopped). */
  send(data: string | ArrayBuffer | ArrayBufferView): void | Promise<void>;
  /** Stops for good. `code` is 1000 or 3000-4999. */
  close(code?: number, reason?: string): void;
  addEventListener<K extends keyof LifelineEventMap>(type: K, listener: (event: LifelineEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof LifelineEventMap>(type: K, listener: (event: LifelineEventMap[K]) => void, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}
