// Admin page: root and owners; upstream keys, key health, owner config, audit log, news (docs/ui.md).
import { get, post, put, del, call, qs } from './shared/api.js';
import { money, num, date, esc } from './shared/fmt.js';
import { $, $$, flash, guard, table, tabs, signIn, formData } from './shared/ui.js';

let me = null;
signIn((st) => {
  me = st;
  if (!st.admin) flash('This account is not an owner: the Admin API will refuse its requests (root and its direct sub-accounts only).');
  tabs((id) => guard({ keys: loadKeys, health: loadHealth, config: loadConfig, audit: () => loadAudit(1), news: loadNews }[id]));
});

const badge = (on, yes = 'enabled', no = 'disabled') => `<span class="badge ${on ? 'on' : 'off'}">${on ? yes : no}</span>`;

/* ---- upstream keys ---- */
const PRESETS = {
  openai: { Provider: 'https://api.openai.com', protocol: 'openai' },
  anthropic: { Provider: 'https://api.anthropic.com', protocol: 'anthropic' },
  gemini: { Provider: 'https://generativelanguage.googleapis.com', protocol: 'gemini' },
  deepseek: { Provider: 'https://api.deepseek.com', protocol: 'openai' },
  router: { Provider: '', protocol: 'router' },
};
const kf = $('#key-form');
function applyPreset() {
  const p = PRESETS[kf.preset.value];
  kf.Provider.value = p.Provider;
  kf.Provider.placeholder = p.Provider || 'https://router.example.com';
  kf.protocol.value = p.protocol;
  kf.Name.placeholder = `${kf.preset.value} (optional)`;
}
kf.preset.addEventListener('change', applyPreset);
applyPreset();
kf.addEventListener('submit', (ev) => {
  ev.preventDefault();
  guard(async () => {
    const f = formData(kf);
    const body = { Level: f.Level, Provider: f.Provider, SecretKey: f.SecretKey, Status: f.Status, config: { protocol: f.protocol } };
    if (f.provider_type) body.config.provider_type = f.provider_type;
    if (f.Name) body.Name = f.Name;
    const r = await post('/x-keys', body);
    kf.reset();
    applyPreset();
    flash(`Added key #${r.key.ID} (${r.key.Name}) at level ${r.key.Level}.`, 'ok');
    await loadKeys();
  });
});

let keys = [];
async function loadKeys() {
  const { data } = await call('GET', '/x-keys?size=1000');
  keys = Array.isArray(data) ? data : [];
  $('#key-table').innerHTML = table(keys, [
    { label: 'ID', cls: 'n', get: (k) => num(k.ID) },
    { label: 'Name', get: (k) => esc(k.Name) },
    { label: 'Level', cls: 'n', get: (k) => num(k.Level) },
    { label: 'Provider', get: (k) => `${esc(k.Provider)}<div class="muted">${esc(k.config?.protocol ?? '')}${k.config?.provider_type ? ` · ${esc(k.config.provider_type)}` : ''}</div>` },
    { label: 'Secret', get: () => '<span class="muted">sealed</span>' },
    { label: 'Status', get: (k) => badge(k.Status) },
    { label: 'Updated', get: (k) => date(k.UpdatedAt) },
    { label: '', get: (k) => `<div class="actions" data-id="${k.ID}"><button type="button" data-act="edit">Edit</button>
        <button type="button" data-act="toggle">${k.Status ? 'Disable' : 'Enable'}</button><button type="button" class="danger" data-act="delete">Delete</button></div>` },
  ], 'No upstream keys.');
  $$('#key-table .actions button').forEach((b) => b.addEventListener('click', () => {
    const k = keys.find((x) => String(x.ID) === b.parentElement.dataset.id);
    guard(() => ({ edit: editKey, toggle: toggleKey, delete: deleteKey })[b.dataset.act](k));
  }));
}
async function toggleKey(k) {
  await put(`/x-keys/${k.ID}`, { Status: !k.Status });
  flash(`Key #${k.ID} ${k.Status ? 'disabled' : 'enabled'}.`, 'ok');
  await loadKeys();
}
async function deleteKey(k) {
  if (!window.confirm(`Delete upstream key #${k.ID} (${k.Name})? Requests stop using it at once.`)) return;
  await del(`/x-keys/${k.ID}`);
  flash(`Key #${k.ID} deleted.`, 'ok');
  await loadKeys();
}
let editingKey = null;
function editKey(k) {
  editingKey = k;
  const f = $('#keyedit-form');
  $('#keyedit-name').textContent = `#${k.ID}`;
  f.Name.value = k.Name ?? ''; f.Level.value = k.Level; f.Status.checked = !!k.Status; f.SecretKey.value = '';
  $('#keyedit-dialog').showModal();
}
$('#keyedit-cancel').addEventListener('click', () => $('#keyedit-dialog').close());
$('#keyedit-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  guard(async () => {
    const f = formData(ev.target);
    const body = {};
    if (f.Name && f.Name !== editingKey.Name) body.Name = f.Name;
    if (f.Level !== undefined && f.Level !== editingKey.Level) body.Level = f.Level;
    if (f.Status !== !!editingKey.Status) body.Status = f.Status;
    if (f.SecretKey) body.SecretKey = f.SecretKey;
    if (Object.keys(body).length) await put(`/x-keys/${editingKey.ID}`, body);
    $('#keyedit-dialog').close();
    flash(`Key #${editingKey.ID} saved.`, 'ok');
    await loadKeys();
  });
});

