// A fake browser WebSocket for tests: the test plays the server by calling open/receive/serverClose/refuse.
// Like a browser, close() only accepts 1000 and 3000-4999, and send() throws unless open.
import { decodeFrame, encodeFrame } from '../lifeline.js';

export function fakeWebSocketClass() {
  return class FakeWebSocket {
    static instances = [];
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;

    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols === undefined ? [] : [].concat(protocols);
      this.readyState = 0;
      this.protocol = '';
      this.binaryType = 'blob';
      this.sent = [];
      this.closeCalls = [];
      this.onopen = this.onmessage = this.onerror = this.onclose = null;
      FakeWebSocket.instances.push(this);
    }

    send(data) {
      if (this.readyState !== 1) throw new Error('InvalidStateError: not open');
      this.sent.push(data instanceof Uint8Array ? data.slice() : data);
    }

    close(code, reason = '') {
      if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)) throw new Error(`InvalidAccessError: close code ${code}`);
      this.closeCalls.push({ code, reason });
      if (this.readyState < 2) this.readyState = 2;
    }

    // ----- the server's side -----
    open(protocol = '') {
      this.protocol = protocol;
      this.readyState = 1;
      this.onopen?.({ type: 'open' });
    }

    receive(data) {
      this.onmessage?.({ type: 'message', data });
    }

    /** Sends a session frame to the client (as an ArrayBuffer, binaryType 'arraybuffer'). */
    receiveFrame(frame) {
      const bytes = encodeFrame(frame);
      this.receive(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    }

    serverClose(code, reason = '', wasClean = true) {
      this.readyState = 3;
      this.onclose?.({ type: 'close', code, reason, wasClean });
    }

    /** A refused connect as a browser shows it: error, then close 1006 before open. */
    refuse() {
      this.readyState = 3;
      this.onerror?.({ type: 'error' });
      this.onclose?.({ type: 'close', code: 1006, reason: '', wasClean: false });
    }

    /** The session frames the client sent, decoded. */
    frames() {
      return this.sent.map((b) => decodeFrame(b));
    }
  };
}
