// The ledger under crashes (issue 4, reliability.md promise 1 and 3): traffic from a funded
// sub-account while the persister is killed with SIGKILL at a random moment, then the whole process
// tree; after a restart the mock upstream's served count equals the usage records, the account's
// cards and ledger account for exactly the recorded cost, and `tollgate admin verify` agrees.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, runTollgate, waitFor, sleep } from './lib/harness.js';
import { gatewayApi, ownerWithKey } from './lib/api.js';

let mock, gw;

before(async () => {
  mock = await startMock(['--chunks', '2']);
  gw = await startGateway({ mock, workers: 2, extra: 'store:\n  allow_private_providers: true\n' });
});

after(async () => {
  await gw?.cleanup({ allowErrors: [/./] }); // killed processes may log connection errors
  await mock?.stop();
});

const api = (key, method, path, body) => gatewayApi(gw, key, method, path, body);

/** Sends requests until STOP() says so; returns how many got a 200. */
async function traffic(key, stop) {
  let ok = 0;
  while (!stop()) {
    try {
      const stream = Math.random() < 0.5;
      const r = await fetch(`${gw.base}/v1/chat/completions`, {
        method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content: 'crash test' }] }),
      });
      await r.text();
      if (r.status === 200) ok++;
    } catch { /* the tree was killed under us */ await sleep(20); }
  }
  return ok;
}

test('kill -9 of the persister, then of the whole tree: usage, cards and ledger still reconcile', async () => {
  const owner = await ownerWithKey(gw, mock.url, 'crash-owner', 1000);
  const r = await api(owner.SecretKey, 'POST', '/x-users', { Name: 'crash-child', Email: 'crash-child@example.com', CreditGranted: 500 });
  const child = r.body.User;
  await mock.reset();

  let stop = false;
  const clients = [traffic(child.SecretKey, () => stop), traffic(child.SecretKey, () => stop)];
  await sleep(300 + Math.random() * 500);
  process.kill(gw.persisterPid(), 'SIGKILL'); // the master restarts it
  await sleep(500 + Math.random() * 500);
  await gw.stop('SIGKILL'); // the whole tree: children die with the master
  stop = true;
  await Promise.all(clients);
  await sleep(200);
  await gw.start();

  const served = (await mock.stats()).served;
  assert.ok(served > 0);
  let rows;
  await waitFor(() => { rows = gw.usage().filter((u) => u.acct === child.ID); return rows.length >= served; },
    { what: 'every served request to be stored', timeout: 15000 });
  assert.equal(rows.length, served, 'one usage record per served request');
  assert.equal(new Set(rows.map((u) => u.rid)).size, rows.length, 'no duplicates');
  const cost = rows.reduce((a, u) => a + u.cost, 0);
  const info = (await api(child.SecretKey, 'GET', '/dashboard/info')).body;
  assert.equal(Math.round(info.credit_used * 1e9), cost);
  assert.equal(Math.round((500 - info.balance) * 1e9), cost);
  const v = await runTollgate(['admin', 'verify', '-c', gw.configPath]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
});
