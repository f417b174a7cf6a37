// HTTP/2: cleartext h2c (prior knowledge) on the plain listener, and TLS with ALPN h2 on a TLS
// listener, both through the real binary to the mock, streaming included.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startMock, startGateway, freePort } from './lib/harness.js';

let mock, gw, tlsPort;

before(async () => {
  mock = await startMock(['--chunks', '3']);
  tlsPort = await freePort();
  // a throw-away self-signed certificate, made by the openssl command line in the test's directory
  const dir = (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'tollgate-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  gw = await startGateway({
    mock,
    extraListen: `  - host: 127.0.0.1\n    port: ${tlsPort}\n    tls:\n      cert: ${join(dir, 'cert.pem')}\n      key: ${join(dir, 'key.pem')}\n`,
  });
});

after(async () => {
  await gw?.cleanup();
  await mock?.stop();
});

function h2request(session, key, body) {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ':method': 'POST', ':path': '/v1/chat/completions',
      authorization: `Bearer ${key}`, 'content-type': 'application/json',
    });
    let data = '';
    let headers;
    req.on('response', (h) => { headers = h; });
    req.setEncoding('utf8');
    req.on('data', (d) => { data += d; });
    req.on('end', () => resolve({ headers, data }));
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

test('h2c with prior knowledge on the plain listener, several streams on one connection', async () => {
  const session = http2.connect(gw.base);
  try {
    const results = await Promise.all([1, 2, 3, 4].map(() => h2request(session, gw.rootKey, body)));
    for (const r of results) {
      assert.equal(r.headers[':status'], 200);
      assert.equal(JSON.parse(r.data).usage.completion_tokens, 6);
    }
    const s = await h2request(session, gw.rootKey, { ...body, stream: true });
    assert.equal(s.headers[':status'], 200);
    assert.match(s.headers['content-type'], /text\/event-stream/);
    assert.match(s.data, /data: \[DONE\]/);
  } finally {
    session.close();
  }
});

test('TLS listener negotiates h2 by ALPN and serves the proxy', async () => {
  const session = http2.connect(`https://127.0.0.1:${tlsPort}`, { rejectUnauthorized: false });
  try {
    const r = await h2request(session, gw.rootKey, body);
    assert.equal(session.alpnProtocol, 'h2');
    assert.equal(r.headers[':status'], 200);
    assert.equal(JSON.parse(r.data).object, 'chat.completion');
  } finally {
    session.close();
  }
});

test('a TLS listener with a missing certificate file is refused at start', async () => {
  const { runTollgate } = await import('./lib/harness.js');
  const { writeFileSync } = await import('node:fs');
  const path = join(gw.dir, 'badtls.yaml');
  writeFileSync(path, `listen:\n  - host: 127.0.0.1\n    port: ${await freePort()}\n    tls:\n      cert: /nonexistent/cert.pem\n      key: /nonexistent/key.pem\n`);
  const r = await runTollgate(['--check', '-c', path]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /badtls\.yaml:\d+: listen\[0\]\.tls\.cert: /);
});
