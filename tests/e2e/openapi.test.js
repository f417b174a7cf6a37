// docs/openapi.json against the implementation: every route of store/routes.c is in the document,
// and every documented operation, called with root's key on objects this test creates, answers
// with one of its documented status codes (and never 404/405: the route exists).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startMock, startGateway } from './lib/harness.js';

const root = new URL('../../', import.meta.url).pathname;
const doc = JSON.parse(readFileSync(`${root}docs/openapi.json`, 'utf8'));
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

let mock, gw;
before(async () => {
  mock = await startMock();
  gw = await startGateway({ mock, extra: 'store:\n  allow_private_providers: true\n' });
});
after(async () => {
  await gw?.cleanup();
  await mock?.stop();
});

async function call(key, method, path, body, contentType = 'application/json') {
  const headers = { authorization: key };
  if (path.startsWith('/v1/threads')) headers['openai-beta'] = 'assistants=v2';
  if (body !== undefined) headers['content-type'] = contentType;
  const r = await fetch(`${gw.base}${path}`, { method: method.toUpperCase(), headers, body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)) });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: r.status, body: json };
}

test('the document is OpenAPI 3.1 and every operation has a summary and responses', () => {
  assert.equal(doc.openapi, '3.1.0');
  assert.ok(doc.components.securitySchemes.bearer);
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const m of METHODS) {
      if (!item[m]) continue;
      assert.ok(item[m].summary, `${m} ${path}: summary`);
      assert.ok(Object.keys(item[m].responses).length, `${m} ${path}: responses`);
      for (const p of path.match(/\{\w+\}/g) ?? []) {
        assert.ok((item[m].parameters ?? []).some((x) => x.in === 'path' && `{${x.name}}` === p), `${m} ${path}: parameter ${p}`);
      }
    }
  }
});

