// The upstream client's two backends (docs/proxy.md "The upstream client"): the lean keep-alive
// HTTP/1.1 client that carries http:// and https:// by default, and libcurl, which
// `upstream.client: curl` forces everywhere. Against the real binary: answers and usage through
// both; connections kept and reused; a pooled connection that dies before answering retried once
// on a fresh one, and nothing retried once an answer began (a raw TCP upstream shows exactly what
// arrived on which connection); https:// upstreams verified (CA, name, IP address) the same way by
// both backends, with certificates made at test time (lib/certs.js).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readdirSync, readlinkSync, readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { startMock, startGateway, waitFor } from './lib/harness.js';
import { makeCerts } from './lib/certs.js';

let mock;
const messages = [{ role: 'user', content: 'hello' }];

before(async () => {
  mock = await startMock(['--chunks', '3']);
});

after(async () => {
  await mock?.stop();
});

/** Established TCP connections from PID to 127.0.0.1:PORT (its own sockets only). */
function connectionsTo(pid, port) {
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  const want = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync(`/proc/${pid}/net/tcp`, 'utf8').split('\n').slice(1).filter((l) => {
    const f = l.trim().split(/\s+/);
    return f.length > 9 && f[2] === `0100007F:${want}` && f[3] === '01' && inodes.has(f[9]);
  }).length;
}

async function chatBoth(client) {
  const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.choices[0].message.content, /mock/);
  const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(text, r.choices[0].message.content);
  return r;
}

for (const mode of ['auto', 'curl']) {
  test(`upstream.client: ${mode}: answers, streams and usage as the upstream served them, over one kept connection`, async () => {
    await mock.reset();
    const gw = await startGateway({ mock, upstream: mode === 'curl' ? 'upstream:\n  client: curl\n' : '' });
    try {
      const line = mode === 'curl' ? /upstream client: libcurl for every exchange/
        : /upstream client: lean HTTP\/1\.1 for http:\/\/ and https:\/\/, libcurl for the rest/;
      await waitFor(() => line.test(gw.out.stderr), { what: 'the worker naming its upstream client' });
      const client = new OpenAI({ apiKey: gw.rootKey, baseURL: `${gw.base}/v1`, maxRetries: 0 });
      const r = await chatBoth(client);
      for (let i = 0; i < 8; i++) await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
      const [worker] = gw.workerPids();
      assert.equal(connectionsTo(worker, Number(new URL(mock.url).port)), 1, 'sequential exchanges share one connection');
      const stats = await mock.stats();
      assert.equal(stats.served, 10);
      assert.equal(stats.streams, 1);
      let usage;
      await waitFor(() => { usage = gw.usage(); return usage.length === 10; }, { what: 'ten usage records' });
      assert.ok(usage.every((u) => u.ct === r.usage.completion_tokens), JSON.stringify(usage[0]));
    } finally {
      await gw.cleanup();
    }
  });
}

const COMPLETION = JSON.stringify({
  id: 'chatcmpl-raw', object: 'chat.completion', created: 1, model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'raw answer' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
});

/**
 * A raw HTTP/1.1 upstream: PLAN(connIndex, requestIndexOnConn) says what to do with each complete
 * request head + body: 'answer' (200, keep-alive), 'close' (close without a byte), 'half' (a partial
 * status line, then close). Records [conn, index] of every request it saw.
 */
