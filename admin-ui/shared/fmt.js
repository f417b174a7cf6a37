// Formatting of dollars, numbers and dates, and HTML escaping.
const usd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 2 });
const usdSmall = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 6 });
const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const dec = new Intl.NumberFormat('en-US', { maximumFractionDigits: 4 });

/** Dollars: two decimals, more for sub-cent amounts. */
export function money(v) {
  const n = Number(v ?? 0);
  if (!Number.isFinite(n)) return '—';
  return n !== 0 && Math.abs(n) < 0.01 ? usdSmall.format(n) : usd.format(n);
}
export const num = (v) => (v === undefined || v === null || v === '' ? '—' : Number.isInteger(Number(v)) ? int.format(Number(v)) : dec.format(Number(v)));
export const pct = (v) => `${dec.format(Number(v ?? 0))} %`;
/** A limit: 0 means none. */
export const limit = (v, f = num) => (!v ? 'none' : f(v));

/** Date and time in the browser's zone from ISO text, seconds or milliseconds. */
export function date(v) {
  if (v === undefined || v === null || v === '') return '—';
  let d;
  if (typeof v === 'number') d = new Date(v < 1e12 ? v * 1000 : v);
  else d = new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return d.toLocaleString('en-GB', { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit' });
}
export function day(v) {
  if (!v) return '—';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? String(v) : d.toLocaleDateString('en-GB', { year: 'numeric', month: 'short', day: '2-digit' });
}
/** YYYY-MM-DD of a Date in the browser's zone. */
export function ymd(d = new Date()) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}
const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ESC[c]);
