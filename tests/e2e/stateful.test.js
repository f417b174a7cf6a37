// /v1/files and /v1/threads through the real binary with the official OpenAI SDK: objects the
// provider keeps live on one upstream key, so every call goes to the pool's pinned key (the
// lowest id) rather than round-robin; each call gives one usage record; an Assistants run is
// billed once, from its own usage, by the first answer that shows it finished (across calls,
// lists, streams and restarts); the caller's Resources (path allow-list) and rate limits apply as
// to any proxied path.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { toFile } from 'openai';
import { startMock, startGateway, waitFor, runTollgate } from './lib/harness.js';

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

  // the calls carry no tokens, except the retrieve that first showed the run finished: it bills the
  // run's own usage at the built-in gpt-4o price (2.50 / 10.00 USD per million; root's Rates 1)
  const recs = await records('/v1/threads', 5);
  assert.equal(recs.length, 5);
  assert.ok(recs.every((r) => r.st === 200), JSON.stringify(recs));
  const billed = recs.filter((r) => r.cost !== 0);
  assert.equal(billed.length, 1, JSON.stringify(recs));
  assert.deepEqual([billed[0].run, billed[0].model, billed[0].pt, billed[0].ct, billed[0].cost],
    [run.id, 'gpt-4o', done.usage.prompt_tokens, 6, done.usage.prompt_tokens * 2500 + 6 * 10000]);
  assert.ok(recs.filter((r) => r !== billed[0]).every((r) => r.pt === 0 && r.ct === 0 && r.run === ''), JSON.stringify(recs));
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

// ---- Assistants runs billed once ----

const FL_RUN_REPEAT = 0x10;
const RATES = 1.5;
// PRICES of the owners below: USD per million tokens, so nano-dollars per token = USD/M × 1000
const PRICE = { input: 2, output: 8 };
const runCost = (pt, ct, price = PRICE) => Math.round((pt * price.input * 1000 + ct * price.output * 1000) * RATES);

/** An owner under root with its own pinned key, gpt-4o-mini priced at PRICE and Rates 1.5; CONFIG
 * is more of its /x-config. */
async function owner(name, { credit = 100, price = PRICE, config = {} } = {}) {
  let r = await api(gw.rootKey, 'POST', '/x-users', { Name: name, Email: `${name}@example.com`, CreditGranted: credit, Rates: RATES });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const user = r.body.User;
  r = await api(user.SecretKey, 'POST', '/x-keys', { Level: 1, Provider: mock.url, SecretKey: `sk-upstream-${name}-0001` });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  r = await api(user.SecretKey, 'PUT', '/x-config', { PRICES: { 'gpt-4o-mini': price }, ...config });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return { id: user.ID, key: user.SecretKey, client: new OpenAI({ apiKey: user.SecretKey, baseURL: `${gw.base}/v1`, maxRetries: 0 }) };
}

/** The account's records under /v1/threads once N are stored. */
async function accountRecords(acct, n) {
  let got = [];
  await waitFor(() => { got = gw.usage().filter((u) => u.acct === acct && u.path.startsWith('/v1/threads')); return got.length >= n; },
    { what: `${n} usage records of account ${acct}` });
  return got;
}

/** Asserts RECS bill each run of RUNS (id → usage) exactly once, at PRICE × RATES, and nothing else. */
function assertBilledOnce(recs, runs) {
  const billed = recs.filter((r) => r.pt !== 0 || r.ct !== 0 || r.cost !== 0);
  assert.deepEqual(billed.map((r) => r.run).sort(), Object.keys(runs).sort(), JSON.stringify(recs));
  for (const r of billed) {
    const u = runs[r.run];
    assert.deepEqual([r.model, r.pt, r.ct, r.cost, r.fl & FL_RUN_REPEAT], ['gpt-4o-mini', u.prompt_tokens, u.completion_tokens,
      runCost(u.prompt_tokens, u.completion_tokens), 0], JSON.stringify(r));
  }
  for (const r of recs.filter((x) => x.run !== '' && !billed.includes(x)))
    assert.equal(r.fl & FL_RUN_REPEAT, FL_RUN_REPEAT, `a later sighting is flagged: ${JSON.stringify(r)}`);
}

