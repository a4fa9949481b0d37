// A school's first day, from an empty server to live video, with clicks and typing only (no
// API calls from here): `setUpSchool` (setup.mjs) makes the first admin, a teacher, a class, two
// students, a family and a tutor invitation, which the family (Spanish, on a phone) and the tutor
// accept in their own browsers, and a tutoring room hosted by the tutor. Then the teacher adds a
// classroom and goes live: the family's open class page shows the live banner within 2 s, and
// its watch page decodes video. Then the tutor opens the tutoring room, the family asks to come
// in, the tutor lets it in, and both decode each other's video.
//
// Started by main.rs (`a_school_day_from_an_empty_server`) with HOMEROOM_BROWSER_TEST =
// {base, chromium, artifacts, password, secret, limit_s}.

import { join } from 'node:path';
import { launch, log, setUpSchool } from './setup.mjs';

const cfg = JSON.parse(process.env.HOMEROOM_BROWSER_TEST);
const problems = [];
const browser = await launch(cfg);
setTimeout(() => {
  console.error(`school day: still running after ${cfg.limit_s} s; giving up`);
  process.exit(1);
}, cfg.limit_s * 1000).unref();

/** Waits until the page's live session reports `value` (`body[data-session-state]`). */
const state = (page, value, timeout = 20000) =>
  page.waitForSelector(`body[data-session-state="${value}"]`, { timeout });

/** Video frames decoded by this page, per participant, from `getStats()`. */
const decoded = (page) => page.evaluate(async () => {
  const stats = await window.homeroom.session.receiveStats();
  return Object.fromEntries(Object.entries(stats).map(([id, s]) => [id, s.framesDecoded || 0]));
});

/** Waits until `page` has decoded more than 10 frames from each of `from` (all, if absent). */
async function decodes(name, page, from = null, ms = 25000) {
  const until = Date.now() + ms;
  let last = {};
  while (Date.now() < until) {
    last = await decoded(page);
    const ids = from ?? Object.keys(last);
    if (ids.length && ids.every((id) => (last[id] || 0) > 10)) return log(`${name} decodes video`, last);
    await page.waitForTimeout(500);
  }
  throw new Error(`${name} decoded no video in ${ms / 1000} s: ${JSON.stringify(last)}`);
}

/** Within `ms` of now, `fn` holds in `page`. */
async function within(ms, what, page, fn) {
  const started = Date.now();
  await page.waitForFunction(fn, null, { timeout: ms, polling: 100 })
    .catch(() => { throw new Error(`${what}: not within ${ms} ms`); });
  log(`${what} after ${Date.now() - started} ms`);
}

const bannerShown = () => {
  const banner = document.querySelector('.live-banner');
  return Boolean(banner && !banner.hidden && banner.offsetHeight > 0);
};

let world = null;
try {
  world = await setUpSchool(browser, cfg, problems);
  const { teacher, family, tutor } = world.people;
  const t = teacher.page;
  const classPage = `${cfg.base}/class/${world.classId}`;

  // The teacher adds a classroom on the class's manage page (where setUpSchool left them).
  const rooms = t.locator('#rooms');
  const newRoom = rooms.locator('form.new-room');
  await newRoom.getByLabel('Kind').selectOption('classroom');
  await newRoom.getByLabel('Name', { exact: true }).fill('Morning class');
  await newRoom.getByRole('button', { name: 'Add room' }).click();
  await rooms.locator('li.room', { hasText: 'Morning class' }).waitFor();

  // The family opens its class page from its home page and keeps it open.
  const f = family.page;
  await f.goto(`${cfg.base}/`);
  await f.getByRole('link', { name: /Room 12/ }).click();
  await f.waitForURL(classPage);
  await f.waitForSelector('body[data-events="open"]');
  if (await f.evaluate(bannerShown)) throw new Error('live banner before the class is live');

  // The teacher opens the studio from the class page and goes live.
  await t.goto(classPage);
  await t.locator('li', { hasText: 'Morning class' }).getByRole('link', { name: 'Open studio' }).click();
  await t.waitForURL(/\/studio\/\d+$/);
  await t.waitForFunction(() => document.querySelector('video.preview')?.readyState >= 2, null, { timeout: 15000 });
  await t.locator('button.go-live').click();
  await state(t, 'joined');
  await within(2000, 'the family\'s class page shows the live banner', f, bannerShown);

  // The family follows the banner's link and watches.
  await f.locator('.live-banner a').first().click();
  await f.waitForURL(/\/watch\/\d+$/);
  await state(f, 'joined');
  await decodes('the family (watch page)', f);
  await f.screenshot({ path: join(cfg.artifacts, 'school-day-family-watching.png') });

  // The teacher ends the class.
  await t.locator('button.end').click();
  await t.locator('button.confirm-end').click();
  await state(f, 'ended');

  // Tutoring: the tutor opens the room from the class page; the family asks to come in.
  const tu = tutor.page;
  await tu.goto(classPage);
  await tu.locator('li.room', { hasText: 'Reading group' }).getByRole('link').first().click();
  await tu.waitForURL(`${cfg.base}/tutor/${world.roomId}`);
  await state(tu, 'joined');
  await f.goto(classPage);
  await f.locator('li.room', { hasText: 'Reading group' }).getByRole('link').first().click();
  await f.waitForURL(`${cfg.base}/tutor/${world.roomId}`);
  await state(f, 'waiting');
  await tu.locator('.waiting-list button').first().click();
  await state(f, 'joined');
  for (const [name, page] of [['the tutor', tu], ['the family (tutoring)', f]]) {
    const others = await page.evaluate(() => [...window.homeroom.session.participants.keys()].map(String));
    if (others.length !== 1) throw new Error(`${name} sees ${others.length} others`);
    await decodes(name, page, others);
  }
  await f.screenshot({ path: join(cfg.artifacts, 'school-day-family-tutoring.png') });
} catch (error) {
  problems.push(error.stack || String(error));
  for (const p of Object.values(world?.people || {})) {
    await p.page.screenshot({ path: join(cfg.artifacts, `failed-school-day-${p.name}.png`) }).catch(() => {});
  }
}
await browser.close();
if (problems.length) {
  console.error(`school day failed:\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
log('from an empty server to live video and tutoring, on the pages alone');
process.exit(0);
