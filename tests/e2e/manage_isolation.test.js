// The isolation matrix (reliability.md, api-compat 7.12): every management endpoint that names
// another account × every pair of accounts in a tree with two owners → allowed exactly when the
// target is the caller or below it (strictly below for writes that only ancestors may do), and
// Admin endpoints only for root and owners. Generated as a table and checked from both sides.
// Also the bounds the fuzz targets found holes in: IPv4-mapped blocks under an IPv6-only parent,
// provider URLs that reach loopback through a shorthand spelling.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway } from './lib/harness.js';
import { gatewayApi } from './lib/api.js';

let mock, gw;
const accounts = {}; // name → {id, key, dna, parent}

const api = (key, method, path, body) => gatewayApi(gw, key, method, path, body);

async function make(parent, name, credit) {
  const p = accounts[parent];
  const r = await api(p.key, 'POST', '/x-users', { Name: name, Email: `${name}@iso.example.com`, CreditGranted: credit });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  accounts[name] = { id: r.body.User.ID, key: r.body.User.SecretKey, dna: r.body.User.DNA, parent };
}

before(async () => {
  mock = await startMock();
  gw = await startGateway({ mock });
  accounts.root = { id: 1, key: gw.rootKey, dna: '.1.', parent: null };
  // root ─┬─ ownerA ─┬─ a1 ─┬─ a11
  //       │          │      └─ a12
  //       │          └─ a2 ── a21
  //       └─ ownerB ── b1
  await make('root', 'ownerA', 1000);
  await make('ownerA', 'acct-a1', 300);
  await make('acct-a1', 'acct-a11', 50);
  await make('acct-a1', 'acct-a12', 50);
  await make('ownerA', 'acct-a2', 300);
  await make('acct-a2', 'acct-a21', 50);
  await make('root', 'ownerB', 1000);
  await make('ownerB', 'acct-b1', 50);
});

after(async () => {
  await gw?.cleanup();
  await mock?.stop();
});

const isAdmin = (n) => n === 'root' || accounts[n].parent === 'root';
const inSubtree = (caller, target) => accounts[target].dna.startsWith(accounts[caller].dna);
const below = (caller, target) => caller !== target && inSubtree(caller, target);

function relation(caller, target) {
  if (caller === target) return 'self';
  if (below(caller, target)) return accounts[target].parent === caller ? 'child' : 'descendant';
  if (below(target, caller)) return accounts[caller].parent === target ? 'parent' : 'ancestor';
  const ownerOf = (n) => accounts[n].dna.split('.')[2];
  if (ownerOf(caller) !== ownerOf(target)) return 'other owner';
  return accounts[caller].parent === accounts[target].parent ? 'sibling' : 'cousin';
}

// endpoint → (caller, target) → expected allow
const endpoints = [
  { name: 'GET /x-users/{t}', call: (c, t) => api(accounts[c].key, 'GET', `/x-users/${t}`), allow: (c, t) => inSubtree(c, t) },
  { name: 'GET /x-dna/{t}', call: (c, t) => api(accounts[c].key, 'GET', `/x-dna/${accounts[t].id}`), allow: (c, t) => inSubtree(c, t) },
  { name: 'PUT /x-users/{t} Alias', call: (c, t) => api(accounts[c].key, 'PUT', `/x-users/${t}`, { Alias: t }), allow: (c, t) => inSubtree(c, t) },
  { name: 'POST /x-users/{t} RPM', call: (c, t) => api(accounts[c].key, 'POST', `/x-users/${accounts[t].id}`, { RPM: 0 }), allow: (c, t) => below(c, t) }, // RPM is not self-editable
  { name: 'DELETE /x-users/{t}', call: (c, t) => api(accounts[c].key, 'DELETE', `/x-users/${t}`), allow: (c, t) => below(c, t), mutates: true },
  { name: 'GET /x-bill?u={t}', call: (c, t) => api(accounts[c].key, 'GET', `/x-bill?u=${t}`), allow: (c, t) => below(c, t) },
  { name: 'GET /dashboard/requests?u={t}', call: (c, t) => api(accounts[c].key, 'GET', `/dashboard/requests?u=${t}`), allow: (c, t) => inSubtree(c, t) },
  { name: 'GET /x-info?user={t}', call: (c, t) => api(accounts[c].key, 'GET', `/x-info?user=${t}`), allow: (c, t) => isAdmin(c) && inSubtree(c, t) },
  { name: 'GET /x-logs?u={t}', call: (c, t) => api(accounts[c].key, 'GET', `/x-logs?u=${accounts[t].id}`), allow: (c, t) => isAdmin(c) && inSubtree(c, t) },
  { name: 'POST /x-news/{t}', call: (c, t) => api(accounts[c].key, 'POST', `/x-news/${t}`, { title: 'hi', content: 'x' }), allow: (c, t) => isAdmin(c) && inSubtree(c, t) },
];

