// Dashboard and Admin endpoints through the real binary: the shapes the XAI pages read, news,
// config, card expiry, metrics on the persister socket, and the admin tool (backup while running,
// verify, restore).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startMock, startGateway, runTollgate, waitFor, sleep } from './lib/harness.js';
import { gatewayApi, ownerWithKey } from './lib/api.js';

let mock, gw, owner, child;

const api = (key, method, path, body) => gatewayApi(gw, key, method, path, body);

before(async () => {
  mock = await startMock();
  gw = await startGateway({ mock, extra: 'store:\n  allow_private_providers: true\n' });
  const u = await ownerWithKey(gw, mock.url, 'dash-owner', 500);
  owner = { id: u.ID, key: u.SecretKey };
  const r = await api(owner.key, 'POST', '/x-users', { Name: 'dash-child', Email: 'dash-child@example.com', CreditGranted: 50, RPM: 60 });
  child = { id: r.body.User.ID, key: r.body.User.SecretKey };
});

after(async () => {
  await gw?.cleanup();
  await mock?.stop();
});

test('/dashboard/info and its aliases serve the flat shape the pages read (numbers as numbers)', async () => {
  const bodies = [];
  for (const p of ['/dashboard/info', '/dashboard/x-user-info', '/dashboard/x_user/info']) {
    const r = await fetch(`${gw.base}${p}`, { headers: { authorization: `Bearer ${child.key}`, 'content-type': 'application/json' } });
    assert.equal(r.status, 200);
    bodies.push(await r.json());
  }
  assert.deepEqual(bodies[0].name, bodies[1].name);
  const b = bodies[2];
  assert.equal(b.name, 'dash-child');
  assert.equal(b.id, child.id);
  assert.equal(typeof b.balance, 'number');
  assert.equal(b.balance, 50);
  assert.equal(typeof b.credit_balance[0].amount, 'number');
  assert.equal(typeof b.credit_balance[0].balance, 'number');
  assert.match(b.credit_balance[0].expires_at, /^\d{4}-\d\d-\d\dT/);
  assert.equal(typeof b.credit_used, 'number');
  assert.equal(typeof b.daily_usage.Requests, 'number');
  assert.equal(typeof b.monthly_usage.CreditUsed, 'number');
  assert.equal(b.rpm, 60);
  assert.equal(typeof b.tpd, 'number');
  assert.equal(typeof b.level, 'number');
  assert.equal(typeof b.child, 'number');
  assert.match(b.create_at, /^\d{4}-/);
  assert.equal(b.object, 'user_info');
  assert.equal(b.user.name, 'dash-child');
  assert.equal(b.limits.rpm, 60);
  assert.ok(b.usage.today);
  const live = (await api(child.key, 'GET', '/dashboard/live')).body;
  assert.equal(live.balance.total, 50);
  assert.equal(live.limits.rpm, 60);
  const st = (await api(child.key, 'GET', '/dashboard/status')).body;
  assert.equal(st.manage, true);
  assert.equal(st.admin, false);
  assert.equal((await api(owner.key, 'GET', '/dashboard/status')).body.admin, true);
});

