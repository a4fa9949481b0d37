// Homeroom's service worker, served at /sw.js so it controls every page of the site.
// - Offline: page loads go to the network; when it is gone, the cached offline page answers.
//   Nothing else is cached: class content is private and always fetched fresh.
// - Push: shows the server's message (in the reader's language when the catalogue has
//   `notify_<type>_title`), and a tap opens the page it is about.

const CACHE = 'homeroom-offline-v1';
const OFFLINE = '/static/offline.html';
const OFFLINE_FILES = [OFFLINE, '/static/css/app.css', '/static/icon.svg', '/static/icons/icon-192.png'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(OFFLINE_FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  if (request.mode === 'navigate') {
    event.respondWith(fetch(request).catch(async () => (await caches.match(OFFLINE)) || Response.error()));
    return;
  }
  // The offline page's own style and icon, when the network is gone.
  if (OFFLINE_FILES.includes(new URL(request.url).pathname)) {
    event.respondWith(fetch(request).catch(async () => (await caches.match(request)) || Response.error()));
  }
});

/** `text` with `{name}` replaced from `vars`. */
const fill = (text, vars) => text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? vars[name] : ''));

async function localized(message) {
  const lang = (self.navigator.language || 'en').toLowerCase().split('-')[0];
  if (lang === 'en') return message;
  try {
    const catalogue = await (await fetch(`/static/i18n/${lang}.json`)).json();
    const title = catalogue[`notify_${message.type}_title`];
    const body = catalogue[`notify_${message.type}_body`];
    if (title && body) return { ...message, title: fill(title, message.vars || {}), body: fill(body, message.vars || {}) };
  } catch {
    // The English text the server sent is shown instead.
  }
  return message;
}

self.addEventListener('push', (event) => {
  event.waitUntil((async () => {
    let message;
    try {
      message = event.data.json();
    } catch {
      message = { type: 'test', title: 'Homeroom', body: event.data ? event.data.text() : '', url: '/' };
    }
    message = await localized(message);
    await self.registration.showNotification(message.title, {
      body: message.body,
      tag: message.tag,
      icon: '/static/icons/icon-192.png',
      badge: '/static/icons/icon-192.png',
      data: { url: message.url || '/' },
      renotify: message.type === 'live',
    });
  })());
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = new URL(event.notification.data?.url || '/', self.location.origin);
  if (url.origin !== self.location.origin) return;
  event.waitUntil((async () => {
    for (const client of await self.clients.matchAll({ type: 'window', includeUncontrolled: true })) {
      if (client.url === url.href && 'focus' in client) return client.focus();
    }
    return self.clients.openWindow(url.href);
  })());
});
