namespace Lifeline.Cli.Serve;

/// <summary>
/// The page <c>lifeline serve</c> shows at "/": it connects to the echo endpoint of the same origin and lists every
/// event, including the close code and reason a browser sees. Tests read <c>window.lifelineCloses</c>.
/// </summary>
internal static class BrowserPage
{
    public const string Html = """
        <!doctype html>
        <html lang="en">
        <head><meta charset="utf-8"><title>Lifeline serve</title></head>
        <body>
        <h1>Lifeline serve</h1>
        <p>This page connects to <code>/ws</code> on this server and lists what the browser sees.</p>
        <pre id="log"></pre>
        <script>
          window.lifelineCloses = [];
          window.lifelineOpen = false;
          const log = (line) => { document.getElementById('log').textContent += new Date().toISOString() + ' ' + line + '\n'; };
          const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
          const socket = new WebSocket(url);
          socket.onopen = () => { window.lifelineOpen = true; log('open ' + url); socket.send('hello from the browser'); };
          socket.onmessage = (e) => log('message ' + e.data);
          socket.onclose = (e) => {
            window.lifelineCloses.push({ code: e.code, reason: e.reason, wasClean: e.wasClean });
            log('close ' + e.code + ' "' + e.reason + '" clean=' + e.wasClean);
          };
        </script>
        </body>
        </html>
        """;
}
