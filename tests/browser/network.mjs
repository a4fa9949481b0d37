// The connection check page, and watching a class, on a normal network and on one that drops
// UDP. network.rs makes the server, the class and, for a blocked network, a network namespace
// whose outgoing UDP is dropped, where the family's Chromium runs (home_network.mjs) while the
// teacher's stays on the host. The family only clicks and types. Scenarios (cfg.scenario):
// - 'check': from the sign-in page to the check's verdict; `cfg.expect` is each path's result
//   (ok, blocked, off), `cfg.relay_over` how the relay must be reached (tcp, udp),
//   `cfg.verdict` and `cfg.advice` the catalogue keys shown; the copied report is read back
//   from the clipboard.
// - 'stalled': nothing gets through; the watch page's "Video does not start?" hint opens the
//   check, which says so.
// - 'watch': the teacher goes live in the studio, the family watches and decodes video;
//   `cfg.expect_via` is how the family's subscriber connection must reach the server
//   ('udp', 'tcp' or 'relay', from its selected candidate pair).

import { cfg, context, finish, flowing, log, scenario, shoot, sum } from './common.mjs';
import { closeFamilyBrowser, familyBase, familyBrowser, signIn, teacherLiveFamilyWatching } from './home_network.mjs';

/** How a live page's subscriber connection reaches the server: its selected local candidate. */
const subscriberPath = (page) => page.evaluate(async () => {
  const stats = await window.homeroom.session.sub.getStats();
  let pair = null;
  stats.forEach((r) => {
    if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId);
  });
  const local = pair && stats.get(pair.localCandidateId);
  return local ? { type: local.candidateType, protocol: local.protocol, relayProtocol: local.relayProtocol } : null;
});

const via = (path) => (path?.type === 'relay' ? 'relay' : path?.protocol);

/** Runs the check on `page` (at /check, signed in) and holds its results to `cfg`. */
async function runCheck(page) {
  await page.locator('button.check-start').click();
  await page.locator('.check-verdict').waitFor({ state: 'visible', timeout: 90000 });
  const results = await page.evaluate(() => window.homeroom.check);
  log('results', JSON.stringify(results));
  for (const [path, expected] of Object.entries(cfg.expect)) {
    const r = results[path];
    if (r?.result !== expected) throw new Error(`${path}: expected ${expected}, the page found ${JSON.stringify(r)}`);
    const shown = await page.locator(`[data-step="${path}"] .check-result`).getAttribute('data-result');
    if (shown !== expected) throw new Error(`${path}: the page shows ${shown}`);
    if (expected !== 'ok') continue;
    if (via(r.via) !== path) throw new Error(`${path}: the media came ${JSON.stringify(r.via)}`);
    if (!(r.bitsPerSecond > 500000)) throw new Error(`${path}: only ${r.bitsPerSecond} bit/s of the 1 Mbit/s test stream`);
    if (typeof r.rttMs !== 'number') throw new Error(`${path}: no round-trip time`);
    if (path === 'relay' && cfg.relay_over && r.via.relayProtocol !== cfg.relay_over) throw new Error(`the relay was reached over ${r.via.relayProtocol}, not ${cfg.relay_over}`);
  }
  const verdict = await page.locator('.check-verdict-text').getAttribute('data-verdict');
  if (verdict !== cfg.verdict) throw new Error(`verdict ${verdict}, expected ${cfg.verdict}`);
  const advice = await page.locator('.check-advice li').evaluateAll((els) => els.map((el) => el.dataset.advice));
  if (JSON.stringify(advice) !== JSON.stringify(cfg.advice)) throw new Error(`advice ${JSON.stringify(advice)}, expected ${JSON.stringify(cfg.advice)}`);
  for (const text of cfg.texts || []) await page.locator('.check-verdict', { hasText: text }).waitFor({ timeout: 2000 });
  // The report to send to the teacher.
  await page.locator('.check-verdict button.copy').click();
  await page.locator('.check-verdict .copied', { hasText: 'Copied' }).waitFor();
  const report = await page.evaluate(() => navigator.clipboard.readText());
  for (const text of cfg.report) if (!report.includes(text)) throw new Error(`the copied report lacks "${text}":\n${report}`);
  log('copied report:\n' + report);
  await shoot(page, `check-${cfg.name}.png`);
  // The same verdict in Spanish, switched on the page.
  await page.selectOption('#lang-switch', 'es');
  await page.locator('.check-verdict-text', { hasText: cfg.verdict_es }).waitFor({ timeout: 5000 });
  await shoot(page, `check-${cfg.name}-es.png`);
}

if (cfg.scenario === 'check') {
  await scenario(`connection check (${cfg.name})`, async () => {
    const page = await context('family', { on: familyBrowser, permissions: ['clipboard-read', 'clipboard-write'] });
    // From the sign-in page to the check, which asks to sign in first and comes back.
    await page.goto(`${familyBase}/signin`);
    await page.locator('a.check-link').click();
    await page.waitForURL(`${familyBase}/check`);
    await page.locator('.check-signin a').click();
    await signIn(page, cfg.family);
    await page.waitForURL(`${familyBase}/check`);
    await page.locator('button.check-camera').click();
    await page.locator('[data-step="camera"] .check-result[data-result="allowed"]').waitFor();
    await runCheck(page);
  });
}

if (cfg.scenario === 'stalled') {
  // Nothing gets through: the watch page offers the check after a while without a picture,
  // and the check, opened from there, says why and what to do.
  await scenario(`video does not start (${cfg.name})`, async () => {
    const { family } = await teacherLiveFamilyWatching({ permissions: ['clipboard-read', 'clipboard-write'] });
    const hint = family.locator('.no-video-hint');
    await hint.waitFor({ state: 'visible', timeout: 30000 });
    await shoot(family, `watch-${cfg.name}.png`);
    const [page] = await Promise.all([family.context().waitForEvent('page'), hint.locator('a').click()]);
    await page.waitForURL(`${familyBase}/check`);
    await runCheck(page);
  });
}

if (cfg.scenario === 'watch') {
  await scenario(`watching (${cfg.name})`, async () => {
    const { family } = await teacherLiveFamilyWatching();
    const s = await flowing('family', family, (a, b) => sum(b, 'framesDecoded') > sum(a, 'framesDecoded') && sum(b, 'framesDecoded') > 10, 40000);
    const path = await subscriberPath(family);
    log('the family decodes', JSON.stringify(s), 'via', JSON.stringify(path));
    if (via(path) !== cfg.expect_via) throw new Error(`the family's video came ${JSON.stringify(path)}, expected ${cfg.expect_via}`);
    if (cfg.expect_via === 'relay' && path.relayProtocol !== 'tcp') throw new Error(`the relay was reached over ${path.relayProtocol}, not TCP`);
    await family.waitForFunction(() => document.querySelector('video.main-video').videoWidth > 0);
    await shoot(family, `watch-${cfg.name}.png`);
  });
}

await closeFamilyBrowser();
await finish();
