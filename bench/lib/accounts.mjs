// bench/lib/accounts.mjs - creates the accounts of tollgate's governed benchmark runs through the
// management API (POST /x-users, POST /x-keys; docs/api.md). bench/run.sh uses it when the API
// answers; without it the runs say that governance is not available.
//
// A direct child of root is an owner (a reseller) with its own pool of upstream keys, so every
// governed set-up starts with an owner that gets the mock as its upstream key:
//
//   node accounts.mjs owner --url URL --key ROOT_KEY --provider MOCK_URL --secret S
//       an owner with credit and one upstream key (level 1); prints the owner's key
//   node accounts.mjs chain --url URL --key PARENT_KEY --depth D [--rpm R]
//       D more levels below PARENT, each granted credit and an RPM limit (default: one that is
//       checked on every request but never reached); prints the deepest account's key
//   node accounts.mjs bulk --url URL --key PARENT_KEY --n N --out FILE [--rpm R] [--concurrency 32]
//       N children of PARENT, their keys one a line in FILE (S5: --n 1 --rpm R)
//   node accounts.mjs import-file --url URL --key PARENT_KEY --n N --out FILE [--rpm R]
//       the same N children as lines of a `tollgate admin import` file (S4: up to a million
//       accounts, imported while tollgate is stopped; the API creates about a thousand a second)
//   node accounts.mjs keys --in KEYS_OUT --out FILE
//       the SecretKey of every line of an import's --keys-out file, one a line in FILE
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';

const [cmd, ...rest] = process.argv.slice(2);
const opt = {};
for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, '')] = rest[i + 1];
const { url, key } = opt;
if (cmd === 'keys') {
  const lines = readFileSync(opt.in, 'utf8').split('\n').filter(Boolean);
  writeFileSync(opt.out, lines.map((l) => JSON.parse(l).SecretKey).join('\n') + '\n');
  process.exit(0);
}
if (!url || !key || !['owner', 'chain', 'bulk', 'import-file'].includes(cmd)) {
  console.error('usage: accounts.mjs owner|chain|bulk|import-file --url URL --key KEY [...], keys --in F --out F (see the top of this file)');
  process.exit(2);
}

const HIGH_RPM = 1e9; // a limit that is checked on every request but never reached
const stamp = Date.now().toString(36);

async function call(path, callerKey, body) {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${callerKey}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${path} ${JSON.stringify(body).slice(0, 120)}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

// a child of PARENT_KEY's account with CREDIT dollars; returns its key
async function createChild(parentKey, name, credit, rpm = HIGH_RPM) {
  const key = (await call('/x-users', parentKey, { Name: name, Email: `${name}@bench.invalid`, CreditGranted: credit, RPM: rpm }))?.User?.SecretKey;
  if (!key) throw new Error(`POST /x-users ${name}: no User.SecretKey in the answer`);
  return key;
}

if (cmd === 'owner') {
  const owner = await createChild(key, `bench-${stamp}-owner`, 1e7);
  await call('/x-keys', owner, { Name: `bench-${stamp}-mock`, Level: 1, Provider: opt.provider, SecretKey: opt.secret });
  console.log(owner);
} else if (cmd === 'chain') {
  let k = key, credit = 1e6;
  for (let level = 1; level <= Number(opt.depth || 2); level++, credit /= 10)
    k = await createChild(k, `bench-${stamp}-l${level}`, credit, Number(opt.rpm || HIGH_RPM));
  console.log(k);
} else if (cmd === 'import-file') {
  const res = await fetch(`${url}/dashboard/status`, { headers: { Authorization: `Bearer ${key}` } });
  const parent = (await res.json())?.id;
  if (!res.ok || !parent) throw new Error(`GET /dashboard/status: HTTP ${res.status}: no id`);
  const n = Number(opt.n), rpm = Number(opt.rpm || HIGH_RPM);
  const out = createWriteStream(opt.out);
  for (let i = 0; i < n; i++) {
    const line = JSON.stringify({ Name: `bench-${stamp}-${i}`, Email: `bench-${stamp}-${i}@bench.invalid`, Parent: parent, CreditGranted: 5, RPM: rpm });
    if (!out.write(line + '\n')) await new Promise((r) => out.once('drain', r));
  }
  await new Promise((r) => out.end(r));
} else {
  const n = Number(opt.n), conc = Number(opt.concurrency || 32), rpm = Number(opt.rpm || HIGH_RPM);
  const keys = new Array(n);
  let next = 0;
  const started = Date.now();
  await Promise.all(Array.from({ length: Math.min(conc, n) }, async () => {
    for (let i; (i = next++) < n;) keys[i] = await createChild(key, `bench-${stamp}-${i}`, 5, rpm);
  }));
  writeFileSync(opt.out, keys.join('\n') + '\n');
  console.error(`created ${n} accounts in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
