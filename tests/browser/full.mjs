// A full server, seen by a family. The server carries two participants at most: the teacher
// goes live in the studio and a second family watches; the family that comes next is told,
// on the watch page, that the school's server is full and that the page joins by itself, with
// no "connection lost". When the second family closes its page, the first one's page gets in
// without a click and decodes the teacher's video. Started by main.rs
// (`a_full_server_is_explained_and_the_page_gets_in_when_there_is_room`).

import { cfg, finish, flowing, log, person, scenario, shoot, state, sum } from './common.mjs';

await scenario('a family waits for room on a full server', async () => {
  const teacher = await person('teacher', cfg.teacher);
  await teacher.goto(`${cfg.base}/studio/${cfg.classroom}`);
  await teacher.waitForFunction(() => document.querySelector('video.preview')?.readyState >= 2, null, { timeout: 15000 });
  await teacher.locator('button.go-live').click();
  await state(teacher, 'joined');

  const other = await person('family2', cfg.family2);
  await other.goto(`${cfg.base}/watch/${cfg.classroom}`);
  await state(other, 'joined');

  const family = await person('family', cfg.family);
  await family.goto(`${cfg.base}/watch/${cfg.classroom}`);
  await state(family, 'full');
  const overlay = await family.locator('.player .overlay').innerText();
  if (!overlay.includes('server is carrying all the viewers it can')) throw new Error(`the watch page says: ${overlay}`);
  const line = await family.locator('#status').innerText();
  if (!line.includes('server is full') || /Reconnecting|Connection lost/i.test(line)) throw new Error(`the status line says: ${line}`);
  await shoot(family, 'full/watch-full.png');
  log('the family is told the server is full');

  // Room is made: the page gets in by itself (it asks again within 20 s).
  await other.close();
  await state(family, 'joined', 30000);
  await flowing('family watch', family, (a, b) => sum(b, 'framesDecoded') > sum(a, 'framesDecoded') && sum(b, 'framesDecoded') > 10);
  if (!(await family.locator('.player .overlay').isHidden())) throw new Error('the full notice stays after joining');
  log('the family got in by itself and decodes video');
});

await finish();
