// The Anthropic surface through the real binary with the official Anthropic SDK: /v1/messages
// passed through to an `anthropic` upstream key, streaming and not, usage recorded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startGateway, waitFor } from './lib/harness.js';

let mock, gw, client;
const keys = [{ name: 'claude', secret: 'sk-ant-upstream-000001', protocol: 'anthropic' }];

before(async () => {
  mock = await startMock(['--chunks', '3']);
  gw = await startGateway({ mock, keys });
  client = new Anthropic({ apiKey: gw.rootKey, baseURL: gw.base, maxRetries: 0 });
});

after(async () => {
  await gw?.cleanup();
  await mock?.stop();
});

const messages = [{ role: 'user', content: 'Hello, Claude' }];

test('messages, non-streaming, with the key in x-api-key as the SDK sends it', async () => {
  const msg = await client.messages.create({ model: 'claude-3-5-haiku-latest', max_tokens: 64, messages });
  assert.equal(msg.type, 'message');
  assert.equal(msg.usage.output_tokens, 6);
  assert.ok(msg.content[0].text.length > 0);
});

test('messages, streaming: every event relayed, usage captured from message_start and message_delta', async () => {
  await mock.reset();
  const before = gw.usage().length;
  const stream = client.messages.stream({ model: 'claude-3-5-haiku-latest', max_tokens: 64, messages });
  const final = await stream.finalMessage();
  assert.equal(final.usage.output_tokens, 6);
  const stats = await mock.stats();
  let rec;
  await waitFor(() => { const all = gw.usage(); rec = all[before]; return all.length === before + 1; }, { what: 'the usage record' });
  assert.equal(rec.ct, stats.completion_tokens);
  assert.equal(rec.pt, stats.prompt_tokens);
  assert.equal(rec.fl & 2, 0, 'reported by the upstream, not estimated');
  assert.equal(rec.path, '/v1/messages');
});

test('an endpoint no key of the pool can take is refused with 503 no_upstream_key', async () => {
  const r = await fetch(`${gw.base}/v1/embeddings`, {
    method: 'POST', headers: { authorization: `Bearer ${gw.rootKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'text-embedding-3-small', input: 'hi' }),
  });
  assert.equal(r.status, 503);
  assert.equal((await r.json()).error.code, 'no_upstream_key');
});
