// Signing in with a `next` that points off the site must end on the site. Started by main.rs
// (`sign_in_next_stays_on_site`) with HOMEROOM_BROWSER_TEST = {base, chromium, login, password,
// cases: [{next, expect}]}: `expect` is the path (with query and hash) the page must end on.

import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.env.HOMEROOM_BROWSER_TEST);
const origin = new URL(cfg.base).origin;
const browser = await chromium.launch({
  executablePath: cfg.chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-dev-shm-usage'],
});
const failures = [];
try {
  for (const { next, expect } of cfg.cases) {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    context.setDefaultTimeout(15000);
    const page = await context.newPage();
    // Whatever the page tries, nothing may leave this machine; every attempt is noted.
    const offsite = [];
    await context.route((url) => url.origin !== origin, (route) => {
      offsite.push(route.request().url());
      return route.abort();
    });
    await page.goto(`${cfg.base}/signin?next=${next}`);
    await page.getByLabel('Login').fill(cfg.login);
    await page.getByLabel('Password').fill(cfg.password);
    await page.locator('form button[type=submit]').click();
    await page.waitForURL((url) => !url.pathname.startsWith('/signin'), { waitUntil: 'commit' }).catch(() => {});
    await page.waitForTimeout(300);
    const landed = new URL(page.url());
    const path = landed.pathname + landed.search + landed.hash;
    if (offsite.length || landed.origin !== origin || path !== expect) {
      failures.push(`next=${next}: ended on ${page.url()} (off-site requests: ${offsite.join(', ') || 'none'}), expected ${origin}${expect}`);
    } else {
      console.log(`[next] next=${next} → ${path}`);
    }
    await context.close();
  }
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
