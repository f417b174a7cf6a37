// The process tree through the real binary: command line, config errors, SIGHUP reload with a
// broken file, a worker killed with SIGKILL, SIGTERM draining an open stream, access log lines
// across a SIGUSR1 reopen and a SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, mkdtempSync, rmSync, statSync, renameSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect } from 'node:net';
import OpenAI from 'openai';
import { startMock, startGateway, runTollgate, waitFor, sleep, freePort, gatewayConfig } from './lib/harness.js';

const messages = [{ role: 'user', content: 'hello' }];

test('--version and --check', async () => {
  const v = await runTollgate(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^tollgate \d+\.\d+\.\d+/);
  const ok = await runTollgate(['--check', '-c', new URL('../../conf/tollgate.yaml', import.meta.url).pathname]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /ok/);
});

test('a bad config is refused with file, line and key, and nothing starts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-cfg-'));
  try {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, 'listen:\n  - host: 127.0.0.1\n    port: 8080\nworkers: 1\nbogus_key: 3\n');
    let r = await runTollgate(['--check', '-c', path]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.yaml:5: bogus_key: unknown key/);
    writeFileSync(path, 'workers: "two"\n');
    r = await runTollgate(['-c', path]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.yaml:1: workers: /);
    r = await runTollgate(['-c', join(dir, 'missing.yaml')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /missing\.yaml: cannot open/);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a port in use and an unusable data directory are refused with one line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-cfg-'));
  const blocker = createServer();
  const port = await freePort();
  await new Promise((r) => blocker.listen(port, '127.0.0.1', r));
  try {
    const path = join(dir, 'c.yaml');
    writeFileSync(path, gatewayConfig({ port, dataDir: join(dir, 'data'), mockUrl: 'http://127.0.0.1:9' }));
    let r = await runTollgate(['-c', path]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`listen 127\\.0\\.0\\.1:${port}: Address already in use`));
    writeFileSync(join(dir, 'file'), 'not a dir');
    writeFileSync(path, gatewayConfig({ port, dataDir: join(dir, 'file'), mockUrl: 'http://127.0.0.1:9' }));
    r = await runTollgate(['-c', path]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /data_dir .*file: not a directory/);
  } finally {
    blocker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bootstrap writes the root key 0600 and the key works; a generated key is printed once', async () => {
  const mock = await startMock();
  const gw = await startGateway({ mock });
  try {
    const keyFile = join(gw.dataDir, 'root.key');
    assert.equal(readFileSync(keyFile, 'utf8').trim(), gw.rootKey);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.equal((statSync(join(gw.dataDir, 'master.key')).mode & 0o777), 0o600);
  } finally {
    await gw.cleanup();
  }
  const gw2 = await startGateway({ mock, env: { TOLLGATE_ROOT_KEY: '' } });
  try {
    const m = gw2.out.stdout.match(/root key: (sk-Xvs\w{45})/);
    assert.ok(m, `printed: ${gw2.out.stdout}`);
    assert.equal(readFileSync(join(gw2.dataDir, 'root.key'), 'utf8').trim(), m[1]);
    const r = await fetch(`${gw2.base}/dashboard/status`, { headers: { authorization: `Bearer ${m[1]}` } });
    assert.equal(r.status, 200);
    // a restart on the same data directory does not create or print a new key
    await gw2.stop();
    await gw2.start();
    assert.ok(!/root key:/.test(gw2.out.stdout));
    assert.ok(!gw2.out.stderr.includes(m[1]), 'the key never reaches the error log');
  } finally {
    await gw2.cleanup();
    await mock.stop();
  }
});

test('SIGHUP with a broken file keeps serving; a good file is applied', async () => {
  const mock = await startMock();
  const gw = await startGateway({ mock });
  const client = new OpenAI({ apiKey: gw.rootKey, baseURL: `${gw.base}/v1`, maxRetries: 0 });
  try {
    const good = readFileSync(gw.configPath, 'utf8');
    writeFileSync(gw.configPath, good + '\nnot_a_setting: 1\n');
    gw.proc.kill('SIGHUP');
    await waitFor(() => /reload refused/.test(gw.out.stderr), { what: 'the refusal to be logged' });
    assert.match(gw.out.stderr, /not_a_setting: unknown key/);
    const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    assert.equal(r.object, 'chat.completion');
    const oldWorker = gw.workerPids()[0];
    writeFileSync(gw.configPath, good.replace('workers: 1', 'workers: 2'));
    gw.proc.kill('SIGHUP');
    await waitFor(() => /reloaded/.test(gw.out.stderr), { what: 'the reload to be logged' });
    await waitFor(() => {
      const now = gw.workerPids();
      return now.length === 2 && !now.includes(oldWorker);
    }, { what: 'two new workers, the old one retired' });
    // The first client's kept-alive connection belonged to the retired worker; under ASan that
    // worker's exit (leak check) can leave it looking open to the client for a moment after the
    // worker is gone, and a request sent on it then gets a reset. Clients retry a reset that
    // carried no answer (the SDKs' default), so the requests after the reload do too.
    const fresh = new OpenAI({ apiKey: gw.rootKey, baseURL: `${gw.base}/v1`, maxRetries: 2 });
    for (let i = 0; i < 4; i++) await fresh.chat.completions.create({ model: 'gpt-4o-mini', messages });
  } finally {
    await gw.cleanup({ allowErrors: [/reload refused/] });
    await mock.stop();
  }
});