async function rawUpstream(plan) {
  const seen = [];
  let conns = 0;
  const server = net.createServer((sock) => {
    const conn = conns++;
    let buf = Buffer.alloc(0);
    let n = 0;
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        const len = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        buf = buf.subarray(end + 4 + len);
        seen.push([conn, n]);
        const what = plan(conn, n++);
        if (what === 'close') { sock.destroy(); return; }
        if (what === 'half') { sock.end('HTTP/1.1 2'); return; }
        sock.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(COMPLETION)}\r\n\r\n${COMPLETION}`);
      }
    });
    sock.on('error', () => {});
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, seen, stop: () => new Promise((r) => server.close(r)) };
}

test('a kept connection that dies before answering is replaced once, transparently', async () => {
  // connection 0 answers its first request and drops the second unanswered, like a server whose
  // keep-alive timer fired just as the request left; every later connection answers
  const up = await rawUpstream((conn, i) => (conn === 0 && i === 1 ? 'close' : 'answer'));
  const gw = await startGateway({ mock: up });
  try {
    const client = new OpenAI({ apiKey: gw.rootKey, baseURL: `${gw.base}/v1`, maxRetries: 0 });
    for (let i = 0; i < 3; i++) {
      const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
      assert.equal(r.choices[0].message.content, 'raw answer');
    }
    // the second request went out on connection 0, then again on connection 1, which also carried the third
    assert.deepEqual(up.seen, [[0, 0], [0, 1], [1, 0], [1, 1]]);
  } finally {
    await gw.cleanup();
    await up.stop();
  }
});

test('nothing is retried once the answer began: a cut status line is a failed exchange', async () => {
  const up = await rawUpstream((conn, i) => (conn === 0 && i === 1 ? 'half' : 'answer'));
  const gw = await startGateway({ mock: up });
  try {
    const client = new OpenAI({ apiKey: gw.rootKey, baseURL: `${gw.base}/v1`, maxRetries: 0 });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages }), (e) => e.status === 502);
    assert.deepEqual(up.seen, [[0, 0], [0, 1]], 'the request reached the upstream once');
  } finally {
    await gw.cleanup();
    await up.stop();
  }
});

// ---- https:// upstreams (docs/proxy.md "TLS to the upstream") -------------------------------------

/** The gateway's answer to one chat request, without the SDK (an error answer is the point here). */
async function chatRaw(gw) {
  const r = await fetch(`${gw.base}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${gw.rootKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages }),
  });
  return { status: r.status, body: await r.json() };
}

const clientLine = (mode) => (mode === 'curl' ? '  client: curl\n' : '');