/** The account's CreditUsed and balance agree with COST (nano-dollars) once the drain is done. */
async function assertCharged(o, grant, cost) {
  await waitFor(async () => {
    const info = (await api(o.key, 'GET', '/dashboard/info')).body;
    return Math.round(info.credit_used * 1e9) === cost && Math.round((grant - info.balance) * 1e9) === cost;
  }, { what: `the account charged exactly ${cost} nano-dollars` });
}

test('a run is billed once from its own usage: retrieved twice, listed, its model known only from the answer', async () => {
  await mock.reset();
  const o = await owner('runs-once');
  const thread = await o.client.beta.threads.create();
  await o.client.beta.threads.messages.create(thread.id, { role: 'user', content: 'Explain the billing of runs, please.' });
  const run = await o.client.beta.threads.runs.create(thread.id, { assistant_id: 'asst_mock_1' }); // no model: the assistant's
  assert.equal(run.status, 'queued');
  const first = await o.client.beta.threads.runs.retrieve(thread.id, run.id);
  assert.equal(first.status, 'completed');
  assert.deepEqual([first.usage.prompt_tokens, first.usage.completion_tokens], [9, 6]); // 36 bytes / 4; 3 chunks × 2
  const again = await o.client.beta.threads.runs.retrieve(thread.id, run.id);
  assert.deepEqual(again.usage, first.usage, 'the provider shows the same usage on every poll');
  const listed = [];
  for await (const r of await o.client.beta.threads.runs.list(thread.id)) listed.push([r.id, r.status]);
  assert.deepEqual(listed, [[run.id, 'completed']]);

  const recs = await accountRecords(o.id, 6);
  assert.equal(recs.length, 6, 'one record per call');
  assertBilledOnce(recs, { [run.id]: first.usage });
  assert.equal(recs.filter((r) => r.run === run.id).length, 1, 'the worker leaves a run it recorded off its later records');
  await assertCharged(o, 100, runCost(9, 6));
});

test('a list bills every finished run it shows; a streamed thread-and-run bills from thread.run.completed', async () => {
  await mock.reset();
  const o = await owner('runs-list');
  const thread = await o.client.beta.threads.create();
  await o.client.beta.threads.messages.create(thread.id, { role: 'user', content: 'Two runs on one thread.' });
  const a = await o.client.beta.threads.runs.create(thread.id, { assistant_id: 'asst_mock_1', model: 'gpt-4o-mini' });
  const b = await o.client.beta.threads.runs.create(thread.id, { assistant_id: 'asst_mock_1' });
  const usage = {};
  for await (const r of await o.client.beta.threads.runs.list(thread.id)) usage[r.id] = r.usage; // the mock finishes them here
  assert.deepEqual(Object.keys(usage).sort(), [a.id, b.id].sort());
  assert.ok(usage[a.id].completion_tokens > 0 && usage[b.id].completion_tokens > 0);
  assert.deepEqual((await o.client.beta.threads.runs.retrieve(thread.id, b.id)).usage, usage[b.id]);

  const events = [];
  let streamed;
  const stream = await o.client.beta.threads.createAndRun({ assistant_id: 'asst_mock_2', stream: true });
  for await (const ev of stream) {
    events.push(ev.event);
    if (ev.event === 'thread.run.completed') streamed = ev.data;
  }
  assert.deepEqual(events, ['thread.run.created', 'thread.run.completed']);
  usage[streamed.id] = streamed.usage;
  const polled = await o.client.beta.threads.runs.retrieve(streamed.thread_id, streamed.id);
  assert.deepEqual(polled.usage, streamed.usage);

  // thread, message, 2 runs, list (2 records: one per run), retrieve, stream, retrieve
  const recs = await accountRecords(o.id, 9);
  assert.equal(recs.length, 9, JSON.stringify(recs));
  assertBilledOnce(recs, usage);
  const extra = recs.filter((r) => r.rid.endsWith('-1'));
  assert.equal(extra.length, 1, 'the list call gave a second record, for its second run');
  const listRec = recs.find((r) => `${r.rid}-1` === extra[0].rid);
  assert.ok(listRec && listRec.run && listRec.run !== extra[0].run && listRec.path === extra[0].path, JSON.stringify(recs));
  const streamRec = recs.find((r) => r.run === streamed.id && r.cost !== 0);
  assert.equal(streamRec.fl & 1, 1, 'the billing record is the stream');
  const total = Object.values(usage).reduce((s, u) => s + runCost(u.prompt_tokens, u.completion_tokens), 0);
  await assertCharged(o, 100, total);
  const v = await runTollgate(['admin', 'verify', '-c', gw.configPath]); // ledger, CreditUsed and roll-ups agree
  assert.equal(v.code, 0, v.stdout + v.stderr);
});

