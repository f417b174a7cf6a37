// The proxy path through the real binary: the official OpenAI SDK against tollgate against the
// mock upstream, streaming and not; errors; the management forward; usage reaching the store.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startGateway, waitFor } from './lib/harness.js';

let mock, gw, client;

before(async () => {
  mock = await startMock(['--chunks', '5']);
  gw = await startGateway({ mock });
  client = new OpenAI({ apiKey: gw.rootKey, baseURL: `${gw.base}/v1`, maxRetries: 0 });
});

after(async () => {
  await gw?.cleanup();
  await mock?.stop();
});

const messages = [{ role: 'user', content: 'Say hello to the gateway.' }];

test('non-streaming chat completion passes through with usage and tollgate headers', async () => {
  const { data, response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages }).withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.model, 'gpt-4o-mini');
  assert.ok(data.choices[0].message.content.length > 0);
  assert.equal(data.usage.completion_tokens, 10); // 5 chunks x 2 tokens, as the mock defines
  assert.ok(data.usage.prompt_tokens > 0);
  assert.match(response.headers.get('x-request-id'), /^req_[0-9a-f]{28}$/);
  assert.ok(response.headers.get('x-tollgate-cost') !== null);
});

test('streaming chat completion relays every chunk and hides the usage chunk it added', async () => {
  const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.ok(text.length > 0, 'content arrived');
  assert.equal(chunks.filter((c) => c.choices.length === 0).length, 0, 'no usage-only chunk the client did not ask for');
  assert.equal(chunks.filter((c) => c.usage).length, 0);
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
});

test('streaming with include_usage gives the client the usage chunk', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true },
  });
  let usage;
  for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
  assert.ok(usage, 'usage chunk present');
  assert.equal(usage.completion_tokens, 10);
});

test('a stream arrives chunk by chunk, not buffered', async () => {
  const slow = await startMock(['--chunks', '4', '--chunk-delay-ms', '300']);
  const gw2 = await startGateway({ mock: slow });
  try {
    const c2 = new OpenAI({ apiKey: gw2.rootKey, baseURL: `${gw2.base}/v1`, maxRetries: 0 });
    const t0 = Date.now();
    const stream = await c2.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    const arrivals = [];
    for await (const chunk of stream) arrivals.push(Date.now() - t0);
    // the first chunk comes long before the last: the stream was relayed as it was produced
    assert.ok(arrivals.at(-1) - arrivals[0] >= 600, `arrivals spread: ${arrivals.join(',')}`);
  } finally {
    await gw2.cleanup();
    await slow.stop();
  }
});

test('a bad key gets 401 in the JSON error shape, and a missing key too', async () => {
  for (const headers of [{ authorization: 'Bearer sk-Xvs-not-a-real-key' }, {}]) {
    const r = await fetch(`${gw.base}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages }),
    });
    assert.equal(r.status, 401);
    const body = await r.json();
    assert.equal(typeof body.error.message, 'string');
    assert.equal(body.error.code, 'invalid_api_key');
    assert.equal(body.message, body.error.message);
  }
});

test('the key is accepted as bare Authorization and as x-api-key', async () => {
  for (const headers of [{ authorization: gw.rootKey }, { 'x-api-key': gw.rootKey }]) {
    const r = await fetch(`${gw.base}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages }),
    });
    assert.equal(r.status, 200);
  }
});

test('malformed JSON and a missing model get 400 naming the problem', async () => {
  const post = (body) => fetch(`${gw.base}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${gw.rootKey}`, 'content-type': 'application/json' }, body,
  });
  let r = await post('{"model": "gpt-4o-mini", "messages": [');
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /not a valid JSON/);
  r = await post('{"messages": []}');
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /^model:/);
  r = await post('{"model": "x"} trailing');
  assert.equal(r.status, 400);
});

test('an oversize body gets 413', async () => {
  const big = 'x'.repeat(17 * 1024 * 1024);
  const r = await fetch(`${gw.base}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${gw.rootKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: big }] }),
  }).catch((e) => ({ status: 'closed', e }));
  assert.ok(r.status === 413 || r.status === 'closed', `got ${r.status}`);
});

test('unknown paths get 404 JSON; CORS preflight is answered', async () => {
  const r = await fetch(`${gw.base}/v1/nope`, { headers: { authorization: `Bearer ${gw.rootKey}` } });
  assert.equal(r.status, 404);
  assert.equal((await r.json()).error.code, 'not_found');
  const p = await fetch(`${gw.base}/v1/chat/completions`, { method: 'OPTIONS' });
  assert.equal(p.status, 204);
  assert.match(p.headers.get('access-control-allow-headers'), /Authorization/);
});

test('/dashboard/status is forwarded to the persister and answers for the caller', async () => {
  const r = await fetch(`${gw.base}/dashboard/status`, { headers: { authorization: `Bearer ${gw.rootKey}` } });
  assert.equal(r.status, 200);
  const s = await r.json();
  assert.equal(s.object, 'user_status');
  assert.equal(s.name, 'root');
  assert.equal(s.id, 1);
  assert.equal(s.dna, '.1.');
  assert.equal(s.admin, true);
  assert.ok(!JSON.stringify(s).includes(gw.rootKey), 'the key is never echoed');
  const bad = await fetch(`${gw.base}/dashboard/status`, { headers: { authorization: 'Bearer sk-Xvs-nope' } });
  assert.equal(bad.status, 401);
});

test('every served request has exactly one usage record in the store, matching the mock', async () => {
  await mock.reset();
  const before = gw.usage().length;
  const n = 6;
  for (let i = 0; i < n; i++) {
    const stream = i % 2 === 1;
    if (stream) {
      const s = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
      for await (const _ of s);
    } else {
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    }
  }
  const stats = await mock.stats();
  assert.equal(stats.served, n);
  let records;
  await waitFor(() => { records = gw.usage(); return records.length === before + n; }, { what: 'usage records to reach the store' });
  const fresh = records.slice(-n);
  const ids = new Set(fresh.map((r) => r.rid));
  assert.equal(ids.size, n, 'one record per request, no duplicates');
  assert.equal(fresh.reduce((a, r) => a + r.ct, 0), stats.completion_tokens);
  assert.equal(fresh.reduce((a, r) => a + r.pt, 0), stats.prompt_tokens);
  assert.ok(fresh.every((r) => r.acct === 1 && r.st === 200 && r.model === 'gpt-4o-mini'));
  assert.ok(fresh.every((r) => !(r.fl & 2)), 'usage came from the upstream, not estimated');
  // and one access log line per request
  const log = gw.accessLog();
  for (const r of fresh) assert.equal(log.filter((l) => l.rid === r.rid).length, 1);
});

/** A gateway (UPSTREAM: its upstream section) over a mock streaming 20 chunks 100 ms apart; a client
 * reads three content events of a stream and leaves. Then CHECK(mock, gateway); both are stopped after. */
async function abandonedStream(upstream, check) {
  const slow = await startMock(['--chunks', '20', '--chunk-delay-ms', '100']);
  const gw2 = await startGateway({ mock: slow, upstream });
  try {
    const ac = new AbortController();
    const r = await fetch(`${gw2.base}/v1/chat/completions`, {
      method: 'POST', signal: ac.signal,
      headers: { authorization: `Bearer ${gw2.rootKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages }),
    });
    const reader = r.body.getReader();
    let got = '';
    while ((got.match(/"content":"[^"]+"/g) ?? []).length < 3) got += new TextDecoder().decode((await reader.read()).value);
    ac.abort();
    await check(slow, gw2);
  } finally {
    await gw2.cleanup();
    await slow.stop();
  }
}

