// Small DOM helpers shared by the pages: tables, messages, tabs, sign-in, SVG bar charts.
import { esc, num } from './fmt.js';
import { getKey, setKey, clearKey, get } from './api.js';

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** Shows an error (an ApiError's message) or a notice in the page's message bar. */
export function flash(msg, kind = 'error') {
  const bar = $('#flash');
  bar.textContent = msg instanceof Error ? msg.message : String(msg);
  bar.className = `flash ${kind}`;
  bar.hidden = false;
  bar.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  clearTimeout(flash.t);
  if (kind !== 'error') flash.t = setTimeout(() => { bar.hidden = true; }, 6000);
}
export const clearFlash = () => { $('#flash').hidden = true; };

/** Runs FN; shows its error instead of throwing. Returns FN's result or undefined. */
export async function guard(fn) {
  try { return await fn(); } catch (e) { flash(e); return undefined; }
}

/** An HTML table from ROWS and COLS [{label, get(row) → html, cls}]. */
export function table(rows, cols, empty = 'Nothing yet.') {
  if (!rows.length) return `<p class="muted">${esc(empty)}</p>`;
  const head = cols.map((c) => `<th class="${c.cls ?? ''}">${esc(c.label)}</th>`).join('');
  const body = rows.map((r) => `<tr>${cols.map((c) => `<td class="${c.cls ?? ''}" data-label="${esc(c.label)}">${c.get(r)}</td>`).join('')}</tr>`).join('');
  return `<div class="table-wrap"><table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

/** An SVG bar chart of ITEMS [{label, value}], values formatted by FMT. */
export function barChart(items, fmt = num, title = '') {
  if (!items.length) return '<p class="muted">No data for this range.</p>';
  const w = 640, h = 220, padL = 8, padB = 40, padT = 18;
  const max = Math.max(...items.map((i) => i.value), 0) || 1;
  const slot = (w - padL * 2) / items.length;
  const bw = Math.min(slot, 64);
  const off = padL + (w - padL * 2 - bw * items.length) / 2;
  const bars = items.map((it, i) => {
    const bh = Math.round(((h - padB - padT) * it.value) / max);
    const x = off + i * bw + bw * 0.1;
    const y = h - padB - bh;
    const showLabel = items.length <= 16 || i % Math.ceil(items.length / 16) === 0;
    return `<g><title>${esc(it.label)}: ${esc(fmt(it.value))}</title>
      <rect x="${x.toFixed(1)}" y="${y}" width="${(bw * 0.8).toFixed(1)}" height="${Math.max(bh, 0)}" class="bar"/>
      ${items.length <= 12 ? `<text x="${(x + bw * 0.4).toFixed(1)}" y="${y - 4}" class="val">${esc(fmt(it.value))}</text>` : ''}
      ${showLabel ? `<text x="${(x + bw * 0.4).toFixed(1)}" y="${h - padB + 14}" class="lbl">${esc(String(it.label).slice(0, 14))}</text>` : ''}</g>`;
  }).join('');
  return `<svg class="chart" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}">
    <line x1="${padL}" y1="${h - padB}" x2="${w - padL}" y2="${h - padB}" class="axis"/>${bars}</svg>`;
}

/** Tabs: buttons [data-tab] show the section with the same id; calls ON(id) when shown. */
export function tabs(on) {
  const show = (id) => {
    $$('nav.tabs button').forEach((b) => b.classList.toggle('active', b.dataset.tab === id));
    $$('main > section.tab').forEach((s) => { s.hidden = s.id !== id; });
    clearFlash();
    on(id);
  };
  if (!tabs.bound) {
    tabs.bound = true;
    $$('nav.tabs button').forEach((b) => b.addEventListener('click', () => { history.replaceState(null, '', `#${b.dataset.tab}`); tabs.show(b.dataset.tab); }));
  }
  tabs.show = show;
  const first = $$('nav.tabs button')[0].dataset.tab;
  const want = location.hash.slice(1);
  show($$('nav.tabs button').some((b) => b.dataset.tab === want) ? want : first);
}

/** Sign-in: verifies the stored key (or asks for one) with /dashboard/status, then calls START(status). */
export function signIn(start) {
  const form = $('#signin');
  const app = $('#app');
  const out = async () => {
    clearKey();
    app.hidden = true; form.hidden = false; $('#who').textContent = '';
    $('#signout').hidden = true;
  };
  $('#signout').addEventListener('click', out);
  const tryKey = async () => {
    try {
      const st = await get('/dashboard/status');
      form.hidden = true; app.hidden = false; $('#signout').hidden = false;
      $('#who').textContent = `${st.name} (#${st.id})`;
      clearFlash();
      start(st);
    } catch (e) {
      if (e.status === 401) clearKey();
      form.hidden = false; app.hidden = true;
      flash(e);
    }
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const k = $('#key', form).value.trim();
    if (!/^sk-\S{10,}$/.test(k)) { flash('A key looks like sk-Xvs… (51 characters).'); return; }
    setKey(k);
    $('#key', form).value = '';
    tryKey();
  });
  if (getKey()) tryKey(); else { form.hidden = false; app.hidden = true; }
}

/** Reads a form's named inputs into an object: numbers for type=number, booleans for checkboxes. */
export function formData(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled) continue;
    if (el.type === 'checkbox') out[el.name] = el.checked;
    else if (el.value.trim() === '') continue;
    else if (el.type === 'number') out[el.name] = Number(el.value);
    else out[el.name] = el.value.trim();
  }
  return out;
}

/** Copies TEXT to the clipboard; falls back to selecting it. */
export async function copy(text, input) {
  try { await navigator.clipboard.writeText(text); flash('Copied.', 'ok'); } catch { input?.select(); flash('Press Ctrl+C to copy.', 'ok'); }
}
