// /v1/files and /v1/threads through the real binary with the official OpenAI SDK: objects the
// provider keeps live on one upstream key, so every call goes to the pool's pinned key (the
// lowest id) rather than round-robin; each call gives one usage record with no tokens; the
// caller's Resources (path allow-list) and rate limits apply as to any proxied path.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { toFile } from 'openai';
import { startMock, startGateway, waitFor } from './lib/harness.js';

let mock, gw, client;
const keys = [
  { name: 'pinned', secret: 'sk-upstream-pinned-0001' },
  { name: 'other', secret: 'sk-upstream-other-00002' },
  { name: 'level2', secret: 'sk-upstream-level2-0003', level: 2 },
];

async function api(key, method, path, body) {
  const r = await fetch(`${gw.base}${path}`, {
    method, headers: { authorization: key, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

before(async () => {
  mock = await startMock(['--chunks', '3']);
  gw = await startGateway({ mock, keys, extra: 'store:\n  allow_private_providers: true\n' });
  client = new OpenAI({ apiKey: gw.rootKey, baseURL: `${gw.base}/v1`, maxRetries: 0 });
});

after(async () => {
  await gw?.cleanup();
  await mock?.stop();
});

/** Usage records of the requests whose path starts with PREFIX, once N of them are in the store. */
async function records(prefix, n) {
  let got = [];
  await waitFor(() => { got = gw.usage().filter((u) => u.path.startsWith(prefix)); return got.length >= n; },
    { what: `${n} usage records under ${prefix}` });
  return got;
}

test('files: upload (multipart), list, retrieve, content and delete pass through on the pinned key', async () => {
  await mock.reset();
  const text = '{"prompt":"hello","completion":"world"}\n';
  const file = await client.files.create({ file: await toFile(Buffer.from(text), 'train.jsonl'), purpose: 'assistants' });
  assert.equal(file.object, 'file');
  assert.match(file.id, /^file-mock\d+$/);
  assert.equal(file.filename, 'train.jsonl');
  assert.equal(file.bytes, text.length);
  assert.equal(file.purpose, 'assistants');

  const listed = [];
  for await (const f of await client.files.list({ purpose: 'assistants' })) listed.push(f.id);
  assert.deepEqual(listed, [file.id]);
  const none = [];
  for await (const f of await client.files.list({ purpose: 'batch' })) none.push(f.id);
  assert.deepEqual(none, [], 'the query string reached the upstream');

  assert.equal((await client.files.retrieve(file.id)).filename, 'train.jsonl');
  assert.equal(await (await client.files.content(file.id)).text(), text);
  const gone = await client.files.del(file.id);
  assert.deepEqual([gone.id, gone.deleted], [file.id, true]);
  await assert.rejects(client.files.retrieve(file.id), (e) => e.status === 404);

  // every call went to one key: a round-robin pool would have spread them and lost the file
  const stats = await mock.stats();
  assert.equal(stats.by_key[keys[0].secret].requests, 7, JSON.stringify(stats.by_key));
  assert.equal(stats.by_key[keys[1].secret], undefined);

  const recs = await records('/v1/files', 7);
  assert.equal(recs.length, 7, 'one record per request');
  assert.ok(recs.every((r) => r.pt === 0 && r.ct === 0 && r.cost === 0 && r.model === ''), JSON.stringify(recs));
  assert.deepEqual(recs.map((r) => r.st).sort(), [200, 200, 200, 200, 200, 200, 404]);
  assert.equal(new Set(recs.map((r) => r.key)).size, 1, 'one upstream key id in every record');
});

test('threads: create, add a message, run, retrieve the run (OpenAI-Beta forwarded)', async () => {
  await mock.reset();
  const thread = await client.beta.threads.create();
  assert.equal(thread.object, 'thread');
  const msg = await client.beta.threads.messages.create(thread.id, { role: 'user', content: 'What is a gateway?' });
  assert.equal(msg.thread_id, thread.id);
  assert.equal(msg.content[0].text.value, 'What is a gateway?');
  // a run naming a model LEVEL_MAPPER sends elsewhere still meets its thread on the pinned key
  assert.equal((await api(gw.rootKey, 'PUT', '/x-config', { LEVEL_MAPPER: 'gpt-4o=2' })).status, 200);
  const run = await client.beta.threads.runs.create(thread.id, { assistant_id: 'asst_mock_1', model: 'gpt-4o' });
  assert.equal(run.status, 'queued');
  assert.equal(run.model, 'gpt-4o');
  const done = await client.beta.threads.runs.retrieve(thread.id, run.id);
  assert.equal(done.status, 'completed');
  assert.equal(done.usage.completion_tokens, 6); // 3 chunks x 2 tokens
  const replies = [];
  for await (const m of await client.beta.threads.messages.list(thread.id)) replies.push(m.role);
  assert.deepEqual(replies, ['assistant', 'user']);

  const stats = await mock.stats();
  assert.equal(stats.by_key[keys[0].secret].served, 5, JSON.stringify(stats.by_key));
  assert.equal(stats.by_key[keys[2].secret], undefined, 'LEVEL_MAPPER does not move a stateful call');
  assert.equal(stats.rejected, 0, 'the mock requires OpenAI-Beta: assistants=v2 and got it');

  // a run's usage is cumulative and shown on every poll: the records carry no tokens
  const recs = await records('/v1/threads', 5);
  assert.equal(recs.length, 5);
  assert.ok(recs.every((r) => r.pt === 0 && r.ct === 0 && r.cost === 0 && r.st === 200), JSON.stringify(recs));
  assert.equal(recs.filter((r) => r.model === 'gpt-4o').length, 1, 'the run that named a model is recorded with it');
});

test('a sub-account whose Resources exclude files and threads is refused before the upstream', async () => {
  await mock.reset();
  // root's children own their pools (api-compat 7.12): an owner with one key, and its sub-account
  let r = await api(gw.rootKey, 'POST', '/x-users', { Name: 'files-owner', Email: 'files-owner@example.com', CreditGranted: 100 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const owner = r.body.User.SecretKey;
  r = await api(owner, 'POST', '/x-keys', { Level: 1, Provider: mock.url, SecretKey: 'sk-upstream-owner-00001' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  r = await api(owner, 'POST', '/x-users', {
    Name: 'chat-only', Email: 'chat-only@example.com', CreditGranted: 50, Resources: '/v1/chat/completions',
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const sub = new OpenAI({ apiKey: r.body.User.SecretKey, baseURL: `${gw.base}/v1`, maxRetries: 0 });
  await assert.rejects(sub.files.list(), (e) => e.status === 403 && e.code === 'path_not_allowed');
  await assert.rejects(sub.beta.threads.create(), (e) => e.status === 403 && e.code === 'path_not_allowed');
  const chat = await sub.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(chat.object, 'chat.completion');
  assert.equal((await mock.stats()).requests, 1, 'only the chat call reached the upstream');
});

test('the methods a stateful path takes, and nothing else', async () => {
  const r = await fetch(`${gw.base}/v1/files/file-x`, { method: 'PUT', headers: { authorization: `Bearer ${gw.rootKey}` } });
  assert.equal(r.status, 405);
  assert.match((await r.json()).error.message, /GET, POST or DELETE/);
});
