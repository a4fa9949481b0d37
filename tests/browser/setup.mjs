// A school sets itself up in a real browser, from an empty server, with clicks and typing
// only (no API calls from here): the first admin names the school and makes a teacher, whose
// set-password link opens in another browser; a class; the teacher adds two students, makes a
// family and a tutor invitation and prints a Spanish invitation sheet (one PDF page whose QR
// code decodes to the invitation link); the family (a Spanish phone) and the tutor accept in
// their own browsers and see the class; the teacher makes a tutoring room hosted by the tutor.
//
// Started by main.rs with HOMEROOM_BROWSER_TEST = {base, chromium, artifacts, password,
// secret}. The pieces are exported so a later scenario (live media) can reuse the people and
// their browser contexts: `launch`, `person`, `setUpSchool`, `checkInvitationSheet`, `manageMore`.

import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './chromium.mjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import jsQR from 'jsqr';
import { PNG } from 'pngjs';

const started = Date.now();
export const log = (...args) => console.log(`[setup ${((Date.now() - started) / 1000).toFixed(1)}s]`, ...args);

/** Headless Chromium with a fake camera and microphone (for scenarios that go live later). */
export async function launch(cfg) {
  mkdirSync(cfg.artifacts, { recursive: true });
  return chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

/**
 * One person in their own browser context (own cookies), not signed in yet. Page errors and
 * CSP refusals are collected in `problems`.
 */
export async function person(browser, name, problems, { locale = 'en-US', viewport = { width: 1280, height: 900 } } = {}) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true, locale, viewport, isMobile: viewport.width < 500, hasTouch: viewport.width < 500,
    permissions: ['camera', 'microphone'],
  });
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  page.on('console', (m) => {
    const text = m.text();
    if (/Content Security Policy|Refused to/i.test(text)) problems.push(`${name}: ${text}`);
    if ((m.type() === 'error' || m.type() === 'warning') && !/status of 401/.test(text)) log(`${name} console.${m.type()}:`, text);
  });
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  return { name, context, page };
}

/** Fails when a page shows a stray "null" or "undefined" (an optional part gone wrong). */
async function clean(page) {
  const text = await page.locator('main').innerText();
  if (/\b(null|undefined)\b/.test(text)) throw new Error(`${page.url()} shows: ${text.slice(0, 300)}`);
}

const step = (page, name, done) => page.locator(`li.step[data-step="${name}"][data-done="${done}"]`).waitFor();

/** Accepts an invitation link as a new account on the join page. */
async function acceptInvite(page, link, labels, who) {
  await page.goto(link);
  await page.getByLabel(labels.name).fill(who.name);
  await page.getByLabel(labels.login, { exact: true }).fill(who.login);
  await page.getByLabel(labels.password, { exact: true }).fill(who.password);
  await page.locator('form button[type=submit]').click();
  await page.waitForURL(/\/$/);
}

/**
 * The whole set-up; returns the people (each `{name, context, page}`), the class and what was
 * made, for checks and for later scenarios.
 */
