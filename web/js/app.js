// The app's entry: picks the language, then the page for the path. Every page is its own load
// (links are plain links), so a page only has to set itself up.

import { language, preferredLanguage, setLanguage } from './i18n.js';
import { me, signOut } from './api.js';
import { mount, h, status } from './dom.js';
import { home, join, reset, setup, signin } from './pages/account.js';
import { classHome } from './pages/class.js';
import { guest, watch } from './pages/watch.js';
import { studio } from './pages/studio.js';
import { sessionPage } from './pages/timeline.js';
import { replay } from './pages/replay.js';
import { tutor } from './pages/tutor.js';
import { schoolPage } from './pages/school.js';
import { people } from './pages/people.js';
import { classesPage } from './pages/classes.js';
import { manage } from './pages/manage.js';
import { sheet } from './pages/sheet.js';
import { notificationsPage, stopPage } from './pages/notifications.js';
import { checkPage } from './pages/check.js';
import { installHint, registerServiceWorker } from './install.js';

const ROUTES = [
  [/^\/$/, home],
  [/^\/signin$/, signin],
  [/^\/join$/, join],
  [/^\/setup$/, setup],
  [/^\/reset$/, reset],
  [/^\/guest$/, guest],
  [/^\/class\/(\d+)$/, classHome],
  [/^\/watch\/(\d+)$/, watch],
  [/^\/studio\/(\d+)$/, studio],
  [/^\/session\/(\d+)$/, sessionPage],
  [/^\/recording\/(\d+)$/, replay],
  [/^\/tutor\/(\d+)$/, tutor],
  [/^\/school$/, schoolPage],
  [/^\/people$/, people],
  [/^\/classes$/, classesPage],
  [/^\/class\/(\d+)\/manage$/, manage],
  [/^\/class\/(\d+)\/sheet$/, sheet],
  [/^\/notifications$/, notificationsPage],
  [/^\/notifications\/stop$/, stopPage],
  [/^\/check$/, checkPage],
];

async function start() {
  await setLanguage(preferredLanguage());
  const switcher = document.getElementById('lang-switch');
  switcher.value = language();
  switcher.addEventListener('change', () => setLanguage(switcher.value, { save: true }));

  registerServiceWorker();
  const user = await me().catch(() => null);
  const signOutButton = document.getElementById('sign-out');
  signOutButton.hidden = !user;
  document.getElementById('nav-notifications').hidden = !user;
  signOutButton.addEventListener('click', async () => {
    await signOut().catch(() => {});
    location.assign('/signin');
  });

  const path = location.pathname.replace(/\/+$/, '') || '/';
  if (path === '/' || path === '/notifications') installHint();
  for (const [pattern, page] of ROUTES) {
    const match = pattern.exec(path);
    if (match) {
      try {
        await page(...match.slice(1).map(Number));
      } catch (error) {
        console.error(error);
        status('error_with_message', { message: error.message || String(error) }, 'error');
      }
      return;
    }
  }
  mount('not_found', h('h1', { text: 'not_found' }), h('p', {}, h('a', { href: '/', text: 'go_home' })));
}

start();
