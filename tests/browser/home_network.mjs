// The family at home, for scenarios whose family may be on a network of its own: when the Rust
// test runs it in a network namespace (netns.rs), `cfg.ns_chromium` starts its Chromium there
// and `cfg.family_base` is the server's address seen from there; otherwise the family shares
// the host's browser and address. The teacher always goes live from the host.

import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './chromium.mjs';
import { browser, cfg, context, log, person, state } from './common.mjs';

export const familyBrowser = cfg.ns_chromium
  ? await chromium.launch({ executablePath: cfg.ns_chromium, headless: true, args: CHROMIUM_ARGS })
  : browser;
export const familyBase = cfg.family_base || cfg.base;

/** Fills in the sign-in page the family is on; the page then goes where `next` says. */
export async function signIn(page, login) {
  await page.getByLabel('Login').fill(login);
  await page.getByLabel('Password').fill(cfg.password);
  await page.locator('form button[type=submit]').click();
}

/**
 * The teacher goes live in the studio (in `teacherOn`, a browser with another camera, say); the
 * family opens the watch page and signs in. Both pages, joined.
 */
export async function teacherLiveFamilyWatching(familyOptions = {}, teacherOn = browser) {
  const teacher = await person('teacher', cfg.teacher, { on: teacherOn });
  await teacher.goto(`${cfg.base}/studio/${cfg.classroom}`);
  await teacher.waitForFunction(() => document.querySelector('video.preview')?.readyState >= 2, null, { timeout: 15000 });
  await teacher.locator('button.go-live').click();
  await state(teacher, 'joined');
  log('the teacher is live');
  const family = await context('family', { on: familyBrowser, ...familyOptions });
  await family.goto(`${familyBase}/watch/${cfg.classroom}`);
  await family.waitForURL(/\/signin/);
  await signIn(family, cfg.family);
  await family.waitForURL(`${familyBase}/watch/${cfg.classroom}`);
  await state(family, 'joined');
  return { teacher, family };
}

/** Closes the family's own browser, if it has one. */
export async function closeFamilyBrowser() {
  if (familyBrowser !== browser) await familyBrowser.close();
}