describe('https upstreams', () => {
  let certs;
  let good;
  before(async () => {
    certs = makeCerts();
    good = await startMock(['--chunks', '3', '--tls-cert', certs.good.cert, '--tls-key', certs.good.key]);
  });
  after(async () => {
    await good?.stop();
    certs?.cleanup();
  });

  /** A mock serving CERT over TLS (TLS_MAX caps its protocol version). */
  async function tlsMock(cert, tlsMax) {
    return startMock(['--tls-cert', cert.cert, '--tls-key', cert.key, ...(tlsMax ? ['--tls-max', tlsMax] : [])]);
  }

  for (const mode of ['auto', 'curl']) {
    test(`upstream.client: ${mode}: an https:// host-name upstream with a CA from upstream.ca_file answers and streams over one kept connection`, async () => {
      await good.reset();
      const gw = await startGateway({
        mock: { url: `https://localhost:${good.tlsPort}` },
        upstream: `upstream:\n  ca_file: ${certs.ca}\n${clientLine(mode)}`,
      });
      try {
        const client = new OpenAI({ apiKey: gw.rootKey, baseURL: `${gw.base}/v1`, maxRetries: 0 });
        const r = await chatBoth(client);
        for (let i = 0; i < 8; i++) await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
        const [worker] = gw.workerPids();
        assert.equal(connectionsTo(worker, good.tlsPort), 1, 'ten exchanges share one TLS connection');
        const stats = await good.stats();
        assert.equal(stats.served, 10);
        assert.equal(stats.streams, 1);
        let usage;
        await waitFor(() => { usage = gw.usage(); return usage.length === 10; }, { what: 'ten usage records' });
        assert.ok(usage.every((u) => u.ct === r.usage.completion_tokens), JSON.stringify(usage[0]));
        if (mode === 'auto') { // the name went through the lean client's resolver, not libcurl
          await waitFor(() => /upstream host localhost resolved to \d+ address\(es\)/.test(gw.out.stderr),
            { what: 'the worker reporting its lookup of localhost' });
        }
      } finally {
        await gw.cleanup();
      }
    });

    test(`upstream.client: ${mode}: a TLS 1.2 upstream named by its IP address is verified against the certificate's IP entry`, async () => {
      const m = await tlsMock(certs.good, '1.2');
      const gw = await startGateway({
        mock: { url: `https://127.0.0.1:${m.tlsPort}` },
        upstream: `upstream:\n  ca_file: ${certs.ca}\n${clientLine(mode)}`,
      });
      try {
        const client = new OpenAI({ apiKey: gw.rootKey, baseURL: `${gw.base}/v1`, maxRetries: 0 });
        await chatBoth(client);
        assert.equal((await m.stats()).served, 2);
      } finally {
        await gw.cleanup();
        await m.stop();
      }
    });

    test(`upstream.client: ${mode}: a certificate for another name is refused like a connect error, and the next key serves`, async () => {
      const wrong = await tlsMock(certs.wrongName);
      const upstream = `upstream:\n  ca_file: ${certs.ca}\n${clientLine(mode)}`;
      const alone = await startGateway({ mock: { url: `https://localhost:${wrong.tlsPort}` }, upstream });
      try {
        const { status, body } = await chatRaw(alone);
        assert.ok(status === 502 || status === 503, `status ${status}`);
        assert.equal(body.error.type, 'upstream_error');
        assert.equal((await wrong.stats()).requests, 0, 'no request reached the impostor');
        if (mode === 'auto')
          assert.match(alone.out.stderr, new RegExp(`upstream https://localhost:${wrong.tlsPort}: TLS handshake failed: hostname mismatch`));
      } finally {
        await alone.cleanup();
      }
      await good.reset();
      const keys = [
        { name: 'impostor', secret: 'sk-upstream-wrong-0001', provider: `https://localhost:${wrong.tlsPort}` },
        { name: 'genuine', secret: 'sk-upstream-right-0002', provider: `https://localhost:${good.tlsPort}` },
      ];
      const gw = await startGateway({ mock: good, keys, upstream });
      try {
        const client = new OpenAI({ apiKey: gw.rootKey, baseURL: `${gw.base}/v1`, maxRetries: 0 });
        for (let i = 0; i < 4; i++) await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
        assert.equal((await good.stats()).by_key['sk-upstream-right-0002'].served, 4);
        if (mode === 'auto') // round robin offered the impostor's key at least once
          assert.match(gw.out.stderr, /TLS handshake failed: hostname mismatch/);
      } finally {
        await gw.cleanup();
        await wrong.stop();
      }
    });

    test(`upstream.client: ${mode}: a certificate from a CA the gateway does not trust is refused`, async () => {
      const untrusted = await tlsMock(certs.untrusted);
      for (const upstream of [`upstream:\n  ca_file: ${certs.ca}\n${clientLine(mode)}`, mode === 'curl' ? 'upstream:\n  client: curl\n' : '']) {
        const gw = await startGateway({ mock: { url: `https://localhost:${untrusted.tlsPort}` }, upstream });
        try {
          const { status, body } = await chatRaw(gw);
          assert.ok(status === 502 || status === 503, `status ${status}`);
          assert.equal(body.error.type, 'upstream_error');
          if (mode === 'auto')
            assert.match(gw.out.stderr, /TLS handshake failed: unable to get local issuer certificate/);
        } finally {
          await gw.cleanup();
        }
      }
      assert.equal((await untrusted.stats()).requests, 0);
      await untrusted.stop();
    });
  }

  test('a host name that does not resolve fails like a connect error, with the resolver\'s reason logged', async () => {
    const gw = await startGateway({ mock: { url: 'https://no-such-host.invalid' } });
    try {
      for (let i = 0; i < 2; i++) { // the second meets the failed lookup kept for a few seconds
        const { status, body } = await chatRaw(gw);
        assert.ok(status === 502 || status === 503, `status ${status}`);
        assert.equal(body.error.type, 'upstream_error');
      }
      await waitFor(() => /upstream host no-such-host\.invalid could not be resolved: /.test(gw.out.stderr),
        { what: 'the worker reporting the failed lookup' });
    } finally {
      await gw.cleanup();
    }
  });

  test('upstream.ca_file must hold a PEM certificate: the gateway refuses to start and names the file', async () => {
    const gw = startGateway({ mock: good, upstream: `upstream:\n  ca_file: ${certs.good.key}\n` });
    await assert.rejects(gw, (e) => /upstream\.ca_file: .*good\.key holds no PEM certificate/.test(e.message));
  });
});
