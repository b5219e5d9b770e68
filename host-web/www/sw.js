// Service worker: keeps the app shell (page, script, styles, worker, wasm) so that the viewer opens
// without a network after the first visit. Cache-first for exactly these files; every other
// request (the bucket, even when it is on this same origin) goes to the network untouched.
// scripts/web build stamps VERSION with a hash of the shell's files, so any change to www/ or
// pkg/ makes a new worker that caches the new shell and deletes the old one.

const VERSION = 'agentsync-shell-dev';

// The page is cached as index.html and also answers navigations to the folder itself ('./'),
// which a bucket without website hosting would not serve.
const SHELL = [
  './index.html',
  './style.css',
  './app.js',
  './worker.js',
  './pkg/agentsync_web.js',
  './pkg/agentsync_web_bg.wasm',
];

const scope = () => self.registration.scope;
const shellUrls = () => new Set(SHELL.map((p) => new URL(p, scope()).href));

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(VERSION);
      // cache: 'reload' so the HTTP cache cannot hand an old file to a new version.
      await cache.addAll(SHELL.map((p) => new Request(new URL(p, scope()), { cache: 'reload' })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) {
        if (key !== VERSION && key.startsWith('agentsync-shell-')) await caches.delete(key);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  url.hash = '';
  url.search = '';
  const href = url.href;
  const isShell = shellUrls().has(href);
  // Opening the folder or index.html (with any ?query or #route) gets the cached page.
  const isPage = req.mode === 'navigate' && (href === scope() || href === new URL('./index.html', scope()).href);
  if (!isShell && !isPage) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(VERSION);
      const hit = await cache.match(isPage ? new URL('./index.html', scope()).href : href);
      if (hit) return hit;
      const res = await fetch(req);
      if (res.ok && res.type === 'basic') cache.put(href, res.clone()).catch(() => {});
      return res;
    })(),
  );
});
