// Orphans billed for what was relayed (docs/reliability.md): a worker killed with SIGKILL while it
// relays an Anthropic stream leaves an orphan with the prompt the upstream reported in
// message_start and the completion estimated from the text relayed before the kill, not the whole
// reservation; one killed while it waits for a buffered answer leaves the prompt estimate only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, waitFor } from './lib/harness.js';

const FL_ESTIMATED = 0x2, FL_ORPHAN = 0x8;
const MODEL = 'claude-3-5-haiku-latest';
const CHUNKS = 12;
const keys = [{ name: 'claude', secret: 'sk-ant-upstream-000001', protocol: 'anthropic' }];

// The mock's answer text: pieces of two tokens each (bench/mock/completion.c); tollgate estimates
// one token per 4 characters of relayed text.
const PIECES = ['Hello from ', 'the mock ', 'upstream provider. ', 'Tokens come ', 'in pairs ', 'for exact ',
  'billing reconciliation. ', 'Have fun! '];
const textEstimate = (pieces) => {
  let chars = 0;
  for (let i = 0; i < pieces; i++) chars += PIECES[i % PIECES.length].length;
  return Math.ceil(chars / 4);
};

let mock, gw;

before(async () => {
  // every answer waits 1.5 s, then streams a piece every 150 ms: the kills land mid-request
  mock = await startMock(['--chunks', String(CHUNKS), '--chunk-delay-ms', '150', '--latency-ms', '1500', '--log-requests']);
  gw = await startGateway({ mock, keys, workers: 1 });
});

after(async () => {
  await gw?.cleanup();
  await mock?.stop();
});

const body = (stream) => JSON.stringify({ model: MODEL, max_tokens: 64, stream, messages: [{ role: 'user', content: 'Tell me about orphans, in some detail please.' }] });
const post = (stream) => fetch(`${gw.base}/v1/messages`, {
  method: 'POST',
  headers: { 'x-api-key': gw.rootKey, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
  body: body(stream),
});

async function recordOf(rid) {
  let rec;
  await waitFor(() => (rec = gw.usage().find((u) => u.rid === rid)) !== undefined, { timeout: 20000, what: `the record of ${rid}` });
  return rec;
}

/** Kills the only worker and waits for its replacement. */
async function killWorker() {
  const [pid] = gw.workerPids();
  process.kill(pid, 'SIGKILL');
  await waitFor(() => gw.workerPids().length === 1 && !gw.workerPids().includes(pid), { timeout: 20000, what: 'a new worker' });
}

test('a worker killed mid-stream: the orphan bills the reported prompt and the text relayed so far', async () => {
  // the same request completed: the upstream's own prompt count, and what the whole answer costs
  const done = await post(true);
  await done.text();
  const full = await recordOf(done.headers.get('x-request-id'));
  assert.equal(full.fl & (FL_ORPHAN | FL_ESTIMATED), 0);
  assert.equal(full.ct, CHUNKS * 2);

  const r = await post(true);
  const rid = r.headers.get('x-request-id');
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while ((text.match(/event: content_block_delta/g) ?? []).length < 3) {
    const { value, done: end } = await reader.read();
    assert.ok(!end, 'the stream ended before three pieces of text');
    text += decoder.decode(value, { stream: true });
  }
  await killWorker();
  await reader.read().catch(() => {}); // the connection is cut
  const orphan = await recordOf(rid);
  assert.equal(orphan.fl & (FL_ORPHAN | FL_ESTIMATED), FL_ORPHAN | FL_ESTIMATED);
  assert.equal(orphan.st, 0);
  assert.equal(orphan.pt, full.pt, 'the prompt the upstream reported in message_start, not the admission estimate');
  const entry = (await (await fetch(`${mock.url}/_mock/requests`)).json()).requests.find((e) => e.request_id === rid);
  assert.ok(entry, 'the mock received the request');
  const produced = entry.completion_tokens + entry.partial_completion_tokens;
  assert.ok(orphan.ct >= textEstimate(3), `at least the text the client received is billed (${orphan.ct})`);
  assert.ok(orphan.ct <= textEstimate(produced / 2), `no more than the mock produced (${orphan.ct}, mock: ${produced} tokens)`);
  assert.ok(orphan.cost > 0 && orphan.cost < full.cost, `billed part of the answer: ${orphan.cost} < ${full.cost}`);
});

test('a worker killed while it waits for a buffered answer: the orphan bills the prompt estimate only', async () => {
  const done = await post(false);
  await done.text();
  const full = await recordOf(done.headers.get('x-request-id'));
  const orphansBefore = new Set(gw.usage().filter((u) => u.fl & FL_ORPHAN).map((u) => u.rid));
  const before = (await mock.stats()).requests;
  const pending = post(false).catch(() => null);
  await waitFor(async () => (await mock.stats()).requests > before, { what: 'the request to reach the mock' });
  await killWorker();
  assert.equal(await pending, null, 'the client saw its connection cut');
  let orphan;
  await waitFor(() => (orphan = gw.usage().find((u) => u.fl & FL_ORPHAN && !orphansBefore.has(u.rid))) !== undefined,
    { timeout: 20000, what: 'the orphan record' });
  assert.equal(orphan.fl & FL_ESTIMATED, FL_ESTIMATED);
  assert.equal(orphan.ct, 0, 'nothing was relayed');
  assert.equal(orphan.pt, Math.ceil(body(false).length / 3), 'the admission estimate: one token per 3 bytes');
  assert.ok(orphan.cost > 0 && orphan.cost < full.cost, `the prompt only: ${orphan.cost} < ${full.cost}`);
});
