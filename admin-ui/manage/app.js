// Manage page: any account, about itself and its descendants (docs/ui.md).
import { get, post, put, del, call, qs, setKey } from './shared/api.js';
import { money, num, pct, limit, date, day, ymd, esc } from './shared/fmt.js';
import { $, $$, flash, guard, table, barChart, tabs, signIn, formData, copy } from './shared/ui.js';

let me = null; // /dashboard/status
let info = null; // /dashboard/info
const loaded = new Set();

signIn((st) => {
  me = st;
  loaded.clear();
  tabs(show);
});

function show(id) {
  const f = { overview, usage: () => loadUsage(), requests: () => loadRequests(1), accounts: loadTree, bill: () => loadBill(), news, security }[id];
  if (f) guard(f);
}

const stat = (label, value) => `<div class="stat"><b>${value}</b><span>${esc(label)}</span></div>`;
const badge = (on, yes = 'active', no = 'disabled') => `<span class="badge ${on ? 'on' : 'off'}">${on ? yes : no}</span>`;

/* ---- overview ---- */
async function overview() {
  info = await get('/dashboard/info');
  const u = info.usage ?? {};
  $('#ov-stats').innerHTML = [
    stat('Balance', money(info.balance)),
    stat('Status', badge(info.status)),
    stat('Used today', `${money(u.today?.cost)} · ${num(u.today?.requests)} req`),
    stat('Used this month', `${money(u.month?.cost)} · ${num(u.month?.requests)} req`),
    stat('Account', `${esc(info.name)} <span class="muted">#${num(info.id)}</span>`),
    stat('DNA', `<span class="tree-dna">${esc(info.dna)}</span>`),
    stat('Level · Rates', `${num(info.level)} · ${num(info.rates)}`),
    stat('Sub-accounts', num(info.child)),
  ].join('');
  $('#ov-cards').innerHTML = table(info.credit_balance ?? [], [
    { label: 'Amount', cls: 'n', get: (c) => money(c.amount) },
    { label: 'Left', cls: 'n', get: (c) => money(c.balance) },
    { label: 'Expires', get: (c) => { const left = new Date(c.expires_at) - Date.now(); return `${day(c.expires_at)}${left < 30 * 864e5 ? ' <span class="badge warn">soon</span>' : ''}`; } },
    { label: 'Reference', get: (c) => esc(c.reference ?? '') },
  ], 'No credit cards.');
  const l = info.limits ?? {};
  const rows = [['Hard limit', limit(l.hard_limit, money)], ['Soft limit', limit(l.soft_limit, money)], ['Auto quota', limit(l.auto_quota, money)],
    ['Requests / minute', limit(l.rpm)], ['Requests / hour', limit(l.rph)], ['Requests / day', limit(l.rpd)],
    ['Tokens / minute', limit(l.tpm)], ['Tokens / hour', limit(l.tph)], ['Tokens / day', limit(l.tpd)]];
  $('#ov-limits').innerHTML = table(rows, [{ label: 'Limit', get: (r) => r[0] }, { label: 'Value', cls: 'n', get: (r) => r[1] }]);
  const models = await get('/dashboard/models').catch(() => null);
  $('#ov-models').textContent = models?.data?.length ? models.data.map((m) => m.id).join(', ') : 'Any model the gateway routes.';
}

/* ---- usage (/dashboard/bill) ---- */
function rangeQuery(f) {
  const r = f.range.value;
  if (r === 'today') return { date: ymd() };
  if (r === 'month') { const d = new Date(); return { start: ymd(new Date(d.getFullYear(), d.getMonth(), 1)), end: ymd(d) }; }
  if (!f.start.value || !f.end.value) throw new Error('Choose both dates of the range.');
  return { start: f.start.value, end: f.end.value };
}
$('#usage-form').addEventListener('submit', (ev) => { ev.preventDefault(); guard(loadUsage); });
$('#usage-form').range.addEventListener('change', (ev) => { if (ev.target.value !== 'custom') guard(loadUsage); });

