// Secrets scan (reliability.md, issue 9 item 7): provider secrets and API keys must never appear in
// plaintext in API responses, the error log, the access log, or any file of the data directory
// (RocksDB files, WAL, arena). Only the master key file and root.key may hold their own secret.
// The run: upstream keys with distinctive secrets (config-seeded and added through POST /x-keys),
// sub-accounts (keys returned once), proxied calls (streaming and not, by root, owner and child),
// every management listing, /metrics, a key rotation, then a graceful stop and a binary scan.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join, basename } from 'node:path';
import { createHash } from 'node:crypto';
import { startMock, startGateway, waitFor } from './lib/harness.js';

// Distinctive provider secrets (20+ printable characters): two seeded from the config file, one
// added at run time by an owner.
const SEED_A = 'sk-CANARYseedAlpha-7d1e5b0c9a2f4e6b8d3c';
const SEED_B = 'sk-CANARYseedBravo-0f9e8d7c6b5a49382716';
const ADDED = 'sk-CANARYaddedCharlie-5e4d3c2b1a09f8e7d6';
const PROVIDER_SECRETS = [SEED_A, SEED_B, ADDED];

let mock, gw;
const bodies = [];        // every API response body, as text
const apiKeys = new Map(); // label -> key (sk-Xvs…), including rotated-away ones

async function call(key, method, path, body, headers = {}) {
  const h = { authorization: `Bearer ${key}`, ...headers };
  if (body !== undefined) h['content-type'] = 'application/json';
  const r = await fetch(`${gw.base}${path}`, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  // response headers too: a secret must not leak there either
  bodies.push({ what: `${method} ${path}`, text: text + '\n' + JSON.stringify([...r.headers]) });
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: r.status, body: json, text };
}

