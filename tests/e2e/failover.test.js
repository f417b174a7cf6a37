// Fail-over across the keys of a level (api-compat 7.4): a key answering 429, 5xx, or nothing in
// time is put to sleep and the next key serves the request; the upstream's error body is never
// shown while another key remains; when every key fails the client gets tollgate's own error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startGateway } from './lib/harness.js';

let mock;
const keys = [
  { name: 'key-a', secret: 'sk-upstream-a-000001' },
  { name: 'key-b', secret: 'sk-upstream-b-000002' },
];
const messages = [{ role: 'user', content: 'hello' }];

before(async () => {
  mock = await startMock(['--chunks', '2']);
});

after(async () => {
  await mock?.stop();
});

/** Each test gets a fresh gateway (key sleep state is per arena) and a clean mock. */
async function withGateway(fn) {
  await mock.reset();
  const gw = await startGateway({ mock, keys, upstream: 'upstream:\n  first_byte_timeout: 700ms\n' });
  const client = new OpenAI({ apiKey: gw.rootKey, baseURL: `${gw.base}/v1`, maxRetries: 0 });
  try {
    await fn(gw, client);
  } finally {
    await gw.cleanup();
    await mock.reset();
  }
}

test('a key answering 429 sleeps and the other key serves every request', () => withGateway(async (gw, client) => {
  await mock.fault(keys[0].secret, '429', -1);
  for (let i = 0; i < 6; i++) {
    const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    assert.equal(r.object, 'chat.completion');
  }
  const stats = await mock.stats();
  assert.equal(stats.by_key[keys[1].secret].served, 6);
  // key-a was tried at most once: after its 429 it sleeps (Retry-After: 1 s from the mock)
  assert.ok((stats.by_key[keys[0].secret]?.requests ?? 0) <= 1, JSON.stringify(stats.by_key));
  assert.equal(gw.usage().filter((u) => u.key === 1).length, 0, 'nothing billed to the failing key');
}));

test('a 5xx before the first byte is retried on the next key, streaming too', () => withGateway(async (gw, client) => {
  await mock.fault('*', '500', 1); // whichever key comes first fails once
  const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.ok(text.length > 0);
  const stats = await mock.stats();
  assert.equal(stats.faults, 1);
  assert.equal(stats.served, 1);
  const usage = gw.usage();
  assert.equal(usage.length, 1, 'one record for the request, not one per attempt');
}));

test('when every key fails the client gets a tollgate error, not an upstream body', () => withGateway(async (gw) => {
  await mock.fault('*', '503', -1);
  const r = await fetch(`${gw.base}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${gw.rootKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages }),
  });
  assert.equal(r.status, 503);
  const body = await r.json();
  assert.equal(body.error.type, 'upstream_error');
  assert.match(body.message, /every available key/);
  const stats = await mock.stats();
  assert.equal(stats.faults, 2, 'each key tried once');
  // both keys now rest: the next request is refused at once without reaching the upstream
  const again = await fetch(`${gw.base}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${gw.rootKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages }),
  });
  assert.equal(again.status, 503);
  assert.equal((await again.json()).error.code, 'no_upstream_key');
  assert.equal((await mock.stats()).requests, 2);
}));

test('an upstream that never answers hits the first-byte timeout, tries the next key, then 504', () => withGateway(async (gw) => {
  await mock.fault('*', 'stall', -1);
  const t0 = Date.now();
  const r = await fetch(`${gw.base}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${gw.rootKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages }),
  });
  const took = Date.now() - t0;
  assert.equal(r.status, 504);
  assert.ok(took >= 1300 && took < 5000, `two 700 ms waits, took ${took} ms`);
  assert.equal((await r.json()).error.code, 'upstream_unavailable');
}));

test('when a level is exhausted the request falls over to the level SWITCH_OVER names', async () => {
  await mock.reset();
  const three = [
    { name: 'l1', secret: 'sk-level-one-000001', level: 1 },
    { name: 'l2', secret: 'sk-level-two-000002', level: 2 },
    { name: 'l3', secret: 'sk-level-three-00003', level: 3 },
  ];
  const gw = await startGateway({ mock, keys: three });
  try {
    const r = await fetch(`${gw.base}/x-config`, {
      method: 'PUT', headers: { authorization: gw.rootKey, 'content-type': 'application/json' },
      body: JSON.stringify({ SWITCH_OVER: '1=3' }),
    });
    assert.equal(r.status, 200, await r.text());
    await mock.fault(three[0].secret, '500', -1);
    const client = new OpenAI({ apiKey: gw.rootKey, baseURL: `${gw.base}/v1`, maxRetries: 0 });
    for (let i = 0; i < 3; i++) await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    const stats = await mock.stats();
    assert.equal(stats.by_key[three[2].secret]?.served, 3, JSON.stringify(stats.by_key));
    assert.equal(stats.by_key[three[1].secret], undefined, 'level 2 is not on the SWITCH_OVER path');
  } finally {
    await gw.cleanup();
    await mock.reset();
  }
});