async function loadUsage() {
  const b = await get(`/dashboard/bill${qs(rangeQuery($('#usage-form')))}`);
  $('#usage-stats').innerHTML = [stat('Cost', money(b.total_credit_used)), stat('Requests', num(b.total_requests)),
    stat('Prompt tokens', num(b.total_prompt)), stat('Completion tokens', num(b.total_completion))].join('');
  const days = b.daily_costs ?? [];
  $('#usage-chart-day').innerHTML = barChart(days.map((d) => ({ label: d.date?.slice(5) ?? '', value: Number(d.total_credit_used) || 0 })), money, 'cost per day');
  const models = Object.entries(b.usage_summary ?? {});
  $('#usage-chart-model').innerHTML = barChart(models.map(([m, s]) => ({ label: m, value: Number(s.model_stats?.CreditUsed) || 0 })), money, 'cost per model');
  $('#usage-models').innerHTML = table(models, [
    { label: 'Model', get: ([m]) => esc(m) },
    { label: 'Requests', cls: 'n', get: ([, s]) => num(s.model_stats?.Requests) },
    { label: 'Prompt', cls: 'n', get: ([, s]) => num(s.model_stats?.Prompt) },
    { label: 'Completion', cls: 'n', get: ([, s]) => num(s.model_stats?.Completion) },
    { label: 'Cost', cls: 'n', get: ([, s]) => money(s.model_stats?.CreditUsed) },
    { label: 'Share of cost', cls: 'n', get: ([, s]) => pct(s.usage_analysis?.cost_percentage) },
  ], 'No usage in this range.');
  $('#usage-days').innerHTML = table(days.filter((d) => d.total_requests), [
    { label: 'Day', get: (d) => esc(d.date) },
    { label: 'Requests', cls: 'n', get: (d) => num(d.total_requests) },
    { label: 'Prompt', cls: 'n', get: (d) => num(d.total_prompt) },
    { label: 'Completion', cls: 'n', get: (d) => num(d.total_completion) },
    { label: 'Cost', cls: 'n', get: (d) => money(d.total_credit_used) },
  ], 'No usage in this range.');
}

/* ---- request log ---- */
let reqPage = 1;
$('#req-form').addEventListener('submit', (ev) => { ev.preventDefault(); guard(() => loadRequests(1)); });
$('#req-prev').addEventListener('click', () => guard(() => loadRequests(Math.max(1, reqPage - 1))));
$('#req-next').addEventListener('click', () => guard(() => loadRequests(reqPage + 1)));
async function loadRequests(page) {
  const f = formData($('#req-form'));
  const r = await get(`/dashboard/requests${qs({ ...f, page, size: 25 })}`);
  reqPage = r.page ?? page;
  $('#req-table').innerHTML = table(r.data ?? [], [
    { label: 'Time', cls: 'nw', get: (x) => date(x.created_at ?? x.timestamp) },
    { label: 'Account', get: (x) => esc(x.account_name ?? x.account_id) },
    { label: 'Model', get: (x) => esc(x.model) },
    { label: 'Status', cls: 'n', get: (x) => `<span class="badge ${x.status < 400 ? 'on' : 'off'}">${num(x.status)}</span>` },
    { label: 'Tokens in/out', cls: 'n', get: (x) => `${num(x.prompt_tokens)} / ${num(x.completion_tokens)}` },
    { label: 'Cost', cls: 'n', get: (x) => money(x.cost) },
    { label: 'Latency', cls: 'n', get: (x) => `${num(x.latency_ms)} ms` },
    { label: 'Path', get: (x) => `<span class="muted">${esc(x.path)}${x.stream ? ' · stream' : ''}</span>` },
  ], 'No requests match.');
  $('#req-page').textContent = `page ${num(reqPage)} · ${num(r.total)} requests`;
  $('#req-prev').disabled = reqPage <= 1;
  $('#req-next').disabled = !r.has_more;
}

/* ---- sub-accounts ---- */
let tree = [];
$('#create-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  guard(async () => {
    const body = formData(ev.target);
    const r = await post('/x-users', body);
    ev.target.reset();
    showSecret($('#new-key'), `Key of ${r.User.Name}`, r.User.SecretKey);
    flash(`Created ${r.User.Name} (#${r.User.ID}).`, 'ok');
    await loadTree();
  });
});

function showSecret(el, label, key) {
  el.innerHTML = `<div class="secret"><b>${esc(label)} — shown once, store it now:</b>
    <input readonly value="${esc(key)}" data-testid="secret"><button type="button" class="primary">Copy</button></div>`;
  $('button', el).addEventListener('click', () => copy(key, $('input', el)));
}

$('#tree-form').addEventListener('submit', (ev) => { ev.preventDefault(); renderTree(); });
$('#tree-form').q.addEventListener('input', () => renderTree());

async function loadTree() {
  const { data } = await call('GET', '/x-dna?size=1000');
  tree = Array.isArray(data) ? data : [];
  renderTree();
}

