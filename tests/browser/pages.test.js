// The Manage and Admin pages in headless Chromium against the real binary and the mock upstream:
// sign in, create and fund a sub-account, proxied calls show up as usage and in the request log,
// a limit set on the page is enforced by the proxy, an owner adds an upstream key and edits the
// config, and a sub-account sees the API's refusals. Any console error fails the test.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, waitFor, UPSTREAM_SECRET } from '../e2e/lib/harness.js';
import { launch, newPage, shot, signIn, DESKTOP, PHONE } from './lib.js';

let mock, gw, browser, page;
const S = {}; // state shared by the steps, in order

before(async () => {
  mock = await startMock();
  gw = await startGateway({ mock, extra: 'store:\n  allow_private_providers: true\n' });
  browser = await launch();
  page = await newPage(browser.ctx);
});

after(async () => {
  await browser?.close();
  await gw?.cleanup();
  await mock?.stop();
});

afterEach(() => {
  const errs = page.errors.splice(0);
  page.expected = [];
  assert.deepEqual(errs, [], 'console errors');
});

const flash = async () => (await page.waitForSelector('#flash:not([hidden])')).textContent();
/** Runs FN (a click that answers with a message) and returns the message it shows. */
async function act(fn) {
  await page.evaluate(() => { document.querySelector('#flash').hidden = true; });
  await fn();
  return flash();
}
async function tab(name) {
  await page.click(`nav.tabs button[data-tab="${name}"]`);
  await page.waitForSelector(`section#${name}:not([hidden])`);
}
async function chat(key, model = 'gpt-4o-mini') {
  return fetch(`${gw.base}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }] }),
  });
}
const acctRow = (name) => page.locator('#tree tr', { hasText: name });

test('the pages are served: index, assets, redirect, 404 for a missing file and for ..', async () => {
  let r = await fetch(`${gw.base}/manage`, { redirect: 'manual' });
  assert.equal(r.status, 301);
  assert.equal(r.headers.get('location'), '/manage/');
  r = await fetch(`${gw.base}/manage/`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  assert.equal(r.headers.get('cache-control'), 'no-cache');
  r = await fetch(`${gw.base}/admin/shared/api.js`);
  assert.match(r.headers.get('content-type'), /^text\/javascript/);
  r = await fetch(`${gw.base}/manage/shared/style.css`);
  assert.match(r.headers.get('content-type'), /^text\/css/);
  r = await fetch(`${gw.base}/manage/nope.js`);
  assert.equal(r.status, 404);
  assert.match((await r.json()).message, /no such page/);
  r = await fetch(`${gw.base}/manage/%2e%2e/%2e%2e/CMakeLists.txt`);
  assert.equal(r.status, 404);
  r = await fetch(`${gw.base}/manage/.hidden.js`);
  assert.equal(r.status, 404);
});

test('a wrong key is refused with the API message; root signs in and sees its account', async () => {
  await page.goto(`${gw.base}/manage/`);
  page.expected = [/status of 401/];
  await page.fill('#key', 'sk-Xvs' + 'x'.repeat(45));
  assert.match(await act(() => page.click('#signin button[type=submit]')), /invalid API key/);
  await signIn(page, `${gw.base}/manage/`, gw.rootKey);
  await page.waitForSelector('#ov-stats .stat');
  assert.match(await page.textContent('#who'), /root/);
  assert.match(await page.textContent('#ov-stats'), /Balance/);
});

test('root creates a sub-account; the key is shown once with a copy button', async () => {
  await tab('accounts');
  await page.fill('#create-form [name=Name]', 'alice-owner');
  await page.fill('#create-form [name=Email]', 'alice@example.com');
  await page.fill('#create-form [name=CreditGranted]', '50');
  await page.click('#create-form button[type=submit]');
  const secret = await page.waitForSelector('#new-key input[data-testid=secret]');
  S.alice = await secret.inputValue();
  assert.match(S.alice, /^sk-Xvs\w{45}$/);
  assert.ok(await page.isVisible('#new-key button'));
  await acctRow('alice-owner').waitFor();
  assert.match(await acctRow('alice-owner').textContent(), /\$50\.00/);
});

test('root tops up the sub-account and claws some back', async () => {
  await acctRow('alice-owner').locator('button[data-act=fund]').click();
  await page.fill('#fund-form [name=amount]', '10');
  assert.match(await act(() => page.click('#fund-form button[type=submit]')), /Topped up \$10\.00 to alice-owner/);
  await page.waitForFunction(() => /\$60\.00/.test(document.querySelector('#tree').textContent));
  await acctRow('alice-owner').locator('button[data-act=fund]').click();
  await page.fill('#fund-form [name=amount]', '-5');
  assert.match(await act(() => page.click('#fund-form button[type=submit]')), /Clawed back \$5\.00 from alice-owner/);
  await page.waitForFunction(() => /\$55\.00/.test(document.querySelector('#tree').textContent));
  await shot(page, 'manage-accounts-desktop');
});

test('the sub-account creates its own sub-account; search finds it by name, email and DNA', async () => {
  await signIn(page, `${gw.base}/manage/`, S.alice);
  assert.match(await page.textContent('#who'), /alice-owner/);
  await tab('accounts');
  await page.fill('#create-form [name=Name]', 'bob-member');
  await page.fill('#create-form [name=Email]', 'bob@example.com');
  await page.fill('#create-form [name=CreditGranted]', '25');
  await page.click('#create-form button[type=submit]');
  S.bob = await (await page.waitForSelector('#new-key input[data-testid=secret]')).inputValue();
  await page.fill('#create-form [name=Name]', 'carol-member');
  await page.fill('#create-form [name=Email]', 'carol@example.com');
  await page.fill('#create-form [name=CreditGranted]', '3');
  await page.click('#create-form button[type=submit]');
  await acctRow('carol-member').waitFor();
  await page.fill('#tree-form [name=q]', 'bob@');
  assert.equal(await page.locator('#tree tbody tr').count(), 1);
  await page.fill('#tree-form [name=q]', '.1.2.');
  assert.equal(await page.locator('#tree tbody tr').count(), 2);
  await page.fill('#tree-form [name=q]', 'nobody-here');
  assert.match(await page.textContent('#tree'), /No account matches/);
  await page.fill('#tree-form [name=q]', '');
  // a refused value shows the API's message, naming the field
  await acctRow('carol-member').locator('button[data-act=edit]').click();
  await page.fill('#edit-fields [name=Rates]', '0.5');
  page.expected = [/status of 400/];
  assert.match(await act(() => page.click('#edit-form button[type=submit]')), /^Rates/);
  await page.click('#edit-cancel');
  // delete needs the name typed
  await acctRow('carol-member').locator('button[data-act=delete]').click();
  await page.fill('#delete-form [name=confirm]', 'carol');
  assert.match(await act(() => page.click('#delete-form button[type=submit]')), /Type the account name/);
  await page.fill('#delete-form [name=confirm]', 'carol-member');
  assert.match(await act(() => page.click('#delete-form button[type=submit]')), /Deleted carol-member; \$2\.80 returned/);
  await page.waitForFunction(() => !/carol-member/.test(document.querySelector('#tree').textContent));
});

test('the owner adds its own upstream key on the Admin page (its tree has its own pool)', async () => {
  await signIn(page, `${gw.base}/admin/`, S.alice);
  await page.waitForSelector('#key-table');
  await page.selectOption('#key-form [name=preset]', 'openai');
  assert.equal(await page.inputValue('#key-form [name=Provider]'), 'https://api.openai.com');
  await page.fill('#key-form [name=Provider]', mock.url);
  await page.fill('#key-form [name=Name]', 'alice-mock');
  await page.fill('#key-form [name=SecretKey]', UPSTREAM_SECRET);
  assert.match(await act(() => page.click('#key-form button[type=submit]')), /Added key #\d+ \(alice-mock\) at level 1/);
  await page.locator('#key-table tr', { hasText: 'alice-mock' }).waitFor();
  assert.ok(!(await page.content()).includes(UPSTREAM_SECRET));
});

test('a proxied call with the new key shows up as usage and in the request log', async () => {
  const r = await chat(S.bob);
  assert.equal(r.status, 200, await r.clone().text());
  await r.json();
  await waitFor(async () => (await (await fetch(`${gw.base}/dashboard/requests`, { headers: { authorization: `Bearer ${S.bob}` } })).json()).total >= 1,
    { what: 'the request in the log' });
  // usage is summed from the drained ledger, a moment after the request log
  const bill = async (key, path) => (await fetch(`${gw.base}${path}`, { headers: { authorization: `Bearer ${key}` } })).json();
  await waitFor(async () => (await bill(S.bob, '/dashboard/bill')).total_requests >= 1, { what: 'the usage of the call' });
  await waitFor(async () => (await bill(S.alice, '/x-bill')).total_usage?.requests >= 1, { what: 'the usage in the parent bill' });
  await signIn(page, `${gw.base}/manage/`, S.bob);
  await shot(page, 'manage-overview-desktop');
  await tab('usage');
  await page.waitForFunction(() => /gpt-4o-mini/.test(document.querySelector('#usage-models').textContent));
  assert.match(await page.textContent('#usage-stats'), /Requests/);
  assert.equal(await page.locator('#usage-chart-model svg rect.bar').count(), 1);
  await shot(page, 'manage-usage-desktop');
  await tab('requests');
  await page.waitForSelector('#req-table tbody tr');
  assert.match(await page.textContent('#req-table tbody tr'), /gpt-4o-mini.*200/s);
  await page.fill('#req-form [name=model]', 'no-such-model');
  await page.click('#req-form button[type=submit]');
  await page.waitForFunction(() => /No requests match/.test(document.querySelector('#req-table').textContent));
  await page.fill('#req-form [name=model]', '');
  await page.click('#req-form button[type=submit]');
  await page.waitForSelector('#req-table tbody tr');
  await shot(page, 'manage-requests-desktop');
  // the parent sees it in its sub-account bill
  await signIn(page, `${gw.base}/manage/`, S.alice);
  await tab('bill');
  await page.waitForFunction(() => /bob-member/.test(document.querySelector('#bill-users').textContent));
});

test('a limit set on the page is enforced by the proxy (RPM → 429)', async () => {
  await tab('accounts');
  await acctRow('bob-member').locator('button[data-act=edit]').click();
  await page.fill('#edit-fields [name=RPM]', '1');
  assert.match(await act(() => page.click('#edit-form button[type=submit]')), /Saved RPM of bob-member/);
  await page.waitForFunction(() => /bob-member[\s\S]*\b1\b/.test(document.querySelector('#tree').textContent));
  // the first call of the minute after the change may pass, the next one may not
  const statuses = [];
  for (let i = 0; i < 3; i++) { const r = await chat(S.bob); statuses.push(r.status); await r.text(); }
  assert.ok(statuses.includes(429), `statuses ${statuses}`);
  // disable and enable from the page: the key stops and starts working
  assert.match(await act(() => acctRow('bob-member').locator('button[data-act=toggle]').click()), /bob-member disabled/);
  assert.equal((await chat(S.bob)).status, 401);
  assert.match(await act(() => acctRow('bob-member').locator('button[data-act=toggle]').click()), /bob-member enabled/);
});

test('an owner adds an upstream key with a preset and edits the config; secrets are never shown', async () => {
  await signIn(page, `${gw.base}/admin/`, gw.rootKey);
  await page.waitForSelector('#key-table tbody tr');
  await page.selectOption('#key-form [name=preset]', 'anthropic');
  assert.equal(await page.inputValue('#key-form [name=Provider]'), 'https://api.anthropic.com');
  assert.equal(await page.inputValue('#key-form [name=protocol]'), 'anthropic');
  await page.selectOption('#key-form [name=preset]', 'deepseek');
  await page.fill('#key-form [name=Name]', 'deepseek-main');
  await page.fill('#key-form [name=Level]', '5');
  const secret = 'sk-deepseek-secret-0123456789abcdef';
  await page.fill('#key-form [name=SecretKey]', secret);
  assert.match(await act(() => page.click('#key-form button[type=submit]')), /Added key #\d+ \(deepseek-main\) at level 5/);
  await page.locator('#key-table tr', { hasText: 'deepseek-main' }).waitFor();
  assert.ok(!(await page.content()).includes(secret));
  // edit its level from the dialog
  await page.locator('#key-table tr', { hasText: 'deepseek-main' }).locator('button[data-act=edit]').click();
  await page.fill('#keyedit-form [name=Level]', '6');
  await page.click('#keyedit-form button[type=submit]');
  await flash();
  await page.waitForFunction(() => /deepseek-main/.test(document.querySelector('#key-table').textContent));
  const keys = await (await fetch(`${gw.base}/x-keys`, { headers: { authorization: `Bearer ${gw.rootKey}` } })).json();
  assert.equal(keys.find((k) => k.Name === 'deepseek-main').Level, 6);
  await shot(page, 'admin-keys-desktop');
  await tab('health');
  await page.waitForSelector('#conf-view table');
  await tab('config');
  const sw = page.locator('form.cfg[data-key=SWITCH_OVER]');
  await sw.locator('textarea').fill('one=two');
  page.expected = [/status of 400/];
  assert.match(await act(() => sw.locator('button[type=submit]').click()), /^SWITCH_OVER/);
  await sw.locator('textarea').fill('1=2');
  await sw.locator('button[type=submit]').click();
  await page.waitForSelector('#flash.ok');
  const pr = page.locator('form.cfg[data-key=PRICES]');
  await pr.locator('textarea').fill('{"my-model":{"input":1,"output":2}}');
  await pr.locator('button[type=submit]').click();
  await page.waitForSelector('#flash.ok');
  const cfg = await (await fetch(`${gw.base}/x-config`, { headers: { authorization: `Bearer ${gw.rootKey}` } })).json();
  assert.equal(cfg.configs.SWITCH_OVER, '1=2');
  assert.equal(cfg.configs.PRICES['my-model'].output, 2);
  await shot(page, 'admin-config-desktop');
  await tab('audit');
  await page.waitForFunction(() => /x-keys|key/i.test(document.querySelector('#audit-table').textContent));
  await shot(page, 'admin-audit-desktop');
  await tab('news');
  await page.fill('#news-form [name=title]', 'Maintenance');
  await page.fill('#news-form [name=content]', 'Sunday 02:00 UTC.');
  await page.click('#news-form button[type=submit]');
  await page.waitForFunction(() => /Maintenance/.test(document.querySelector('#news-list').textContent));
});

test('a sub-account that is not an owner gets the API refusal on the Admin page', async () => {
  page.expected = [/status of 403/];
  await signIn(page, `${gw.base}/admin/`, S.bob);
  await page.waitForFunction(() => /only root and owners/.test(document.querySelector('#flash').textContent));
  assert.equal(await page.locator('#key-table tr').count(), 0);
  assert.match(await act(() => tab('config')), /only root and owners/);
  assert.equal(await page.locator('#config-fields form').count(), 0);
  await shot(page, 'admin-refused-desktop');
  // the Manage page: a sub-account may not edit its own limits
  await signIn(page, `${gw.base}/manage/`, S.bob);
  await tab('news');
  await page.waitForFunction(() => /Maintenance|No news/.test(document.querySelector('#news-list').textContent));
});

test('phone-sized screens', async () => {
  await page.setViewportSize(PHONE);
  await signIn(page, `${gw.base}/manage/`, S.alice);
  await page.waitForSelector('#ov-stats .stat');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `page is ${overflow}px wider than the screen`);
  await shot(page, 'manage-overview-phone');
  await tab('accounts');
  await acctRow('bob-member').waitFor();
  await shot(page, 'manage-accounts-phone');
  await signIn(page, `${gw.base}/admin/`, gw.rootKey);
  await page.waitForSelector('#key-table tbody tr');
  await shot(page, 'admin-keys-phone');
  await page.setViewportSize(DESKTOP);
});

test('rotating the own key needs the phrase; the old key dies, the page keeps working', async () => {
  await signIn(page, `${gw.base}/manage/`, S.bob);
  await tab('security');
  const phrase = (await page.textContent('#rotate-phrase')).trim();
  assert.match(phrase, /^\d{4}-\d{2}-\d{2}-ROTATE-SELF$/);
  page.expected = [/status of 400/];
  await page.fill('#rotate-form [name=confirm]', 'please');
  assert.match(await act(() => page.click('#rotate-form button[type=submit]')), /confirm/i);
  await page.fill('#rotate-form [name=confirm]', phrase);
  await page.click('#rotate-form button[type=submit]');
  const fresh = await (await page.waitForSelector('#rotated input')).inputValue();
  assert.notEqual(fresh, S.bob);
  assert.equal((await chat(S.bob)).status, 401);
  await tab('overview');
  await page.waitForSelector('#ov-stats .stat');
  assert.match(await page.textContent('#who'), /bob-member/);
});
