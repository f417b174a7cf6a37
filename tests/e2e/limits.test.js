// Limits and credit through the real binary (issue 3), set with the Manage API the way an owner
// would: an owner with its own key pool, sub-accounts with RPM, an ancestor's limit binding its
// descendants, AllowModels, the monthly HardLimit, and 200 concurrent requests from an account
// funded for 5 of them (the over-spend bound of docs/quota.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, waitFor } from './lib/harness.js';
import { gatewayApi, ownerWithKey } from './lib/api.js';

let mock, gw, owner;

const api = (key, method, path, body) => gatewayApi(gw, key, method, path, body);

async function create(parentKey, name, extra = {}) {
  const r = await api(parentKey, 'POST', '/x-users', { Name: name, Email: `${name}@example.com`, CreditGranted: 50, ...extra });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return { id: r.body.User.ID, key: r.body.User.SecretKey, name };
}

function chat(key, model = 'gpt-4o-mini', extra = {}) {
  return fetch(`${gw.base}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8, ...extra }),
  });
}

before(async () => {
  mock = await startMock(['--chunks', '4']);
  gw = await startGateway({ mock, extra: 'store:\n  allow_private_providers: true\n' });
  const u = await ownerWithKey(gw, mock.url, 'limits-owner', 1000, 'sk-owner-pool-key-000001');
  owner = { id: u.ID, key: u.SecretKey };
});

after(async () => {
  await gw?.cleanup();
  await mock?.stop();
});

test('RPM: the request over the limit gets 429 rate_limit_exceeded with Retry-After and x-ratelimit headers', async () => {
  const acct = await create(owner.key, 'rpm-three', { RPM: 3 });
  for (let i = 0; i < 3; i++) assert.equal((await chat(acct.key)).status, 200);
  const r = await chat(acct.key);
  assert.equal(r.status, 429);
  const body = await r.json();
  assert.equal(body.error.code, 'rate_limit_exceeded');
  assert.ok(Number(r.headers.get('retry-after')) >= 1);
  assert.equal(r.headers.get('x-ratelimit-limit-requests'), '3');
  assert.equal(r.headers.get('x-ratelimit-remaining-requests'), '0');
  // another account of the same owner is not affected
  const other = await create(owner.key, 'rpm-free');
  assert.equal((await chat(other.key)).status, 200);
});

test('an ancestor’s limit binds its whole subtree', async () => {
  const parent = await create(owner.key, 'rpm-parent', { RPM: 4, CreditGranted: 100 });
  const a = await create(parent.key, 'rpm-kid-a');
  const b = await create(parent.key, 'rpm-kid-b');
  const statuses = [];
  for (let i = 0; i < 3; i++) {
    statuses.push((await chat(a.key)).status);
    statuses.push((await chat(b.key)).status);
  }
  assert.equal(statuses.filter((s) => s === 200).length, 4, `statuses ${statuses}`);
  assert.equal(statuses.filter((s) => s === 429).length, 2);
});

test('AllowModels refuses other models with 403 before any upstream call', async () => {
  const acct = await create(owner.key, 'only-mini', { AllowModels: 'gpt-4o-mini' });
  const before = (await mock.stats()).requests;
  assert.equal((await chat(acct.key)).status, 200);
  const r = await chat(acct.key, 'gpt-4o');
  assert.equal(r.status, 403);
  assert.match((await r.json()).error.message, /gpt-4o/);
  assert.equal((await mock.stats()).requests, before + 1);
});

test('a monthly HardLimit below the cost of a request refuses it with 429 insufficient_quota', async () => {
  const acct = await create(owner.key, 'hard-capped', { HardLimit: 0.0001 });
  const r = await chat(acct.key, 'gpt-4o', { max_tokens: 4000 });
  assert.equal(r.status, 429);
  assert.equal((await r.json()).error.code, 'insufficient_quota');
});

test('200 concurrent requests from an account funded for 5: at most 5 served, nothing over-spent', async () => {
  // a price that makes each request cost $0.40 (8 output tokens at $50,000 per million)
  const conf = await api(owner.key, 'PUT', '/x-config', { PRICES: { 'pricey-model': { input: 0, output: 50000, cached: 0 } } });
  assert.equal(conf.status, 200, JSON.stringify(conf.body));
  const acct = await create(owner.key, 'five-requests', { CreditGranted: 2 });
  await mock.reset();
  const results = await Promise.all(Array.from({ length: 200 }, () => chat(acct.key, 'pricey-model')
    .then(async (r) => { await r.arrayBuffer(); return r.status; })));
  const served = results.filter((s) => s === 200).length;
  assert.ok(served >= 1 && served <= 5, `served ${served}: ${[...new Set(results)]}`);
  assert.ok(results.every((s) => s === 200 || s === 429), `statuses ${[...new Set(results)]}`);
  assert.equal((await mock.stats()).served, served, 'refused requests never reached the upstream');
  // the ledger: every admitted request cost exactly its estimate, the balance never went negative
  let info;
  await waitFor(async () => {
    info = (await api(acct.key, 'GET', '/dashboard/info')).body;
    return Math.round(info.credit_used * 100) === served * 40;
  }, { what: 'the spend to reach the ledger' });
  assert.ok(info.balance >= 0, `balance ${info.balance}`);
  assert.equal(Math.round(info.balance * 100), 200 - served * 40);
});