function renderTree() {
  const q = $('#tree-form').q.value.trim().toLowerCase();
  const rows = tree.filter((a) => !q || String(a.ID) === q || [a.Name, a.Alias, a.Email, a.DNA].some((v) => String(v ?? '').toLowerCase().includes(q)));
  const base = (me?.dna ?? '.').split('.').filter(Boolean).length;
  rows.sort((a, b) => String(a.DNA).localeCompare(String(b.DNA), 'en', { numeric: true }));
  $('#tree').innerHTML = table(rows, [
    { label: 'Account', get: (a) => { const depth = Math.max(0, String(a.DNA).split('.').filter(Boolean).length - base - 1); return `<span style="padding-left:${depth * 1.1}rem">${depth ? '└ ' : ''}<b>${esc(a.Name)}</b></span> <span class="muted">#${num(a.ID)}</span><div class="tree-dna">${esc(a.DNA)}</div>`; } },
    { label: 'Email', get: (a) => esc(a.Email) },
    { label: 'Status', get: (a) => badge(a.Status) },
    { label: 'Balance', cls: 'n', get: (a) => money(a.Balance) },
    { label: 'Used', cls: 'n', get: (a) => money(a.CreditUsed) },
    { label: 'RPM', cls: 'n', get: (a) => limit(a.RPM) },
    { label: '', get: (a) => `<div class="actions" data-id="${a.ID}">
        <button type="button" data-act="edit">Edit</button><button type="button" data-act="fund">Funds</button>
        <button type="button" data-act="toggle">${a.Status ? 'Disable' : 'Enable'}</button><button type="button" class="danger" data-act="delete">Delete</button></div>` },
  ], q ? 'No account matches.' : 'No sub-accounts yet.');
  $$('#tree .actions button').forEach((b) => b.addEventListener('click', () => {
    const acct = tree.find((a) => String(a.ID) === b.parentElement.dataset.id);
    ({ edit: openEdit, fund: openFund, toggle, delete: openDelete })[b.dataset.act](acct);
  }));
}

async function toggle(a) {
  await guard(async () => {
    await put(`/x-users/${a.ID}`, { Status: !a.Status });
    flash(`${a.Name} ${a.Status ? 'disabled' : 'enabled'}.`, 'ok');
    await loadTree();
  });
}

const EDIT = [
  ['Alias', 'text'], ['Email', 'email'], ['BillingEmail', 'email'], ['Rates', 'number'],
  ['HardLimit', 'number', '$'], ['SoftLimit', 'number', '$'], ['AutoQuota', 'number', '$'], ['ChildLimit', 'number'],
  ['RPM', 'number'], ['RPH', 'number'], ['RPD', 'number'], ['TPM', 'number'], ['TPH', 'number'], ['TPD', 'number'],
  ['AllowIPs', 'acl'], ['AllowModels', 'acl'], ['Resources', 'acl'], ['ModelMapper', 'acl'], ['ModelLimits', 'json'],
];
const EDIT_ADMIN = [['Level', 'number'], ['Gear', 'number'], ['Role', 'number'], ['Tier', 'number'], ['AllowLevels', 'acl'], ['LevelMapper', 'acl']];
let editing = null;
function openEdit(a) {
  editing = a;
  $('#edit-name').textContent = a.Name;
  const fields = me?.admin ? [...EDIT, ...EDIT_ADMIN] : EDIT;
  $('#edit-fields').innerHTML = fields.map(([k, t, unit]) => {
    const cur = a[k];
    if (t === 'acl') return `<label class="wide">${k} <input name="${k}" data-kind="acl" placeholder="now: ${esc(Array.isArray(cur) ? cur.join(',') : cur ?? 'unrestricted')}"></label>`;
    if (t === 'json') return `<label class="wide">${k} (JSON, merged) <textarea name="${k}" data-kind="json" placeholder='{"gpt-4o":{"rpm":10}}'>${cur && Object.keys(cur).length ? esc(JSON.stringify(cur)) : ''}</textarea></label>`;
    return `<label>${k}${unit ? ` (${unit})` : ''} <input name="${k}" type="${t}" ${t === 'number' ? 'step="any"' : ''} value="${esc(cur ?? '')}" data-orig="${esc(cur ?? '')}"></label>`;
  }).join('');
  $('#edit-dialog').showModal();
}
$('#edit-cancel').addEventListener('click', () => $('#edit-dialog').close());
$('#edit-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  guard(async () => {
    const body = {};
    for (const el of $$('#edit-fields input, #edit-fields textarea')) {
      const v = el.value.trim();
      if (el.dataset.kind === 'acl') { if (v) body[el.name] = v; continue; }
      if (el.dataset.kind === 'json') {
        const orig = editing[el.name] && Object.keys(editing[el.name]).length ? JSON.stringify(editing[el.name]) : '';
        if (v !== orig && v) { try { body[el.name] = JSON.parse(v); } catch { throw new Error(`${el.name}: not valid JSON`); } }
        continue;
      }
      if (v === el.dataset.orig) continue;
      if (el.type === 'number') { if (v === '') continue; body[el.name] = Number(v); } else body[el.name] = v;
    }
    if (!Object.keys(body).length) { $('#edit-dialog').close(); return; }
    await put(`/x-users/${editing.ID}`, body);
    $('#edit-dialog').close();
    flash(`Saved ${Object.keys(body).join(', ')} of ${editing.Name}.`, 'ok');
    await loadTree();
  });
});

