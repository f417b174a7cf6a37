// bench/lib/accounts.mjs - creates the accounts tollgate's governed benchmark runs need, through
// the account API (POST /x-users, as in the XAI Control API tollgate is compatible with). Used by bench/run.sh
// only once that API exists; until then run.sh reports governance as not yet available.
//
//   node accounts.mjs chain --url URL --root-key KEY --depth D
//       a chain root -> L1 -> ... -> L<D>, each granted credit and a high RPM limit;
//       prints the deepest account's key (S1-S3, S6, S7 run with it)
//   node accounts.mjs bulk --url URL --root-key KEY --n N --out FILE [--concurrency 32] [--rpm R]
//       N sibling accounts under root, their keys one a line in FILE (S4: 1 vs 100k vs 1M accounts;
//       S5: --n 1 --rpm R for the hot account with a limit)
import { writeFileSync } from 'node:fs';

const [cmd, ...rest] = process.argv.slice(2);
const opt = {};
for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, '')] = rest[i + 1];
const url = opt.url, rootKey = opt['root-key'];
if (!url || !rootKey || !['chain', 'bulk'].includes(cmd)) {
  console.error('usage: accounts.mjs chain|bulk --url URL --root-key KEY [--depth D | --n N --out FILE]');
  process.exit(2);
}

const CREDIT = 1e6;       // dollars: enough that no benchmark ever runs out
const HIGH_RPM = 1e9;     // a limit that is checked on every request but never reached

async function createChild(parentKey, name, rpm) {
  const res = await fetch(`${url}/x-users`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${parentKey}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ Name: name, Email: `${name}@bench.invalid`, CreditGranted: CREDIT, RPM: rpm }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST /x-users ${name}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  const key = JSON.parse(text)?.User?.SecretKey;
  if (!key) throw new Error(`POST /x-users ${name}: no User.SecretKey in the answer`);
  return key;
}

const stamp = Date.now().toString(36);
if (cmd === 'chain') {
  let key = rootKey;
  for (let level = 1; level <= Number(opt.depth || 3); level++) key = await createChild(key, `bench-${stamp}-l${level}`, HIGH_RPM);
  console.log(key);
} else {
  const n = Number(opt.n), conc = Number(opt.concurrency || 32), rpm = Number(opt.rpm || HIGH_RPM);
  const keys = new Array(n);
  let next = 0;
  const started = Date.now();
  await Promise.all(Array.from({ length: Math.min(conc, n) }, async () => {
    for (let i; (i = next++) < n;) keys[i] = await createChild(rootKey, `bench-${stamp}-${i}`, rpm);
  }));
  writeFileSync(opt.out, keys.join('\n') + '\n');
  console.error(`created ${n} accounts in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
