// What the newer browser scripts (live_pages.mjs, a11y.mjs) share: headless Chromium with a
// fake camera and microphone, people who sign in through the page, waiting for session
// states and for media to flow (getStats() in the page), screenshots, and a scenario runner
// that collects failures and console errors. Configured by HOMEROOM_BROWSER_TEST (JSON) from
// main.rs.

import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './chromium.mjs';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

export const cfg = JSON.parse(process.env.HOMEROOM_BROWSER_TEST);
mkdirSync(cfg.artifacts, { recursive: true });
const started = Date.now();
export const log = (...args) => console.log(`[browser ${((Date.now() - started) / 1000).toFixed(1)}s]`, ...args);

export const browser = await chromium.launch({
  executablePath: cfg.chromium,
  headless: true,
  args: CHROMIUM_ARGS,
});

const pages = [];
export const problems = [];

export const PHONE = { width: 375, height: 812 };

const limit = cfg.limit_s || 160;
setTimeout(async () => {
  console.error(`browser tests: still running after ${limit} s; giving up`);
  for (const { name, page } of pages) {
    await page.screenshot({ path: join(cfg.artifacts, `failed-timeout-${name}.png`) }).catch(() => {});
  }
  process.exit(1);
}, limit * 1000).unref();

/**
 * A browser context for `name`, in `on` (another browser than the shared one: one started
 * inside a network namespace, say), with `permissions` besides camera and microphone.
 * Console errors and page errors count as failures when
 * `strictConsole` is set (signed-out pages must log none); otherwise they are printed.
 */
export async function context(name, { locale = 'en-US', viewport = { width: 1280, height: 800 }, strictConsole = false, bypassCSP = false, on = browser, permissions = [] } = {}) {
  const ctx = await on.newContext({
    ignoreHTTPSErrors: true, locale, viewport, isMobile: viewport.width < 500, hasTouch: viewport.width < 500,
    permissions: ['camera', 'microphone', ...permissions], bypassCSP,
  });
  ctx.setDefaultTimeout(20000);
  const page = await ctx.newPage();
  page.on('console', (m) => {
    const text = m.text();
    if (/Content Security Policy|Refused to/i.test(text)) problems.push(`${name}: ${text}`);
    if (m.type() === 'error' && strictConsole) problems.push(`${name}: console error: ${text}`);
    else if (m.type() === 'error' || m.type() === 'warning') log(`${name} console.${m.type()}:`, text);
  });
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  pages.push({ name, page, context: ctx });
  return page;
}

/** Signs in through the page, as a person does; lands on the start page. */
export async function person(name, login, options = {}) {
  const page = await context(name, options);
  const spanish = (options.locale || 'en-US').startsWith('es');
  await page.goto(`${cfg.base}/signin`);
  await page.getByLabel(spanish ? 'Usuario' : 'Login').fill(login);
  await page.getByLabel(spanish ? 'Contraseña' : 'Password').fill(cfg.password);
  await page.locator('form button[type=submit]').click();
  await page.waitForURL(`${cfg.base}/`);
  return page;
}

export const state = (page, value, timeout = 20000) =>
  page.waitForSelector(`body[data-session-state="${value}"]`, { timeout });

/** {participantId: {framesDecoded, audioPackets}} from the page's subscriber connection. */
export const stats = (page) => page.evaluate(() => window.homeroom.session.receiveStats());
export const sum = (s, key) => Object.values(s).reduce((n, v) => n + (v[key] || 0), 0);

/**
 * Waits until `check(before, after)` holds for two results of `sample(page)` 1.5 s apart and
 * returns the later one, or fails after `ms` with `failure` and the last pair.
 */
export async function sampled(page, sample, check, ms, failure) {
  const deadline = Date.now() + ms;
  let last = null;
  while (Date.now() < deadline) {
    const before = await sample(page);
    await page.waitForTimeout(1500);
    const after = await sample(page);
    last = { before, after };
    if (check(before, after)) return after;
  }
  throw new Error(`${failure}: ${JSON.stringify(last)}`);
}

/** Waits until `check(before, after)` holds for stats 1.5 s apart, or fails after `ms`. */
export const flowing = (name, page, check, ms = 25000) => sampled(page, stats, check, ms, `${name}: media did not flow`);

export async function shoot(page, file) {
  const path = join(cfg.artifacts, file);
  mkdirSync(dirname(path), { recursive: true });
  await page.screenshot({ path, fullPage: true });
  log('screenshot', file);
}

/** Fails unless `condition` holds within `ms`; says how long it took. */
export async function within(ms, what, page, fn, arg) {
  const from = Date.now();
  await page.waitForFunction(fn, arg, { timeout: ms }).catch(() => {
    throw new Error(`${what}: not within ${ms} ms`);
  });
  log(`${what} after ${Date.now() - from} ms`);
}

let answers = null;

/**
 * Has the Rust test act now (main.rs `run_script_with_steps`: slow the family's network down,
 * say): prints `step: <name>` and waits for the test's `done`.
 */
export async function step(name) {
  answers ||= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  console.log(`step: ${name}`);
  const { value } = await answers.next();
  if (value !== 'done') throw new Error(`the test did not do the step "${name}"`);
  log(`step done: ${name}`);
}

export async function scenario(title, body) {
  log(`— ${title}`);
  try {
    await body();
    log(`✓ ${title}`);
  } catch (error) {
    problems.push(`${title}: ${error.stack || error}`);
    for (const { name, page } of pages) {
      await page.screenshot({ path: join(cfg.artifacts, `failed-${title.replace(/\W+/g, '-')}-${name}.png`) }).catch(() => {});
    }
  }
  for (const { context: ctx } of pages.splice(0)) await ctx.close().catch(() => {});
}

export async function finish() {
  await browser.close();
  if (problems.length) {
    console.error(`browser tests failed:\n- ${problems.join('\n- ')}`);
    process.exit(1);
  }
  log('all browser scenarios of this run passed');
  process.exit(0);
}
