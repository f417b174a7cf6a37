// `tollgate admin import` through the real binary: a file with errors is refused as a whole with
// line numbers, the import is refused while tollgate runs, and a few thousand imported accounts
// (generated keys, a given key, a given key hash, a reseller paying for its customers) then call
// models with their limits and credit applied, and the Manage API lists them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startMock, startGateway, runTollgate, makeKey } from './lib/harness.js';
import { gatewayApi, ownerWithKey } from './lib/api.js';

const N = 3000;
let mock, gw, owner;

const api = (key, method, path, body) => gatewayApi(gw, key, method, path, body);

function chat(key) {
  return fetch(`${gw.base}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }),
  });
}

const jsonl = (rows) => rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n';

before(async () => {
  mock = await startMock();
  gw = await startGateway({ mock, maxAccounts: N + 100, extra: 'store:\n  allow_private_providers: true\n' });
  const u = await ownerWithKey(gw, mock.url, 'imp-owner', 20000);
  owner = { id: u.ID, key: u.SecretKey };
});

after(async () => {
  await gw?.cleanup();
  await mock?.stop();
});

test('import is refused while tollgate runs', async () => {
  const file = join(gw.dir, 'running.jsonl');
  writeFileSync(file, jsonl([{ Name: 'imp-early', Email: 'imp-early@example.com', Key: makeKey() }]));
  const r = await runTollgate(['admin', 'import', file, '-c', gw.configPath]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /stop it before importing/);
});

test('a file with bad lines is refused whole, each problem named with its line number', async () => {
  await gw.stop();
  const file = join(gw.dir, 'bad.jsonl');
  writeFileSync(file, jsonl([
    { Name: 'imp-good-1', Email: 'imp-good-1@example.com', Parent: owner.id, Key: makeKey() },
    '{"Name": "imp-broken", ',
    { Name: 'imp-good-2', Email: 'imp-good-2@example.com', Parent: 'no-such-parent', Key: makeKey() },
    { Name: 'imp-good-1', Email: 'other@example.com', Key: makeKey() },
    { Name: 'imp-good-3', Email: 'imp-good-3@example.com', RPM: -1, Key: makeKey() },
    { Name: 'imp-good-4', Email: 'imp-good-4@example.com', Color: 'red', Key: makeKey() },
    { Name: 'imp-good-5', Email: 'imp-good-5@example.com', KeyHash: 'abc' },
    { Name: 'imp-good-6', Email: 'imp-good-6@example.com', Parent: owner.id, CreditGranted: 50000, Key: makeKey() },
  ]));
  const r = await runTollgate(['admin', 'import', file, '-c', gw.configPath]);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /line 2: not a JSON object/);
  assert.match(r.stderr, /line 3: Parent: no account is named "no-such-parent"/);
  assert.match(r.stderr, /line 4: Name: "imp-good-1" is already taken/);
  assert.match(r.stderr, /line 5: RPM: must be an integer/);
  assert.match(r.stderr, /line 6: Color: unknown field/);
  assert.match(r.stderr, /line 7: KeyHash: must be the SHA-256/);
  assert.match(r.stderr, /line 8: CreditGranted: the parent's balance \(\$20000\.00\) does not cover/);
  assert.match(r.stderr, /7 line\(s\) with errors; nothing was imported/);
  assert.doesNotMatch(r.stderr, /line 1:/);
  // generated keys need a file to go to
  const nokeys = join(gw.dir, 'nokeys.jsonl');
  writeFileSync(nokeys, jsonl([{ Name: 'imp-nokey', Email: 'imp-nokey@example.com' }]));
  const r2 = await runTollgate(['admin', 'import', nokeys, '-c', gw.configPath]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /--keys-out/);
  await gw.start();
  const names = (await api(gw.rootKey, 'GET', '/x-dna')).body.map((u) => u.Name);
  assert.ok(!names.includes('imp-good-1') && !names.includes('imp-nokey'), names.join(','));
});

test(`${N} imported accounts call models with their limits and credit, and the Manage API lists them`, async () => {
  await gw.stop();
  const givenKey = makeKey(), hashedKey = makeKey();
  const rows = [{ Name: 'imp-reseller', Email: 'imp-reseller@example.com', Parent: owner.id, CreditGranted: 10000 }];
  for (let i = 1; i < N; i++) {
    const row = { Name: `imp-cust-${i}`, Email: `imp-cust-${i}@example.com`, Parent: 'imp-reseller', CreditGranted: 3 };
    if (i === 1) row.RPM = 2;
    if (i === 2) row.Key = givenKey;
    if (i === 3) row.KeyHash = createHash('sha256').update(hashedKey).digest('hex');
    if (i === 4) row.CreditGranted = 0;
    rows.push(row);
  }
  const file = join(gw.dir, 'accounts.jsonl'), keysOut = join(gw.dir, 'keys.jsonl');
  writeFileSync(file, jsonl(rows));
  const r = await runTollgate(['admin', 'import', file, '--keys-out', keysOut, '-c', gw.configPath]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`imported ${N} account\\(s\\)`));
  const keys = readFileSync(keysOut, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(keys.length, N - 2); // every line but the given key and the given hash
  const keyOf = Object.fromEntries(keys.map((k) => [k.Name, k.SecretKey]));
  // keys are kept hashed: neither a given nor a generated key is anywhere in the database files
  for (const f of readdirSync(join(gw.dataDir, 'db'))) {
    const bytes = readFileSync(join(gw.dataDir, 'db', f));
    for (const k of [givenKey, keyOf['imp-cust-10'], keyOf[`imp-cust-${N - 1}`]]) assert.ok(!bytes.includes(k), `${k} in ${f}`);
  }
  // the ledger reconciles with the cards of every account, imported ones included
  const verify = await runTollgate(['admin', 'verify', '-c', gw.configPath]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  assert.match(verify.stdout, new RegExp(`${N + 2} account\\(s\\) checked, 0 disagreement`));

  await gw.start();
  // generated, given and hashed keys all authenticate
  for (const key of [keyOf['imp-cust-10'], keyOf[`imp-cust-${N - 1}`], givenKey, hashedKey, keyOf['imp-reseller']])
    assert.equal((await chat(key)).status, 200);
  // the RPM limit applies
  assert.equal((await chat(keyOf['imp-cust-1'])).status, 200);
  assert.equal((await chat(keyOf['imp-cust-1'])).status, 200);
  assert.equal((await chat(keyOf['imp-cust-1'])).status, 429);
  // an account imported without credit is refused for want of balance
  const broke = await chat(keyOf['imp-cust-4']);
  assert.equal(broke.status, 429);
  assert.equal((await broke.json()).error.code, 'insufficient_quota');
  // balances: each customer holds its grant; the reseller paid for all of them
  const info = (await api(keyOf['imp-cust-20'], 'GET', '/dashboard/info')).body;
  assert.equal(info.balance, 3);
  const reseller = await api(owner.key, 'GET', '/x-users/imp-reseller');
  assert.equal(reseller.status, 200);
  assert.equal(reseller.body[0].Child, N - 1);
  assert.ok(Math.abs(reseller.body[0].Balance - (10000 - 3 * (N - 2))) < 0.01, JSON.stringify(reseller.body[0].Balance));
  // the Manage API lists them under the reseller, like accounts made through it
  const list = await api(keyOf['imp-reseller'], 'GET', '/x-users?size=10&page=2');
  assert.equal(list.status, 200);
  assert.equal(list.headers.get('x-total-count'), String(N - 1));
  assert.deepEqual(list.body.map((u) => u.Name), Array.from({ length: 10 }, (_, i) => `imp-cust-${11 + i}`));
  const one = (await api(keyOf['imp-reseller'], 'GET', '/x-users/imp-cust-2')).body[0];
  assert.equal(one.PartialKey, givenKey.slice(-20));
  assert.equal(one.DNA, `.1.${owner.id}.${keys.find((k) => k.Name === 'imp-reseller').ID}.${one.ID}.`);
  // an account created afterwards through the API takes the next free id
  const after = await api(keyOf['imp-reseller'], 'POST', '/x-users', { Name: 'imp-after', Email: 'imp-after@example.com', CreditGranted: 5 });
  assert.equal(after.status, 200, JSON.stringify(after.body));
  assert.ok(after.body.User.ID > Math.max(...keys.map((k) => k.ID)));
});