test('every route of store/routes.c is documented', () => {
  const src = readFileSync(`${root}store/routes.c`, 'utf8');
  const routes = [...src.matchAll(/\{"(GET|POST|PUT|DELETE|PATCH)",\s*"([^"]+)",\s*([^,]+),/g)];
  assert.ok(routes.length > 40, `parsed ${routes.length} routes`);
  for (const [, method, path, flags] of routes) {
    const m = method.toLowerCase();
    const subtree = /SUBTREE|\bAS\b/.test(flags);
    // a subtree route is documented either on its own path or on path/{param}
    const ok = doc.paths[path]?.[m] || (subtree && Object.entries(doc.paths).some(([p, item]) => item[m] && new RegExp(`^${path}/\\{\\w+\\}$`).test(p)));
    assert.ok(ok, `${method} ${path} is in routes.c but not in docs/openapi.json`);
  }
});

test('every documented operation answers with a documented status', async () => {
  const rootKey = gw.rootKey;
  const mk = async (name, extra = {}) => {
    const r = await call(rootKey, 'post', '/x-users', { Name: name, Email: `${name}@example.com`, CreditGranted: 50, ...extra });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return { id: r.body.User.ID, key: r.body.User.SecretKey, name };
  };
  const sub = await mk('oa-sub');
  const victim = await mk('oa-victim');
  const rotatee = await mk('oa-rotatee');
  const selfer = await mk('oa-selfer');
  const k = await call(rootKey, 'post', '/x-keys', { Level: 1, Provider: mock.url, SecretKey: 'sk-mock-upstream-key-0001', Name: 'oa-key', config: { protocol: 'openai' } });
  assert.equal(k.status, 200, JSON.stringify(k.body));
  const victimKey = await call(rootKey, 'post', '/x-keys', { Level: 9, Provider: mock.url, SecretKey: 'sk-mock-upstream-key-0002', Name: 'oa-victim-key' });
  assert.equal(victimKey.status, 200, JSON.stringify(victimKey.body));
  const news = await call(rootKey, 'post', `/x-news/${sub.name}`, { title: 'oa', content: 'news for the sub-account' });
  assert.equal(news.status, 200, JSON.stringify(news.body));
  const today = new Date().toISOString().slice(0, 10); // the harness runs tollgate in UTC

  const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
  const fd = (path) => {
    const f = new FormData();
    if (path === '/v1/files') f.append('purpose', 'assistants');
    else f.append('model', 'gpt-4o-mini');
    f.append('file', new Blob(['abc']), 'a.wav');
    return f;
  };
  // objects the provider keeps (a file, a thread with a run), for the paths that name them
  const up = await fetch(`${gw.base}/v1/files`, { method: 'POST', headers: { authorization: rootKey }, body: fd('/v1/files') });
  assert.equal(up.status, 200);
  const fileId = (await up.json()).id;
  const thread = await call(rootKey, 'post', '/v1/threads', {});
  assert.equal(thread.status, 200, JSON.stringify(thread.body));
  const run = await call(rootKey, 'post', `/v1/threads/${thread.body.id}/runs`, { assistant_id: 'asst_oa' });
  assert.equal(run.status, 200, JSON.stringify(run.body));
  const bodies = {
    'post /x-users': { Name: 'oa-created', Email: 'oa-created@example.com', CreditGranted: 5 },
    'put /x-users/{ident}': { Alias: 'OA' },
    'post /x-users/{ident}': { Alias: 'OA2' },
    'post /x-keys': { Level: 2, Provider: mock.url, SecretKey: 'sk-mock-upstream-key-0003' },
    'put /x-keys/{id}': { Name: 'oa-key-renamed' },
    'post /x-keys/{id}': { Name: 'oa-key-renamed2' },
    'put /x-config': { USER_API_BALANCE: 20 },
    'post /x-config': { USER_API_BALANCE: 20 },
    'delete /x-config': { keys: ['USER_API_BALANCE'] },
    'post /x-conf': { ModelMapper: 'gpt-4*=gpt-4o-mini' },
    'post /x-news': { title: 't', content: 'c', days: 1 },
    'post /x-news/{target}': { title: 't', content: 'c' },
    'post /x-self': { confirm: `${today}-ROTATE-SELF` },
    'post /x-root': { name: rotatee.name, confirm: `${today}-ROTATE-ROOT` },
    'post /v1/messages': { model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] },
    'post /messages': { model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] },
    'post /v1/responses': { model: 'gpt-4o-mini', input: 'hi' },
    'post /responses': { model: 'gpt-4o-mini', input: 'hi' },
    'post /v1/embeddings': { model: 'gpt-4o-mini', input: 'hi' },
    'post /embeddings': { model: 'gpt-4o-mini', input: 'hi' },
    'post /v1/moderations': { model: 'gpt-4o-mini', input: 'hi' },
    'post /v1/images/generations': { model: 'gpt-4o-mini', prompt: 'a cat' },
    'post /v1/audio/speech': { model: 'gpt-4o-mini', input: 'hi', voice: 'alloy' },
    'post /v1/threads/{thread_id}/messages': { role: 'user', content: 'hi' },
    'post /v1/threads/{thread_id}/runs': { assistant_id: 'asst_oa' },
  };
  const queries = { '/dashboard/billing/usage': `?start_date=${today}&end_date=${today}`, '/x-info': `?user=${sub.id}` };
  const params = {
    '/x-users/{ident}': { get: sub.id, put: sub.id, post: sub.name, delete: victim.name },
    '/x-dna/{ident}': sub.name,
    '/x-keys/{id}': { get: k.body.key.ID, put: k.body.key.ID, post: k.body.key.ID, delete: victimKey.body.key.ID },
    '/x-news/{target}': sub.name,
    '/v1/files/{file_id}': fileId,
    '/v1/files/{file_id}/content': fileId,
    '/v1/threads/{thread_id}': thread.body.id,
    '/v1/threads/{thread_id}/messages': thread.body.id,
    '/v1/threads/{thread_id}/runs': thread.body.id,
    '/v1/threads/{thread_id}/runs/{run_id}': [thread.body.id, run.body.id],
  };
  // destructive operations last
  const LAST = ['delete /v1/files/{file_id}', 'delete /v1/threads/{thread_id}', 'delete /x-users/{ident}', 'delete /x-keys/{id}',
    'delete /x-news', 'delete /x-news/{target}', 'post /x-root', 'post /x-self'];
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths)) for (const m of METHODS) if (item[m]) ops.push([m, path, item[m]]);
  ops.sort((a, b) => LAST.indexOf(`${a[0]} ${a[1]}`) - LAST.indexOf(`${b[0]} ${b[1]}`));
  assert.ok(ops.length >= 60, `${ops.length} operations`);

  // the 404/405 check below means something: an unknown path is 404
  assert.equal((await call(rootKey, 'get', '/x-no-such-route')).status, 404);
  assert.equal((await call(rootKey, 'get', '/dashboard/no-such-route')).status, 404);
  const failures = [], seen = [];
  for (const [m, path, op] of ops) {
    const id = `${m} ${path}`;
    let nth = 0;
    let url = path.replace(/\{(\w+)\}/g, () => {
      const v = params[path];
      return encodeURIComponent(Array.isArray(v) ? v[nth++] : typeof v === 'object' ? v[m] : v);
    });
    url += queries[path] ?? '';
    const key = id === 'post /x-self' ? selfer.key : rootKey;
    let r;
    const multipart = op.requestBody?.content?.['multipart/form-data'];
    if (multipart) {
      const res = await fetch(`${gw.base}${url}`, { method: 'POST', headers: { authorization: key }, body: fd(path) });
      const text = await res.text();
      r = { status: res.status, body: text };
    } else {
      let body = bodies[id];
      if (body === undefined && op.requestBody) body = path.includes('chat/completions') ? chat : {};
      r = await call(key, m, url, body);
    }
    const documented = Object.keys(op.responses);
    seen.push(`${id} → ${r.status} ${JSON.stringify(r.body).slice(0, 160)}`);
    // a proxied endpoint relays the upstream's 4xx as it is ("4XX"): the mock's own 404 for a
    // path it does not serve still proves that tollgate routed the call
    const relayed = r.status >= 400 && r.status < 500 && /tollgate-mock/.test(JSON.stringify(r.body));
    const listed = documented.includes(String(r.status)) || (relayed && documented.includes('4XX'));
    if (!listed || ((r.status === 404 || r.status === 405) && !relayed)) {
      failures.push(`${id} (${url}) → ${r.status} not in [${documented}]: ${JSON.stringify(r.body).slice(0, 200)}`);
    }
  }
  if (process.env.OPENAPI_VERBOSE) console.log(seen.join('\n'));
  assert.deepEqual(failures, []);
});
