// Drives headless Chromium (with a fake camera and microphone) through Homeroom's pages
// against a running server. Started by main.rs, which creates the server, the class and the
// accounts and passes them in HOMEROOM_BROWSER_TEST (JSON). Exits non-zero on any failure;
// screenshots go to the artifacts folder whatever happens.

import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './chromium.mjs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const cfg = JSON.parse(process.env.HOMEROOM_BROWSER_TEST);
mkdirSync(cfg.artifacts, { recursive: true });
const started = Date.now();
const log = (...args) => console.log(`[browser ${((Date.now() - started) / 1000).toFixed(1)}s]`, ...args);

const browser = await chromium.launch({
  executablePath: cfg.chromium,
  headless: true,
  args: CHROMIUM_ARGS,
});

const pages = [];
const problems = [];

// Past this, stop with screenshots of whatever is open (main.rs allows a little more).
setTimeout(async () => {
  console.error('browser tests: still running after 160 s; giving up');
  for (const { name, page } of pages) {
    await page.screenshot({ path: join(cfg.artifacts, `failed-timeout-${name}.png`) }).catch(() => {});
  }
  process.exit(1);
}, 160000).unref();

async function person(name, login, { locale = 'en-US', viewport = { width: 1280, height: 800 } } = {}) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true, locale, viewport, isMobile: viewport.width < 500, hasTouch: viewport.width < 500,
    permissions: ['camera', 'microphone'],
  });
  context.setDefaultTimeout(20000);
  const page = await context.newPage();
  page.on('console', (m) => {
    const text = m.text();
    if (/Content Security Policy|Refused to/i.test(text)) problems.push(`${name}: ${text}`);
    // Signed out, GET /api/v1/me answers 401: expected on the sign-in page.
    if ((m.type() === 'error' || m.type() === 'warning') && !/status of 401/.test(text)) log(`${name} console.${m.type()}:`, text);
  });
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  pages.push({ name, page, context });
  // Sign in through the page, as a person does.
  await page.goto(`${cfg.base}/signin`);
  await page.getByLabel(locale.startsWith('es') ? 'Usuario' : 'Login').fill(login);
  await page.getByLabel(locale.startsWith('es') ? 'Contraseña' : 'Password').fill(cfg.password);
  await page.locator('form button[type=submit]').click();
  await page.waitForURL(`${cfg.base}/`);
  return page;
}

const state = (page, value, timeout = 20000) =>
  page.waitForSelector(`body[data-session-state="${value}"]`, { timeout });

/** {participantId: {framesDecoded, audioPackets}} from the page's subscriber connection. */
const stats = (page) => page.evaluate(() => window.homeroom.session.receiveStats());

/** Waits until `check(before, after)` holds for stats 1.5 s apart, or fails after `ms`. */
async function flowing(name, page, check, ms = 25000) {
  const deadline = Date.now() + ms;
  let last = null;
  while (Date.now() < deadline) {
    const before = await stats(page);
    await page.waitForTimeout(1500);
    const after = await stats(page);
    last = { before, after };
    if (check(before, after)) return after;
  }
  throw new Error(`${name}: media did not flow: ${JSON.stringify(last)}`);
}

const sum = (s, key) => Object.values(s).reduce((n, v) => n + (v[key] || 0), 0);

async function shoot(page, file) {
  await page.screenshot({ path: join(cfg.artifacts, file) });
  log('screenshot', file);
}

async function scenario(title, body) {
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
  for (const { context } of pages.splice(0)) await context.close().catch(() => {});
}

if (cfg.phase === 'setup') {
  // The first admin, through the link the server printed.
  await scenario('setup', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'en-US' });
    const page = await context.newPage();
    pages.push({ name: 'admin', page, context });
    await page.goto(`${cfg.base}/setup#${cfg.secret}`);
    await page.getByLabel('Your name as others see it').fill('Site Admin');
    await page.getByLabel('Login').fill('admin');
    await page.getByLabel('Password').fill(cfg.password);
    await page.locator('form button[type=submit]').click();
    await page.waitForURL(`${cfg.base}/`);
    await page.locator('h1', { hasText: 'Hello, Site Admin' }).waitFor();
  });
  await finish();
}

