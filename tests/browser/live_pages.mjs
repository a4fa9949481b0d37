// Live pages that stay current: a family's class page (Spanish, on a phone) learns within 2 s
// that the class went live and that it ended, without a reload (the class event stream); the
// watch page decodes video and shows that the teacher records 10 s of the session (the family
// chats 5 s in), then shows the end with a link to the session's log, from which the family
// replays the recording: about 10 s long, a click on the chat line seeks to it and shows
// frames, at double speed; the teacher publishes it to the timeline with a note. A post
// appears on another open class page. Then a tutoring room that its host has not opened yet:
// the family is told whom it waits for, the tutor opens it, lets the family in, and both see
// each other. Then the installable app on a phone: the manifest is valid (as Chromium reads
// it), the service worker registers at the root and shows the offline page without a network,
// the add-to-home-screen hint can be put away, and the notification settings are clicked
// through (a kind turned off stays off; "send me a test" answers). Started by main.rs
// (`live_pages_stay_current`).

import { cfg, finish, flowing, log, person, PHONE, scenario, shoot, state, sum, within } from './common.mjs';

const bannerShown = () => {
  const banner = document.querySelector('.live-banner');
  return banner && !banner.hidden && banner.offsetHeight > 0;
};

await scenario('class page follows the live session', async () => {
  const family = await person('family-es-phone', cfg.family, { locale: 'es-ES', viewport: PHONE });
  await family.goto(`${cfg.base}/class/${cfg.class_id}`);
  await family.waitForSelector('body[data-events="open"]');
  // A marker that a reload would wipe: everything below must happen in this same document.
  await family.evaluate(() => { window.notReloaded = true; });
  if (await family.evaluate(bannerShown)) throw new Error('live banner before the class is live');

  const teacher = await person('teacher', cfg.teacher);
  await teacher.goto(`${cfg.base}/studio/${cfg.classroom}`);
  const heading = await teacher.locator('h1').innerText();
  if (!heading.includes(cfg.classroom_name) || !heading.includes(cfg.class_name)) throw new Error(`studio heading: ${heading}`);
  await teacher.locator(`.titles a.back-link[href="/class/${cfg.class_id}"]`).waitFor();
  await teacher.waitForFunction(() => document.querySelector('video.preview')?.readyState >= 2, null, { timeout: 15000 });
  await teacher.locator('button.go-live').click();
  await state(teacher, 'joined');
  await within(2000, 'the class page shows the live banner', family, bannerShown);
  if (!(await family.evaluate(() => window.notReloaded))) throw new Error('the class page reloaded');
  const banner = await family.locator('.live-banner').innerText();
  if (!banner.includes('En vivo')) throw new Error(`banner is not in Spanish: ${banner}`);

  // The studio's timer runs while live.
  const first = await teacher.locator('.live-timer').innerText();
  await teacher.waitForFunction((was) => document.querySelector('.live-timer').innerText !== was, first, { timeout: 3000 });

  // The family follows the banner's link (in a second tab, the class page stays open).
  const watch = await family.context().newPage();
  await watch.goto(`${cfg.base}/watch/${cfg.classroom}`);
  await state(watch, 'joined');
  await flowing('family watch', watch, (a, b) => sum(b, 'framesDecoded') > sum(a, 'framesDecoded') && sum(b, 'framesDecoded') > 10);
  log('the family decodes video');
  await watch.locator(`.titles a.back-link[href="/class/${cfg.class_id}"]`).waitFor();

  // The teacher records 10 s; the family's page says so while it runs, and chats 5 s in.
  const recordingShown = () => document.querySelector('.badge.recording')?.hidden === false;
  await teacher.locator('button.record').click();
  const recordingSince = Date.now();
  await within(3000, 'the watch page shows the recording', watch, recordingShown);
  await shoot(watch, 'live/watch-es-phone.png');
  await watch.waitForTimeout(Math.max(0, 5000 - (Date.now() - recordingSince)));
  await watch.locator('.chat-form input').fill('Hola desde casa');
  await watch.locator('.chat-form button[type=submit]').click();
  await watch.waitForTimeout(Math.max(0, 10000 - (Date.now() - recordingSince)));
  await teacher.locator('button.record[aria-pressed="true"]').click();
  await within(3000, 'the badge goes when the recording stops', watch, () => !document.querySelector('.badge.recording') || document.querySelector('.badge.recording').hidden);

  // Ending asks first; "keep going" keeps it live.
  await teacher.locator('button.end').click();
  await teacher.locator('.end-confirm button.keep-going').click();
  if (!(await teacher.locator('.end-confirm').isHidden())) throw new Error('the confirmation stays open');
  await teacher.locator('button.end').click();
  await shoot(teacher, 'live/studio-confirm-end.png');
  await teacher.locator('button.confirm-end').click();
  await within(2000, 'the class page takes the banner away', family, () => !document.querySelector('.live-banner') || document.querySelector('.live-banner').hidden);
  if (!(await family.evaluate(() => window.notReloaded))) throw new Error('the class page reloaded');

  // The watch page: the end, a link to the log, no hands or chat input any more.
  await state(watch, 'ended');
  await watch.locator('.overlay[data-state="ended"]').waitFor({ state: 'visible', timeout: 5000 });
  const logLink = watch.locator('a.session-log-link');
  await logLink.waitFor({ state: 'visible' });
  const href = await logLink.getAttribute('href');
  if (!/^\/session\/\d+$/.test(href)) throw new Error(`log link is ${href}`);
  for (const gone of ['button.hand', '.chat-form']) {
    if (await watch.locator(gone).isVisible()) throw new Error(`${gone} still shown after the end`);
  }
  // The studio too: no viewer list or chat input; the log is a click away.
  await teacher.locator('a.session-log-link').waitFor({ state: 'visible' });
  for (const gone of ['section.audience', '.chat-form']) {
    if (await teacher.locator(gone).isVisible()) throw new Error(`studio: ${gone} still shown after the end`);
  }
  await shoot(watch, 'live/watch-ended-es-phone.png');
  await logLink.click();
  await watch.waitForURL(`${cfg.base}${href}`);
  await watch.locator('section.attendance').waitFor();
  log('the end reaches the class page within 2 s; the watch page links to the log');

  // The recording, from the log: it lasts about 10 s, the chat line sits beside it, and a
  // click on the line seeks there (about 5 s in) and shows a picture; 2× plays faster.
  await watch.locator('a.recording-link').click();
  await watch.waitForURL(/\/recording\/\d+$/);
  await watch.waitForFunction(() => document.querySelector('video.replay-main')?.readyState >= 1);
  const duration = await watch.evaluate(() => document.querySelector('video.replay-main').duration);
  if (!(duration > 9 && duration < 11.5)) throw new Error(`the recording lasts ${duration} s`);
  const line = watch.locator('.replay-chat li', { hasText: 'Hola desde casa' });
  await watch.locator('button.speed[data-rate="2"]').click();
  await line.locator('button').click();
  await watch.waitForFunction(() => {
    const v = document.querySelector('video.replay-main');
    return !v.seeking && v.readyState >= 2 && Math.abs(v.currentTime - 5) < 1.5;
  });
  const picture = await watch.evaluate(() => {
    const v = document.querySelector('video.replay-main');
    const canvas = document.createElement('canvas');
    canvas.width = 64;
    canvas.height = 36;
    const g = canvas.getContext('2d');
    g.drawImage(v, 0, 0, 64, 36);
    const d = g.getImageData(0, 0, 64, 36).data;
    let [lo, hi] = [765, 0];
    for (let i = 0; i < d.length; i += 4) {
      const sum = d[i] + d[i + 1] + d[i + 2];
      [lo, hi] = [Math.min(lo, sum), Math.max(hi, sum)];
    }
    return { contrast: hi - lo, at: v.currentTime, rate: v.playbackRate, width: v.videoWidth };
  });
  if (picture.contrast < 30 || !picture.width) throw new Error(`no picture at ${picture.at} s: ${JSON.stringify(picture)}`);
  if (picture.rate !== 2) throw new Error(`plays at ${picture.rate}×`);
  await within(2000, 'the chat line is marked as played', watch, () => document.querySelector('.replay-chat li.current')?.innerText.includes('Hola desde casa'));
  await shoot(watch, 'live/replay-es-phone.png');
  log(`the recording plays: ${duration.toFixed(2)} s, a picture at ${picture.at.toFixed(2)} s`);

  // The teacher publishes it to the class timeline, from the same pages.
  await teacher.locator('a.session-log-link').click();
  await teacher.locator('a.recording-link').click();
  await teacher.getByLabel('A note for the families').fill('Today in class, for those at work.');
  await teacher.locator('form.publish-recording button[type=submit]').click();
  await teacher.locator('.published-note').waitFor({ state: 'visible' });
});

