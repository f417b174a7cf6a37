// Test harness: starts the real tollgate binary and the C mock upstream on free loopback ports,
// in a fresh temporary data directory, and tears them down. Every test talks to real processes.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';

export const TOLLGATE_BIN = process.env.TOLLGATE_BIN ?? new URL('../../../build/tollgate', import.meta.url).pathname;
export const MOCK_BIN = process.env.TOLLGATE_MOCK_BIN ?? new URL('../../../build/tollgate-mock', import.meta.url).pathname;
export const SANITIZED = process.env.TOLLGATE_SANITIZED === '1';
export const UPSTREAM_SECRET = 'sk-mock-upstream-key-0001';
const START_TIMEOUT_MS = SANITIZED ? 30000 : 10000;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A key in tollgate's sk-Xvs format (51 characters). */
export function makeKey() {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let s = 'sk-Xvs';
  const bytes = randomBytes(45);
  for (const b of bytes) s += alphabet[b % 62];
  return s;
}

// A port to listen on, taken below the kernel's ephemeral range (32768+): a port picked with
// listen(0) comes from that range, and once released it can be handed to an outgoing connection
// (the gateway's own upstream sockets) before the gateway binds it. Random picks keep concurrent
// runs apart; each candidate is checked by binding it.
const PORT_LO = 20000;
const PORT_HI = 32000;

function tryBind(port) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export async function freePort() {
  for (let i = 0; i < 200; i++) {
    const port = PORT_LO + Math.floor(Math.random() * (PORT_HI - PORT_LO));
    if (await tryBind(port)) return port;
  }
  throw new Error(`no free port between ${PORT_LO} and ${PORT_HI}`);
}

function collect(proc) {
  const out = { stdout: '', stderr: '' };
  proc.stdout.on('data', (d) => { out.stdout += d; });
  proc.stderr.on('data', (d) => { out.stderr += d; });
  return out;
}