/* ---- sleeping and disabled keys (/x-conf) ---- */
const keyRow = (k) => (typeof k === 'object' && k !== null ? k : { ID: k });
async function loadHealth() {
  const c = await get('/x-conf');
  const cols = [
    { label: 'Key', get: (k) => `${esc(k.Name ?? k.name ?? '')} <span class="muted">#${esc(k.ID ?? k.id ?? '')}</span>` },
    { label: 'Level', cls: 'n', get: (k) => num(k.Level ?? k.level) },
    { label: 'Until / why', get: (k) => esc([k.until ? date(k.until) : '', k.reason ?? k.Reason ?? ''].filter(Boolean).join(' · ') || JSON.stringify(k)) },
  ];
  $('#sleeping').innerHTML = table((c.SleepingKeys ?? []).map(keyRow), cols, 'No key is sleeping.');
  $('#disabled').innerHTML = table((c.DisabledKeys ?? []).map(keyRow), cols, 'No key is disabled.');
  const rows = Object.entries(c).filter(([k]) => !['SleepingKeys', 'DisabledKeys'].includes(k));
  $('#conf-view').innerHTML = table(rows, [
    { label: 'Setting', get: ([k]) => esc(k) },
    { label: 'Value', get: ([k, v]) => (/Balance$/.test(k) ? money(v) : `<code>${esc(typeof v === 'object' ? JSON.stringify(v) : v === '' ? '(none)' : v)}</code>`) },
  ]);
}