await scenario('a new post appears on an open class page', async () => {
  const reader = await person('family2', cfg.family2);
  await reader.goto(`${cfg.base}/class/${cfg.class_id}`);
  await reader.waitForSelector('body[data-events="open"]');
  await reader.evaluate(() => { window.notReloaded = true; });
  const teacher = await person('teacher-post', cfg.teacher);
  await teacher.goto(`${cfg.base}/class/${cfg.class_id}`);
  await teacher.getByLabel('What happened in class (Markdown works)').fill('**Kite day**: we flew kites.');
  await teacher.locator('form.composer button[type=submit]').click();
  await within(2000, 'the post reaches the other class page', reader,
    () => [...document.querySelectorAll('article.post')].some((a) => a.innerText.includes('Kite day')));
  if (!(await reader.evaluate(() => window.notReloaded))) throw new Error('the class page reloaded');
  // And a comment the other way.
  const post = reader.locator('article.post', { hasText: 'Kite day' });
  await post.locator('.comment-form input').fill('Lovely!');
  await post.locator('.comment-form button').click();
  await within(2000, 'the comment reaches the teacher', teacher,
    () => [...document.querySelectorAll('article.post .comments li')].some((li) => li.innerText.includes('Lovely!')));
});

await scenario('tutoring room waits for its host', async () => {
  const family = await person('family-tutoring', cfg.family);
  await family.goto(`${cfg.base}/tutor/${cfg.tutoring}`);
  await state(family, 'not_live');
  const notice = family.locator('.waiting-notice');
  await notice.waitFor({ state: 'visible' });
  const said = await notice.innerText();
  if (!said.includes(cfg.tutor_name)) throw new Error(`the family is not told whom it waits for: ${said}`);
  await shoot(family, 'live/tutoring-waiting-for-host.png');

  const tutor = await person('tutor', cfg.tutor);
  await tutor.goto(`${cfg.base}/tutor/${cfg.tutoring}`);
  await state(tutor, 'joined');
  // The family's page joins by itself and waits to be let in; the tutor lets it in.
  await state(family, 'waiting', 10000);
  await tutor.locator('.waiting-list button').click();
  await state(family, 'joined');
  for (const [name, page] of [['tutor', tutor], ['family', family]]) {
    const others = await page.evaluate(() => [...window.homeroom.session.participants.keys()].map(String));
    if (others.length !== 1) throw new Error(`${name} sees ${others.length} others`);
    await flowing(name, page, (a, b) => others.every((id) => (b[id]?.framesDecoded || 0) > (a[id]?.framesDecoded || 0) && b[id].framesDecoded > 10));
    log(`${name} decodes the other`);
  }
});

