// The Manage API through the real binary (api-compat 4.1, 1.3, 7): sub-accounts several levels
// deep, funding with the Rates arithmetic, the worked examples of 1.3 to the cent, validation
// (400 naming the field, nothing changed), deletion (key dies at once, descendants keep working),
// key rotation, the audit log, and proxied calls spending the sub-accounts' cards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, runTollgate, waitFor } from './lib/harness.js';
import { gatewayApi } from './lib/api.js';

let mock, gw;

before(async () => {
  mock = await startMock(['--chunks', '3']);
  gw = await startGateway({ mock, extra: 'store:\n  allow_private_providers: true\n' });
});

after(async () => {
  await gw?.cleanup();
  await mock?.stop();
});

/** Calls the API the way the real pages do: the bare key in Authorization, JSON bodies. */
const api = (key, method, path, body) => gatewayApi(gw, key, method, path, body);

const cents = (x) => Math.round(x * 100);
const balanceOf = async (key) => (await api(key, 'GET', '/dashboard/info')).body.balance;

async function create(parentKey, name, extra = {}) {
  const r = await api(parentKey, 'POST', '/x-users', { Name: name, Email: `${name}@example.com`, CreditGranted: 100, ...extra });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.match(r.body.User.SecretKey, /^sk-Xvs\w{45}$/);
  return { id: r.body.User.ID, key: r.body.User.SecretKey, name, res: r.body };
}

test('create a tree several levels deep; each level is funded with the Rates arithmetic', async () => {
  const owner = await create(gw.rootKey, 'owner-arith', { CreditGranted: 1000 });
  assert.equal(owner.res.Action, 'add');
  assert.equal(owner.res.User.Updates.Balance, 1000);
  assert.equal(owner.res.User.Updates.CreditBalance[0].amount, 1000);
  // parent Rates 1.0, child Rates 1.2, top-up 120 → the child gets a 120 card, the parent pays 100
  const child = await create(owner.key, 'child-arith', { CreditGranted: 120, Rates: 1.2 });
  assert.equal(child.res.Parent.Balance, 900);
  assert.equal(child.res.User.Updates.Balance, 120);
  const grand = await create(child.key, 'grand-arith', { CreditGranted: 24, Rates: 1.2 });
  assert.equal(cents(await balanceOf(child.key)), 9600);
  assert.equal(await balanceOf(grand.key), 24);
  // listings: /x-users = direct children, /x-dna = all descendants, by id
  const kids = await api(owner.key, 'GET', '/x-users');
  assert.deepEqual(kids.body.map((u) => u.Name), ['child-arith']);
  assert.equal(kids.body[0].SecretKey, '***');
  assert.equal(kids.body[0].PartialKey, child.key.slice(-20));
  const dna = await api(owner.key, 'GET', '/x-dna');
  assert.deepEqual(dna.body.map((u) => u.Name), ['child-arith', 'grand-arith']);
  assert.equal(dna.body[1].DNA, `.1.${owner.id}.${child.id}.${grand.id}.`);
  // a child's Rates may not be below its parent's
  const low = await api(child.key, 'POST', '/x-users', { Name: 'too-cheap', Email: 'cheap@example.com', CreditGranted: 5, Rates: 1.0 });
  assert.equal(low.status, 400);
  assert.match(low.body.error.message, /^Rates:/);
});