export async function setUpSchool(browser, cfg, problems) {
  const base = cfg.base;
  const admin = await person(browser, 'admin', problems);
  const a = admin.page;

  // The first admin, through the link printed at start.
  await a.goto(`${base}/setup#${cfg.secret}`);
  await a.getByLabel('Your name as others see it').fill('Site Admin');
  await a.getByLabel('Login', { exact: true }).fill('admin');
  await a.getByLabel('Password', { exact: true }).fill(cfg.password);
  await a.locator('form button[type=submit]').click();
  await a.waitForURL(`${base}/`);
  for (const name of ['school', 'teachers', 'classes']) await step(a, name, false);
  await a.screenshot({ path: join(cfg.artifacts, 'checklist-empty.png') });
  log('the admin sees an empty checklist');

  // Step 1: the school's name.
  await a.getByRole('link', { name: 'Name the school' }).click();
  await a.waitForURL(`${base}/school`);
  await a.getByLabel('School name').fill('Lincoln Elementary');
  await a.getByRole('button', { name: 'Save' }).click();
  await a.getByText('Saved.').waitFor();
  await a.getByRole('link', { name: 'Back to the checklist' }).click();
  await step(a, 'school', true);
  await step(a, 'teachers', false);

  // Step 2: a teacher account; its one-time set-password link is shown with Copy and Print.
  await a.getByRole('link', { name: 'Add teachers' }).click();
  await a.waitForURL(`${base}/people`);
  await a.getByLabel('Name', { exact: true }).fill('Ms Rivera');
  await a.getByLabel('Login', { exact: true }).fill('rivera');
  await a.getByLabel('Account for').selectOption('teacher');
  await a.getByRole('button', { name: 'Create account' }).click();
  const made = a.locator('.link-card-secret', { hasText: 'Account made for Ms Rivera' });
  const setPasswordLink = await made.locator('input.secret-link').inputValue();
  if (!setPasswordLink.includes('/reset#')) throw new Error(`set-password link is ${setPasswordLink}`);
  await made.getByRole('button', { name: 'Copy' }).click();
  await made.getByText('Copied').waitFor();
  await made.getByRole('button', { name: 'Print' }).waitFor();
  await a.locator('li.person[data-login="rivera"]', { hasText: 'Teacher' }).waitFor();
  log('the admin made a teacher account');

  // The teacher opens the link in their own browser and chooses a password.
  const teacher = await person(browser, 'teacher', problems);
  const t = teacher.page;
  await t.goto(setPasswordLink);
  await t.getByLabel('New password').fill(cfg.password);
  await t.getByRole('button', { name: 'Save password' }).click();
  await t.getByText('Your password is saved.').waitFor();
  await t.getByRole('link', { name: 'Sign in' }).click();
  await t.getByLabel('Login', { exact: true }).fill('rivera');
  await t.getByLabel('Password', { exact: true }).fill(cfg.password);
  await t.locator('form button[type=submit]').click();
  await t.waitForURL(`${base}/`);
  await t.locator('h1', { hasText: 'Hello, Ms Rivera' }).waitFor();
  log('the teacher set a password and signed in');

  // Step 3: a class taught by the teacher.
  await a.goto(`${base}/`);
  await step(a, 'teachers', true);
  await a.getByRole('link', { name: 'Create classes' }).click();
  await a.waitForURL(`${base}/classes`);
  // (A select's accessible name includes its chosen option: labels match by prefix here.)
  const newClass = a.locator('form.new-class');
  await newClass.getByLabel('Class name', { exact: true }).fill('Room 12');
  await newClass.getByLabel('Teacher').selectOption({ label: 'Ms Rivera (rivera)' });
  await a.getByRole('button', { name: 'Create class' }).click();
  const card = a.locator('li.class-card', { hasText: 'Room 12' });
  await card.getByText('Taught by Ms Rivera').waitFor();
  const classId = Number(await card.getAttribute('data-class-id'));
  await a.goto(`${base}/`);
  for (const name of ['school', 'teachers', 'classes']) await step(a, name, true);
  await clean(a);
  await a.screenshot({ path: join(cfg.artifacts, 'checklist-done.png') });
  log('the checklist is done');

  // The teacher manages the class: two students, pasted one per line.
  await t.goto(`${base}/`);
  await t.getByRole('link', { name: /Room 12/ }).click();
  await t.getByRole('link', { name: 'Manage class' }).click();
  await t.waitForURL(`${base}/class/${classId}/manage`);
  await t.locator('h1', { hasText: 'Manage Room 12' }).waitFor();
  await t.getByLabel("Students' names, one per line").fill('Ana Torres\nBeto Ruiz\n');
  await t.getByRole('button', { name: 'Add students' }).click();
  await t.locator('li.student', { hasText: 'Ana Torres' }).waitFor();
  await t.locator('li.student', { hasText: 'Beto Ruiz' }).waitFor();
  if ((await t.locator('li.student').count()) !== 2) throw new Error('two students expected');

  // A family invitation for Ana, and a tutor invitation: link, short code and QR code.
  const invitations = t.locator('#invitations');
  const newInvite = invitations.locator('form.new-invite-form');
  await newInvite.getByLabel('Invite a').selectOption('family');
  await invitations.locator('.student-picks').getByLabel('Ana Torres').check();
  await invitations.getByRole('button', { name: 'Make invitation' }).click();
  const familyCard = invitations.locator('.new-invite[data-role="family"]');
  const familyLink = await familyCard.locator('input.join-url').inputValue();
  const familyCode = (await familyCard.locator('.code').textContent()).trim();
  if (!familyLink.endsWith(`/join#${familyCode}`)) throw new Error(`family link ${familyLink} vs code ${familyCode}`);
  await familyCard.locator('img.qr').evaluate((img) => img.decode());
  await familyCard.getByRole('button', { name: 'Copy' }).click();
  await familyCard.getByText('Copied').waitFor();
  await newInvite.getByLabel('Invite a').selectOption('tutor');
  await invitations.getByRole('button', { name: 'Make invitation' }).click();
  const tutorLink = await invitations.locator('.new-invite[data-role="tutor"] input.join-url').inputValue();
  log('the teacher added two students and made a family and a tutor invitation');

  // The family, in Spanish on a phone, and the tutor accept in their own browsers.
  const family = await person(browser, 'family', problems, { locale: 'es-ES', viewport: { width: 390, height: 844 } });
  await acceptInvite(family.page, familyLink,
    { name: 'Su nombre tal como lo ven los demás', login: 'Usuario', password: 'Contraseña' },
    { name: 'Marta Torres', login: 'marta', password: cfg.password });
  await family.page.locator('h1', { hasText: 'Hola, Marta Torres' }).waitFor();
  await family.page.getByRole('link', { name: /Room 12/ }).waitFor();
  await clean(family.page);
  await family.page.screenshot({ path: join(cfg.artifacts, 'family-joined-phone.png') });
  const tutor = await person(browser, 'tutor', problems);
  await acceptInvite(tutor.page, tutorLink,
    { name: 'Your name as others see it', login: 'Login', password: 'Password' },
    { name: 'Tomás Tutor', login: 'tomas', password: cfg.password });
  await tutor.page.getByRole('link', { name: /Room 12/ }).waitFor();
  log('the family (Spanish, phone) and the tutor joined and see the class');

  // The teacher sees who joined through which invitation, and families with their student.
  await t.reload();
  await t.locator('li.invite[data-role="family"]', { hasText: 'Marta Torres' }).getByText('Joined:').waitFor();
  await t.locator('li.invite[data-role="tutor"]', { hasText: 'Tomás Tutor' }).waitFor();
  await t.locator('.member-group[data-role="family"] li.member', { hasText: 'Marta Torres' }).getByText('Family of Ana Torres').waitFor();

  // A tutoring room hosted by the tutor; the room card says who hosts.
  const rooms = t.locator('#rooms');
  const newRoom = rooms.locator('form.new-room');
  await newRoom.getByLabel('Kind').selectOption('tutoring');
  await newRoom.getByLabel('Name', { exact: true }).fill('Reading group');
  await newRoom.getByLabel('Host').selectOption({ label: 'Tomás Tutor · Tutor' });
  await newRoom.getByRole('button', { name: 'Add room' }).click();
  const reading = rooms.locator('li.room', { hasText: 'Reading group' });
  await reading.getByText('Hosted by Tomás Tutor').waitFor();
  // Who may ask to come in: Ana (and so her family).
  await reading.locator('form.entry-list').getByLabel('Ana Torres').check();
  await reading.getByRole('button', { name: 'Save who may come into Reading group' }).click();
  await reading.getByText('For Ana Torres and their families').waitFor();
  await clean(t);
  await t.screenshot({ path: join(cfg.artifacts, 'manage-class.png'), fullPage: true });
  await tutor.page.goto(`${base}/class/${classId}`);
  await tutor.page.locator('li.room', { hasText: 'Reading group' }).getByText('Hosted by Tomás Tutor').waitFor();
  await clean(tutor.page);
  const roomId = Number(await t.locator('li.room', { hasText: 'Reading group' }).getAttribute('data-room-id'));
  log('the teacher made a tutoring room hosted by the tutor, for Ana');

  return { people: { admin, teacher, family, tutor }, classId, roomId, familyLink, tutorLink };
}