test('/dashboard/bill, /x-bill and /dashboard/billing/usage after proxied traffic', async () => {
  for (let i = 0; i < 3; i++) {
    const r = await fetch(`${gw.base}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${child.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'count' }] }),
    });
    assert.equal(r.status, 200, await r.text());
  }
  await waitFor(async () => (await api(child.key, 'GET', '/dashboard/bill')).body.total_requests === 3, { what: 'the bill' });
  const today = new Date().toISOString().slice(0, 10);
  const bill = (await api(child.key, 'GET', `/dashboard/bill?start=${today}&end=${today}`)).body;
  assert.equal(bill.daily_costs.length, 1);
  assert.equal(bill.daily_costs[0].date, today);
  assert.equal(bill.daily_costs[0].total_requests, 3);
  assert.equal(bill.daily_costs[0].line_items[0].name, 'gpt-4o-mini');
  assert.equal(bill.usage_summary['gpt-4o-mini'].model_stats.Requests, 3);
  assert.equal(bill.usage_summary['gpt-4o-mini'].usage_analysis.request_percentage, 100);
  assert.equal((await api(child.key, 'GET', `/dashboard/bill?date=${today}`)).body.total_requests, 3);
  assert.equal((await api(child.key, 'GET', '/dashboard/bill?date=2024-13-01')).status, 400);
  assert.equal((await api(child.key, 'GET', '/dashboard/bill?start=2020-01-01&end=2024-01-01')).status, 400);
  const legacy = (await api(child.key, 'GET', `/dashboard/billing/usage?start_date=${today}&end_date=${today}`)).body;
  assert.equal(legacy.object, 'list');
  assert.equal(legacy.daily_costs.length, 1);
  const xb = (await api(owner.key, 'GET', `/x-bill?u=dash-child&d=${today}`)).body;
  assert.equal(xb.total_usage.requests, 3);
  assert.equal(xb.data[0].n_requests, 3);
  assert.equal(xb.usage_users[0].usage_analysis.request_percentage, 100);
  const models = (await api(child.key, 'GET', '/dashboard/models')).body;
  assert.ok(models.data.some((m) => m.id === 'gpt-4o-mini'));
  const logs = (await api(owner.key, 'GET', `/x-logs?u=${child.id}`)).body;
  assert.equal(logs.data.length, 3);
  assert.equal(logs.data[0].status, 200);
});

test('news: system news from root, subtree news from an owner; expired hidden', async () => {
  assert.equal((await api(child.key, 'POST', '/x-news', { title: 't', content: 'c' })).status, 403);
  let r = await api(gw.rootKey, 'POST', '/x-news', { title: 'Maintenance', content: 'Sunday' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  r = await api(owner.key, 'POST', '/x-news', { title: 'Owner note', content: 'hello team', days: 1 });
  assert.equal(r.status, 200);
  r = await api(owner.key, 'POST', `/x-news/${gw.rootKey.slice(0, 3)}`, { title: 'x', content: 'y' });
  assert.ok(r.status === 404 || r.status === 403);
  const news = (await api(child.key, 'GET', '/dashboard/news')).body;
  assert.deepEqual(news.system_news.map((n) => n.title), ['Maintenance']);
  assert.deepEqual(news.user_news.map((n) => n.title), ['Owner note']);
  const rootNews = (await api(gw.rootKey, 'GET', '/dashboard/news')).body;
  assert.equal(rootNews.user_news.length, 0);
  assert.equal((await api(owner.key, 'DELETE', '/x-news')).body.deleted, 1);
  assert.equal((await api(child.key, 'GET', '/dashboard/news')).body.user_news.length, 0);
});

test('/x-config and /x-conf: validation, masking, DELETE restores defaults, POST cascades', async () => {
  let r = await api(owner.key, 'PUT', '/x-config', { MODEL_MAPPER: 'gpt-4*=gpt-4o', USER_API_BALANCE: 10, EMAIL_PASS: 'hunter2' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.updated.EMAIL_PASS, '***');
  r = await api(owner.key, 'PUT', '/x-config', { SWITCH_OVER: 'a=b' });
  assert.equal(r.status, 400);
  assert.match(r.body.error.message, /^SWITCH_OVER:/);
  r = await api(owner.key, 'PUT', '/x-config', { NOT_A_KEY: 'x' });
  assert.equal(r.status, 400);
  r = await api(owner.key, 'PUT', '/x-config', { MODEL_LIMITS: { 'gpt-4o': { rpm: 5 } }, PRICES: { 'my-model': { input: 1, output: 2 } } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  let cfg = (await api(owner.key, 'GET', '/x-config')).body;
  assert.equal(cfg.oid, owner.id);
  assert.equal(cfg.configs.EMAIL_PASS, '***');
  assert.deepEqual(cfg.configs.MODEL_LIMITS, { 'gpt-4o': { rpm: 5 } });
  assert.equal((await api(child.key, 'GET', '/dashboard/conf')).body.configs.USER_API_BALANCE, 10);
  r = await api(owner.key, 'DELETE', '/x-config', { keys: ['USER_API_BALANCE', 'EMAIL_PASS'] });
  assert.deepEqual(r.body.deleted, ['USER_API_BALANCE', 'EMAIL_PASS']);
  assert.equal((await api(child.key, 'GET', '/dashboard/conf')).body.configs.USER_API_BALANCE, 20);
  r = await api(owner.key, 'POST', '/x-conf', { ModelMapper: 'claude-*=claude-3-5-sonnet', Resources: '/v1/chat/completions' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const c = (await api(owner.key, 'GET', '/x-users/dash-child')).body[0];
  assert.equal(c.ModelMapper, 'claude-*=claude-3-5-sonnet');
  assert.equal(c.Resources, '/v1/chat/completions');
  const conf = (await api(owner.key, 'GET', '/x-conf')).body;
  assert.equal(conf.ModelMapper, 'claude-*=claude-3-5-sonnet');
  assert.ok(Array.isArray(conf.SleepingKeys) && Array.isArray(conf.DisabledKeys));
  assert.equal((await api(owner.key, 'POST', '/x-conf', { LoadKeys: true })).status, 403);
  await api(owner.key, 'POST', '/x-conf', { Resources: '*' });
});

test('/x-keys: secrets sealed and never returned; validation; the owner pool serves its tree', async () => {
  let r = await api(owner.key, 'POST', '/x-keys', { Level: 1, Provider: 'ftp://x', SecretKey: 'sk-aaaaaaaaaaaaaaaaaaaaaa' });
  assert.equal(r.status, 400);
  assert.match(r.body.error.message, /^Provider:/);
  r = await api(owner.key, 'POST', '/x-keys', { Level: '1', Provider: 'https://api.openai.com', SecretKey: 'sk-aaaaaaaaaaaaaaaaaaaaaa' });
  assert.match(r.body.error.message, /^Level:/);
  r = await api(owner.key, 'POST', '/x-keys', { Level: 1, Provider: 'https://api.openai.com', SecretKey: 'short' });
  assert.match(r.body.error.message, /^SecretKey:/);
  r = await api(owner.key, 'POST', '/x-keys', { Level: 3, Provider: 'https://api.anthropic.com', SecretKey: 'sk-ant-secret-value-0123456789', config: { protocol: 'anthropic' } });
  assert.equal(r.status, 200);
  const id = r.body.key.ID;
  assert.equal(r.body.key.SecretKey, '***');
  const list = await api(owner.key, 'GET', '/x-keys?level=3');
  assert.equal(list.body.length, 1);
  assert.equal(list.headers.get('x-total-count'), '1');
  assert.ok(!JSON.stringify((await api(owner.key, 'GET', '/x-keys')).body).includes('secret-value'));
  assert.equal((await api(owner.key, 'GET', '/x-keys/L3')).body[0].ID, id);
  r = await api(owner.key, 'PUT', `/x-keys/${id}`, { Status: false, Name: 'claude-backup' });
  assert.equal(r.body.key.Status, false);
  assert.equal((await api(owner.key, 'DELETE', `/x-keys/${id}`)).status, 200);
  assert.equal((await api(owner.key, 'GET', '/x-keys/L3')).body.length, 0);
  const gk = (await api(owner.key, 'GET', '/x-gkey')).body;
  assert.match(gk.key, /^sk-Xvs\w{45}$/);
});

test('a card with a tiny Days expires and is written off by the expiry job', async () => {
  const r = await api(owner.key, 'PUT', '/x-users/dash-child', { CreditGranted: 5, Days: 0.00002 }); // ~1.7 s
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const before = (await api(child.key, 'GET', '/dashboard/info')).body.balance;
  await sleep(2500);
  await waitFor(async () => (await api(child.key, 'GET', '/dashboard/info')).body.balance < before - 4.99, { what: 'expiry' });
  const logs = (await api(child.key, 'GET', '/dashboard/info')).body.credit_balance;
  assert.ok(logs.every((c) => Date.parse(c.expires_at) > Date.now()));
});

test('GET /metrics is Prometheus text for the root key only', async () => {
  const anon = await fetch(`${gw.base}/metrics`);
  assert.equal(anon.status, 401);
  const sub = await api(gw.rootKey, 'POST', '/x-users', { Name: 'metrics-peeker', Email: 'peek@example.com', CreditGranted: 25 });
  assert.equal(sub.status, 200, JSON.stringify(sub.body));
  const denied = await fetch(`${gw.base}/metrics`, { headers: { authorization: `Bearer ${sub.body.User.SecretKey}` } });
  assert.equal(denied.status, 403);
  const res = await fetch(`${gw.base}/metrics`, { headers: { authorization: `Bearer ${gw.rootKey}` } });
  const r = { status: res.status, headers: { 'content-type': res.headers.get('content-type') }, body: await res.text() };
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /text\/plain/);
  for (const name of ['tollgate_persister_records_drained_total', 'tollgate_persister_lag_seconds', 'tollgate_ring_used',
    'tollgate_arena_accounts', 'tollgate_upstream_key_up', 'tollgate_requests_total{model="gpt-4o-mini",status="200"}',
    'tollgate_persister_batch_size_bucket{le="+Inf"}', 'tollgate_upstream_latency_seconds_count'])
    assert.ok(r.body.includes(name), name);
  assert.ok(!r.body.includes('sk-mock-upstream'));
});

test('admin tool: backup while running, verify, restore after stop', async () => {
  const dir = join(gw.dir, 'backup1');
  let r = await runTollgate(['admin', 'backup', dir, '-c', gw.configPath]);
  assert.equal(r.code, 0, r.stderr);
  r = await runTollgate(['admin', 'backup', dir, '-c', gw.configPath]);
  assert.equal(r.code, 1); // exists
  r = await runTollgate(['admin', 'verify', '-c', gw.configPath]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /0 disagreement/);
  // a change after the backup, then restore: the change is gone
  await api(gw.rootKey, 'POST', '/x-users', { Name: 'after-backup', Email: 'after@example.com', CreditGranted: 5 });
  r = await runTollgate(['admin', 'restore', dir, '-c', gw.configPath]);
  assert.equal(r.code, 1); // refused while running
  assert.match(r.stderr, /stop tollgate/);
  await gw.stop();
  r = await runTollgate(['admin', 'restore', dir, '-c', gw.configPath]);
  assert.equal(r.code, 0, r.stderr);
  await gw.start();
  const names = (await api(gw.rootKey, 'GET', '/x-dna')).body.map((u) => u.Name);
  assert.ok(names.includes('dash-child'));
  assert.ok(!names.includes('after-backup'));
  assert.equal((await api(child.key, 'GET', '/dashboard/info')).status, 200);
});
