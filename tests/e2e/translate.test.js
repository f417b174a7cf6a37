// Protocol translation through the real binary: each official SDK speaks its own surface to
// tollgate, and the account's only key speaks another one (the mock answers every surface).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startGateway, waitFor } from './lib/harness.js';

let mock;
const gateways = {};

before(async () => {
  mock = await startMock(['--chunks', '4']);
  for (const protocol of ['anthropic', 'openai', 'gemini']) {
    gateways[protocol] = await startGateway({ mock, keys: [{ name: `only-${protocol}`, secret: `sk-${protocol}-upstream-01`, protocol }] });
  }
});

after(async () => {
  for (const gw of Object.values(gateways)) await gw.cleanup();
  await mock?.stop();
});

const openai = (gw) => new OpenAI({ apiKey: gw.rootKey, baseURL: `${gw.base}/v1`, maxRetries: 0 });
const anthropic = (gw) => new Anthropic({ apiKey: gw.rootKey, baseURL: gw.base, maxRetries: 0 });
const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }];

async function lastUsage(gw, n) {
  let recs;
  await waitFor(() => { recs = gw.usage(); return recs.length >= n; }, { what: 'usage records' });
  return recs[n - 1];
}

test('OpenAI chat to an Anthropic key, non-streaming and streaming', async () => {
  const gw = gateways.anthropic;
  await mock.reset();
  const r = await openai(gw).chat.completions.create({ model: 'claude-3-5-haiku-latest', messages });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.usage.completion_tokens, 8);
  assert.ok(r.choices[0].message.content.startsWith('Hello from'));
  const stats = await mock.stats();
  assert.equal(stats.by_key['sk-anthropic-upstream-01'].served, 1, 'the Anthropic surface was called');

  const stream = await openai(gw).chat.completions.create({ model: 'claude-3-5-haiku-latest', messages, stream: true });
  let text = '';
  let finish;
  const chunks = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
    text += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.ok(text.startsWith('Hello from'));
  assert.equal(finish, 'stop');
  assert.equal(chunks.filter((c) => c.usage).length, 0, 'no usage chunk the client did not ask for');
  const rec = await lastUsage(gw, 2);
  assert.equal(rec.ct, 8);
  assert.equal(rec.fl & 2, 0, 'usage from the upstream, not estimated');
});

test('Anthropic messages to an OpenAI key, non-streaming and streaming', async () => {
  const gw = gateways.openai;
  const msg = await anthropic(gw).messages.create({ model: 'gpt-4o-mini', max_tokens: 100, system: 'Be brief.', messages: [{ role: 'user', content: 'Hi' }] });
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.stop_reason, 'end_turn');
  assert.equal(msg.usage.output_tokens, 8);
  const final = await anthropic(gw).messages.stream({ model: 'gpt-4o-mini', max_tokens: 100, messages: [{ role: 'user', content: 'Hi' }] }).finalMessage();
  assert.ok(final.content[0].text.startsWith('Hello from'));
  assert.equal(final.usage.output_tokens, 8);
  const rec = await lastUsage(gw, 2);
  assert.equal(rec.ct, 8);
});

test('OpenAI chat to a Gemini key, non-streaming and streaming', async () => {
  const gw = gateways.gemini;
  const r = await openai(gw).chat.completions.create({ model: 'gemini-1.5-flash', messages });
  assert.equal(r.object, 'chat.completion');
  assert.ok(r.choices[0].message.content.startsWith('Hello from'));
  assert.equal(r.usage.completion_tokens, 8);
  const stream = await openai(gw).chat.completions.create({
    model: 'gemini-1.5-flash', messages, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let usage;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(text.startsWith('Hello from'));
  assert.equal(usage.completion_tokens, 8);
});

test('OpenAI Responses: passed through to an OpenAI key, translated for an Anthropic key', async () => {
  const direct = await openai(gateways.openai).responses.create({ model: 'gpt-4o-mini', input: 'Hello' });
  assert.equal(direct.object, 'response');
  assert.equal(direct.usage.output_tokens, 8);
  const translated = await openai(gateways.anthropic).responses.create({ model: 'claude-3-5-haiku-latest', input: 'Hello' });
  assert.equal(translated.object, 'response');
  assert.ok(translated.output_text.startsWith('Hello from'));
  assert.equal(translated.usage.output_tokens, 8);
  const stream = await openai(gateways.anthropic).responses.create({ model: 'claude-3-5-haiku-latest', input: 'Hello', stream: true });
  let done;
  for await (const ev of stream) if (ev.type === 'response.completed') done = ev.response;
  assert.ok(done, 'response.completed arrived');
  assert.equal(done.usage.output_tokens, 8);
});

test('a request the translator cannot express is refused with 400 naming the field', async () => {
  const r = await fetch(`${gateways.anthropic.base}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${gateways.anthropic.rootKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-3-5-haiku-latest', messages: 'not an array' }),
  });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /messages/);
});

test('a provider refusing the key rests it; the client gets the gateway error, not the upstream body', async () => {
  const gw = gateways.anthropic;
  await mock.fault('sk-anthropic-upstream-01', '401', 1);
  // a 401 from the provider rests the key and the client is told in its own surface
  const r = await fetch(`${gw.base}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${gw.rootKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-3-5-haiku-latest', messages }),
  });
  assert.equal(r.status, 502);
  assert.equal((await r.json()).error.type, 'upstream_error');
  await mock.reset();
});