let funding = null;
function openFund(a) { funding = a; $('#fund-name').textContent = a.Name; $('#fund-form').reset(); $('#fund-dialog').showModal(); }
$('#fund-cancel').addEventListener('click', () => $('#fund-dialog').close());
$('#fund-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  guard(async () => {
    const f = formData(ev.target);
    if (!f.amount) throw new Error('CreditGranted: enter a non-zero amount');
    const body = { CreditGranted: f.amount };
    if (f.Days) body.Days = f.Days;
    const r = await put(`/x-users/${funding.ID}`, body);
    $('#fund-dialog').close();
    flash(`${f.amount > 0 ? 'Topped up' : 'Clawed back'} ${money(Math.abs(f.amount))} ${f.amount > 0 ? 'to' : 'from'} ${funding.Name}; its balance is ${money(r.User?.Updates?.Balance)}.`, 'ok');
    await loadTree();
  });
});

let deleting = null;
function openDelete(a) { deleting = a; $('#delete-name').textContent = a.Name; $('#delete-form').reset(); $('#delete-dialog').showModal(); }
$('#delete-cancel').addEventListener('click', () => $('#delete-dialog').close());
$('#delete-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  guard(async () => {
    if (ev.target.confirm.value.trim() !== deleting.Name) throw new Error('Type the account name exactly to delete it.');
    const r = await del(`/x-users/${deleting.ID}`);
    $('#delete-dialog').close();
    flash(`Deleted ${deleting.Name}; ${money(r.Refunded)} returned to ${r.Parent?.Name ?? 'its parent'}.`, 'ok');
    await loadTree();
  });
});

/* ---- sub-account bill (/x-bill) ---- */
$('#bill-form').addEventListener('submit', (ev) => { ev.preventDefault(); guard(loadBill); });
async function loadBill() {
  const b = await get(`/x-bill${qs(formData($('#bill-form')))}`);
  $('#bill-stats').innerHTML = [stat('Period', `${esc(day(b.start))} – ${esc(day(b.end))}`), stat('Requests', num(b.total_usage?.requests)), stat('Cost', money(b.total_usage?.cost))].join('');
  $('#bill-users').innerHTML = table(b.usage_users ?? [], [
    { label: 'Account', get: (u) => `${esc(u.name)} <span class="muted">#${num(u.id)}</span>` },
    { label: 'Email', get: (u) => esc(u.email) },
    { label: 'Requests', cls: 'n', get: (u) => num(u.total_requests) },
    { label: 'Cost', cls: 'n', get: (u) => money(u.total_cost) },
    { label: 'Share', cls: 'n', get: (u) => pct(u.usage_analysis?.cost_percentage) },
  ], 'No usage by sub-accounts in this period.');
  $('#bill-days').innerHTML = table((b.data ?? []).filter((d) => d.n_requests), [
    { label: 'Day', get: (d) => esc(d.date) },
    { label: 'Requests', cls: 'n', get: (d) => num(d.n_requests) },
    { label: 'Prompt', cls: 'n', get: (d) => num(d.n_context_tokens_total) },
    { label: 'Completion', cls: 'n', get: (d) => num(d.n_generated_tokens_total) },
    { label: 'Cost', cls: 'n', get: (d) => money(Object.values(d.usage_details ?? {}).reduce((s, m) => s + Number(m.cost || 0), 0)) },
  ], 'No usage in this period.');
}

/* ---- news ---- */
async function news() {
  const n = await get('/dashboard/news');
  const items = [...(n.system_news ?? []).map((x) => ({ ...x, kind: 'system' })), ...(n.user_news ?? []).map((x) => ({ ...x, kind: 'yours' }))];
  $('#news-list').innerHTML = items.length ? items.map((x) => `<article class="card"><h3>${esc(x.title)} <span class="badge">${x.kind}</span></h3>
    <p>${esc(x.content)}</p><p class="muted">${date(x.created_at)} · until ${date(x.expires_at)}</p></article>`).join('') : '<p class="muted">No news.</p>';
}

/* ---- key rotation ---- */
async function phrase() {
  const c = await get('/dashboard/conf').catch(() => null);
  const tz = c?.configs?.TIMEZONE;
  let today = ymd();
  try { if (tz) today = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date()); } catch { /* unknown zone: the browser's day */ }
  return `${today}-ROTATE-SELF`;
}
async function security() { $('#rotate-phrase').textContent = await phrase(); }
$('#rotate-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  guard(async () => {
    const r = await post('/x-self', { confirm: ev.target.confirm.value.trim() });
    ev.target.reset();
    setKey(r.rotate.key);
    showSecret($('#rotated'), 'Your new key', r.rotate.key);
    flash('Key rotated: the old key no longer works. This browser now uses the new one.', 'ok');
  });
});
