// Keeps the page usable offline once it has been loaded: the page's own files come from a
// cache named after their build (web/build.sh fills in both), and manifest.json and the
// firmware are fetched fresh when the network answers and taken from the cache when it
// does not. Only same-origin GET requests are touched; nothing else is ever requested.

const CACHE = "thinger-patch-__BUILD_ID__";
const SHELL = [/* __SHELL_FILES__ */];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((c) => c.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin) return;
  const shell = SHELL.some((f) => new URL(f, self.location.href).href === url.href);
  event.respondWith(shell ? cacheFirst(req) : networkFirst(req));
});

async function cacheFirst(req) {
  const hit = await caches.match(req, { ignoreSearch: true });
  return hit || fetch(req);
}

async function networkFirst(req) {
  const cache = await caches.open(CACHE);
  try {
    const res = await fetch(req);
    if (res.ok) await cache.put(req, res.clone());
    return res;
  } catch (e) {
    const hit = await cache.match(req, { ignoreSearch: true });
    if (hit) return hit;
    throw e;
  }
}
