// Fail-over (api-compat 7.4): a key answering 429, 5xx, or nothing in time is put to sleep and
// the next key serves the request, along the documented order (the level's keys, SWITCH_OVER,
// Gear/AllowLevels drift, ModelFailover); the upstream's error body is never shown while another
// key remains; when every key fails the client gets tollgate's own error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startGateway, waitFor } from './lib/harness.js';

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

test('fail-over order: level keys, SWITCH_OVER, Gear/AllowLevels drift, then ModelFailover (api-compat 7.4)', async () => {
  await mock.reset();
  const gw = await startGateway({ mock, extra: 'store:\n  allow_private_providers: true\n' });
  const api = async (key, method, path, body) => {
    const r = await fetch(`${gw.base}${path}`, {
      method, headers: { authorization: key, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    const json = await r.json();
    assert.equal(r.status, 200, JSON.stringify(json));
    return json;
  };
  try {
    // an owner (root's child owns its pool) with keys at levels 1 (two), 2, 3, 4 and 5
    const owner = (await api(gw.rootKey, 'POST', '/x-users', { Name: 'fo-owner', Email: 'fo@example.com', CreditGranted: 100 })).User;
    const secrets = { l1a: 'sk-fo-level1-a-000001', l1b: 'sk-fo-level1-b-000002', l2: 'sk-fo-level2-0000003',
      l3: 'sk-fo-level3-0000004', l4: 'sk-fo-level4-0000005', l5: 'sk-fo-level5-0000006' };
    for (const [name, secret] of Object.entries(secrets)) {
      await api(owner.SecretKey, 'POST', '/x-keys', { Name: name, Level: Number(name[1]), Provider: mock.url, SecretKey: secret });
    }
    // level 1 falls over to 2; the backup of gpt-4o-mini is gpt-4o, served from level 4
    await api(owner.SecretKey, 'PUT', '/x-config', { SWITCH_OVER: '1=2', LEVEL_MAPPER: 'gpt-4o=4', MODEL_FAILOVER: 'gpt-4o-mini=gpt-4o' });
    const client = new OpenAI({ apiKey: owner.SecretKey, baseURL: `${gw.base}/v1`, maxRetries: 0 });
    const served = async () => {
      const before = await mock.stats();
      const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
      const after = await mock.stats();
      const who = Object.entries(secrets).find(([, s]) => (after.by_key[s]?.served ?? 0) > (before.by_key[s]?.served ?? 0));
      return [who?.[0], r.model];
    };

    // 1. both level-1 keys fail: SWITCH_OVER sends the request to level 2
    await mock.fault(secrets.l1a, '500', -1);
    await mock.fault(secrets.l1b, '500', -1);
    assert.deepEqual(await served(), ['l2', 'gpt-4o-mini']);
    // 2. level 2 fails too; Gear 0 forbids drift, so level 3 is skipped for the backup model on level 4
    await mock.fault(secrets.l2, '500', -1);
    assert.deepEqual(await served(), ['l4', 'gpt-4o']);
    assert.equal((await mock.stats()).by_key[secrets.l3], undefined, 'no drift with Gear 0');
    // 3. with Gear 1 and AllowLevels 3, the request drifts to level 3 before any backup model
    await api(gw.rootKey, 'PUT', '/x-users/fo-owner', { Gear: 1, AllowLevels: '3' });
    assert.deepEqual(await served(), ['l3', 'gpt-4o-mini']);
    // 4. level 3 fails: the backup model again
    await mock.fault(secrets.l3, '500', -1);
    assert.deepEqual(await served(), ['l4', 'gpt-4o']);
    // 5. everything fails: tollgate's own error, naming the last upstream status
    await mock.fault(secrets.l4, '503', -1);
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages }),
      (e) => e.status === 503 && /every available key/.test(e.message));
    const stats = await mock.stats();
    assert.equal(stats.by_key[secrets.l5], undefined, 'level 5 is outside AllowLevels: never tried');
    // each failing key was tried once, then slept (30 s) and was skipped by the later requests
    for (const k of ['l1a', 'l1b', 'l2', 'l3', 'l4']) assert.equal(stats.by_key[secrets[k]].faults, 1, k);
    assert.equal(stats.by_model['gpt-4o'].served, 2);
    // one record per request, the backup model billed where it served
    let recs = [];
    await waitFor(() => { recs = gw.usage().filter((u) => u.acct === owner.ID); return recs.length === 5; }, { what: 'five records' });
    assert.deepEqual(recs.map((u) => u.model), ['gpt-4o-mini', 'gpt-4o', 'gpt-4o-mini', 'gpt-4o', 'gpt-4o']);
    assert.deepEqual(recs.map((u) => u.st), [200, 200, 200, 200, 503]);
  } finally {
    await gw.cleanup();
    await mock.reset();
  }
});
