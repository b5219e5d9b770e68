// The browser viewer's timings (docs/benchmarks.md, "Browser viewer"), in headless Chromium
// against a real S3 server on loopback. Started by scripts/bench-viewer, which has put an
// archive of EXPECT_SESSIONS sessions into the bucket. Environment: DIST, S3_ENDPOINT,
// S3_BUCKET, S3_PREFIX, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, EXPECT_SESSIONS, WORDS (words
// to search, comma-separated). Prints one JSON object:
//
//   cold_ms    first visit: Connect pressed → every session listed (the list is interactive:
//              sessions whose messages are still on their way open with a note saying so)
//   warm_ms    a reload: navigation → the list shown from OPFS (before the background sync),
//              by the page's performance mark; the median of 5 (warm_seen_ms: as the test
//              saw it, with the reload command and polling)
//   search_ms  each word: typed → hits shown (median and max over the words)
//   sync_ms    the page's own first sync, as its status line reports it done

import { launch } from './chromium.mjs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveStatic } from './static-server.mjs';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const expected = Number(env('EXPECT_SESSIONS'));
const words = env('WORDS').split(',');
// The page's "N sessions" count has reached n (the page forbids eval: a plain predicate).
const listedAtLeast = (n) => {
  const el = document.getElementById('list-count');
  return (el ? parseInt(el.textContent.replace(/,/g, ''), 10) : 0) >= n;
};

const server = await serveStatic(env('DIST'));
const profile = await mkdtemp(join(tmpdir(), 'agentsync-bench-profile-'));
const context = await launch(profile);
const result = { sessions: expected };
try {
  const page = await context.newPage();
  // Where the first sync's time goes: when each stage first reports progress.
  await page.addInitScript(() => {
    const Native = window.Worker;
    window.__stages = [];
    window.Worker = class extends Native {
      constructor(...args) {
        super(...args);
        this.addEventListener('message', (e) => {
          const p = e.data && e.data.progress;
          const last = window.__stages[window.__stages.length - 1];
          if (p && (!last || last[0] !== p[0])) window.__stages.push([p[0], performance.now()]);
        });
      }
    };
  });
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  const q = new URLSearchParams({
    endpoint: env('S3_ENDPOINT'), bucket: env('S3_BUCKET'), prefix: process.env.S3_PREFIX || '',
    access_key_id: env('AWS_ACCESS_KEY_ID'),
  });
  await page.goto(`${server.url}#/settings?${q}`);
  await page.fill('[data-testid="secret"]', env('AWS_SECRET_ACCESS_KEY'));
  const syncDone = () => {
    const s = document.querySelector('[data-testid="sync-status"]');
    return s && (s.dataset.state === 'ok' || s.dataset.state === 'error' || s.dataset.state === 'offline');
  };

  let t0 = Date.now();
  await page.click('[data-testid="connect"]');
  await page.waitForFunction(
    listedAtLeast, expected,
    { timeout: 1_800_000, polling: 20 });
  result.cold_ms = Date.now() - t0;
  await page.waitForFunction(syncDone, null, { timeout: 1_800_000, polling: 50 });
  result.sync_ms = Date.now() - t0;
  const stages = await page.evaluate(() => [...window.__stages, ['end', performance.now()]]);
  result.stages_ms = {};
  for (let i = 0; i + 1 < stages.length; i++) {
    const [name, at] = stages[i];
    result.stages_ms[name] = (result.stages_ms[name] || 0) + Math.round(stages[i + 1][1] - at);
  }
  await page.waitForFunction(
    listedAtLeast, expected,
    { timeout: 120_000, polling: 20 });
  result.status = await page.locator('[data-testid="sync-status"]').innerText();

  // Warm: the median of 5 reloads (each waits for its background sync to end first), by the
  // page's own mark (navigation start → list shown), and as the test saw it (with the reload
  // command and polling around it).
  const warm = [];
  const warmSeen = [];
  for (let i = 0; i < 5; i++) {
    await page.waitForFunction(syncDone, null, { timeout: 600_000, polling: 50 });
    t0 = Date.now();
    await page.reload();
    await page.waitForFunction(
      listedAtLeast, expected,
      { timeout: 120_000, polling: 10 });
    warmSeen.push(Date.now() - t0);
    await page.waitForFunction(() => performance.getEntriesByName('agentsync-listed').length > 0);
    warm.push(await page.evaluate(() => Math.round(performance.getEntriesByName('agentsync-listed')[0].startTime)));
  }
  warm.sort((a, b) => a - b);
  warmSeen.sort((a, b) => a - b);
  result.warm_ms = warm[2];
  result.warm_seen_ms = warmSeen[2];
  // The last reload's path: the worker's module ready, the archive open (and in how many
  // attempts), the list shown; milliseconds since navigation.
  result.warm_path = await page.evaluate(() => {
    const mark = (name) => performance.getEntriesByName(name)[0];
    const ready = mark('agentsync-ready');
    const listed = mark('agentsync-listed');
    return {
      worker_ready_ms: ready ? Math.round(ready.startTime) : null,
      listed_ms: listed ? Math.round(listed.startTime) : null,
      worker: ready ? ready.detail : null,
    };
  });
  await page.waitForFunction(syncDone, null, { timeout: 600_000, polling: 50 });

  const times = [];
  for (const word of words) {
    await page.goto(`${server.url}#/`);
    await page.waitForSelector('[data-testid="search-input"]');
    await page.fill('[data-testid="search-input"]', '');
    t0 = Date.now();
    await page.fill('[data-testid="search-input"]', word);
    await page.press('[data-testid="search-input"]', 'Enter');
    // A hit of this word (not one left from the previous search): its first match is the word.
    await page.waitForFunction((w) => [...document.querySelectorAll('[data-testid="search-hit"]')]
      .some((h) => h.offsetParent && (h.querySelector('mark')?.textContent || '').toLowerCase().startsWith(w)),
    word, { timeout: 60_000, polling: 5 });
    times.push(Date.now() - t0);
  }
  times.sort((a, b) => a - b);
  result.search_ms = { median: times[Math.floor(times.length / 2)], max: times[times.length - 1], words: words.length };
  console.log(JSON.stringify(result));
} finally {
  await context.close();
  await server.close();
  await rm(profile, { recursive: true, force: true });
}
