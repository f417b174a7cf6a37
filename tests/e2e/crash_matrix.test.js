// The crash matrix (reliability.md promise 1): under streaming and non-streaming load from several
// accounts through two workers, kill -9 a worker, the persister, the master (its children drain and
// exit; the tree is started again) and the whole tree at once, at random moments, for CRASH_ROUNDS
// rounds (2 by default; `make soak` runs more). Then reconcile, request id by request id, the mock
// upstream's own log of what it received against tollgate's usage records: every request the mock
// saw has exactly one record, nothing is billed twice, completed requests carry the upstream's
// tokens, the requests cut by a dead worker are billed by estimate and flagged as orphans; and the
// ledger: each account's usage costs equal its CreditUsed and its balance change, `admin verify` agrees.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startMock, startGateway, runTollgate, waitFor, sleep, assertCleanLog } from './lib/harness.js';
import { gatewayApi, ownerWithKey } from './lib/api.js';

const ROUNDS = Number(process.env.CRASH_ROUNDS ?? 2);
const CLIENTS = 6;
const GRANT = 100; // dollars per account
const FL_STREAM = 0x1, FL_ESTIMATED = 0x2, FL_ORPHAN = 0x8;

// The mock's answer text: pieces of two tokens each (bench/mock/completion.c), so the text of its
// first K tokens estimates, at tollgate's one token per 4 characters, to this many tokens.
const PIECES = ['Hello from ', 'the mock ', 'upstream provider. ', 'Tokens come ', 'in pairs ', 'for exact ',
  'billing reconciliation. ', 'Have fun! '];
function textEstimate(tokens) {
  let chars = 0;
  for (let i = 0; i < tokens / 2; i++) chars += PIECES[i % PIECES.length].length;
  return Math.ceil(chars / 4);
}

let mock, gw;
const oldLogs = []; // stderr of the trees killed along the way

before(async () => {
  // streams last ~6 x 40 ms and every answer waits 30 ms: kills find requests in flight
  mock = await startMock(['--chunks', '6', '--chunk-delay-ms', '40', '--latency-ms', '30', '--log-requests']);
  gw = await startGateway({ mock, workers: 2, extra: 'store:\n  allow_private_providers: true\n' });
});

after(async () => {
  await gw?.cleanup(); // no error line and no sanitizer report in the last tree's log (the others: below)
  await mock?.stop();
});

const api = (key, method, path, body) => gatewayApi(gw, key, method, path, body);