/** Every regular file under DIR, recursively. */
function files(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...files(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

before(async () => {
  mock = await startMock(['--chunks', '3']);
  gw = await startGateway({
    mock,
    keys: [{ name: 'canary-a', secret: SEED_A }, { name: 'canary-b', secret: SEED_B }],
    extra: 'store:\n  allow_private_providers: true\n',
  });
  apiKeys.set('root', gw.rootKey);
});

after(async () => {
  await gw?.cleanup();
  await mock?.stop();
});

test('no provider secret or API key in plaintext in responses, logs or the data directory', async () => {
  // accounts: an owner (child of root) with its own pool, and a child of the owner
  let r = await call(gw.rootKey, 'POST', '/x-users', { Name: 'sec-owner', Email: 'sec-owner@example.com', CreditGranted: 200 });
  assert.equal(r.status, 200, r.text);
  const owner = { id: r.body.User.ID, key: r.body.User.SecretKey };
  apiKeys.set('owner', owner.key);
  r = await call(owner.key, 'POST', '/x-keys', { Level: 1, Provider: mock.url, SecretKey: ADDED, Name: 'canary-c' });
  assert.equal(r.status, 200, r.text);
  const addedId = r.body.key.ID;
  r = await call(owner.key, 'POST', '/x-users', { Name: 'sec-child', Email: 'sec-child@example.com', CreditGranted: 50 });
  assert.equal(r.status, 200, r.text);
  const child = { id: r.body.User.ID, key: r.body.User.SecretKey };
  apiKeys.set('child', child.key);
  // the create answers are the one place a key is returned: don't count them as leaks
  const createAnswers = bodies.splice(0).filter((b) => b.what !== 'POST /x-users');
  bodies.push(...createAnswers);

  // proxied calls, streaming and not, by each account (both seeded upstream keys get used)
  const req = (stream) => ({ model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content: 'secret scan' }] });
  for (const key of [gw.rootKey, gw.rootKey, owner.key, child.key]) {
    r = await call(key, 'POST', '/v1/chat/completions', req(false));
    assert.equal(r.status, 200, r.text);
    r = await call(key, 'POST', '/v1/chat/completions', req(true));
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /data: \[DONE\]/);
  }
  // an upstream error path too (its body must not echo the upstream key)
  await mock.fault(SEED_A, '401', 1);
  await mock.fault(SEED_B, '401', 1);
  for (let i = 0; i < 2; i++) await call(gw.rootKey, 'POST', '/v1/chat/completions', req(i === 1));
  await mock.fault(SEED_A, 'none', 0);
  await mock.fault(SEED_B, 'none', 0);
  // the mock saw the secrets (so they were really used), tollgate must not show them
  const st = await mock.stats();
  assert.ok(st.by_key[SEED_A] || st.by_key[SEED_B], 'a seeded key reached the mock');
  assert.ok(st.by_key[ADDED], 'the added key reached the mock');

  // management surfaces
  for (const [key, path] of [
    [gw.rootKey, '/x-keys'], [owner.key, '/x-keys'], [owner.key, `/x-keys/${addedId}`],
    [gw.rootKey, '/x-users'], [owner.key, '/x-users'], [gw.rootKey, '/x-dna'],
    [gw.rootKey, '/dashboard/info'], [owner.key, '/dashboard/info'], [child.key, '/dashboard/info'],
    [gw.rootKey, '/dashboard/logs'], [owner.key, '/dashboard/logs'],
    [gw.rootKey, '/dashboard/requests'], [owner.key, '/dashboard/requests'],
    [gw.rootKey, '/metrics'], [gw.rootKey, '/v1/models'],
  ]) {
    r = await call(key, 'GET', path);
    assert.equal(r.status, 200, `${path}: ${r.status} ${r.text.slice(0, 200)}`);
  }
  // rotation: the new key is returned once; the old one must vanish everywhere as well
  const today = new Date().toISOString().slice(0, 10);
  r = await call(child.key, 'POST', '/x-self', { confirm: `${today}-ROTATE-SELF` });
  assert.equal(r.status, 200, r.text);
  bodies.pop(); // the rotation answer carries the new key by design
  apiKeys.set('child-rotated', r.body.rotate.key);
  r = await call(r.body.rotate.key, 'POST', '/v1/chat/completions', req(true));
  assert.equal(r.status, 200, r.text);
  r = await call(gw.rootKey, 'GET', '/dashboard/logs');
  assert.equal(r.status, 200);

  // let the persister drain, then stop gracefully so everything is flushed to disk
  await waitFor(() => gw.usage().length >= 10, { what: 'usage records stored' });
  await gw.stop('SIGTERM');

  const leaks = [];
  const needles = [
    ...PROVIDER_SECRETS.map((s) => ({ label: `provider secret ${s.slice(0, 18)}…`, s, own: null })),
    ...[...apiKeys].map(([label, s]) => ({ label: `API key of ${label}`, s, own: label === 'root' ? 'root.key' : null })),
  ];
  const scan = (where, buf, fileName = null) => {
    for (const n of needles) {
      if (n.own && fileName === n.own) continue;
      if (buf.includes(Buffer.from(n.s))) leaks.push(`${n.label} in ${where}`);
    }
  };
  for (const b of bodies) scan(`response of ${b.what}`, Buffer.from(b.text));
  scan('the error log (stderr)', Buffer.from(gw.out.stderr));
  scan('stdout', Buffer.from(gw.out.stdout));
  const accessLog = join(gw.dir, 'access.log');
  assert.ok(existsSync(accessLog), 'the access log was written');
  scan('the access log', readFileSync(accessLog));
  const dataFiles = files(gw.dataDir);
  assert.ok(dataFiles.some((f) => basename(f) === 'arena.tg'), 'the arena file is in the data directory');
  assert.ok(dataFiles.some((f) => /\.(sst|log)$/.test(f) || /MANIFEST/.test(f)), 'RocksDB files are in the data directory');
  let scanned = 0;
  for (const f of dataFiles) {
    if (basename(f) === 'master.key' || basename(f).startsWith('master.key')) continue; // holds only the master key
    const buf = readFileSync(f);
    scanned += buf.length;
    scan(f.slice(gw.dataDir.length + 1), buf, basename(f));
  }
  assert.ok(scanned > 0);
  // API keys are stored only as SHA-256: the digest may be in the arena/store, the key may not;
  // check the digest really is what indexes them (so the scan above looked at the right files)
  const digests = [...apiKeys.values()].map((k) => createHash('sha256').update(k).digest());
  const arena = readFileSync(join(gw.dataDir, 'arena.tg'));
  const found = digests.filter((d) => arena.includes(d) || arena.includes(Buffer.from(d.toString('hex')))).length;
  // positive controls: the scanner does find a secret where it is by design
  assert.ok(readFileSync(gw.configPath).includes(Buffer.from(SEED_A)), 'control: the config file holds the seeded secret');
  const rootKeyFile = dataFiles.find((f) => basename(f) === 'root.key');
  if (rootKeyFile) assert.ok(readFileSync(rootKeyFile).includes(Buffer.from(gw.rootKey)), 'control: root.key holds the root key');
  assert.deepEqual(leaks, [], `plaintext secrets found:\n${leaks.join('\n')}`);
  // informational: how many key digests are present in the arena (not a failure either way)
  console.log(`# secrets scan: ${bodies.length} responses, ${dataFiles.length} data files (${scanned} bytes), ` +
    `${needles.length} needles, ${found}/${digests.length} key digests seen in the arena`);
});
