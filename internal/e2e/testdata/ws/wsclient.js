// A WebSocket client for internal/e2e/conformance_test.go: Node's `ws`
// (strict about UTF-8, masking and close codes), driven by JSON lines on
// stdin, reporting JSON lines on stdout. `ws` is installed next to this
// file (package.json) by scripts/ensure-interop.sh.
//
//   {"cmd":"connect","id":"a","url":"ws://…","token":"…"}   → {"ev":"open","id":"a"}
//   {"cmd":"send","id":"a","text":"…"}
//   {"cmd":"pause","id":"a"} / {"cmd":"resume","id":"a"}   stop / start reading the socket
//   → {"ev":"message","id":"a","topic":"…","bytes":N,"dataLen":N}  (dataLen: data.s's length, if any)
//   → {"ev":"close","id":"a","code":N,"reason":"…"}, {"ev":"error","id":"a","error":"…"}
'use strict';
const WebSocket = require('ws');
const readline = require('readline');

const conns = new Map();
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const m = JSON.parse(line);
  const ws = conns.get(m.id);
  switch (m.cmd) {
    case 'connect': {
      const c = new WebSocket(m.url, { headers: { Authorization: 'Bearer ' + m.token } });
      conns.set(m.id, c);
      c.on('open', () => emit({ ev: 'open', id: m.id }));
      c.on('message', (data, isBinary) => {
        let topic = '';
        let dataLen = -1;
        try {
          const f = JSON.parse(data.toString('utf8'));
          topic = f.topic;
          if (f.data && typeof f.data.s === 'string') dataLen = f.data.s.length;
        } catch (e) {
          emit({ ev: 'error', id: m.id, error: 'a frame that is not JSON: ' + e.message });
        }
        emit({ ev: 'message', id: m.id, binary: isBinary, topic, bytes: data.length, dataLen });
      });
      c.on('close', (code, reason) => emit({ ev: 'close', id: m.id, code, reason: reason.toString() }));
      c.on('error', (err) => emit({ ev: 'error', id: m.id, error: String(err && err.message) }));
      break;
    }
    case 'send':
      ws.send(m.text);
      break;
    case 'pause':
      ws.pause();
      break;
    case 'resume':
      ws.resume();
      break;
    case 'quit':
      process.exit(0);
  }
});