function exited(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve({ code: proc.exitCode, signal: proc.signalCode });
    else proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

export async function waitFor(fn, { timeout = START_TIMEOUT_MS, interval = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      if (await fn()) return;
    } catch (e) { last = e; }
    await sleep(interval);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/** Starts the mock upstream; args are its command-line options. */
export async function startMock(args = []) {
  const proc = spawn(MOCK_BIN, ['--port', '0', '--quiet', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = collect(proc);
  const tls = args.includes('--tls-cert');
  await waitFor(() => /listening on [\d.]+:(\d+)/.test(out.stdout) && (!tls || /listening with tls on/.test(out.stdout)),
    { what: 'the mock to listen' });
  const port = Number(out.stdout.match(/listening on [\d.]+:(\d+)/)[1]);
  const url = `http://127.0.0.1:${port}`;
  // with --tls-cert/--tls-key the mock listens for TLS too: tlsPort (the counters are shared)
  const tlsPort = tls ? Number(out.stdout.match(/listening with tls on [\d.]+:(\d+)/)[1]) : undefined;
  return {
    port, url, proc, tlsPort,
    async stats() { return (await fetch(`${url}/_mock/stats`)).json(); },
    async reset() { await fetch(`${url}/_mock/reset`, { method: 'POST' }); },
    async fault(key, fault, count) {
      await fetch(`${url}/_mock/faults`, { method: 'POST', body: JSON.stringify({ key, fault, count }) });
    },
    async stop() { proc.kill('SIGTERM'); await exited(proc); },
  };
}

/** YAML for one upstream key entry. */
export function keyEntry({ name, secret, level = 1, provider, protocol = 'openai' }) {
  return `  - name: ${name}\n    level: ${level}\n    provider: ${provider}\n    secret: ${secret}\n    protocol: ${protocol}\n`;
}

export function gatewayConfig({ port, dataDir, mockUrl, workers = 1, extra = '', extraListen = '', keys = null, upstream = '', maxAccounts = 1024 }) {
  const keyList = keys ?? [{ name: 'mock', secret: UPSTREAM_SECRET }];
  return `# written by the e2e harness
listen:
  - host: 127.0.0.1
    port: ${port}
${extraListen}workers: ${workers}
data_dir: ${dataDir}
arena:
  max_accounts: ${maxAccounts}
  max_upstream_keys: 64
  ring_slots: 4096
server:
  drain_timeout: 10s
${upstream}log:
  access: ${join(dataDir, '..', 'access.log')}
  error: "-"
  level: info
keys:
${keyList.map((k) => keyEntry({ provider: mockUrl, ...k })).join('')}${extra}`;
}

/** Starts tollgate against MOCK in a fresh directory and waits for /healthz. */
export async function startGateway({ mock, workers = 1, extra = '', extraListen = '', keys = null, upstream = '', env = {}, maxAccounts } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-e2e-'));
  const port = await freePort();
  const dataDir = join(dir, 'data');
  const configPath = join(dir, 'tollgate.yaml');
  writeFileSync(configPath, gatewayConfig({ port, dataDir, mockUrl: mock.url, workers, extra, extraListen, keys, upstream, maxAccounts }));
  const rootKey = makeKey();
  const gw = {
    dir, port, dataDir, configPath, rootKey,
    base: `http://127.0.0.1:${port}`,
    proc: null, out: null,
    async start() {
      this.proc = spawn(TOLLGATE_BIN, ['-c', configPath], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, TOLLGATE_ROOT_KEY: rootKey, ...env },
      });
      this.out = collect(this.proc);
      await waitFor(async () => {
        if (this.proc.exitCode !== null) throw new Error(`tollgate exited: ${this.out.stderr}`);
        const r = await fetch(`${this.base}/healthz`);
        return r.status === 200;
      }, { what: 'tollgate /healthz' });
    },
    /** Sends SIG to the master and waits for the whole tree to exit. */
    async stop(sig = 'SIGTERM') {
      if (!this.proc || this.proc.exitCode !== null) return { code: this.proc?.exitCode };
      this.proc.kill(sig);
      return exited(this.proc);
    },
    exited() { return exited(this.proc); },
    children() {
      try {
        return execFileSync('pgrep', ['-P', String(this.proc.pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
      } catch { return []; }
    },
    /** Pids of the worker processes (the persister is the child that holds the RocksDB lock). */
    workerPids() {
      return this.children().filter((pid) => {
        try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').length >= 0 && !isPersister(pid); } catch { return false; }
      });
    },
    persisterPid() { return this.children().find(isPersister); },
    /** Usage records in the store, read with `tollgate admin usage` (run after stop, or live). */
    usage() {
      const out = execFileSync(TOLLGATE_BIN, ['admin', 'usage', '-c', configPath], { encoding: 'utf8' });
      return out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    },
    accessLog() {
      const p = join(dir, 'access.log');
      return existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
    },
    /** Stops the tree (gracefully, so sanitizers report at exit), removes the directory, and
     * fails when a sanitizer or an unexpected error line reached the log. */
    async cleanup({ allowErrors = [] } = {}) {
      if (this.proc && this.proc.exitCode === null) {
        const t = setTimeout(() => this.proc.kill('SIGKILL'), 20000);
        await this.stop('SIGTERM');
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
      assertCleanLog(this.out?.stderr ?? '', allowErrors);
    },
  };
  await gw.start();
  return gw;
}

const SANITIZER = /AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:/;

/** Throws when LOG holds sanitizer output, or an error-level line not matched by ALLOW. */
export function assertCleanLog(log, allow = []) {
  if (SANITIZER.test(log)) throw new Error(`sanitizer report in the log:\n${log}`);
  const errors = log.split('\n').filter((l) => / error (master|worker|persister)\[/.test(l))
    .filter((l) => !allow.some((re) => re.test(l)));
  if (errors.length) throw new Error(`unexpected error lines in the log:\n${errors.join('\n')}`);
}

function isPersister(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'tg-persister';
  } catch { return false; }
}

/** Runs the tollgate binary to completion with ARGS; returns {code, stdout, stderr}. */
export function runTollgate(args, env = {}) {
  return new Promise((resolve) => {
    const proc = spawn(TOLLGATE_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const out = collect(proc);
    proc.on('exit', (code) => resolve({ code, ...out }));
  });
}