await scenario('installable app and notification settings', async () => {
  const family = await person('family-app', cfg.family, { viewport: PHONE });
  // Chromium's own reading of the manifest: no errors, the fields an install needs.
  const cdp = await family.context().newCDPSession(family);
  const manifest = await cdp.send('Page.getAppManifest');
  if (manifest.errors.length) throw new Error(`manifest errors: ${JSON.stringify(manifest.errors)}`);
  const app = JSON.parse(manifest.data);
  if (app.name !== 'Homeroom' || app.display !== 'standalone' || !String(app.start_url).endsWith('/')) {
    throw new Error(`manifest: ${manifest.data}`);
  }
  for (const size of [192, 512]) {
    const icon = app.icons.find((i) => i.sizes === `${size}x${size}` && i.purpose !== 'maskable');
    if (!icon) throw new Error(`no ${size} px icon`);
    const real = await family.evaluate(async (src) => {
      const img = new Image();
      img.src = src;
      await img.decode();
      return img.naturalWidth;
    }, new URL(icon.src, cfg.base).href);
    if (real !== size) throw new Error(`the ${size} px icon is ${real} px`);
  }
  // The service worker controls the whole site.
  const scope = await family.evaluate(async () => (await navigator.serviceWorker.ready).scope);
  if (scope !== `${cfg.base}/`) throw new Error(`service worker scope ${scope}`);
  await family.reload();
  await family.waitForFunction(() => navigator.serviceWorker.controller !== null);
  log('the service worker registered and controls the page');

  // The phone hint: shown until put away, and not again.
  const hint = family.locator('#install-hint');
  await hint.waitFor({ state: 'visible' });
  await hint.getByRole('button', { name: 'Not now' }).click();
  await family.reload();
  await family.locator('main h1').waitFor();
  if (await hint.isVisible()) throw new Error('the install hint came back');

  // No network: the offline page, then back.
  await family.context().setOffline(true);
  await family.goto(`${cfg.base}/class/${cfg.class_id}`).catch(() => {});
  await family.locator('h1', { hasText: 'You are offline' }).waitFor({ timeout: 5000 });
  await shoot(family, 'app/offline-phone.png');
  await family.context().setOffline(false);

  // The settings page from the header: turn "Class updates" off for the class; it stays off.
  await family.goto(`${cfg.base}/`);
  await family.locator('#nav-notifications').click();
  await family.waitForURL(`${cfg.base}/notifications`);
  const box = () => family.locator(`fieldset[data-class-id="${cfg.class_id}"]`).getByLabel('Class updates');
  if (!(await box().isChecked())) throw new Error('updates start switched on');
  await box().uncheck();
  await family.locator('form button[type=submit]', { hasText: 'Save' }).click();
  await family.getByText('Saved.').waitFor();
  await family.reload();
  await family.locator('#send-test').waitFor();
  if (await box().isChecked()) throw new Error('the switch did not stay off');
  if (!(await family.locator(`fieldset[data-class-id="${cfg.class_id}"]`).getByLabel('Live lessons').isChecked())) {
    throw new Error('another switch changed');
  }
  await family.locator('#send-test').click();
  await family.locator('#test-result', { hasText: /turn on notifications|Test sent/ }).waitFor();
  await shoot(family, 'app/notifications-phone.png');
});

await finish();