await scenario('classroom', async () => {
  const teacher = await person('teacher', cfg.teacher);
  await teacher.goto(`${cfg.base}/studio/${cfg.classroom}`);
  await teacher.waitForFunction(() => document.querySelector('video.preview')?.readyState >= 2, null, { timeout: 15000 });
  await teacher.locator('button.go-live').click();
  await state(teacher, 'joined');
  log('teacher is live');

  // The studio makes a stream key for OBS: the WHIP server address and the key appear.
  await teacher.locator('details.encoder summary').click();
  await teacher.locator('button.create-stream-key').click();
  await teacher.locator('input.whip-url').waitFor();
  const whipUrl = await teacher.locator('input.whip-url').inputValue();
  if (!whipUrl.endsWith(`/whip/${cfg.classroom}`)) throw new Error(`stream key server is ${whipUrl}`);
  if ((await teacher.locator('input.stream-key').inputValue()).length < 20) throw new Error('no stream key shown');
  log('the studio made a stream key for OBS');

  const family1 = await person('family1', cfg.family1);
  // The second family reads Spanish on a phone.
  const family2 = await person('family2', cfg.family2, { locale: 'es-ES', viewport: { width: 390, height: 844 } });
  for (const page of [family1, family2]) await page.goto(`${cfg.base}/watch/${cfg.classroom}`);
  for (const page of [family1, family2]) await state(page, 'joined');
  log('both families joined');
  for (const [name, page] of [['family1', family1], ['family2', family2]]) {
    const s = await flowing(name, page, (a, b) =>
      sum(b, 'framesDecoded') > sum(a, 'framesDecoded') && sum(b, 'framesDecoded') > 10 &&
      sum(b, 'audioPackets') > sum(a, 'audioPackets') && sum(b, 'audioPackets') > 10);
    log(`${name} receives`, JSON.stringify(s));
  }
  // A dropped connection: the page says it is reconnecting, joins again and plays again.
  await family1.evaluate(() => window.homeroom.session.signal.ws.close());
  await family1.locator('#status', { hasText: 'Reconnecting' }).waitFor({ timeout: 5000 });
  await state(family1, 'joined');
  await flowing('family1 after reconnecting', family1, (a, b) => sum(b, 'framesDecoded') > sum(a, 'framesDecoded') && sum(b, 'audioPackets') > sum(a, 'audioPackets'));
  log('family1 reconnected by itself');
  await family1.waitForFunction(() => !document.querySelector('video.main-video').hidden && document.querySelector('video.main-video').videoWidth > 0);

  const message = 'Hello from family one';
  await family1.locator('.chat-form input').fill(message);
  await family1.locator('.chat-form input').press('Enter');
  for (const page of [teacher, family2, family1]) {
    await page.locator('.chat-log li', { hasText: message }).waitFor({ timeout: 10000 });
  }
  log('chat reached teacher and family2');
  // Sharing the screen adds a second video track: watchers show it big, the camera small.
  await teacher.locator('button.share').click();
  for (const [name, page] of [['family1', family1], ['family2', family2]]) {
    await flowing(`${name} screen`, page, (a, b) => Object.values(b).some((v) => v.videoTracks >= 2));
    await page.waitForFunction(() => !document.querySelector('video.pip-video').hidden && document.querySelector('video.main-video').videoWidth > 0);
  }
  log('the shared screen reaches both families');

  // A raised hand shows in the teacher's list of viewers.
  await family2.locator('button.hand').click();
  await teacher.locator('.viewer .hand-raised').waitFor({ timeout: 5000 });

  // Audio only, from the quality menu: video stops arriving while audio goes on; then video
  // comes back.
  await family1.getByLabel('Video quality').selectOption('audio_only');
  await family1.waitForTimeout(500);
  await flowing('family1 audio only', family1, (a, b) =>
    sum(b, 'framesDecoded') === sum(a, 'framesDecoded') && sum(b, 'audioPackets') > sum(a, 'audioPackets'));
  await family1.getByLabel('Video quality').selectOption('auto');
  await flowing('family1 video again', family1, (a, b) => sum(b, 'framesDecoded') > sum(a, 'framesDecoded') + 5);
  log('audio only pauses video and resumes it');

  // Stopping the share takes the screen away again; the camera goes back to full size.
  await teacher.locator('button.share').click();
  await family1.waitForFunction(() => ![...window.homeroom.session.tracks.values()].some((t) => t.source === 'screen'), null, { timeout: 10000 });
  await family1.waitForFunction(() => document.querySelector('video.pip-video').hidden && document.querySelector('video.main-video').videoWidth > 0);
  log('stopping the share leaves the camera');

  // The teacher lets a student present: the student's camera reaches the studio; then the
  // teacher removes the student, whose page says so.
  const student = await person('student', cfg.student);
  await student.goto(`${cfg.base}/watch/${cfg.classroom}`);
  await state(student, 'joined');
  const row = teacher.locator('.viewer', { hasText: cfg.student });
  await row.locator('button', { hasText: 'Let' }).click();
  await student.locator('button', { hasText: 'Present my camera' }).click();
  await teacher.waitForFunction(() => {
    const v = document.querySelector('video.guest-video');
    return v && !v.hidden && v.videoWidth > 0;
  }, null, { timeout: 15000 });
  log('a promoted student presents to the studio');
  // Taking it back stops the student's camera and microphone; promoted again, the student
  // presents again from the same page.
  await student.evaluate(() => { window.presented = window.homeroom.session.local.map((e) => e.track); });
  await row.locator('button', { hasText: 'presenting' }).click();
  await student.waitForFunction(() => window.presented.length === 2 && window.presented.every((t) => t.readyState === 'ended'), null, { timeout: 5000 });
  await student.locator('button', { hasText: 'Present my camera' }).waitFor({ state: 'hidden' });
  await teacher.waitForFunction(() => document.querySelector('video.guest-video').hidden, null, { timeout: 5000 });
  log('taking presenting back stops the student\'s tracks');
  await row.locator('button', { hasText: 'Let' }).click();
  await student.locator('button', { hasText: 'Present my camera' }).click();
  const studentId = await student.evaluate(() => String(window.homeroom.session.meId));
  await flowing('the student presents again', teacher, (a, b) => (b[studentId]?.framesDecoded || 0) > (a[studentId]?.framesDecoded || 0) + 5);
  await teacher.waitForFunction(() => {
    const v = document.querySelector('video.guest-video');
    return v && !v.hidden && v.videoWidth > 0;
  }, null, { timeout: 15000 });
  log('promoted again, the student publishes again');
  await row.locator('button', { hasText: 'Remove' }).click();
  await state(student, 'kicked');
  await student.locator('.overlay', { hasText: 'removed' }).waitFor();
  await teacher.locator('.viewer').nth(1).waitFor();
  await family2.waitForFunction(() => document.documentElement.lang === 'es');
  await shoot(family1, 'watch.png');
  await shoot(family2, 'watch-phone-es.png');
  await shoot(teacher, 'studio.png');

  await teacher.locator('button.end').click();
  // Ending asks first.
  await teacher.locator('button.confirm-end').click();
  for (const page of [family1, family2]) {
    await state(page, 'ended');
    await page.locator('.overlay[data-state="ended"]').waitFor({ state: 'visible', timeout: 5000 });
  }
  const shown = await family2.locator('.overlay').innerText();
  if (!shown.includes('terminó')) throw new Error(`family2 (Spanish) shows: ${shown}`);
  log('both watchers show the end');
});