test('a restart of the gateway between two retrievals still bills the run once', async () => {
  await mock.reset();
  const o = await owner('runs-restart');
  const thread = await o.client.beta.threads.create();
  const run = await o.client.beta.threads.runs.create(thread.id, { assistant_id: 'asst_mock_1' });
  const first = await o.client.beta.threads.runs.retrieve(thread.id, run.id);
  assert.equal(first.status, 'completed');
  await accountRecords(o.id, 3); // the billing record is stored before the stop
  await gw.stop();
  await gw.start();
  const second = await o.client.beta.threads.runs.retrieve(thread.id, run.id);
  assert.deepEqual(second.usage, first.usage);
  for await (const r of await o.client.beta.threads.runs.list(thread.id)) assert.equal(r.id, run.id);
  const recs = await accountRecords(o.id, 5);
  assert.equal(recs.length, 5);
  assertBilledOnce(recs, { [run.id]: first.usage });
  // the new worker does not know the run: its first record of it is stored as a repeat (the
  // persister's marker), and the list after it leaves the run off
  const repeats = recs.filter((r) => r.fl & FL_RUN_REPEAT);
  assert.equal(repeats.length, 1, JSON.stringify(recs));
  assert.deepEqual([repeats[0].run, repeats[0].pt, repeats[0].ct, repeats[0].cost], [run.id, 0, 0, 0]);
  await assertCharged(o, 100, runCost(first.usage.prompt_tokens, first.usage.completion_tokens));
});

test('runs billed after the fact overdraw an account by at most the run it had going; then threads calls are refused', async () => {
  await mock.reset();
  // a run costs more than the whole grant, and no minimum balance to call models stands in the way
  const dear = { input: 100000, output: 400000 };
  const o = await owner('runs-credit', { credit: 2, price: dear, config: { USER_API_BALANCE: 0 } });
  const thread = await o.client.beta.threads.create();
  await o.client.beta.threads.messages.create(thread.id, { role: 'user', content: 'A run that costs more than the balance.' });
  const run = await o.client.beta.threads.runs.create(thread.id, { assistant_id: 'asst_mock_1' });
  const done = await o.client.beta.threads.runs.retrieve(thread.id, run.id);
  const cost = runCost(done.usage.prompt_tokens, done.usage.completion_tokens, dear);
  assert.ok(cost > 2e9, `one run (${cost} nano-dollars) overdraws the $2 grant`);
  await assertCharged(o, 2, cost);
  const before = (await mock.stats()).requests;
  await assert.rejects(o.client.beta.threads.runs.retrieve(thread.id, run.id),
    (e) => e.status === 429 && e.code === 'insufficient_quota' && /Assistants runs/.test(e.message));
  await assert.rejects(o.client.beta.threads.create(), (e) => e.status === 429 && /Assistants runs/.test(e.message));
  assert.equal((await mock.stats()).requests, before, 'refused before the upstream');
});
