namespace Lifeline.Cli.Serve;

/// <summary>
/// The page <c>lifeline serve</c> shows at "/": a live demo built on the browser client (<c>lifeline.js</c>, loaded
/// from <see cref="DemoServer.ScriptPath"/>). It connects to the echo endpoint of the same origin, sends a numbered
/// message every two seconds and logs every close (code, reason, the delay the client chose) and every reconnect,
/// so a person can watch a restart. Tests read <c>window.lifelineCloses</c>, <c>window.lifelineReconnects</c> and
/// <c>window.lifelineOpens</c>. Session mode (<c>lifeline.v1</c>) is one flag: <c>SESSION_MODE</c> below, or
/// <c>?session=1</c> in the page's address.
/// </summary>
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

          // Session mode (lifeline.v1: exactly once, in order, resumable) needs a server endpoint that speaks it.
          const SESSION_MODE = new URLSearchParams(location.search).get('session') === '1';

          window.lifelineSession = SESSION_MODE;
          window.lifelineOpen = false;
          window.lifelineOpens = [];
          window.lifelineCloses = [];
          window.lifelineReconnects = [];
          const $ = (id) => document.getElementById(id);
          const log = (line) => {
            const out = $('log');
            out.textContent += new Date().toISOString() + ' ' + line + '\n';
            out.scrollTop = out.scrollHeight;
          };
          $('mode').textContent = SESSION_MODE ? 'session (lifeline.v1)' : 'plain';

          const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
          const socket = new LifelineSocket(url, { session: SESSION_MODE, sendQueue: { maxMessages: 100, fullMode: 'drop-oldest' } });
          window.lifelineSocket = socket;
          let sent = 0, echoed = 0;

          socket.addEventListener('open', (e) => {
            window.lifelineOpen = true;
            window.lifelineOpens.push({ reconnected: e.reconnected, resumed: e.resumed ?? false, at: performance.now() });
            $('state').textContent = 'open';
            log((e.reconnected ? 'reconnected ' : 'open ') + url + (SESSION_MODE ? (e.resumed ? ' (session resumed)' : ' (new session)') : ''));
            if (!e.reconnected) socket.send('hello from the browser');
          });
          socket.addEventListener('message', (e) => {
            if (/^ping \d+$/.test(e.data)) { echoed++; $('echoed').textContent = echoed; }
            log('message ' + e.data);
          });
          socket.addEventListener('close', (e) => {
            window.lifelineCloses.push({ code: e.code, reason: e.reason, wasClean: e.wasClean, willReconnect: e.willReconnect, delay: e.delay, at: performance.now() });
            $('state').textContent = e.willReconnect ? 'waiting ' + e.delay + ' ms' : 'stopped';
            log('close ' + e.code + ' "' + e.reason + '" clean=' + e.wasClean + (e.willReconnect ? '; reconnect in ' + e.delay + ' ms' : '; not reconnecting'));
          });
          socket.addEventListener('reconnecting', (e) => {
            window.lifelineReconnects.push({ attempt: e.attempt, delay: e.delay, code: e.code, at: performance.now() });
            $('state').textContent = 'reconnecting';
            log('reconnecting: attempt ' + e.attempt + ' after ' + e.code + ', delay ' + e.delay + ' ms');
          });
          socket.addEventListener('resumed', (e) => log('session resumed: ' + e.replayedByServer + ' replayed in, ' + e.replayedByClient + ' out'));
          socket.addEventListener('sessionlost', (e) => log('session lost (' + e.reason + ')'));
          socket.addEventListener('drop', () => log('dropped a queued message (queue full)'));
          setInterval(() => { sent++; $('sent').textContent = sent; socket.send('ping ' + sent); }, 2000);
        </script>
        </body>
        </html>
        """;
}