test('a worker killed with SIGKILL is restarted and requests keep succeeding', async () => {
  const mock = await startMock();
  const gw = await startGateway({ mock, workers: 2 });
  const client = new OpenAI({ apiKey: gw.rootKey, baseURL: `${gw.base}/v1`, maxRetries: 2 });
  try {
    const before = gw.workerPids();
    assert.equal(before.length, 2);
    process.kill(before[0], 'SIGKILL');
    for (let i = 0; i < 10; i++) {
      const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
      assert.equal(r.object, 'chat.completion');
    }
    await waitFor(() => {
      const now = gw.workerPids();
      return now.length === 2 && !now.includes(before[0]);
    }, { what: 'the worker to be replaced' });
  } finally {
    await gw.cleanup();
    await mock.stop();
  }
});

test('SIGTERM lets an open stream finish, stores its usage, and exits 0', async () => {
  const mock = await startMock(['--chunks', '6', '--chunk-delay-ms', '200']);
  const gw = await startGateway({ mock });
  const client = new OpenAI({ apiKey: gw.rootKey, baseURL: `${gw.base}/v1`, maxRetries: 0 });
  try {
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    let n = 0;
    let last;
    let exit;
    for await (const chunk of stream) {
      if (n++ === 0) exit = gw.stop('SIGTERM');
      last = chunk;
    }
    assert.equal(last.choices[0].finish_reason, 'stop', 'the stream ran to its end');
    const { code } = await exit;
    assert.equal(code, 0);
    const records = gw.usage();
    assert.equal(records.length, 1);
    assert.equal(records[0].ct, 12);
    const stats = await mock.stats();
    assert.equal(stats.completion_tokens, 12);
  } finally {
    await gw.cleanup();
    await mock.stop();
  }
});

test('new connections are refused once draining has begun', async () => {
  const mock = await startMock(['--chunks', '4', '--chunk-delay-ms', '250']);
  const gw = await startGateway({ mock });
  const client = new OpenAI({ apiKey: gw.rootKey, baseURL: `${gw.base}/v1`, maxRetries: 0 });
  try {
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const exit = gw.stop('SIGTERM');
    await sleep(300);
    const refused = await new Promise((resolve) => {
      const sock = connect(gw.port, '127.0.0.1');
      sock.on('connect', () => { sock.destroy(); resolve(false); });
      sock.on('error', (e) => resolve(e.code === 'ECONNREFUSED'));
    });
    assert.ok(refused, 'a new connection is refused while the open stream drains');
    while (!(await it.next()).done);
    assert.equal((await exit).code, 0);
  } finally {
    await gw.cleanup();
    await mock.stop();
  }
});

test('access log: SIGUSR1 moves new lines to a new file, and after SIGTERM every request has exactly one line', async () => {
  const mock = await startMock(['--chunks', '3', '--chunk-delay-ms', '100']);
  const gw = await startGateway({ mock });
  const logPath = join(gw.dir, 'access.log');
  const ask = async (stream = false) => {
    const r = await fetch(`${gw.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.rootKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages, stream }),
    });
    await r.text();
    assert.equal(r.status, 200);
    return r.headers.get('x-request-id');
  };
  const lines = (p) => (existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
  try {
    const before = await Promise.all(Array.from({ length: 20 }, () => ask()));
    renameSync(logPath, `${logPath}.1`);
    gw.proc.kill('SIGUSR1');
    const during = [];
    await waitFor(async () => { during.push(await ask()); return existsSync(logPath); }, { what: 'the access log to be reopened' });
    const after = await Promise.all(Array.from({ length: 20 }, () => ask()));
    // requests in flight when SIGTERM arrives finish and are logged before the worker exits
    const last = Array.from({ length: 8 }, (_, i) => ask(i % 2 === 0));
    await sleep(50);
    const exit = gw.stop('SIGTERM');
    const drained = await Promise.all(last);
    assert.equal((await exit).code, 0);
    const old = lines(`${logPath}.1`), fresh = lines(logPath);
    for (const rid of before) assert.ok(old.some((l) => l.rid === rid), `request ${rid} before the reopen is in the old file`);
    for (const rid of [...after, ...drained]) assert.ok(fresh.some((l) => l.rid === rid), `request ${rid} after the reopen is in the new file`);
    const all = [...old, ...fresh];
    const rids = [...before, ...during, ...after, ...drained];
    assert.equal(new Set(rids).size, rids.length, 'distinct request ids');
    assert.equal(all.length, rids.length, 'one line per request, none lost, none twice');
    for (const rid of rids) assert.equal(all.filter((l) => l.rid === rid).length, 1, `one line for ${rid}`);
    assert.deepEqual(new Set(gw.usage().map((u) => u.rid)), new Set(rids), 'the access log and the usage records agree');
  } finally {
    await gw.cleanup();
    await mock.stop();
  }
});