/**
 * The rest of the set-up controls, on things made only for this (so the people and rooms of
 * `setUpSchool` stay as they were): a password link, deactivating and reactivating an account,
 * archiving a class, renaming and removing a student, renaming and deleting a room, and the
 * open house's guest link with its "Copied" feedback.
 */
export async function manageMore(cfg, world) {
  const base = cfg.base;
  const a = world.people.admin.page;
  const t = world.people.teacher.page;

  // People: a helper account, a new password link for it, deactivated and back.
  await a.goto(`${base}/people`);
  await a.getByLabel('Name', { exact: true }).fill('Temp Helper');
  await a.getByLabel('Login', { exact: true }).fill('temphelper');
  await a.getByLabel('Account for').selectOption('tutor');
  await a.getByRole('button', { name: 'Create account' }).click();
  const helper = a.locator('li.person[data-login="temphelper"]');
  await helper.getByRole('button', { name: 'New password link' }).click();
  await helper.locator('.link-card-secret input.secret-link').waitFor();
  if (!(await helper.locator('input.secret-link').inputValue()).includes('/reset#')) throw new Error('no reset link');
  await a.getByLabel('Search by name, login or email').fill('temp');
  if ((await a.locator('li.person').count()) !== 1) throw new Error('the search should find one person');
  await helper.getByRole('button', { name: 'Deactivate' }).click();
  await helper.getByText('Deactivated').waitFor();
  await helper.getByRole('button', { name: 'Reactivate' }).click();
  await helper.getByRole('button', { name: 'Deactivate' }).waitFor();
  await a.getByLabel('Search by name, login or email').fill('');
  await a.screenshot({ path: join(cfg.artifacts, 'people.png'), fullPage: true });
  log('the admin made a password link, deactivated and reactivated an account');

  // Classes: another class, renamed and archived; the checklist counts only active classes.
  await a.goto(`${base}/classes`);
  const newClass = a.locator('form.new-class');
  await newClass.getByLabel('Class name', { exact: true }).fill('Old class');
  await newClass.getByRole('button', { name: 'Create class' }).click();
  const old = a.locator('li.class-card', { hasText: 'Old class' });
  await old.getByLabel('New name for Old class').fill('Old class 2025');
  await old.getByRole('button', { name: 'Rename' }).click();
  const renamed = a.locator('li.class-card', { hasText: 'Old class 2025' });
  await renamed.getByRole('button', { name: 'Archive' }).click();
  await renamed.getByText('Archived').waitFor();
  await a.screenshot({ path: join(cfg.artifacts, 'classes.png'), fullPage: true });
  await a.goto(`${base}/`);
  await a.locator('li.step[data-step="classes"]', { hasText: 'Classes: 1' }).waitFor();
  log('the admin renamed and archived a class');

  // Students: one more, renamed, then removed.
  await t.goto(`${base}/class/${world.classId}/manage`);
  await t.getByLabel("Students' names, one per line").fill('Temp Kid');
  await t.getByRole('button', { name: 'Add students' }).click();
  const kid = t.locator('li.student', { hasText: 'Temp Kid' });
  await kid.getByRole('button', { name: 'Rename Temp Kid' }).click();
  await kid.locator('input[name=new_name]').fill('Carla Diaz');
  await kid.getByRole('button', { name: 'Save' }).click();
  const carla = t.locator('li.student', { hasText: 'Carla Diaz' });
  await carla.getByRole('button', { name: 'Remove Carla Diaz from the class' }).click();
  await carla.waitFor({ state: 'detached' });

  // Rooms: an open house, renamed; its guest link is copied on the class page; then deleted.
  const newRoom = t.locator('#rooms form.new-room');
  await newRoom.getByLabel('Kind').selectOption('open_house');
  await newRoom.getByLabel('Name', { exact: true }).fill('Open day');
  await newRoom.getByRole('button', { name: 'Add room' }).click();
  const openDay = t.locator('#rooms li.room', { hasText: 'Open day' });
  await openDay.getByRole('button', { name: 'Rename Open day' }).click();
  await openDay.locator('input[name=new_name]').fill('Open evening');
  await openDay.getByRole('button', { name: 'Save' }).click();
  // The rename is saved before the page is left.
  await t.locator('#rooms li.room', { hasText: 'Open evening' }).waitFor();
  await t.goto(`${base}/class/${world.classId}`);
  const card = t.locator('li.room', { hasText: 'Open evening' });
  await card.getByRole('button', { name: 'Make guest link' }).click();
  await card.getByRole('button', { name: 'Copy' }).click();
  await card.getByText('Copied').waitFor();
  await t.goto(`${base}/class/${world.classId}/manage`);
  await t.locator('#rooms li.room', { hasText: 'Open evening' }).getByRole('button', { name: 'Delete' }).click();
  await t.locator('#rooms li.room', { hasText: 'Open evening' }).waitFor({ state: 'detached' });
  await t.locator('#rooms li.room', { hasText: 'Reading group' }).waitFor();
  log('the teacher renamed and removed a student, and renamed, shared and deleted an open house');
}

