// Every page on a phone (375 px wide), the school administration pages included, in English and in Spanish (switched with the page's
// language menu): axe-core finds no WCAG 2.x level A or AA violation (contrast included), the
// page is no wider than the screen, and a screenshot goes to tests/artifacts/phone/. Signed-out
// pages log no error in the console. Started by main.rs (`pages_are_accessible_on_phones`).

import { createRequire } from 'node:module';
import { cfg, context, finish, log, person, PHONE, problems, scenario, shoot, state } from './common.mjs';

const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];
// axe is injected as a script of its own: the pages' Content-Security-Policy would refuse it.
const options = (extra = {}) => ({ viewport: PHONE, bypassCSP: true, ...extra });

async function audit(page, name) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.addScriptTag({ path: axePath });
  const result = await page.evaluate((tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags } }), TAGS);
  for (const v of result.violations) {
    problems.push(`${name}: axe ${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => `${n.target.join(' ')} ${n.failureSummary?.split('\n').slice(1).join(' ')}`).join(' | ')}`);
  }
  log(`${name}: axe ${result.violations.length} violations, ${result.passes.length} rules passed`);
}

async function fits(page, name) {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  if (width > PHONE.width) {
    // Name the outermost elements that stick out, to say what to fix.
    const wide = await page.evaluate((limit) => [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right > limit && !(el.parentElement.getBoundingClientRect().right > limit))
      .slice(0, 5).map((el) => `${el.tagName.toLowerCase()}.${[...el.classList].join('.')} (${Math.round(el.getBoundingClientRect().right)} px)`), PHONE.width);
    problems.push(`${name}: the page is ${width} px wide on a ${PHONE.width} px phone: ${wide.join(', ')}`);
  }
}

async function settle(page) {
  await page.waitForFunction(() => !document.querySelector('main .loading'));
  await page.evaluate(() => document.fonts.ready);
  await page.waitForTimeout(300);
}

/** The page in its language and then the other: axe, width and a screenshot for each. */
async function check(page, name) {
  await settle(page);
  const first = await page.evaluate(() => document.documentElement.lang);
  for (const lang of [first, first === 'en' ? 'es' : 'en']) {
    if (lang !== first) {
      await page.locator('#lang-switch').selectOption(lang);
      await page.waitForFunction((l) => document.documentElement.lang === l, lang);
      await page.waitForTimeout(200);
    }
    await audit(page, `${name} (${lang})`);
    await fits(page, `${name} (${lang})`);
    await shoot(page, `phone/${name}-${lang}.png`);
  }
  await page.locator('#lang-switch').selectOption(first);
}

await scenario('signed-out pages', async () => {
  for (const locale of ['en-US', 'es-ES']) {
    const page = await context(`signed-out-${locale}`, options({ locale, strictConsole: true }));
    for (const [name, path] of [['signin', '/signin'], ['join', '/join'], ['reset', '/reset'], ['guest', '/guest'], ['setup', '/setup'], ['check', '/check']]) {
      await page.goto(`${cfg.base}${path}`);
      await page.locator('main h1').waitFor();
      if (locale === 'en-US') await check(page, name);
      else {
        await settle(page);
        await audit(page, `${name} (es, fresh)`);
      }
    }
  }
});

await scenario('signed-in pages', async () => {
  const teacher = await person('teacher', cfg.teacher, options());
  await check(teacher, 'home');
  await teacher.goto(`${cfg.base}/notifications`);
  await teacher.locator('#send-test').waitFor();
  await check(teacher, 'notifications');
  await teacher.goto(`${cfg.base}/class/${cfg.class_id}`);
  await teacher.locator('article.post').first().waitFor();
  await check(teacher, 'class-teacher');
  await teacher.goto(`${cfg.base}/studio/${cfg.classroom}`);
  await teacher.waitForFunction(() => document.querySelector('video.preview')?.readyState >= 2, null, { timeout: 15000 });
  await check(teacher, 'studio');
  await teacher.locator('button.go-live').click();
  await state(teacher, 'joined');

  const family = await person('family', cfg.family, options({ locale: 'es-ES' }));
  await family.goto(`${cfg.base}/class/${cfg.class_id}`);
  await family.locator('.live-banner').waitFor({ state: 'visible' });
  await family.locator('article.post').first().waitFor();
  await check(family, 'class-family');
  await family.goto(`${cfg.base}/watch/${cfg.classroom}`);
  await state(family, 'joined');
  await family.waitForFunction(() => document.querySelector('video.main-video')?.videoWidth > 0, null, { timeout: 15000 });
  await check(family, 'watch');
  await teacher.locator('.viewer').first().waitFor();
  await check(teacher, 'studio-live');
  await teacher.locator('button.end').click();
  await teacher.locator('button.confirm-end').waitFor();
  await audit(teacher, 'studio-confirm-end');
  await teacher.locator('button.confirm-end').click();
  await state(family, 'ended');
  await teacher.locator('a.session-log-link').waitFor({ state: 'visible' });
  await check(family, 'watch-ended');
  await check(teacher, 'studio-ended');
  await teacher.locator('a.session-log-link').click();
  await teacher.locator('section.attendance').waitFor();
  await check(teacher, 'session-log');

  const waiting = await family.context().newPage();
  await waiting.goto(`${cfg.base}/tutor/${cfg.tutoring}`);
  await state(waiting, 'not_live');
  await check(waiting, 'tutoring-waiting-for-host');
  const tutor = await person('tutor', cfg.tutor, options());
  await tutor.goto(`${cfg.base}/tutor/${cfg.tutoring}`);
  await state(tutor, 'joined');
  await state(waiting, 'waiting', 10000);
  await tutor.locator('.waiting-list button').waitFor();
  await check(tutor, 'tutoring-host');
  await check(waiting, 'tutoring-waiting-to-be-let-in');
  await tutor.locator('.waiting-list button').click();
  await state(waiting, 'joined');
  await tutor.waitForFunction(() => document.querySelectorAll('.grid .tile').length === 2);
  await check(tutor, 'tutoring');
});

await scenario('school administration pages', async () => {
  const admin = await person('admin', cfg.admin, options());
  await check(admin, 'home-admin');
  for (const [name, path] of [['people', '/people'], ['classes', '/classes'], ['school', '/school'],
    ['manage-class', `/class/${cfg.class_id}/manage`]]) {
    await admin.goto(`${cfg.base}${path}`);
    await admin.locator('main h1').waitFor();
    await check(admin, name);
  }
});

await finish();
