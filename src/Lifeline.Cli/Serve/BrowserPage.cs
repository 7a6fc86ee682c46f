namespace Lifeline.Cli.Serve;

/// <summary>
/// The page <c>lifeline serve</c> shows at "/": a live demo built on the browser client (<c>lifeline.js</c>, loaded
/// from <see cref="DemoServer.ScriptPath"/>). It connects to the echo endpoint of the same origin, sends a numbered
/// message ("ping N") every two seconds and logs every close (code, reason, the delay the client chose) and every
/// reconnect, so a person can watch a restart.
/// </summary>
/// <remarks>
/// Query flags: <c>session=1</c> speaks <c>lifeline.v1</c> (exactly once, in order, resumable); <c>every=MS</c> sends
/// that often (default 2000); <c>stream=MS</c> (session mode) also opens <c>/stream?interval=MS</c>;
/// <c>retryRefused=0</c> stops after a refused resume instead of starting one new session; <c>heartbeat=MS</c> (session
/// mode) sets the heartbeat interval (its timeout three of them).
/// Tests read <c>window.__lifeline</c> (per socket: numbers sent and received, opens, closes, reconnects, resumes,
/// lost sessions; <c>stopSending()</c>, <c>tamperToken(name)</c>, <c>heartbeatsAnswered(name)</c>) and the older <c>window.lifelineCloses</c>,
/// <c>window.lifelineReconnects</c> and <c>window.lifelineOpens</c> of the echo socket.
/// </remarks>
internal static class BrowserPage
{
    public const string Html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8"><title>Lifeline serve</title>
        <style>
          body { font: 14px/1.4 system-ui, sans-serif; margin: 20px; color: #1d2330; }
          #log { background: #f6f7f9; border: 1px solid #e3e6eb; padding: 8px; max-height: 70vh; overflow: auto; }
          .stat { display: inline-block; margin-right: 18px; }
        </style>
        </head>
        <body>
        <h1>Lifeline serve</h1>
        <p>This page connects to <code>/ws</code> with <a href="/lifeline/lifeline.js">lifeline.js</a> and logs what the
        client sees and decides. Restart the server (Ctrl-C, then start it again) and watch it reconnect after the
        server's hint. Live server view: <a href="/lifeline/dashboard">dashboard</a>.</p>
        <p><span class="stat">mode: <b id="mode"></b></span><span class="stat">state: <b id="state">connecting</b></span>
        <span class="stat">sent: <b id="sent">0</b></span><span class="stat">echoed: <b id="echoed">0</b></span></p>
        <pre id="log"></pre>
        <script type="module">
          import { LifelineSocket } from '/lifeline/lifeline.js';

          const params = new URLSearchParams(location.search);
          const positive = (text, fallback) => { const n = Number(text); return Number.isFinite(n) && n >= 10 ? n : fallback; };
          // Session mode (lifeline.v1: exactly once, in order, resumable) needs a server endpoint that speaks it.
          const SESSION_MODE = params.get('session') === '1';
          const EVERY = positive(params.get('every'), 2000);
          const STREAM = SESSION_MODE && params.has('stream') ? positive(params.get('stream'), 1000) : null;
          const RETRY_REFUSED = params.get('retryRefused') !== '0';
          // Session heartbeat interval in ms (the timeout is three of them); the client's defaults (15 s, 30 s) without it.
          const HEARTBEAT = SESSION_MODE && params.has('heartbeat') ? positive(params.get('heartbeat'), 15000) : null;
          const QUIET = EVERY < 1000 || (STREAM !== null && STREAM < 1000); // fast numbers: do not log each message

          window.lifelineSession = SESSION_MODE;
          window.lifelineOpen = false;
          window.lifelineOpens = [];
          window.lifelineCloses = [];
          window.lifelineReconnects = [];
          const $ = (id) => document.getElementById(id);
          const log = (line) => {
            const text = new Date().toISOString() + ' ' + line;
            window.__lifeline.log.push(text);
            const out = $('log');
            out.appendChild(document.createTextNode(text + '\n'));
            out.scrollTop = out.scrollHeight;
          };
          $('mode').textContent = SESSION_MODE ? 'session (lifeline.v1)' : 'plain';

          const base = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host;
          const options = {
            session: SESSION_MODE,
            retryNewSessionAfterRefusedResume: RETRY_REFUSED,
            heartbeat: HEARTBEAT ? { interval: HEARTBEAT, timeout: 3 * HEARTBEAT } : undefined,
            // A session must not drop what it was given: a large queue that fails loudly; plain mode keeps the newest.
            sendQueue: SESSION_MODE ? { maxMessages: 10000, fullMode: 'fail' } : { maxMessages: 100, fullMode: 'drop-oldest' },
          };
          const sockets = {};
          window.__lifeline = {
            session: SESSION_MODE, every: EVERY, stream: STREAM, sending: true, log: [], sockets: {},
            /** Stops the numbered sends (the echoes of what was sent still arrive). */
            stopSending() { this.sending = false; },
            /** Whether the named socket has heard the server answer a heartbeat (then a silent link is found dead). */
            heartbeatsAnswered(name = 'echo') { return Boolean(sockets[name]?._heartbeatsAnswered); },
            /** Spoils the resume token the named socket holds, so its next resume is refused. */
            tamperToken(name = 'echo') {
              const s = sockets[name];
              if (!s || !s._token) return false;
              const token = s._token.slice();
              token[0] ^= 0xff;
              s._token = token;
              log((name === 'echo' ? '' : name + ': ') + 'resume token tampered with');
              return true;
            },
          };

          // One socket, with everything the page sees kept in window.__lifeline.sockets[name].
          function track(name, path) {
            const url = base + path;
            const socket = new LifelineSocket(url, options);
            const data = { url, state: 'connecting', sent: 0, received: [], sendErrors: [], opens: [], closes: [], reconnects: [], resumed: [], lost: [] };
            window.__lifeline.sockets[name] = data;
            sockets[name] = socket;
            const say = (line) => log((name === 'echo' ? '' : name + ': ') + line);
            const show = (state) => { data.state = state; if (name === 'echo') $('state').textContent = state; };
            let up = false; // a close while not open is a failed connect
            socket.addEventListener('open', (e) => {
              up = true;
              data.opens.push({ reconnected: e.reconnected, resumed: e.resumed ?? false, sessionId: e.sessionId ?? null, at: performance.now() });
              show('open');
              say((e.reconnected ? 'reconnected ' : 'open ') + url + (SESSION_MODE ? (e.resumed ? ' (session resumed)' : ' (new session)') : ''));
            });
            socket.addEventListener('close', (e) => {
              data.closes.push({ code: e.code, reason: e.reason, wasClean: e.wasClean, willReconnect: e.willReconnect, delay: e.delay, local: e.local ?? false, wasOpen: up, at: performance.now() });
              up = false;
              show(e.willReconnect ? 'waiting ' + e.delay + ' ms' : 'stopped');
              say('close ' + e.code + ' "' + e.reason + '" clean=' + e.wasClean + (e.willReconnect ? '; reconnect in ' + e.delay + ' ms' : '; not reconnecting'));
            });
            socket.addEventListener('reconnecting', (e) => {
              data.reconnects.push({ attempt: e.attempt, delay: e.delay, code: e.code, at: performance.now() });
              show('reconnecting');
              say('reconnecting: attempt ' + e.attempt + ' after ' + e.code + ', delay ' + e.delay + ' ms');
            });
            socket.addEventListener('resumed', (e) => {
              data.resumed.push({ sessionId: e.sessionId, replayedByServer: e.replayedByServer, replayedByClient: e.replayedByClient, serverLastReceived: e.serverLastReceived, at: performance.now() });
              say('session resumed: ' + e.replayedByServer + ' replayed in, ' + e.replayedByClient + ' out (server had ' + e.serverLastReceived + ')');
            });
            socket.addEventListener('sessionlost', (e) => {
              data.lost.push({ reason: e.reason, initiator: e.initiator, undelivered: e.undelivered.count, unconfirmed: e.unconfirmed.count, at: performance.now() });
              say('session lost (' + e.reason + ')');
            });
            socket.addEventListener('drop', () => say('dropped a queued message (queue full)'));
            return { socket, data, say };
          }

          const echo = track('echo', '/ws');
          window.lifelineSocket = echo.socket;
          echo.socket.addEventListener('open', (e) => {
            window.lifelineOpen = true;
            window.lifelineOpens.push({ reconnected: e.reconnected, resumed: e.resumed ?? false, at: performance.now() });
            if (!e.reconnected) echo.socket.send('hello from the browser');
          });
          echo.socket.addEventListener('close', (e) => window.lifelineCloses.push({ code: e.code, reason: e.reason, wasClean: e.wasClean, willReconnect: e.willReconnect, delay: e.delay, at: performance.now() }));
          echo.socket.addEventListener('reconnecting', (e) => window.lifelineReconnects.push({ attempt: e.attempt, delay: e.delay, code: e.code, at: performance.now() }));
          echo.socket.addEventListener('message', (e) => {
            const ping = typeof e.data === 'string' ? /^ping (\d+)$/.exec(e.data) : null;
            if (ping) { echo.data.received.push(Number(ping[1])); $('echoed').textContent = echo.data.received.length; }
            if (!ping || !QUIET) echo.say('message ' + e.data);
          });

          if (STREAM !== null) {
            const stream = track('stream', '/stream?interval=' + STREAM);
            stream.socket.addEventListener('message', (e) => {
              stream.data.received.push(Number(e.data));
              if (!QUIET) stream.say('message ' + e.data);
            });
          }

          setInterval(() => {
            if (!window.__lifeline.sending || echo.socket.state === 'closed') return;
            const n = echo.data.sent + 1;
            try {
              echo.socket.send('ping ' + n);
              echo.data.sent = n;
              $('sent').textContent = n;
            } catch (error) {
              echo.data.sendErrors.push(n + ': ' + error.name);
            }
          }, EVERY);
        </script>
        </body>
        </html>
        """;
}
