// The quota engine through the real binary (docs/quota.md), with the root account: prices from
// conf/prices.yaml decide what a request costs (x-tollgate-cost, the usage record), an unpriced
// model is refused before it reaches an upstream, and no rate-limit header is invented for an
// account that no limit applies to. Limits, balances and lists of sub-accounts are set through
// the management API; their end-to-end tests belong with it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { startMock, startGateway, waitFor } from './lib/harness.js';

let mock, gw, client;

before(async () => {
  mock = await startMock(['--chunks', '4']);
  gw = await startGateway({ mock });
  client = new OpenAI({ apiKey: gw.rootKey, baseURL: `${gw.base}/v1`, maxRetries: 0 });
});

after(async () => {
  await gw?.cleanup();
  await mock?.stop();
});

const messages = [{ role: 'user', content: 'What does this cost?' }];

/** USD per million tokens of MODEL as conf/prices.yaml lists it (an exact entry). */
function listPrice(model) {
  const text = readFileSync(new URL('../../conf/prices.yaml', import.meta.url), 'utf8');
  const line = text.split('\n').find((l) => l.trimStart().startsWith(`${model}:`));
  assert.ok(line, `${model} is in conf/prices.yaml`);
  const field = (k) => {
    const m = line.match(new RegExp(`${k}:\\s*([0-9.]+)`));
    return m ? Number(m[1]) : undefined;
  };
  const input = field('input');
  return { input, output: field('output'), cached: field('cached') ?? input };
}

/** Nano-dollars for USAGE at PRICE (Rates and Factor of root are 1). */
function nanos(price, pt, ct, cached = 0) {
  // prices are USD per million tokens, i.e. 1000 nano-dollars per token per USD
  return Math.round((pt - cached) * price.input * 1000 + cached * price.cached * 1000 + ct * price.output * 1000);
}

test('x-tollgate-cost is the tokens at the list price of conf/prices.yaml', async () => {
  const price = listPrice('gpt-4o-mini');
  const { data, response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 50 })
    .withResponse();
  const cached = data.usage.prompt_tokens_details?.cached_tokens ?? 0;
  const want = nanos(price, data.usage.prompt_tokens, data.usage.completion_tokens, cached);
  assert.ok(want > 0);
  const header = response.headers.get('x-tollgate-cost');
  assert.match(header, /^\d+\.\d{9}$/);
  assert.equal(Math.round(Number(header) * 1e9), want);
  // the usage record carries the same cost, in nano-dollars
  const rid = response.headers.get('x-request-id');
  let rec;
  await waitFor(() => { rec = gw.usage().find((r) => r.rid === rid); return rec; }, { what: 'the usage record' });
  assert.equal(rec.cost, want);
  assert.equal(rec.model, 'gpt-4o-mini');
});

test('a dated model name takes its family price (gpt-4o-mini-* pattern)', async () => {
  const price = listPrice('gpt-4o-mini');
  const { data, response } = await client.chat.completions.create({ model: 'gpt-4o-mini-2024-07-18', messages })
    .withResponse();
  const want = nanos(price, data.usage.prompt_tokens, data.usage.completion_tokens);
  assert.equal(Math.round(Number(response.headers.get('x-tollgate-cost')) * 1e9), want);
});

test('a stream is billed from its usage chunk at the list price', async () => {
  const price = listPrice('gpt-4o');
  const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
  for await (const chunk of stream) void chunk;
  let rec;
  await waitFor(() => {
    rec = gw.usage().filter((r) => r.model === 'gpt-4o').pop();
    return rec;
  }, { what: 'the usage record' });
  assert.ok(rec.pt > 0 && rec.ct > 0);
  assert.equal(rec.cost, nanos(price, rec.pt, rec.ct, rec.cached));
});

test('an unpriced model is refused with 400 model_not_priced and never reaches an upstream', async () => {
  const before = (await mock.stats()).requests;
  const r = await fetch(`${gw.base}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.rootKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'made-up-model-7b', messages }),
  });
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.equal(body.error.code, 'model_not_priced');
  assert.match(body.error.message, /made-up-model-7b/);
  assert.equal((await mock.stats()).requests, before);
});

test('no x-ratelimit header is made up for an account no limit applies to (root)', async () => {
  const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages }).withResponse();
  for (const name of ['x-ratelimit-limit-requests', 'x-ratelimit-remaining-requests', 'x-ratelimit-reset-requests',
    'x-ratelimit-limit-tokens', 'x-ratelimit-remaining-tokens', 'x-ratelimit-reset-tokens']) {
    assert.equal(response.headers.get(name), null, name);
  }
});

test('many concurrent requests all settle: every one has a usage record with its cost', async () => {
  const price = listPrice('gpt-4o-mini');
  const before = gw.usage().length;
  const results = await Promise.all(Array.from({ length: 40 }, () =>
    client.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 20 }).withResponse()));
  let all;
  await waitFor(() => { all = gw.usage(); return all.length === before + 40; }, { what: '40 usage records' });
  for (const { data, response } of results) {
    const rec = all.find((r) => r.rid === response.headers.get('x-request-id'));
    assert.ok(rec);
    assert.equal(rec.cost, nanos(price, data.usage.prompt_tokens, data.usage.completion_tokens));
  }
});
