// bench/lib/report.mjs - turns one run of bench/run.sh into its report: the raw results plus
// derived figures as JSON, a Markdown summary (ratios and added latencies, targets of
// docs/benchmarks.md, the machine and pinning) and SVG plots made with gnuplot.
//
// Usage: node report.mjs RESULTS.jsonl OUT_DIR
// Writes OUT_DIR/<date>-<host>[-quick][-partial].{json,md}, OUT_DIR/<same>-*.svg, and (unless the run
// was partial: BENCH_PARTIAL=1) copies the summary to OUT_DIR/latest.md and the plots to latest-*.svg.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [resultsFile, outDir] = process.argv.slice(2);
const records = readFileSync(resultsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const runDir = process.env.BENCH_RUN_DIR || path.dirname(resultsFile);
const meta = Object.assign({}, ...records.filter((r) => r.scenario === 'meta').map((r) => r.data));
const quick = meta.quick === true;
const SYSTEMS = (meta.systems || 'direct tollgate nginx h2o portkey').split(/\s+/).filter(Boolean);
const GATEWAYS = SYSTEMS.filter((s) => s !== 'direct');
const governance = records.find((r) => r.scenario === 'governance')?.data?.label ?? 'tollgate not run';

// ---- helpers --------------------------------------------------------------------------------
// a command's output (stdout, else stderr: `nginx -v` writes there), or null
const sh = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return (r.stdout || '').trim() || (r.stderr || '').trim() || null;
};
const firstLine = (s) => (s ?? '').split('\n')[0] || null;
const of = (scenario, pred = () => true) => records.filter((r) => r.scenario === scenario && pred(r));
const num = (v, digits = 2) => (v === null || v === undefined || Number.isNaN(v) ? '–' : Number(v).toFixed(digits));
const int = (v) => (v === null || v === undefined || Number.isNaN(v) ? '–' : Math.round(v).toLocaleString('en-US'));
const ratio = (a, b) => (a && b ? a / b : null);
const signed = (v, digits = 3) => (v === null || v === undefined || Number.isNaN(v) ? '–' : (v >= 0 ? '+' : '') + v.toFixed(digits));
// a Markdown table; ALIGN has one letter per column (l or r), default: first left, the rest right
const table = (head, rows, align = 'l' + 'r'.repeat(head.length - 1)) => [`| ${head.join(' | ')} |`,
  `|${head.map((h, i) => (align[i] === 'l' ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

// ---- machine and versions -------------------------------------------------------------------
const cpuModel = (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1] || os.cpus()[0]?.model;
const host = os.hostname().split('.')[0];
const date = new Date().toISOString().slice(0, 10);
const partial = process.env.BENCH_PARTIAL === '1'; // a subset of systems or scenarios: never "latest"
const stamp = `${date}-${host}${quick ? '-quick' : ''}${partial ? '-partial' : ''}`;
const root = process.env.BENCH_ROOT || path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const portkeyPkg = (() => {
  try { return JSON.parse(readFileSync(path.join(root, 'bench/portkey/node_modules/@portkey-ai/gateway/package.json'), 'utf8')).version; } catch { return null; }
})();
// the source the measured build was made from (BENCH_TG_SRC, from its CMake cache), else this tree;
// BENCH_TG_REV overrides the label (e.g. a build made from `git archive` of a commit)
const src = process.env.BENCH_TG_SRC || root;
const git = (...args) => {
  const r = spawnSync('git', ['-C', src, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return r.status === 0 ? r.stdout.trim() : null;
};
const gitRev = process.env.BENCH_TG_REV || git('rev-parse', '--short', 'HEAD') || 'unknown';
const gitDirty = !process.env.BENCH_TG_REV && (git('status', '--porcelain', '--untracked-files=no') || '').length > 0;
const machine = {
  host, date: new Date().toISOString(), nproc: os.cpus().length, cpu_model: cpuModel, kernel: os.release(),
  memory_gib: +(os.totalmem() / 2 ** 30).toFixed(1), os: firstLine(sh('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"'])),
};
const versions = {
  tollgate: `${firstLine(sh(process.env.BENCH_TG_BIN || 'tollgate', ['--version']))} (git ${gitRev}${gitDirty ? ', uncommitted changes' : ''})`,
  nginx: firstLine(sh('nginx', ['-v']))?.replace(/^nginx version: /, ''), h2o: firstLine(sh('h2o', ['--version'])), portkey_gateway: portkeyPkg,
  node: process.version, wrk: firstLine(sh('wrk', ['-v'])), h2load: firstLine(sh('h2load', ['--version'])),
  libh2o: sh('pkg-config', ['--modversion', 'libh2o-evloop']), libcurl: sh('pkg-config', ['--modversion', 'libcurl']),
  cc: firstLine(sh('cc', ['--version'])), gnuplot: firstLine(sh('gnuplot', ['--version'])),
};
const pinning = {
  system_cpus: meta.sys_cpus, load_cpus: meta.load_cpus, tollgate_workers: meta.tollgate_workers,
  text: `mock upstreams and the system under test (all of its processes) pinned to CPU ${meta.sys_cpus}; ` +
        `wrk, h2load and loadgen pinned to CPU ${meta.load_cpus}; tollgate runs ${meta.tollgate_workers} worker(s) ` +
        '(plus its master and persister) on that core, nginx 1 worker process, h2o 1 thread, Portkey one node process.',
};

// ---- S1 -------------------------------------------------------------------------------------
const s1 = {}, s1Cpu = {};
for (const r of of('S1')) {
  ((s1[r.proto] ??= {})[r.c] ??= {})[r.system] = r.data;
  if (r.proto === 'h1' && r.cpu_ticks !== undefined && r.data?.requests) {
    // CPU time of the system's processes (direct: the mock's) and of the mock, per request
    const us = (ticks) => ((ticks / (r.clk_tck || 100)) * 1e6) / r.data.requests;
    (s1Cpu[r.c] ??= {})[r.system] = { us_per_req: us(r.cpu_ticks), mock_us_per_req: us(r.mock_cpu_ticks),
      worker_us_per_req: r.system === 'tollgate' ? us(r.worker_cpu_ticks) : null };
  }
}
const s1h1 = s1.h1 || {};
const concurrencies = Object.keys(s1h1).map(Number).sort((a, b) => a - b);
const rpsOf = (d) => d?.rps ?? null;
const errorsOf = (d) => (d?.errors ? d.errors.connect + d.errors.read + d.errors.write + d.errors.status + d.errors.timeout : 0);
const s1Derived = concurrencies.map((c) => {
  const row = s1h1[c], direct = row.direct;
  const out = { c, systems: {} };
  for (const s of SYSTEMS) {
    const d = row[s];
    if (!d) continue;
    out.systems[s] = {
      rps: d.rps, p50_ms: d.latency_ms.p50, p99_ms: d.latency_ms.p99, errors: errorsOf(d),
      added_p50_ms: direct ? d.latency_ms.p50 - direct.latency_ms.p50 : null,
      added_p99_ms: direct ? d.latency_ms.p99 - direct.latency_ms.p99 : null,
      vs_direct: ratio(d.rps, rpsOf(direct)), vs_nginx: ratio(d.rps, rpsOf(row.nginx)),
      vs_h2o: ratio(d.rps, rpsOf(row.h2o)), vs_portkey: ratio(d.rps, rpsOf(row.portkey)),
      cpu_us_per_req: s1Cpu[c]?.[s]?.us_per_req ?? null, mock_cpu_us_per_req: s1Cpu[c]?.[s]?.mock_us_per_req ?? null,
      worker_cpu_us_per_req: s1Cpu[c]?.[s]?.worker_us_per_req ?? null,
    };
    out.systems[s].rps_per_core = out.systems[s].cpu_us_per_req ? 1e6 / out.systems[s].cpu_us_per_req : null;
  }
  return out;
});
const peak = (s) => Math.max(0, ...s1Derived.map((r) => r.systems[s]?.rps ?? 0)) || null;

// ---- S2 -------------------------------------------------------------------------------------
const s2 = Object.fromEntries(of('S2').map((r) => [r.system, r.data]));
const s2Meta = of('S2')[0] || {};

// ---- S3 -------------------------------------------------------------------------------------
const s3 = of('S3').map((r) => {
  const d = r.data, open = d.sampled_open || 0, c = d.client || {};
  const cpuS = d.cpu_ticks / (d.clk_tck || 100);
  return {
    system: r.system, streams: r.streams, chunks: r.chunks, open, completed: c.completed, failed: c.failed, unfinished: c.unfinished,
    rss_per_stream_b: open ? ((d.peak_rss_kb - d.base_rss_kb) * 1024) / open : null,
    pss_per_stream_b: open ? ((d.peak_pss_kb - d.base_pss_kb) * 1024) / open : null,
    base_rss_kb: d.base_rss_kb, peak_rss_kb: d.peak_rss_kb, base_pss_kb: d.base_pss_kb, peak_pss_kb: d.peak_pss_kb,
    cpu_s: cpuS, events: c.events, cpu_us_per_event: c.events ? (cpuS * 1e6) / c.events : null,
    delay_ms: r.chunk_delay_ms, duration_p50_ms: c.duration_ms?.p50, duration_p99_ms: c.duration_ms?.p99, nominal_ms: (r.chunks + 2) * (r.chunk_delay_ms ?? 100),
  };
});

// ---- S6 -------------------------------------------------------------------------------------
const s6Under = of('S6', (r) => r.phase === 'under_s1').map((r) => ({
  c: r.c, ...r.data, status_errors: s1h1[r.c]?.tollgate?.errors?.status ?? null, rps: s1h1[r.c]?.tollgate?.rps ?? null,
}));
const s6Alone = of('S6', (r) => r.phase === 'persister_alone')[0]?.data || null;
const s6Disk = of('S6', (r) => r.phase === 'disk')[0]?.data || null;
const s6Spread = of('S6', (r) => r.phase === 'persister_spread' && r.data?.records_per_s !== undefined);
const bytesPerRecord = s6Disk && s6Disk.records ? s6Disk.db_bytes / s6Disk.records : null;

// ---- S7 -------------------------------------------------------------------------------------
const s7 = {};
for (const r of of('S7')) {
  const d = r.data || {};
  (s7[r.system] ??= []).push({ offered: r.offered_rps, rps: d.achieved_rps ?? 0, p50: d.latency_ms?.p50 ?? null, p99: d.latency_ms?.p99 ?? null,
    service_p99: d.service_ms?.p99 ?? null, errors: (d.failed ?? 0) + (d.unfinished ?? 0) });
}
const directP99At = (rate) => {
  const d = s7.direct || [];
  if (!d.length) return null;
  let best = d[0];
  for (const x of d) if (Math.abs(x.offered - rate) < Math.abs(best.offered - rate)) best = x;
  return best.p99;
};
for (const [sys, rungs] of Object.entries(s7)) for (const x of rungs) x.added_p99 = sys === 'direct' ? 0 : x.p99 - directP99At(x.offered);
const frontier = (sys, limit) => {
  let best = null;
  for (const x of (s7[sys] || []).sort((a, b) => a.offered - b.offered)) {
    const ok = x.rps >= 0.9 * x.offered && x.errors === 0 && x.p99 !== null && (sys === 'direct' ? x.p99 < limit : x.added_p99 < limit);
    if (!ok) break;
    best = x.rps;
  }
  return best;
};
const s7Frontier = Object.fromEntries(Object.keys(s7).map((s) => [s, { 1: frontier(s, 1), 5: frontier(s, 5), 10: frontier(s, 10) }]));

// ---- M --------------------------------------------------------------------------------------
const micro = of('M').map((r) => r.data);
const microOp = (bench, accounts, procs) => micro.find((m) => m.bench === bench && m.accounts === accounts && m.procs === procs)?.ns_per_op ?? null;

// ---- profile --------------------------------------------------------------------------------
const profile = of('PROFILE')[0]?.data || null;
// perf report --stdio lines: "  12.34%  libfoo.so  [.] symbol   -  -" (trailing IPC columns dropped)
const parsePerf = (text) => (text || '').split('\n').map((l) => l.replace(/(\s+-)+\s*$/, '').match(/^\s*([\d.]+)%\s+(\S+)\s*(?:\[[.k]\]\s+)?(.*)$/))
  .filter(Boolean).map((m) => ({ pct: Number(m[1]), dso: m[2], symbol: m[3].trim() }));
const perfTop = parsePerf(profile?.top);
const perfDso = parsePerf(profile?.by_dso).map((x) => ({ pct: x.pct, dso: x.dso }));

// ---- S4, S5 ------------------------------------------------------------------------------------
const s4Rows = of('S4').filter((r) => r.data?.rps !== undefined);
const s4Base = s4Rows.find((r) => r.accounts === 1)?.data?.rps;
const s4Max = s4Rows.filter((r) => r.accounts > 1).sort((a, b) => b.accounts - a.accounts)[0];
const s5 = of('S5').find((r) => r.data?.requests !== undefined);
const s5Admitted = s5 ? s5.data.requests - (s5.data.errors?.status ?? 0) : null;
// GCRA from a full bucket admits the limit L at once plus L per minute after (docs/quota.md)
const s5Expected = s5 ? s5.rpm_limit + (s5.rpm_limit * s5.data.duration_s) / 60 : null;

// ---- targets (benchmarks.md) ----------------------------------------------------------------
const verdict = (ok) => (ok === null ? 'n/a' : ok ? 'met' : 'missed');
const tgPeak = peak('tollgate');
const c1 = s1Derived.find((r) => r.c === 1)?.systems?.tollgate;
const s3tg = s3.find((x) => x.system === 'tollgate');
const s7Ranked = Object.entries(s7Frontier).filter(([s, f]) => s !== 'direct' && f[1]).sort((a, b) => b[1][1] - a[1][1]);
const s7best1 = s7Ranked[0]?.[0] ?? null;
const fullEvents = s6Under.reduce((a, x) => a + (x.full_events || 0), 0);
const lookupAt = (n) => microOp('key_lookup', n, 1);
const NPROCS = Math.max(1, ...micro.filter((m) => m.procs).map((m) => m.procs));
const targets = [
  [`S1 peak RPS vs bare nginx (governance ${governance.startsWith('on') ? 'on' : 'partial'})`, '≥ 0.85 ×', num(ratio(tgPeak, peak('nginx'))) + ' ×', verdict(peak('nginx') ? ratio(tgPeak, peak('nginx')) >= 0.85 : null)],
  ['S1 peak RPS vs Portkey', '≥ 10 ×', num(ratio(tgPeak, peak('portkey')), 1) + ' ×', verdict(peak('portkey') ? ratio(tgPeak, peak('portkey')) >= 10 : null)],
  ['added p99 at c = 1', '≤ 0.1 ms', c1 ? `${signed(c1.added_p99_ms)} ms (direct's p99: ${num(s1Derived.find((r) => r.c === 1)?.systems?.direct?.p99_ms, 3)} ms)` : '–', verdict(c1 ? c1.added_p99_ms <= 0.1 : null)],
  ['added p50 at c = 1 (robust against noise)', '(none)', c1 ? `${signed(c1.added_p50_ms)} ms` : '–', 'info'],
  ['S7 RPS at added p99 < 1 ms', 'highest of all gateways', s7Frontier.tollgate ? `${int(s7Frontier.tollgate[1])} (highest: ${s7best1 ? `${s7best1}, ${int(s7Frontier[s7best1][1])}` : 'no gateway stayed under 1 ms'})` : '–',
    verdict(s7Frontier.tollgate && s7best1 ? s7best1 === 'tollgate' : null)],
  ['S3 RSS per open stream', '≤ 16 KiB', s3tg ? `${num(s3tg.rss_per_stream_b / 1024, 1)} KiB at ${int(s3tg.open)} open` : '–', verdict(s3tg?.rss_per_stream_b != null ? s3tg.rss_per_stream_b <= 16384 : null)],
  ['S4 RPS loss 1 → 1,000,000 accounts', '≤ 10 %', s4Max && s4Base ? `${signed((1 - s4Max.data.rps / s4Base) * 100, 1)} % at ${int(s4Max.accounts)} accounts` : of('S4')[0]?.data?.pending ? 'pending' : '–',
    s4Max && s4Base ? verdict(1 - s4Max.data.rps / s4Base <= 0.1) : 'pending'],
  ['S5 limiter accuracy', 'within 1 %', s5 ? `${signed((s5Admitted / s5Expected - 1) * 100, 2)} %` : of('S5')[0]?.data?.pending ? 'pending' : '–',
    s5 ? verdict(Math.abs(s5Admitted / s5Expected - 1) <= 0.01) : 'pending'],
  ['S6 persister records/s', '≥ 200,000', s6Alone ? int(s6Alone.records_per_s) : '–', verdict(s6Alone ? s6Alone.records_per_s >= 200000 : null)],
  ['S6 ring never fills at S1 peak', '0 full events', s6Under.length ? `${fullEvents} full events` : '–', verdict(s6Under.length ? fullEvents === 0 : null)],
  ['M key lookup (at the default 100,000 accounts)', '≤ 100 ns', lookupAt(100000) !== null ? `${num(lookupAt(100000), 1)} ns (1 account: ${num(lookupAt(1), 1)}, 1M: ${num(lookupAt(1000000), 1)})` : '–',
    verdict(lookupAt(100000) !== null ? lookupAt(100000) <= 100 : null)],
  ['M reserve+settle (hot account, 1 process)', '≤ 100 ns', microOp('reserve_settle', 1, 1) !== null ? `${num(microOp('reserve_settle', 1, 1), 1)} ns (${NPROCS} processes on it: ${num(microOp('reserve_settle', 1, NPROCS), 1)}; random of 1M: ${num(microOp('reserve_settle', 1000000, 1), 1)})` : 'pending',
    microOp('reserve_settle', 1, 1) !== null ? verdict(microOp('reserve_settle', 1, 1) <= 100) : 'pending'],
  ['M GCRA check (clock read included)', '≤ 50 ns', microOp('gcra_check', 1, 1) !== null ? `${num(microOp('gcra_check', 1, 1), 1)} ns (${NPROCS} processes on one limit: ${num(microOp('gcra_check', 1, NPROCS), 1)})` : 'pending',
    microOp('gcra_check', 1, 1) !== null ? verdict(microOp('gcra_check', 1, 1) <= 50) : 'pending'],
];

// ---- plots ----------------------------------------------------------------------------------
const plotDir = path.join(runDir, 'plots');
mkdirSync(plotDir, { recursive: true });
mkdirSync(outDir, { recursive: true });
const plots = {};
const gp = (name, script, datas) => {
  for (const [file, text] of Object.entries(datas)) writeFileSync(path.join(plotDir, file), text);
  const svg = `${stamp}-${name}.svg`;
  writeFileSync(path.join(plotDir, `${name}.gp`), `set terminal svg size 760,440 dynamic font "sans,12" background "white"\n` +
    `set output "${path.join(outDir, svg)}"\nset grid\nset key outside right top\n${script}\n`);
  try {
    execFileSync('gnuplot', [path.join(plotDir, `${name}.gp`)], { cwd: plotDir, stdio: ['ignore', 'ignore', 'pipe'] });
    if (!partial) copyFileSync(path.join(outDir, svg), path.join(outDir, `latest-${name}.svg`));
    plots[name] = svg;
  } catch (e) { console.error(`report: gnuplot failed for ${name}: ${e.stderr}`); }
};
const quote = (s) => `"${s}"`;
if (concurrencies.length) {
  const datas = {}, rpsLines = [], p99Lines = [];
  for (const s of SYSTEMS) {
    const rows = s1Derived.filter((r) => r.systems[s]).map((r) => `${r.c} ${r.systems[s].rps} ${r.systems[s].added_p99_ms ?? 'NaN'}`);
    if (!rows.length) continue;
    datas[`s1-${s}.dat`] = rows.join('\n') + '\n';
    rpsLines.push(`${quote(`s1-${s}.dat`)} using 1:2 with linespoints lw 2 title ${quote(s)}`);
    if (s !== 'direct') p99Lines.push(`${quote(`s1-${s}.dat`)} using 1:3 with linespoints lw 2 title ${quote(s)}`);
  }
  gp('s1-rps', `set title "S1 non-streaming chat: requests per second (HTTP/1.1, ${host})"\nset logscale x 2\nset xlabel "concurrent connections"\nset ylabel "requests/s"\nset yrange [0:*]\nplot ${rpsLines.join(', ')}`, datas);
  gp('s1-added-p99', `set title "S1: added p99 latency vs direct (ms)"\nset logscale x 2\nset logscale y\nset xlabel "concurrent connections"\nset ylabel "added p99 (ms, log)"\nplot ${p99Lines.join(', ')}`, datas);
}
if (Object.keys(s7).length) {
  const datas = {}, lines = [];
  for (const s of SYSTEMS.filter((x) => s7[x])) {
    datas[`s7-${s}.dat`] = s7[s].map((x) => `${x.rps} ${s === 'direct' ? x.p99 : Math.max(x.added_p99, 0.001)}`).join('\n') + '\n';
    lines.push(`${quote(`s7-${s}.dat`)} using 1:2 with linespoints lw 2 title ${quote(s === 'direct' ? 'direct (p99 itself)' : s)}`);
  }
  gp('s7-frontier', `set title "S7 frontier: added p99 against achieved requests/s (paced open loop, HTTP/1.1)"\nset logscale y\nset xlabel "achieved requests/s"\nset ylabel "added p99 (ms, log)"\nset yrange [0.01:*]\n` +
    `set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2\nset arrow from graph 0, first 5 to graph 1, first 5 nohead dt 2\nset arrow from graph 0, first 10 to graph 1, first 10 nohead dt 2\n` +
    `plot ${lines.join(', ')}`, datas);
}
if (s3.length) {
  const rows = s3.map((x) => `${quote(x.system)} ${(x.rss_per_stream_b ?? 0) / 1024} ${(x.pss_per_stream_b ?? 0) / 1024}`);
  gp('s3-memory', `set title "S3: memory per open stream (KiB, all processes of the system)"\nset style data histogram\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\nset ylabel "KiB per open stream"\nset yrange [0:*]\nset xtics nomirror\n` +
    `plot "s3.dat" using 2:xtic(1) title "RSS", "" using 3 title "PSS"`, { 's3.dat': rows.join('\n') + '\n' });
}

// ---- Markdown ---------------------------------------------------------------------------------
const md = [];
md.push(`# tollgate benchmark results: ${stamp}`, '');
md.push(`${quick ? '**QUICK run** (short durations: indicative only). ' : ''}Generated by \`bench/run.sh\` (docs/benchmarks.md explains every figure). ` +
  '**Absolute numbers from this shared 2-core VM are noise; only ratios and differences within this one run count.**', '');
md.push(`* **Governance (tollgate figures):** ${governance}.`);
md.push(`* **Machine:** ${machine.host}, ${machine.nproc} × ${machine.cpu_model}, ${machine.memory_gib} GiB, Linux ${machine.kernel}, ${machine.os}.`);
md.push(`* **Pinning:** ${pinning.text}`);
const foreign = meta.machine_cpu_s !== undefined && meta.bench_cpu_s !== undefined ? Math.max(0, meta.machine_cpu_s - meta.bench_cpu_s) : null;
const foreignShare = foreign !== null && meta.seconds ? foreign / (meta.seconds * machine.nproc) : null;
md.push(`* **Other work on the machine:** ${foreign === null ? 'not measured' : `${int(foreign)} CPU-seconds outside this run (${num(foreignShare * 100, 0)} % of the ${machine.nproc} cores over ${meta.seconds} s)${meta.steal_s ? `, ${int(meta.steal_s)} s stolen by the hypervisor` : ''}`}; load average ${meta.loadavg_start?.split(' ').slice(0, 3).join(' ')} at the start, ${meta.loadavg_end?.split(' ').slice(0, 3).join(' ')} at the end.` +
  (foreignShare > 0.15 ? ' **This run was disturbed: its tails and ratios are less reliable than usual.**' : ''));
md.push(`* **Versions:** ${Object.entries(versions).filter(([, v]) => v).map(([k, v]) => `${k}: ${v}`).join('; ')}.`);
md.push(`* **Run time:** ${meta.seconds ?? '?'} s.`, '');

md.push('## Targets (docs/benchmarks.md)', '', table(['figure', 'target', 'measured', 'status'], targets, 'lrrl'), '');

if (concurrencies.length) {
  md.push('## S1: non-streaming chat (HTTP/1.1, wrk, closed loop)', '');
  md.push(`RPS per system and ratio to the others; added latency = the system's percentile minus direct's at the same concurrency (direct's own p99 shows the noise floor of the VM: differences below it mean nothing). CPU µs/req = CPU time of all the system's processes (for direct: the mock) per request. ${meta.s1_seconds} s per point.`, '');
  for (const r of s1Derived) {
    md.push(`**c = ${r.c}**`, '');
    md.push(table(['system', 'RPS', 'p50 ms', 'p99 ms', 'added p50', 'added p99', '× direct', '× nginx', '× h2o', '× Portkey', 'CPU µs/req', 'errors'],
      SYSTEMS.filter((s) => r.systems[s]).map((s) => {
        const x = r.systems[s];
        return [s, int(x.rps), num(x.p50_ms, 3), num(x.p99_ms, 3), s === 'direct' ? '' : signed(x.added_p50_ms), s === 'direct' ? '' : signed(x.added_p99_ms),
          num(x.vs_direct), num(x.vs_nginx), num(x.vs_h2o), num(x.vs_portkey), num(x.cpu_us_per_req, 1), int(x.errors)];
      })), '');
  }
  if (plots['s1-rps']) md.push(`![S1 RPS](${plots['s1-rps']})`, '');
  if (plots['s1-added-p99']) md.push(`![S1 added p99](${plots['s1-added-p99']})`, '');
  const h2 = s1.h2c ? Object.values(s1.h2c)[0] : null;
  if (h2) {
    const cfg = of('S1', (r) => r.proto === 'h2c')[0];
    md.push(`**HTTP/2 cleartext** (h2load, ${cfg.conns} connections × ${cfg.streams} streams; Portkey has no h2c listener)`, '');
    md.push(table(['system', 'RPS', 'p50 ms', 'p99 ms', '× direct', '× nginx', '× h2o', 'failed'], SYSTEMS.filter((s) => h2[s]).map((s) => [
      s, int(h2[s].rps), num(h2[s].latency_ms.p50, 3), num(h2[s].latency_ms.p99, 3), num(ratio(h2[s].rps, h2.direct?.rps)),
      num(ratio(h2[s].rps, h2.nginx?.rps)), num(ratio(h2[s].rps, h2.h2o?.rps)), int((h2[s].requests?.failed ?? 0) + (h2[s].logged?.non2xx ?? 0))])), '');
  }
}

if (Object.keys(s2).length) {
  md.push('## S2: streaming chat, time to first event and gaps between events', '');
  md.push(`One stream at a time, ${s2Meta.chunks} content chunks with ${s2Meta.chunk_delay_ms} ms between events at the mock; added = minus direct.`, '');
  const d = s2.direct;
  md.push(table(['system', 'streams ok', 'TTFB p50 ms', 'TTFB p99 ms', 'added TTFB p50', 'gap p50 ms', 'gap p99 ms', 'added gap p50', 'added gap p99'],
    SYSTEMS.filter((s) => s2[s]).map((s) => {
      const x = s2[s];
      return [s, `${x.completed}/${x.streams}`, num(x.ttfb_ms.p50, 3), num(x.ttfb_ms.p99, 3), s === 'direct' ? '' : signed(x.ttfb_ms.p50 - d?.ttfb_ms.p50),
        num(x.gap_ms.p50, 3), num(x.gap_ms.p99, 3), s === 'direct' ? '' : signed(x.gap_ms.p50 - d?.gap_ms.p50), s === 'direct' ? '' : signed(x.gap_ms.p99 - d?.gap_ms.p99)];
    })), '');
  if (s2.portkey) md.push('Portkey\'s gateway deliberately waits 25 ms before relaying the first event of an OpenAI stream (in its stream transformer), which is most of its added TTFB.', '');
}

if (s3.length) {
  md.push('## S3: many slow concurrent streams', '');
  md.push(`Each stream has its own HTTP/1.1 connection; one event every ${s3[0].delay_ms} ms` +
    (s3[0].delay_ms > 100 ? ' (benchmarks.md says 100 ms; at this stream count that is more events than one core, shared with the mock, can relay, so the streams would never all be open at once)' : '') +
    ". Memory is RSS (and PSS, which shares shared pages fairly) summed over all of the system's processes, sampled while the most streams were open, minus the idle baseline; CPU is the system's user+system time over the whole phase divided by events relayed.", '');
  md.push(table(['system', 'streams', 'open at sample', 'completed', 'failed', 'RSS/stream KiB', 'PSS/stream KiB', 'RSS per 10k streams MiB', 'CPU µs/event', 'duration p50 s (nominal)'],
    s3.map((x) => [x.system, int(x.streams), int(x.open), int(x.completed), int((x.failed ?? 0) + (x.unfinished ?? 0)), num(x.rss_per_stream_b / 1024, 1),
      num(x.pss_per_stream_b / 1024, 1), num((x.rss_per_stream_b * 10000) / 2 ** 20, 0), num(x.cpu_us_per_event, 1),
      `${num(x.duration_p50_ms / 1000, 1)} (${num(x.nominal_ms / 1000, 1)})`])), '');
  if (plots['s3-memory']) md.push(`![S3 memory per stream](${plots['s3-memory']})`, '');
}

md.push('## S6: persister', '');
if (s6Spread.length) md.push('**Persister alone, records spread over many accounts** (after each S4 point: records round-robin over every account, 1,000 nano-dollars each, so each batch rewrites the record, cards and ledger of every account it holds):', '',
  table(['accounts', 'records', 'records/s'], s6Spread.map((r) => [int(r.accounts), int(r.data.records), int(r.data.records_per_s)])), '');
if (s6Alone) md.push(`**Persister alone:** ${int(s6Alone.records)} usage records pushed straight into the ring of an idle tollgate were stored in RocksDB at **${int(s6Alone.records_per_s)} records/s** (${num(s6Alone.seconds, 2)} s, the injector waited ${int(s6Alone.full_waits)} times on a full ring).`, '');
if (s6Disk) md.push(`**Disk:** ${int(s6Disk.records)} usage records in data/db take ${num(s6Disk.db_bytes / 2 ** 20, 1)} MiB after the stop = ${int(bytesPerRecord)} bytes per record (WAL and uncompacted files included) ≈ ${num((bytesPerRecord * 1e6) / 2 ** 30, 2)} GiB per million records.`, '');
if (s6Under.length) {
  md.push('**Under S1 load** (ring sampled every 20 ms):', '');
  md.push(table(['c', 'tollgate RPS', 'requests', 'records pushed', 'records persisted', 'max backlog', 'ring slots', 'full events', 'non-2xx (503s)'],
    s6Under.map((x) => [x.c, int(x.rps), int(s1h1[x.c]?.tollgate?.requests), int(x.pushed), int(x.persisted), int(x.max_backlog), int(x.slots), int(x.full_events), int(x.status_errors)])), '');
  md.push('(The ring is watched from just before to just after each wrk run, so a few more records than requests can be counted at its edges.)', '');
}

if (Object.keys(s7).length) {
  md.push('## S7: throughput frontier', '');
  md.push(`Stepped offered rate, each step held ${meta.s7_step_ms} ms (after 300 ms unmeasured) by \`bench/tools/loadgen\` in its paced mode: an open loop like wrk2 over ${meta.s7_conns} HTTP/1.1 connections, request i due at i/rate, latency counted from when it was due (so a system that falls behind is charged for its queue). A system's frontier for a limit is the highest achieved rate up to which every step kept the added p99 (its p99 minus direct's at the same offered rate) under the limit, with ≥ 90 % of the offered rate completed in the window and no errors.`, '');
  md.push(table(['system', 'added p99 < 1 ms', '< 5 ms', '< 10 ms', 'highest achieved'], SYSTEMS.filter((s) => s7[s]).map((s) => [
    s === 'direct' ? 'direct (p99 itself)' : s, int(s7Frontier[s][1]), int(s7Frontier[s][5]), int(s7Frontier[s][10]), int(Math.max(...s7[s].map((x) => x.rps)))])), '');
  if (plots['s7-frontier']) md.push(`![S7 frontier](${plots['s7-frontier']})`, '');
}

md.push('## S4 and S5', '');
for (const sc of ['S4', 'S5']) {
  const rs = of(sc);
  if (rs[0]?.data?.pending) md.push(`* **${sc}: pending** — ${rs[0].data.pending}. The driver is in bench/lib/scenarios.sh and runs as soon as the API answers.`);
}
if (s4Rows.length) {
  md.push('**S4: many accounts** (wrk, c = 64, each request with the next key of N accounts of one owner)', '');
  const us = (r, ticks) => (ticks === undefined ? null : ((ticks / (r.clk_tck || 100)) * 1e6) / r.data.requests);
  md.push(table(['accounts', 'RPS', '× one account', 'p99 ms', 'CPU µs/req (all)', 'of which worker', 'arena MiB', 'import + restart s'], s4Rows.map((r) => [int(r.accounts), int(r.data.rps), num(ratio(r.data.rps, s4Base)),
    num(r.data.latency_ms?.p99, 3), num(us(r, r.cpu_ticks), 1), num(us(r, r.worker_cpu_ticks), 1), num((r.arena_bytes ?? 0) / 2 ** 20, 0), int(r.create_seconds)])), '');
}
for (const r of of('S4').filter((x) => x.data?.skipped || x.data?.failed)) md.push(`* S4 ${int(r.accounts)} accounts: ${r.data.skipped ? 'skipped' : 'failed'} — ${r.data.skipped || r.data.failed}.`);
if (s5) md.push('', `**S5: one hot account** with RPM ${int(s5.rpm_limit)}, hammered by wrk (c = 64) through ${s5.workers} workers for ${num(s5.data.duration_s, 1)} s: ` +
  `${int(s5Admitted)} admitted, ${int(s5.data.errors?.status)} refused; the limiter should admit ${int(s5Expected)} (the full bucket of ${int(s5.rpm_limit)} plus the refill): ${signed((s5Admitted / s5Expected - 1) * 100, 2)} %.`);
md.push('');

if (micro.length) {
  md.push('## M: arena micro-benchmarks', '');
  md.push('ns per operation, each operation dependent on the previous one (latency, not pipelined throughput); operands are random keys/slots spread over the whole arena, so large arenas miss the CPU caches and TLB as live traffic does. N processes run the same loop at once on the shared arena.', '');
  const ops = ['key_hash', 'key_lookup', 'key_auth', 'key_miss', 'seqlock_read', 'reserve_settle', 'gcra_check', 'ring_push'];
  const accs = [...new Set(micro.filter((m) => m.ns_per_op !== undefined && m.bench !== 'publish').map((m) => m.accounts))];
  const procs = [...new Set(micro.filter((m) => m.procs).map((m) => m.procs))].sort();
  const rows = [];
  for (const op of ops) for (const a of accs) for (const p of procs) {
    const v = microOp(op, a, p);
    if (v !== null) rows.push([op, int(a), p, num(v, 1)]);
  }
  md.push(table(['operation', 'accounts', 'processes', 'ns/op'], rows), '');
  if (micro.some((m) => m.bench === 'key_auth')) md.push('* key_hash: the SHA-256 of a 51-character key (tg_key_hash); key_lookup: digest → slot (tg_account_lookup, the digest given); key_auth: both, what authenticating a request costs.');
  if (!micro.some((m) => m.bench === 'reserve_settle')) md.push('* reserve+settle and the GCRA check: **pending** (not in this build\'s tgcore).');
  else md.push('* reserve_settle: tg_credit_reserve + tg_credit_settle on a random account (with 1 account, every process on the same one); gcra_check: clock_gettime + tg_gcra_take on one RPM limit shared by all processes.');
  const sizes = micro.filter((m) => m.bench === 'arena_bytes');
  if (sizes.length) md.push(`* Arena size (tg_arena_bytes, default 4096 upstream keys and 65,536 ring slots): ${sizes.map((m) => `${int(m.accounts)} accounts → ${num(m.bytes / 2 ** 20, 1)} MiB`).join('; ')}. Per account: a ${sizes[0].account_size} B slot, key index entries of ${sizes[0].index_entry_size} B (2 × max_accounts rounded up to a power of two) and whatever per-account regions the build has.`);
  md.push('');
}

if (profile) {
  md.push('## Profile: one tollgate worker under S1 c = 64', '');
  if (profile.skipped) md.push(`Skipped: ${profile.skipped}`, '');
  else {
    md.push(`\`perf record -e ${profile.event}\` on worker pid ${profile.worker_pid} for ${profile.seconds} s. By library:`, '');
    md.push(table(['share', 'library'], perfDso.slice(0, 12).map((x) => [`${num(x.pct, 1)} %`, x.dso]), 'rl'), '');
    md.push('Top symbols:', '');
    md.push(table(['share', 'library', 'symbol'], perfTop.slice(0, 25).map((x) => [`${num(x.pct, 1)} %`, x.dso, `\`${x.symbol}\``]), 'rll'), '');
  }
}

// capacity planning inputs (docs/capacity.md explains their use)
const cap = (() => {
  const best = (sys) => {
    const rows = s1Derived.map((r) => r.systems[sys]).filter((x) => x?.rps_per_core);
    return rows.length ? rows.reduce((a, b) => (b.rps > a.rps ? b : a)) : null;
  };
  const tg = best('tollgate');
  const sizeAt = (n) => micro.find((m) => m.bench === 'arena_bytes' && m.accounts === n);
  const size100k = sizeAt(100000), size1M = sizeAt(1000000), size1k = sizeAt(1000);
  // the marginal cost of accounts (between 100k and 1M), and what is there with none
  const perAccount = size100k && size1M ? (size1M.bytes - size100k.bytes) / 900000 : null;
  return {
    tollgate_rps_per_core: tg?.rps_per_core ?? null, tollgate_cpu_us_per_req: tg?.cpu_us_per_req ?? null,
    tollgate_worker_cpu_us_per_req: tg?.worker_cpu_us_per_req ?? null,
    nginx_rps_per_core: best('nginx')?.rps_per_core ?? null,
    stream_rss_mib_per_10k: s3tg?.rss_per_stream_b ? (s3tg.rss_per_stream_b * 10000) / 2 ** 20 : null,
    stream_cpu_us_per_event: s3tg?.cpu_us_per_event ?? null,
    arena_mib_per_100k_accounts: perAccount ? (perAccount * 1e5) / 2 ** 20 : null,
    arena_fixed_mib: perAccount && size1k ? (size1k.bytes - perAccount * 1000) / 2 ** 20 : null,
    arena_mib_at_100k_default: size100k ? size100k.bytes / 2 ** 20 : null,
    disk_gib_per_million_records: bytesPerRecord ? (bytesPerRecord * 1e6) / 2 ** 30 : null,
    persister_records_per_s: s6Alone?.records_per_s ?? null,
  };
})();
md.push('## Capacity planning inputs (docs/capacity.md)', '');
md.push(table(['figure', 'value', 'from'], [
  ['tollgate requests/s per core', int(cap.tollgate_rps_per_core), `S1 peak: 1 / CPU per request (${num(cap.tollgate_cpu_us_per_req, 1)} µs over all tollgate processes, kernel included; the worker alone ${num(cap.tollgate_worker_cpu_us_per_req, 1)} µs, the rest is mostly the persister)`],
  ['nginx requests/s per core (bare proxy)', int(cap.nginx_rps_per_core), 'S1 peak, same method'],
  ['tollgate memory per 10,000 open streams', cap.stream_rss_mib_per_10k ? `${num(cap.stream_rss_mib_per_10k, 0)} MiB` : '–', 'S3 RSS per open stream × 10,000'],
  ['tollgate CPU per streamed event', cap.stream_cpu_us_per_event ? `${num(cap.stream_cpu_us_per_event, 1)} µs` : '–', 'S3'],
  ['arena per 100,000 accounts', cap.arena_mib_per_100k_accounts ? `${num(cap.arena_mib_per_100k_accounts, 1)} MiB more (the arena file for 100,000 accounts: ${num(cap.arena_mib_at_100k_default, 1)} MiB; ${num(cap.arena_fixed_mib, 0)} MiB of it does not depend on the accounts)` : '–', 'tg_arena_bytes of this build between 100,000 and 1,000,000 accounts, default 4,096 keys and 65,536 ring slots; regions are sparse until used'],
  ['disk per 1,000,000 usage records', cap.disk_gib_per_million_records ? `${num(cap.disk_gib_per_million_records, 2)} GiB` : '–', 'S6: data/db size / records stored'],
  ['persister ceiling', cap.persister_records_per_s ? `${int(cap.persister_records_per_s)} records/s` : '–', 'S6 persister alone'],
], 'lrl'), '');

md.push('## Caveats', '');
md.push('* A shared 2-core VM: the mock and the system under test share one core, the load generator has the other. Neighbours and the hypervisor add noise of ±10 % or more between runs.');
md.push('* Direct is the mock alone on the same core, so "added latency" includes the proxy\'s CPU time competing with the mock\'s.');
md.push('* wrk is closed-loop (coordinated omission: its latency under overload is understated); S7 uses an open loop for that reason.');
md.push(governance.startsWith('on') ? `* Governance: ${governance}. Portkey, nginx and h2o do no accounting at all.`
  : `* Governance: ${governance}. Figures with sub-accounts, limits and credit checks active replace these once the build has the management API.`);
md.push('');

const mdText = md.join('\n');
writeFileSync(path.join(outDir, `${stamp}.md`), mdText);
if (!partial) writeFileSync(path.join(outDir, 'latest.md'), mdText);
writeFileSync(path.join(outDir, `${stamp}.json`), JSON.stringify({
  stamp, quick, governance, machine, pinning, versions, meta,
  derived: { capacity: cap, s1: s1Derived, s2, s3, s6: { under_s1: s6Under, persister_alone: s6Alone, persister_spread: s6Spread.map((r) => ({ accounts: r.accounts, ...r.data })), disk: s6Disk, bytes_per_record: bytesPerRecord }, s7: { rungs: s7, frontier: s7Frontier }, targets: targets.map(([figure, target, measured, status]) => ({ figure, target, measured, status })), profile: { by_dso: perfDso, top: perfTop } },
  records,
}, null, 1) + '\n');
console.error(`report: ${path.join(outDir, stamp)}.{md,json}${partial ? '' : ', latest.md'}, ${Object.keys(plots).length} plots`);