await scenario('tutoring', async () => {
  const tutor = await person('tutor', cfg.tutor);
  await tutor.goto(`${cfg.base}/tutor/${cfg.tutoring}`);
  await state(tutor, 'joined');
  const teacher = await person('teacher', cfg.teacher);
  await teacher.goto(`${cfg.base}/tutor/${cfg.tutoring}`);
  await state(teacher, 'joined');
  const student = await person('student', cfg.student);
  await student.goto(`${cfg.base}/tutor/${cfg.tutoring}`);
  await state(student, 'waiting');
  await tutor.locator('.waiting-list button').click();
  await state(student, 'joined');
  log('tutor, teacher and admitted student are in');

  for (const [name, page] of [['tutor', tutor], ['teacher', teacher], ['student', student]]) {
    const others = await page.evaluate(() => {
      const s = window.homeroom.session;
      return [...s.participants.keys()].filter((id) => id !== s.meId).map(String);
    });
    if (others.length !== 2) throw new Error(`${name} sees ${others.length} others`);
    const s = await flowing(name, page, (a, b) =>
      others.every((id) => (b[id]?.framesDecoded || 0) > (a[id]?.framesDecoded || 0) && b[id].framesDecoded > 10));
    log(`${name} decodes both others`, JSON.stringify(s));
  }
  await tutor.waitForFunction(() => document.querySelectorAll('.grid .tile').length === 3);
  // The fake microphones beep: someone is shown speaking.
  await tutor.locator('.tile.speaking').first().waitFor({ timeout: 10000 });
  // A click on the teacher's picture pins it: the server may send it at any layer, the
  // student's camera at most low (its `reception`). The tile's Pin button unpins it from the
  // keyboard.
  const teacherId = await teacher.evaluate(() => window.homeroom.session.meId);
  const teacherTile = tutor.locator(`.tile[data-participant="${teacherId}"]`);
  await teacherTile.locator('video').click();
  await teacherTile.locator('button.pin[aria-pressed="true"]').waitFor({ timeout: 5000 });
  await teacherTile.locator('.badge.pinned').waitFor();
  await tutor.waitForFunction((id) => {
    const s = window.homeroom.session;
    const pinned = [...s.tracks.values()].find((t) => t.participant_id === id && t.kind === 'video');
    const layers = Object.entries(s.reception?.layers || {});
    return s.focused === pinned?.track_id && layers.length === 2 &&
      layers.every(([track, layer]) => (track === pinned.track_id ? layer !== 'off' : layer === 'low'));
  }, teacherId, { timeout: 15000 }).catch(async () => {
    const seen = await tutor.evaluate(() => ({ focused: window.homeroom.session.focused, reception: window.homeroom.session.reception }));
    throw new Error(`pinned, the tutor receives ${JSON.stringify(seen)}`);
  });
  await shoot(tutor, 'tutoring.png');
  await teacherTile.locator('button.pin').focus();
  await tutor.keyboard.press('Enter');
  await teacherTile.locator('button.pin[aria-pressed="false"]').waitFor({ timeout: 5000 });
  if (await tutor.evaluate(() => window.homeroom.session.focused !== null)) throw new Error('the teacher stays pinned');
  log('a tile pins by a click and unpins from the keyboard');
});