test('a stream the client abandons is cancelled upstream at once and billed by estimate', async () => {
  await abandonedStream('', async (slow, gw2) => {
    await waitFor(async () => (await slow.stats()).aborted === 1, { what: 'the mock to see the upstream transfer cancelled' });
    let rec;
    await waitFor(() => { [rec] = gw2.usage(); return rec; }, { what: 'the usage record' });
    assert.equal(rec.fl & 4, 4, 'marked aborted');
    assert.equal(rec.fl & 2, 2, 'marked estimated');
    assert.ok(rec.ct >= 2 && rec.ct < 40, `completion tokens estimated from the relayed text: ${rec.ct}`);
    assert.ok(rec.pt > 0);
    assert.equal((await slow.stats()).served, 0);
  });
});

test('with client_abort: finish, an abandoned stream is read to its end and billed from the upstream usage', async () => {
  await abandonedStream('upstream:\n  client_abort: finish\n', async (slow, gw2) => {
    // the upstream transfer goes on after the client left, to the last event
    await waitFor(async () => (await slow.stats()).served === 1, { what: 'the mock to serve the whole stream' });
    const stats = await slow.stats();
    assert.equal(stats.aborted, 0);
    let recs = [];
    await waitFor(() => { recs = gw2.usage(); return recs.length > 0; }, { what: 'the usage record' });
    assert.equal(recs.length, 1, 'billed once');
    const [rec] = recs;
    assert.equal(rec.fl & 2, 0, 'not estimated: the upstream reported the usage');
    assert.equal(rec.fl & 4, 4, 'the client did leave');
    assert.equal(rec.ct, 40); // 20 chunks x 2 tokens: the whole answer, not what was relayed
    assert.equal(rec.ct, stats.completion_tokens);
    assert.equal(rec.pt, stats.prompt_tokens);
    assert.ok(rec.cost > 0);
  });
});

test('with client_abort: finish, a client that leaves before a non-streaming answer is billed the real usage', async () => {
  const slow = await startMock(['--chunks', '7', '--latency-ms', '800']);
  const gw2 = await startGateway({ mock: slow, upstream: 'upstream:\n  client_abort: finish\n' });
  try {
    const ac = new AbortController();
    const pending = fetch(`${gw2.base}/v1/chat/completions`, {
      method: 'POST', signal: ac.signal,
      headers: { authorization: `Bearer ${gw2.rootKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages }),
    }).catch((e) => e);
    await waitFor(async () => (await slow.stats()).requests === 1, { what: 'the request to reach the upstream' });
    ac.abort();
    assert.equal((await pending).name, 'AbortError');
    await waitFor(async () => (await slow.stats()).served === 1, { what: 'the mock to answer in full' });
    let recs = [];
    await waitFor(() => { recs = gw2.usage(); return recs.length > 0; }, { what: 'the usage record' });
    assert.equal(recs.length, 1);
    assert.equal(recs[0].st, 200);
    assert.equal(recs[0].fl & 2, 0, 'not estimated');
    assert.equal(recs[0].ct, 14);
    assert.equal(recs[0].pt, (await slow.stats()).prompt_tokens);
  } finally {
    await gw2.cleanup();
    await slow.stop();
  }
});

test('GET /v1/models lists the models the caller may use, in OpenAI list format', async () => {
  const models = await client.models.list();
  const ids = [];
  for await (const m of models) ids.push(m.id);
  assert.ok(ids.includes('gpt-4o-mini'), ids.join(','));
  assert.ok(ids.every((id) => !id.includes('*')), 'patterns are not models');
  const anon = await fetch(`${gw.base}/v1/models`);
  assert.equal(anon.status, 401);
  const bare = await fetch(`${gw.base}/models`, { headers: { authorization: gw.rootKey } });
  assert.equal((await bare.json()).object, 'list');
});