/* ---- owner config (/x-config) ---- */
const CONFIG = [
  ['MODEL_MAPPER', 'src=dst pairs: gpt-3.5*=gpt-4o-mini, o*=o3'],
  ['LEVEL_MAPPER', 'model pattern=key level: gpt-4*=2, claude*=3'],
  ['SWITCH_OVER', 'level=level to fail over to: 1=2, 2=3'],
  ['RESOURCES', 'allowed paths: /v1/chat/completions, /v1/messages'],
  ['MODEL_LIMITS', 'JSON, merged: {"gpt-4o":{"rpm":10,"tpm":20000}}; "*" clears'],
  ['PRICES', 'JSON, merged, USD per million tokens: {"gpt-4o":{"input":2.5,"output":10,"cached":1.25}}'],
  ['MODEL_FAILOVER', 'model=fallback model pairs'],
  ['ALLOW_UNPRICED', 'true or false'],
  ['USER_MIN_BALANCE', 'dollars: least CreditGranted for a new account'],
  ['USER_API_BALANCE', 'dollars: balance above which a non-owner may use the Manage API'],
];
const show = (v) => (v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v, null, 1) : String(v));
async function loadConfig() {
  const c = await get('/x-config');
  const cfg = c.configs ?? {};
  $('#config-fields').innerHTML = CONFIG.map(([k, hint]) => `<form class="cfg" data-key="${k}"><label><b>${k}</b> <span>${esc(hint)}</span>
      <textarea name="v" rows="${/LIMITS|PRICES/.test(k) ? 4 : 2}" placeholder="(default)">${esc(show(cfg[k]))}</textarea></label>
      <div class="row"><button class="primary" type="submit">Save</button><button type="button" data-reset>Reset to default</button></div></form>`).join('');
  $$('#config-fields form.cfg').forEach((f) => {
    f.addEventListener('submit', (ev) => {
      ev.preventDefault();
      guard(async () => {
        const r = await put('/x-config', { [f.dataset.key]: f.v.value.trim() });
        flash(r.message || `${f.dataset.key} saved.`, 'ok');
        await loadConfig();
      });
    });
    $('[data-reset]', f).addEventListener('click', () => guard(async () => {
      const r = await del('/x-config', { keys: [f.dataset.key] });
      flash(r.message || `${f.dataset.key} reset.`, 'ok');
      await loadConfig();
    }));
  });
}

/* ---- audit log ---- */
let auditPage = 1;
$('#audit-form').addEventListener('submit', (ev) => { ev.preventDefault(); guard(() => loadAudit(1)); });
$('#audit-prev').addEventListener('click', () => guard(() => loadAudit(Math.max(1, auditPage - 1))));
$('#audit-next').addEventListener('click', () => guard(() => loadAudit(auditPage + 1)));
async function loadAudit(page) {
  const r = await get(`/dashboard/logs${qs({ ...formData($('#audit-form')), page, size: 25 })}`);
  auditPage = r.page ?? page;
  $('#audit-table').innerHTML = table(r.logs ?? [], [
    { label: 'Time', cls: 'nw', get: (x) => date(x.created_at) },
    { label: 'Action', get: (x) => `<code>${esc(x.action)}</code>` },
    { label: 'By', get: (x) => `${esc(x.operator_name)} <span class="muted">#${esc(x.operator_id)}</span>` },
    { label: 'Target', get: (x) => (x.target_id ? `${esc(x.target_name ?? '')} <span class="muted">#${esc(x.target_id)}</span>` : '—') },
    { label: 'Details', get: (x) => `<code class="muted">${esc(typeof x.details === 'object' ? JSON.stringify(x.details) : x.details ?? '')}</code>` },
    { label: 'IP', get: (x) => esc(x.ip) },
  ], 'No audit entries.');
  $('#audit-page').textContent = `page ${num(auditPage)} · ${num(r.total)} entries`;
  $('#audit-prev').disabled = auditPage <= 1;
  $('#audit-next').disabled = !r.has_more;
}

/* ---- news ---- */
$('#news-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  guard(async () => {
    const f = formData(ev.target);
    const body = { title: f.title, content: f.content };
    if (f.days) body.days = f.days;
    await post(`/x-news${f.target ? `/${encodeURIComponent(f.target)}` : ''}`, body);
    ev.target.reset();
    flash('News posted.', 'ok');
    await loadNews();
  });
});
async function loadNews() {
  const n = await get('/dashboard/news');
  const items = [...(n.system_news ?? []).map((x) => ({ ...x, kind: 'system' })), ...(n.user_news ?? []).map((x) => ({ ...x, kind: 'group' }))];
  $('#news-list').innerHTML = items.length ? items.map((x) => `<article class="card"><h3>${esc(x.title)} <span class="badge">${x.kind}</span></h3>
    <p>${esc(x.content)}</p><p class="muted">${date(x.created_at)} · until ${date(x.expires_at)}</p></article>`).join('') : '<p class="muted">No news.</p>';
}