await scenario('open house', async () => {
  // A new family accepts an invitation on the join page and lands on their classes.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'en-US' });
  const newcomer = await context.newPage();
  pages.push({ name: 'newcomer', page: newcomer, context });
  await newcomer.goto(`${cfg.base}/join#${cfg.invite}`);
  await newcomer.getByLabel('Your name as others see it').fill('New Family');
  await newcomer.getByLabel('Login').fill('new-family');
  await newcomer.getByLabel('Password').fill(cfg.password);
  await newcomer.locator('form button[type=submit]').click();
  await newcomer.waitForURL(`${cfg.base}/`);
  await newcomer.locator(`a[href="/class/${cfg.class_id}"]`).waitFor();
  log('a new family joined through the invitation page');

  // A password reset link, opened in the browser, sets a new password.
  await newcomer.goto(`${cfg.base}/reset#${cfg.reset_token}`);
  await newcomer.getByLabel('New password').fill('another long password');
  await newcomer.locator('form button[type=submit]').click();
  await newcomer.locator('p.ok').waitFor();
  await newcomer.goto(`${cfg.base}/signin`);
  await newcomer.getByLabel('Login').fill(cfg.tutor);
  await newcomer.getByLabel('Password').fill('another long password');
  await newcomer.locator('form button[type=submit]').click();
  await newcomer.waitForURL(`${cfg.base}/`);
  await newcomer.locator('h1', { hasText: cfg.tutor }).waitFor();
  log('a reset link set a new password');

  // The teacher makes a guest link on the class page and goes live in the open house.
  const teacher = await person('teacher', cfg.teacher);
  await teacher.goto(`${cfg.base}/class/${cfg.class_id}`);
  const room = teacher.locator('.room', { hasText: 'open_house room' });
  await room.locator('button', { hasText: 'Make guest link' }).click();
  const link = await room.locator('.guest-link input').inputValue();
  const code = link.split('#')[1];
  await teacher.goto(`${cfg.base}/studio/${cfg.open_house}`);
  await teacher.locator('button.go-live').click();
  await state(teacher, 'joined');

  // Members see it live on the class page.
  await newcomer.goto(`${cfg.base}/class/${cfg.class_id}`);
  await newcomer.locator('.live-banner', { hasText: 'open_house room' }).waitFor({ timeout: 10000 });

  // A guest enters a name, watches and asks a question.
  const guestContext = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'en-US' });
  const guest = await guestContext.newPage();
  pages.push({ name: 'guest', page: guest, context: guestContext });
  await guest.goto(`${cfg.base}/guest#${code}`);
  await guest.getByLabel('Your name').fill('Visitor');
  await guest.locator('form button[type=submit]').click();
  await state(guest, 'joined');
  await flowing('guest', guest, (a, b) => sum(b, 'framesDecoded') > sum(a, 'framesDecoded') && sum(b, 'audioPackets') > sum(a, 'audioPackets'));
  await guest.locator('.chat-form input').fill('When does school start?');
  await guest.locator('.chat-form button').click();
  await teacher.locator('.chat-log li', { hasText: 'When does school start?' }).waitFor({ timeout: 10000 });
  await shoot(guest, 'open-house.png');
  log('the guest watches and asks in the chat');
});

