// bench/lib/h2load-summary.mjs - turns one h2load run into a JSON line for bench/run.sh.
// h2load prints counts and a mean but no percentiles; its --log-file has one line per request
// (start time µs, status, duration µs), from which the percentiles are computed here.
// Usage: node h2load-summary.mjs STDOUT_FILE LOG_FILE
import { readFileSync } from 'node:fs';

const [outFile, logFile] = process.argv.slice(2);
const out = readFileSync(outFile, 'utf8');
const num = (re) => { const m = out.match(re); return m ? Number(m[1]) : null; };

const durations = [];
let ok = 0, non2xx = 0;
for (const line of (() => { try { return readFileSync(logFile, 'utf8').split('\n'); } catch { return []; } })()) {
  const [, status, us] = line.split('\t');
  if (us === undefined) continue;
  if (status >= 200 && status < 300) { ok++; durations.push(Number(us) / 1000); } else non2xx++;
}
durations.sort((a, b) => a - b);
const pct = (q) => durations.length ? durations[Math.min(durations.length - 1, Math.floor(q * durations.length))] : null;
const mean = durations.length ? durations.reduce((a, b) => a + b, 0) / durations.length : null;

console.log(JSON.stringify({
  rps: num(/finished in [\d.]+\w*, ([\d.]+) req\/s/),
  duration_s: num(/finished in ([\d.]+)s/),
  requests: { total: num(/requests: (\d+) total/), done: num(/(\d+) done/), succeeded: num(/(\d+) succeeded/),
              failed: num(/(\d+) failed/), errored: num(/(\d+) errored/), timeout: num(/(\d+) timeout/) },
  logged: { ok, non2xx },
  latency_ms: { mean, p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), p999: pct(0.999), max: durations.at(-1) ?? null },
}));