/** Chat requests from random accounts until STOP() says so, half of them streamed. */
async function client(keys, stop) {
  let n = 0;
  while (!stop()) {
    const stream = Math.random() < 0.5;
    const body = { model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content: `crash matrix ${n++}` }] };
    if (Math.random() < 0.5) body.max_tokens = 32;
    try {
      const r = await fetch(`${gw.base}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${keys[n % keys.length]}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      await r.text();
    } catch { await sleep(20); } // the process serving it was killed, or the tree is down
  }
}

function gone(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /\) [ZX] /.test(stat); // a zombie is dead
  } catch { return true; }
}

async function waitGone(pids, what) {
  await waitFor(() => pids.every(gone), { timeout: 30000, what });
}

const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];

/** One kill of KIND; returns once the tree serves again. */
async function crash(kind) {
  if (kind === 'worker') {
    let pid;
    await waitFor(() => (pid = pick(gw.workerPids())) !== undefined, { what: 'a worker to kill' });
    process.kill(pid, 'SIGKILL'); // the master starts another
    await waitFor(() => gw.workerPids().length === 2 && !gw.workerPids().includes(pid), { timeout: 30000, what: 'a new worker' });
  } else if (kind === 'persister') {
    const pid = gw.persisterPid();
    process.kill(pid, 'SIGKILL');
    await waitFor(async () => { const p = gw.persisterPid(); return p && p !== pid && (await fetch(`${gw.base}/healthz`)).status === 200; },
      { timeout: 30000, what: 'a new persister' });
  } else if (kind === 'master') {
    const children = gw.children();
    await gw.stop('SIGKILL'); // the children are told to stop (SIGTERM) and drain
    await waitGone(children, 'the old children to finish');
    oldLogs.push(gw.out.stderr);
    await gw.start();
  } else { // the whole tree at once
    const children = gw.children();
    process.kill(gw.proc.pid, 'SIGKILL');
    for (const pid of children) { try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ } }
    await gw.exited();
    await waitGone(children, 'the killed children');
    oldLogs.push(gw.out.stderr);
    await gw.start();
  }
}

/** Request id → the mock's log entries and tollgate's usage records, and what does not match. */
async function reconcile(accountIds) {
  const log = (await (await fetch(`${mock.url}/_mock/requests`)).json()).requests;
  const records = gw.usage().filter((u) => accountIds.has(u.acct));
  const seen = new Map();
  for (const e of log) seen.set(e.request_id, [...(seen.get(e.request_id) ?? []), e]);
  const billed = new Map();
  for (const u of records) billed.set(u.rid, [...(billed.get(u.rid) ?? []), u]);
  const missing = [...seen.keys()].filter((rid) => !billed.has(rid));
  const doubled = [...billed.entries()].filter(([, us]) => us.length > 1).map(([rid]) => rid);
  // a record the mock never saw: a request marked dispatched whose worker died before its bytes left
  const strays = records.filter((u) => !seen.has(u.rid) && !(u.fl & FL_ORPHAN));
  return { log, records, seen, billed, missing, doubled, strays };
}

test('kill -9 of workers, the persister, the master and the whole tree: every upstream request billed once', async () => {
  const owner = await ownerWithKey(gw, mock.url, 'matrix-owner', 1000);
  const accounts = [];
  for (let i = 0; i < 3; i++) {
    const r = await api(owner.SecretKey, 'POST', '/x-users', { Name: `matrix-${i}`, Email: `matrix-${i}@example.com`, CreditGranted: GRANT });
    assert.equal(r.status, 200);
    accounts.push(r.body.User);
  }
  const keys = accounts.map((a) => a.SecretKey);
  await mock.reset();

  let stop = false;
  const clients = Array.from({ length: CLIENTS }, () => client(keys, () => stop));
  const kinds = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of ['worker', 'persister', 'master', 'tree'].sort(() => Math.random() - 0.5)) {
      await sleep(300 + Math.random() * 700);
      await crash(kind);
      kinds.push(kind);
    }
  }
  await sleep(500);
  stop = true;
  await Promise.all(clients);

  // the ring drains, the reapers bill what dead workers had in flight, the mock notices cut connections
  const ids = new Set(accounts.map((a) => a.ID));
  let rec;
  await waitFor(async () => {
    rec = await reconcile(ids);
    return rec.log.length > 0 && rec.missing.length === 0;
  }, { timeout: 30000, interval: 500, what: 'a usage record for every request the mock received' }).catch(() => {});
  const { log, records, seen, billed, missing, doubled, strays } = rec;

  assert.ok(log.every((e) => e.request_id.startsWith('req_')), 'tollgate sends its request id upstream');
  assert.deepEqual(missing, [], `requests the mock received without a usage record (kills: ${kinds.join(', ')})`);
  assert.deepEqual(doubled, [], 'request ids billed more than once');
  assert.deepEqual(strays, [], 'records of requests the mock never received must be orphans');

  let orphans = 0, completed = 0, relayed = 0;
  for (const [rid, [u]] of billed) {
    const entries = seen.get(rid) ?? [];
    if (u.fl & FL_ORPHAN) {
      orphans++;
      if (u.ct > 0) relayed++;
      assert.ok(u.fl & FL_ESTIMATED, `orphan ${rid} is flagged estimated`);
      assert.equal(u.st, 0, `orphan ${rid} has no status`);
      assert.ok(u.cost > 0 && u.pt > 0, `orphan ${rid} is billed its estimate`);
      // billed for what was relayed: never more text than the mock produced for that request id
      const produced = Math.max(0, ...entries.map((e) => e.completion_tokens + e.partial_completion_tokens));
      assert.ok(u.ct <= Math.max(produced, textEstimate(produced)),
        `orphan ${rid}: ${u.ct} completion tokens billed, the mock produced ${produced}`);
      if (!(u.fl & FL_STREAM)) assert.equal(u.ct, 0, `orphan ${rid}: a buffered answer relays nothing before its end`);
      continue;
    }
    assert.equal(entries.length, 1, `request ${rid} reached the mock once`);
    const e = entries[0];
    assert.equal(e.outcome, 'served', `request ${rid}: a live worker relays the whole answer (mock: ${e.outcome})`);
    assert.equal(u.st, 200, `request ${rid} status`);
    assert.equal(u.fl & FL_ESTIMATED, 0, `request ${rid} has the upstream's own usage`);
    assert.equal(u.pt, e.prompt_tokens, `request ${rid} prompt tokens`);
    assert.equal(u.ct, e.completion_tokens, `request ${rid} completion tokens`);
    completed++;
  }
  assert.ok(completed > 0, 'requests completed between the kills');
  assert.ok(orphans > 0, 'the kills cut requests in flight (the matrix exercised the reaper)');

  // the ledger: usage costs = CreditUsed = the balance spent, per account; the offline check agrees
  for (const a of accounts) {
    const cost = records.filter((u) => u.acct === a.ID).reduce((s, u) => s + u.cost, 0);
    const info = (await api(a.SecretKey, 'GET', '/dashboard/info')).body;
    assert.equal(Math.round(info.credit_used * 1e9), cost, `account ${a.Name}: CreditUsed`);
    assert.equal(Math.round((GRANT - info.balance) * 1e9), cost, `account ${a.Name}: balance`);
  }
  for (const log of oldLogs) assertCleanLog(log);
  const v = await runTollgate(['admin', 'verify', '-c', gw.configPath]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  console.log(`crash matrix: ${ROUNDS} round(s), ${log.length} upstream requests, ${records.length} records, ${orphans} orphan(s), ${relayed} billed for text relayed`);
});