/** PDF pages in a document Chromium printed (its page objects are plain dictionaries). */
function pdfPages(pdf) {
  return (pdf.toString('latin1').match(/\/Type\s*\/Page(?![s\w])/g) || []).length;
}

/**
 * The teacher prints an invitation sheet for a student in `lang`: one page on A4 and on Letter,
 * and its QR code decodes to the invitation link of the code printed under it.
 */
export async function checkInvitationSheet(cfg, teacher, classId, student, lang, expect) {
  const t = teacher.page;
  await t.goto(`${cfg.base}/class/${classId}/manage`);
  const row = t.locator('li.student', { hasText: student });
  await row.getByLabel(`Language of ${student}'s invitation sheet`).selectOption(lang);
  await row.getByRole('button', { name: 'Invitation sheet' }).click();
  await t.waitForURL(new RegExp(`/class/${classId}/sheet\\?lang=${lang}#`));
  await t.locator('.sheet h1', { hasText: expect.heading }).waitFor();
  await t.locator('.sheet', { hasText: expect.line }).waitFor();
  await t.waitForFunction(() => document.querySelector('img.sheet-qr')?.naturalWidth > 0);
  const code = (await t.locator('.sheet .code').textContent()).trim();
  for (const format of ['A4', 'Letter']) {
    const pdf = await t.pdf({ format });
    writeFileSync(join(cfg.artifacts, `invitation-sheet-${lang}-${format}.pdf`), pdf);
    const pages = pdfPages(pdf);
    if (pages !== 1) throw new Error(`the ${format} invitation sheet printed on ${pages} pages`);
  }
  const shot = await t.locator('.sheet').screenshot({ path: join(cfg.artifacts, `invitation-sheet-${lang}.png`) });
  const png = PNG.sync.read(shot);
  const found = jsQR(new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.length), png.width, png.height);
  if (!found) throw new Error('no QR code found on the invitation sheet');
  const link = `${expect.joinPrefix}#${code}`;
  if (found.data !== link) throw new Error(`the sheet's QR code says ${found.data}, not ${link}`);
  log(`the ${lang} invitation sheet is one page (A4 and Letter) and its QR code is ${found.data}`);
  return { code, link };
}

