// The installable app: registers the service worker (offline page, push messages) and, on a
// phone that has not installed Homeroom, shows a hint to add it to the home screen: an
// "Install" button where the browser offers one (beforeinstallprompt), the Share-menu steps on
// iPhones and iPads. "Not now" hides it for good on this device.

import { h } from './dom.js';

const DISMISSED = 'homeroom.installHint';
let offered = null;

export function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch((e) => console.warn('service worker:', e.message));
}

const standalone = () => matchMedia('(display-mode: standalone)').matches || navigator.standalone === true;
const phone = () => matchMedia('(pointer: coarse)').matches && Math.min(screen.width, screen.height) < 820;
const apple = () => /iPhone|iPad|iPod/.test(navigator.userAgent);

/** Shows the hint after the header, on phones only, until installed or dismissed. */
export function installHint() {
  if (standalone() || !phone() || localStorage.getItem(DISMISSED)) return;
  const install = h('button', { type: 'button', class: 'primary', text: 'install_button', hidden: true });
  const dismiss = h('button', { type: 'button', class: 'link', text: 'install_not_now' });
  const hint = h('aside', { class: 'install-hint', id: 'install-hint', label: 'install_title' },
    h('p', { text: apple() ? 'install_hint_ios' : 'install_hint' }), install, dismiss);
  const show = (event) => {
    event.preventDefault();
    offered = event;
    install.hidden = false;
  };
  window.addEventListener('beforeinstallprompt', show);
  if (offered) install.hidden = false;
  install.addEventListener('click', async () => {
    if (!offered) return;
    offered.prompt();
    await offered.userChoice.catch(() => null);
    offered = null;
    hint.remove();
  });
  dismiss.addEventListener('click', () => {
    localStorage.setItem(DISMISSED, '1');
    hint.remove();
  });
  window.addEventListener('appinstalled', () => hint.remove());
  document.querySelector('header.bar').after(hint);
}