await scenario('timeline', async () => {
  // The teacher posts a class update; a family reads it, comments, and opens the log of the
  // classroom session it attended earlier in this run.
  const teacher = await person('teacher-timeline', cfg.teacher);
  await teacher.goto(`${cfg.base}/class/${cfg.class_id}`);
  await teacher.getByLabel('What happened in class (Markdown works)').fill('**Volcano day**: everyone built a volcano.');
  await teacher.getByLabel('Learning targets').fill('Explains eruptions');
  await teacher.locator('form.composer button[type=submit]').click();
  await teacher.locator('article.post', { hasText: 'Volcano day' }).waitFor();
  const family = await person('family-timeline', cfg.family1);
  await family.goto(`${cfg.base}/class/${cfg.class_id}`);
  const post = family.locator('article.post', { hasText: 'Volcano day' });
  await post.locator('strong', { hasText: 'Volcano day' }).waitFor();
  await post.locator('.badge.target', { hasText: 'Explains eruptions' }).waitFor();
  await post.locator('.comment-form input').fill('Wonderful!');
  await post.locator('.comment-form button').click();
  await family.locator('article.post .comments li', { hasText: 'Wonderful!' }).waitFor();
  await family.locator('article.session-item', { hasText: 'classroom room' }).locator('a').first().click();
  await family.locator('section.attendance td', { hasText: cfg.family1 }).waitFor();
  if ((await family.locator('section.attendance tr').count()) !== 1) throw new Error('a family sees only its own attendance');
  await shoot(family, 'session-log.png');
  await family.goto(`${cfg.base}/class/${cfg.class_id}`);
  await family.locator('article.post', { hasText: 'Volcano day' }).waitFor();
  await shoot(family, 'timeline.png');
  log('a class update reaches a family, who comments and reads its own attendance');
  // The first page holds the ten newest items; "Older" brings the rest, the oldest post last.
  const items = family.locator('.timeline-items > article');
  await family.locator('article.post', { hasText: 'Earlier update 9' }).waitFor();
  if ((await items.count()) !== 10) throw new Error(`the first page shows ${await items.count()} items, not 10`);
  if (await family.locator('article.post', { hasText: 'Earlier update 0' }).count()) throw new Error('the oldest post is on the first page');
  await family.locator('button.older').click();
  await family.locator('article.post', { hasText: 'Earlier update 0' }).waitFor();
  log('older items load a page at a time');
  // The family's pages reported the posts they showed: the teacher sees who has seen them.
  await teacher.reload();
  const volcano = teacher.locator('article.post', { hasText: 'Volcano day' });
  await volcano.locator('button.seen-by-toggle').click();
  await volcano.locator('ul.seen-by li', { hasText: cfg.family1 }).waitFor();
  log('the teacher sees which families have seen a post');
});

await finish();

async function finish() {
  await browser.close();
  if (problems.length) {
    console.error(`browser tests failed:\n- ${problems.join('\n- ')}`);
    process.exit(1);
  }
  log(`all browser scenarios of this run passed`);
  process.exit(0);
}