async function main() {
  const cfg = JSON.parse(process.env.HOMEROOM_BROWSER_TEST);
  const problems = [];
  const browser = await launch(cfg);
  const timer = setTimeout(() => {
    console.error('setup scenario: still running after 150 s; giving up');
    process.exit(1);
  }, 150000);
  timer.unref();
  let world = null;
  try {
    world = await setUpSchool(browser, cfg, problems);
    const { link } = await checkInvitationSheet(cfg, world.people.teacher, world.classId, 'Beto Ruiz', 'es', {
      heading: 'Invitación a Room 12',
      line: 'Escanee el código',
      joinPrefix: world.familyLink.split('#')[0],
    });
    await manageMore(cfg, world);
    // The printed code works: it opens the join page for Beto's family.
    const reader = await person(browser, 'sheet-reader', problems, { locale: 'es-ES', viewport: { width: 390, height: 844 } });
    await reader.page.goto(link);
    await reader.page.getByText('Beto Ruiz').waitFor();
  } catch (error) {
    problems.push(error.stack || String(error));
    for (const p of Object.values(world?.people || {})) {
      await p.page.screenshot({ path: join(cfg.artifacts, `failed-setup-${p.name}.png`) }).catch(() => {});
    }
    for (const context of browser.contexts()) {
      for (const [i, page] of context.pages().entries()) {
        await page.screenshot({ path: join(cfg.artifacts, `failed-setup-page-${i}-${Date.now()}.png`) }).catch(() => {});
      }
    }
  }
  await browser.close();
  if (problems.length) {
    console.error(`setup scenario failed:\n- ${problems.join('\n- ')}`);
    process.exit(1);
  }
  log('the school set itself up in the browser');
  process.exit(0);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main();
