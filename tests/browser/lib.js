// Browser helpers: Debian's Chromium through playwright-core (no browser download), a fresh
// profile per run, pages that collect console errors, and screenshots for docs/ui.md.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
export const SHOTS = process.env.SCREENSHOTS === '1' ? new URL('../../docs/screenshots/', import.meta.url).pathname : null;
export const DESKTOP = { width: 1280, height: 860 };
export const PHONE = { width: 390, height: 844 };

/** Launches headless Chromium with a fresh user-data directory; close() removes it. */
export async function launch() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/deps.sh browser`);
  const profile = mkdtempSync(join(tmpdir(), 'tollgate-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    viewport: DESKTOP,
  });
  return {
    ctx,
    async close() { await ctx.close().catch(() => {}); rmSync(profile, { recursive: true, force: true }); },
  };
}

/** A page that records console errors and uncaught exceptions in page.errors. Errors matching
 * one of page.expected (regexes a test sets around a refusal it provokes) are not recorded. */
export async function newPage(ctx, viewport = DESKTOP) {
  const page = await ctx.newPage();
  await page.setViewportSize(viewport);
  page.errors = [];
  page.expected = [];
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    if (!page.expected.some((re) => re.test(text))) page.errors.push(`console: ${text}`);
  });
  page.on('pageerror', (e) => page.errors.push(`exception: ${e.message}`));
  page.setDefaultTimeout(8000);
  return page;
}

/** Saves a screenshot of PAGE as docs/screenshots/NAME.png when SCREENSHOTS=1. */
export async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Signs in on the page at URL with KEY (a fresh localStorage per browser context). */
export async function signIn(page, url, key) {
  if (page.url().startsWith(new URL(url).origin)) await page.evaluate(() => localStorage.clear()); // forget the old key
  await page.goto(url);
  await page.fill('#key', key);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#app:not([hidden])');
}
