// Simulcast from the studio to the watch page, in Chromium. simulcast.rs makes the server, the
// class and the teacher's camera, `cfg.camera` (a 1280x720 y4m file, so that the layers have
// the sizes and bitrates a real camera gives them), and for 'weak' a network namespace for the
// family (home_network.mjs). Scenarios (cfg.scenario):
// - 'layers': the studio sends three encodings (rids l, m, h, each encoding frames and sending
//   bytes), and the family's quality menu gets them Low (320x180 decoded), Medium (640x360) and
//   High (1280x720).
// - 'weak': the family watches, then its link drops to 60 kbit/s (the test's step 'slow link');
//   within 20 s the page says the connection is weak, video stops, and audio loses under 2 % of
//   its packets over the next 10 s. Back at full speed (step 'fast link'), the notice goes and
//   video comes back.
// Only clicks and selections drive the pages; getStats() in the pages checks what flows.

import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './chromium.mjs';
import { cfg, finish, flowing, log, sampled, scenario, shoot, step, sum } from './common.mjs';
import { closeFamilyBrowser, teacherLiveFamilyWatching } from './home_network.mjs';

/** The teacher's outbound video streams: [{rid, bytesSent, framesEncoded, frameWidth, frameHeight, …}]. */
const sent = (page) => page.evaluate(async () => {
  const out = [];
  (await window.homeroom.session.pub.getStats()).forEach((r) => {
    if (r.type === 'outbound-rtp' && r.kind === 'video') {
      out.push({ rid: r.rid, active: r.active, bytesSent: r.bytesSent, framesEncoded: r.framesEncoded, frameWidth: r.frameWidth, frameHeight: r.frameHeight, limitedBy: r.qualityLimitationReason });
    }
  });
  return out.sort((a, b) => String(a.rid).localeCompare(String(b.rid)));
});

/**
 * What the page receives: its video (size, frames decoded) and its audio (packets received,
 * lost); and, to say why when nothing comes, its connection's state and the server's `reception`.
 */
const received = (page) => page.evaluate(async () => {
  const session = window.homeroom.session;
  const got = { video: null, audio: { packetsReceived: 0, packetsLost: 0 }, connection: session.sub?.connectionState, reception: session.reception };
  if (!session.sub) return got;
  (await session.sub.getStats()).forEach((r) => {
    if (r.type !== 'inbound-rtp') return;
    if (r.kind === 'video') got.video = { frameWidth: r.frameWidth, frameHeight: r.frameHeight, framesDecoded: r.framesDecoded || 0, packetsReceived: r.packetsReceived, bytesReceived: r.bytesReceived, headerBytesReceived: r.headerBytesReceived, nackCount: r.nackCount };
    if (r.kind === 'audio') got.audio = { packetsReceived: r.packetsReceived || 0, packetsLost: r.packetsLost || 0, bytesReceived: r.bytesReceived, headerBytesReceived: r.headerBytesReceived, nackCount: r.nackCount };
  });
  return got;
});

/** The teacher's browser, whose fake camera films `cfg.camera`. */
const camera = await chromium.launch({
  executablePath: cfg.chromium, headless: true, args: [...CHROMIUM_ARGS, `--use-file-for-fake-video-capture=${cfg.camera}`],
});

/** Waits until `check(before, after)` holds for samples 1.5 s apart (common.mjs `sampled`) and says so. */
async function until(what, page, sample, check, ms) {
  const after = await sampled(page, sample, check, ms, `${what}: not within ${ms} ms`);
  log(`${what}:`, JSON.stringify(after));
}

if (cfg.scenario === 'layers') {
  await scenario('three layers, chosen in the quality menu', async () => {
    const { teacher, family } = await teacherLiveFamilyWatching({}, camera);
    const size = await teacher.evaluate(() => [document.querySelector('video.preview').videoWidth, document.querySelector('video.preview').videoHeight]);
    if (size.join('x') !== '1280x720') throw new Error(`the studio's camera is ${size.join('x')}, not the 1280x720 file`);
    const rids = ['h', 'l', 'm'];
    await until('the studio sends three layers', teacher, sent, (a, b) =>
      JSON.stringify(b.map((s) => s.rid)) === JSON.stringify(rids) &&
      b.every((s, i) => s.active !== false && s.bytesSent > a[i].bytesSent && s.framesEncoded > a[i].framesEncoded), 45000);
    const menu = family.getByLabel('Video quality');
    for (const [quality, width, height] of [['low', 320, 180], ['medium', 640, 360], ['high', 1280, 720]]) {
      await menu.selectOption(quality);
      await until(`the family decodes ${quality} at ${width}x${height}`, family, received, (a, b) =>
        b.video?.frameWidth === width && b.video.frameHeight === height && b.video.framesDecoded > a.video.framesDecoded + 5, 30000);
    }
    await shoot(family, 'simulcast/watch-high.png');
  });
}

if (cfg.scenario === 'weak') {
  await scenario('a 60 kbit/s link gets audio only and is told', async () => {
    const { family } = await teacherLiveFamilyWatching({}, camera);
    await flowing('family', family, (a, b) => sum(b, 'framesDecoded') > sum(a, 'framesDecoded') + 5);
    const notice = family.locator('.weak-notice[role="status"]', { hasText: 'Your connection is weak: audio only for now' });
    if (await notice.isVisible()) throw new Error('the weak-connection notice shows on a fast link');
    await step('slow link');
    const slowSince = Date.now();
    await notice.waitFor({ state: 'visible', timeout: 20000 }).catch(async () => {
      throw new Error(`no weak-connection notice within 20 s: ${JSON.stringify(await received(family))}`);
    });
    log(`the page says the connection is weak ${Date.now() - slowSince} ms after the link slowed down`);
    await shoot(family, 'simulcast/watch-weak.png');
    const before = await received(family);
    await family.waitForTimeout(10000);
    const after = await received(family);
    const lost = after.audio.packetsLost - before.audio.packetsLost;
    const got = after.audio.packetsReceived - before.audio.packetsReceived;
    log(`audio over 10 s: ${got} packets received, ${lost} lost; video frames decoded ${before.video?.framesDecoded} → ${after.video?.framesDecoded}`);
    log('before', JSON.stringify(before), 'after', JSON.stringify(after));
    // The server asks for 40 ms audio packets (docs/signalling.md): 250 in 10 s.
    if (got < 225) throw new Error(`only ${got} audio packets in 10 s`);
    if (lost / (lost + got) >= 0.02) throw new Error(`audio lost ${lost} of ${lost + got} packets (${(100 * lost / (lost + got)).toFixed(1)} %)`);
    const frames = (after.video?.framesDecoded || 0) - (before.video?.framesDecoded || 0);
    if (frames > 3) throw new Error(`${frames} video frames decoded while audio only`);
    if (!(await notice.isVisible())) throw new Error('the notice went while the link stayed slow');
    if (await family.locator('video.main-video').isVisible()) throw new Error('the player still shows video');

    await step('fast link');
    await notice.waitFor({ state: 'hidden', timeout: 45000 }).catch(async () => {
      throw new Error(`the notice stays at full speed: ${JSON.stringify(await received(family))}`);
    });
    await flowing('family with video again', family, (a, b) => sum(b, 'framesDecoded') > sum(a, 'framesDecoded') + 5, 20000);
    await family.waitForFunction(() => document.querySelector('video.main-video').videoWidth > 0);
  });
}

await camera.close();
await closeFamilyBrowser();
await finish();