test('the isolation matrix: every endpoint × every pair of accounts', async () => {
  const names = Object.keys(accounts);
  const failures = [];
  const seen = new Set();
  for (const ep of endpoints) {
    for (const c of names) {
      for (const t of names) {
        const want = ep.allow(c, t);
        if (ep.mutates && want) continue; // allowed deletions are exercised below, once
        const r = await ep.call(c, t);
        const ok = want ? r.status === 200 : (r.status === 403 || r.status === 404);
        seen.add(`${relation(c, t)}:${want ? 'allow' : 'deny'}`);
        if (!ok) failures.push(`${ep.name} caller=${c} target=${t} (${relation(c, t)}): want ${want ? 'allow' : 'deny'}, got ${r.status} ${JSON.stringify(r.body).slice(0, 160)}`);
      }
    }
  }
  assert.deepEqual(failures, []);
  for (const rel of ['self', 'parent', 'ancestor', 'child', 'descendant', 'sibling', 'cousin', 'other owner'])
    assert.ok([...seen].some((s) => s.startsWith(rel)), `relation ${rel} covered`);
});

test('Admin endpoints answer only root and owners; each owner sees only its own pool and config', async () => {
  for (const n of Object.keys(accounts)) {
    for (const [m, p] of [['GET', '/x-keys'], ['GET', '/x-conf'], ['GET', '/x-config'], ['GET', '/x-gkey'], ['GET', '/x-info']]) {
      const r = await api(accounts[n].key, m, p);
      assert.equal(r.status, isAdmin(n) ? 200 : 403, `${m} ${p} as ${n}: ${r.status}`);
    }
  }
  const k = await api(accounts.ownerA.key, 'POST', '/x-keys', { Level: 2, Provider: 'https://api.openai.com', SecretKey: 'sk-owner-a-secret-key-0000000' });
  assert.equal(k.status, 200);
  assert.equal((await api(accounts.ownerB.key, 'GET', '/x-keys')).body.length, 0);
  assert.equal((await api(accounts.ownerB.key, 'DELETE', `/x-keys/${k.body.key.ID}`)).status, 404);
  assert.equal((await api(accounts.ownerB.key, 'PUT', `/x-keys/${k.body.key.ID}`, { Status: false })).status, 404);
  assert.equal((await api(accounts.ownerA.key, 'GET', '/x-keys')).body.length, 1);
  await api(accounts.ownerA.key, 'PUT', '/x-config', { MODEL_MAPPER: 'a=b' });
  assert.deepEqual((await api(accounts.ownerB.key, 'GET', '/x-config')).body.configs, {});
  assert.equal((await api(accounts.ownerA.key, 'GET', '/x-config')).body.configs.MODEL_MAPPER, 'a=b');
});

test('allowed deletions from each ancestor level', async () => {
  // a12 by its parent, a21 by its grandparent (owner), b1 by root (cross-owner)
  for (const [c, t] of [['acct-a1', 'acct-a12'], ['ownerA', 'acct-a21'], ['root', 'acct-b1']]) {
    const r = await api(accounts[c].key, 'DELETE', `/x-users/${t}`);
    assert.equal(r.status, 200, `${c} deletes ${t}: ${JSON.stringify(r.body)}`);
    assert.equal((await api(accounts[t].key, 'GET', '/dashboard/status')).status, 401);
  }
});

test('a parent restricted to IPv6 bounds a child\'s IPv4-mapped block as the IPv4 block it is', async () => {
  // found by tests/fuzz/fuzz_acl: ::ffff:10.0.0.0/104 is 10.0.0.0/8 to the quota engine
  const p = await api(gw.rootKey, 'POST', '/x-users', { Name: 'v6-parent', Email: 'v6-parent@iso.example.com', CreditGranted: 50 });
  assert.equal(p.status, 200, JSON.stringify(p.body));
  const c = await api(p.body.User.SecretKey, 'POST', '/x-users',
    { Name: 'v6-child', Email: 'v6-child@iso.example.com', CreditGranted: 5, AllowIPs: '::ffff:10.0.0.0/104, 2001:db8::/32' });
  assert.equal(c.status, 200, JSON.stringify(c.body));
  const r = await api(gw.rootKey, 'PUT', '/x-users/v6-parent', { AllowIPs: '::/0' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal((await api(gw.rootKey, 'GET', '/x-users/v6-child')).body[0].AllowIPs, '2001:db8::/32');
});

test('a provider URL naming loopback or a private host in any spelling is refused and stores nothing', async () => {
  // found by tests/fuzz/fuzz_mgmt_body: curl and the resolver read these as 127.0.0.1 / 10.0.0.1
  const before = (await api(accounts.ownerA.key, 'GET', '/x-keys')).body.length;
  for (const url of ['http://127.1/v1', 'http://2130706433/v1', 'http://0x7f.0.0.1/v1', 'http://10.1/v1', 'http://localhost./v1']) {
    const r = await api(accounts.ownerA.key, 'POST', '/x-keys', { Level: 2, Provider: url, SecretKey: 'sk-owner-a-secret-key-0000001' });
    assert.equal(r.status, 400, `${url}: ${JSON.stringify(r.body)}`);
    assert.match(r.body.error.message, /^Provider: names a loopback or private address/);
  }
  assert.equal((await api(accounts.ownerA.key, 'GET', '/x-keys')).body.length, before);
});