test('worked examples of api-compat 1.3: Rates change rescales, claw-back fee, delete refund', async () => {
  const owner = await create(gw.rootKey, 'owner-ex', { CreditGranted: 500 });
  const child = await create(owner.key, 'child-ex', { CreditGranted: 50 });
  await api(owner.key, 'PUT', '/x-users/child-ex', { CreditGranted: 80 });
  assert.equal(await balanceOf(owner.key), 370);
  // Rates 1 → 2 turns cards 50 + 80 into 100 + 160
  const up = await api(owner.key, 'PUT', '/x-users/child-ex', { Name: 'child-ex', Rates: 2 });
  assert.equal(up.status, 200, JSON.stringify(up.body));
  assert.deepEqual(up.body.User.Updates.CreditBalance.map((c) => c.balance), [100, 160]);
  assert.equal(await balanceOf(owner.key), 370); // purchasing power unchanged, nothing moved
  // claw back 100 at Rates 2 → the parent gets a 50 card, its main card drops by 0.20
  const cb = await api(owner.key, 'PUT', '/x-users/child-ex', { CreditGranted: -100 });
  assert.equal(cb.status, 200, JSON.stringify(cb.body));
  const cards = cb.body.Parent.CreditBalance;
  assert.equal(cards.at(-1).amount, 50);
  assert.equal(cents(cards[0].balance), 50000 - 5000 - 8000 - 20);
  assert.equal(cents(cb.body.Parent.Balance), 37000 + 5000 - 20);
  assert.equal(await balanceOf(child.key), 160);
  // delete: 160 / 2 = 80 back to the parent as a 180-day card, less 0.20
  const del = await api(owner.key, 'DELETE', '/x-users/child-ex');
  assert.equal(del.status, 200, JSON.stringify(del.body));
  assert.equal(del.body.Action, 'delete');
  const refund = del.body.Parent.CreditBalance.at(-1);
  assert.equal(cents(refund.balance), 7980);
  const days = (Date.parse(refund.expires_at) - Date.parse(refund.granted_at)) / 86400000;
  assert.equal(Math.round(days), 180);
  assert.equal(cents(await balanceOf(owner.key)), 37000 + 5000 - 20 + 7980);
  // the deleted account's key stops working at once, on the dashboard and on the proxy
  assert.equal((await api(child.key, 'GET', '/dashboard/info')).status, 401);
  const proxied = await fetch(`${gw.base}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${child.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(proxied.status, 401);
});

test('bad input gets 400 naming the field, and nothing changes', async () => {
  const owner = await create(gw.rootKey, 'owner-bad', { CreditGranted: 300 });
  const child = await create(owner.key, 'child-bad', { CreditGranted: 30 });
  const before = (await api(owner.key, 'GET', '/x-dna')).body;
  const beforeBal = await balanceOf(owner.key);
  const cases = [
    [{ Name: 'ab', Email: 'ab@example.com', CreditGranted: 5 }, 'Name'],
    [{ Name: '12345', Email: 'n@example.com', CreditGranted: 5 }, 'Name'],
    [{ Name: 'L123', Email: 'n@example.com', CreditGranted: 5 }, 'Name'],
    [{ Name: 'good-name', Email: 'not-an-email', CreditGranted: 5 }, 'Email'],
    [{ Name: 'good-name', Email: 'g@example.com', CreditGranted: '5' }, 'CreditGranted'],
    [{ Name: 'good-name', Email: 'g@example.com', CreditGranted: 1 }, 'CreditGranted'], // below USER_MIN_BALANCE
    [{ Name: 'good-name', Email: 'g@example.com', CreditGranted: 100000 }, 'CreditGranted'], // more than the parent has
    [{ Name: 'good-name', Email: 'g@example.com', CreditGranted: 5, Frobnicate: 1 }, 'Frobnicate'],
    [{ Name: 'good-name', Email: 'g@example.com', CreditGranted: 5, RPM: '60' }, 'RPM'],
    [{ Name: 'good-name', Email: 'g@example.com', CreditGranted: 5, RPM: -1 }, 'RPM'],
    [{ Name: 'good-name', Email: 'g@example.com', CreditGranted: 5, Days: 0 }, 'Days'],
    [{ Name: 'good-name', Email: 'g@example.com', CreditGranted: 5, AllowIPs: '300.1.1.1' }, 'AllowIPs'],
    [{ Name: 'good-name', Email: 'g@example.com', CreditGranted: 5, ModelMapper: 'nonsense' }, 'ModelMapper'],
    [{ Name: 'good-name', Email: 'g@example.com', CreditGranted: 5, Factor: 2 }, 'Factor'],
    [{ Name: 'child-bad', Email: 'g@example.com', CreditGranted: 5 }, 'Name'], // taken
    [{ Name: 'good-name', Email: 'child-bad@example.com', CreditGranted: 5 }, 'Email'], // taken
    [{ Email: 'g@example.com', CreditGranted: 5 }, 'Name'], // missing
  ];
  for (const [body, field] of cases) {
    const r = await api(owner.key, 'POST', '/x-users', body);
    assert.ok(r.status === 400 || r.status === 403, `${JSON.stringify(body)} → ${r.status}`);
    assert.ok(r.body.error.message.startsWith(`${field}:`), `${JSON.stringify(body)}: ${r.body.error.message}`);
    assert.equal(typeof r.body.message, 'string');
  }
  for (const text of ['{', '[1,2]', '{"Name":"x",}', '"str"']) {
    const r = await api(owner.key, 'POST', '/x-users', text);
    assert.equal(r.status, 400, text);
  }
  const updates = [
    [{ Status: 'false' }, 'Status'], [{ Rates: 0.5 }, 'Rates'], [{ CreditGranted: -1000 }, 'CreditGranted'],
    [{ Email: 'owner-bad@example.com' }, 'Email'], [{ Nope: true }, 'Nope'], [{ ModelLimits: { m: { rpm: 'x' } } }, 'ModelLimits'],
  ];
  for (const [body, field] of updates) {
    const r = await api(owner.key, 'PUT', `/x-users/${child.id}`, body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.ok(r.body.error.message.startsWith(`${field}:`), r.body.error.message);
  }
  assert.deepEqual((await api(owner.key, 'GET', '/x-dna')).body, before);
  assert.equal(await balanceOf(owner.key), beforeBal);
});

test('ACL edits, limits bounded by the parent, Status', async () => {
  const owner = await create(gw.rootKey, 'owner-acl', { CreditGranted: 300, RPM: 100, AllowModels: 'gpt-4o*,claude-*' });
  assert.equal((await api(gw.rootKey, 'GET', `/x-users/${owner.id}`)).body[0].AllowModels, 'gpt-4o*,claude-*');
  const child = await create(owner.key, 'child-acl', { CreditGranted: 30 });
  let c = (await api(owner.key, 'GET', '/x-users/child-acl')).body[0];
  assert.equal(c.RPM, 100); // inherited
  assert.equal(c.AllowModels, 'gpt-4o*,claude-*');
  const over = await api(owner.key, 'PUT', '/x-users/child-acl', { RPM: 500 });
  assert.equal(over.status, 400);
  assert.match(over.body.error.message, /^RPM:/);
  // edits: remove an item, add one the parent does not allow (dropped by the intersection)
  let r = await api(owner.key, 'PUT', '/x-users/child-acl', { AllowModels: '-claude-* gpt-4o-mini,llama-3' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  c = (await api(owner.key, 'GET', '/x-users/child-acl')).body[0];
  assert.equal(c.AllowModels, 'gpt-4o*,gpt-4o-mini');
  r = await api(owner.key, 'PUT', '/x-users/child-acl', { AllowModels: '-*' });
  assert.equal((await api(owner.key, 'GET', '/x-users/child-acl')).body[0].AllowModels, '-*');
  r = await api(owner.key, 'PUT', '/x-users/child-acl', { AllowModels: '*', AllowIPs: '10.0.0.0/8, 127.0.0.1' });
  c = (await api(owner.key, 'GET', '/x-users/child-acl')).body[0];
  assert.equal(c.AllowModels, 'gpt-4o*,claude-*'); // "*" = as wide as the parent allows
  assert.equal(c.AllowIPs, '10.0.0.0/8,127.0.0.1');
  // the parent narrowing its own list narrows the child's
  r = await api(gw.rootKey, 'PUT', `/x-users/${owner.id}`, { AllowModels: '-claude-*' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal((await api(owner.key, 'GET', '/x-users/child-acl')).body[0].AllowModels, 'gpt-4o*');
  // Status false: the key is refused
  r = await api(owner.key, 'PUT', '/x-users/child-acl', { Status: false });
  assert.equal(r.status, 200);
  assert.equal((await api(child.key, 'GET', '/dashboard/info')).status, 401);
  await api(owner.key, 'PUT', '/x-users/child-acl', { Status: true });
  assert.equal((await api(child.key, 'GET', '/dashboard/info')).status, 200);
});

test('a deleted middle account leaves its descendants working under the higher ancestors', async () => {
  const owner = await create(gw.rootKey, 'owner-mid', { CreditGranted: 300 });
  const mid = await create(owner.key, 'mid-acct', { CreditGranted: 100 });
  const leaf = await create(mid.key, 'leaf-acct', { CreditGranted: 30 });
  assert.equal((await api(owner.key, 'DELETE', '/x-users/mid-acct')).status, 200);
  assert.equal((await api(leaf.key, 'GET', '/dashboard/info')).status, 200);
  const r = await api(owner.key, 'PUT', '/x-users/leaf-acct', { CreditGranted: 10 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(await balanceOf(leaf.key), 40);
  assert.deepEqual((await api(owner.key, 'GET', '/x-dna')).body.map((u) => u.Name), ['leaf-acct']);
});

test('key rotation: /x-self and /x-root; the old key dies', async () => {
  const owner = await create(gw.rootKey, 'owner-rot', { CreditGranted: 50 });
  const today = new Date().toISOString().slice(0, 10); // the harness runs tollgate in UTC
  let r = await api(owner.key, 'POST', '/x-self', { confirm: 'yes' });
  assert.equal(r.status, 400);
  assert.match(r.body.error.message, /^confirm:/);
  r = await api(owner.key, 'POST', '/x-self', { confirm: `${today}-ROTATE-SELF` });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const fresh = r.body.rotate.key;
  assert.match(fresh, /^sk-Xvs\w{45}$/);
  assert.equal((await api(owner.key, 'GET', '/dashboard/info')).status, 401);
  assert.equal((await api(fresh, 'GET', '/dashboard/info')).status, 200);
  // only root may use /x-root
  r = await api(fresh, 'POST', '/x-root', { name: 'owner-rot', confirm: `${today}-ROTATE-ROOT` });
  assert.equal(r.status, 403);
  r = await api(gw.rootKey, 'POST', '/x-root', { name: 'owner-rot', confirm: `${today}-ROTATE-ROOT` });
  assert.equal(r.status, 200);
  assert.equal(r.body.rotate.action, 'rotate_root');
  assert.equal((await api(fresh, 'GET', '/dashboard/info')).status, 401);
  assert.equal((await api(r.body.rotate.key, 'GET', '/dashboard/info')).status, 200);
});

test('every management write is in the audit log, readable through /dashboard/logs', async () => {
  const owner = await create(gw.rootKey, 'owner-audit', { CreditGranted: 100 });
  await create(owner.key, 'child-audit', { CreditGranted: 10 });
  await api(owner.key, 'PUT', '/x-users/child-audit', { Alias: 'Kid', CreditGranted: 5 });
  await api(owner.key, 'POST', '/x-keys', { Level: 1, Provider: 'https://api.example.com', SecretKey: 'sk-very-secret-provider-key-123' });
  const r = await api(owner.key, 'GET', '/dashboard/logs', undefined);
  assert.equal(r.status, 200);
  const actions = r.body.logs.map((l) => l.action);
  assert.deepEqual(actions.slice(0, 3), ['add_key', 'recharge_user', 'add_user']);
  const key = r.body.logs[0];
  assert.equal(key.details.SecretKey, '***');
  assert.ok(!JSON.stringify(r.body).includes('very-secret'));
  assert.equal(key.operator_id, owner.id);
  assert.equal(typeof key.ip, 'string');
  assert.ok(r.body.logs[1].details.Alias === 'Kid');
  // the child sees what was done to it, not the owner's key changes
  const childLogs = await api(gw.rootKey, 'GET', '/dashboard/logs?action=add_user&size=100');
  assert.ok(childLogs.body.logs.every((l) => l.action === 'add_user'));
});

test('proxied calls with a sub-account key spend its cards, and the ledger reconciles', async () => {
  const owner = await create(gw.rootKey, 'owner-spend', { CreditGranted: 100 });
  const child = await create(owner.key, 'child-spend', { CreditGranted: 10 });
  // an owner's tree uses the owner's own key pool (api-compat 7.12)
  const k = await api(owner.key, 'POST', '/x-keys', { Level: 1, Provider: mock.url, SecretKey: 'sk-mock-upstream-key-0001', config: { protocol: 'openai' } });
  assert.equal(k.status, 200, JSON.stringify(k.body));
  for (let i = 0; i < 5; i++) {
    const r = await fetch(`${gw.base}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${child.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }] }),
    });
    const text = await r.text();
    assert.equal(r.status, 200, text);
  }
  let rows;
  await waitFor(() => { rows = gw.usage().filter((u) => u.acct === child.id); return rows.length === 5; }, { what: 'usage rows' });
  const cost = rows.reduce((a, u) => a + u.cost, 0);
  await waitFor(async () => {
    const info = (await api(child.key, 'GET', '/dashboard/info')).body;
    return info.daily_usage.Requests === 5;
  }, { what: 'the roll-ups' });
  const info = (await api(child.key, 'GET', '/dashboard/info')).body;
  assert.equal(Math.round(info.credit_used * 1e9), cost);
  assert.equal(Math.round((10 - info.balance) * 1e9), cost);
  const bill = (await api(child.key, 'GET', '/dashboard/bill')).body;
  assert.equal(bill.total_requests, 5);
  assert.ok(bill.usage_summary['gpt-4o-mini']);
  const xbill = (await api(owner.key, 'GET', '/x-bill')).body;
  assert.equal(xbill.total_usage.requests, 5);
  assert.equal(xbill.usage_users[0].name, 'child-spend');
  const reqs = (await api(owner.key, 'GET', '/dashboard/requests')).body;
  assert.equal(reqs.data.length, 5);
  assert.equal(reqs.data[0].account_name, 'child-spend');
  const v = await runTollgate(['admin', 'verify', '-c', gw.configPath]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
});
