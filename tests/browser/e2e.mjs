// End-to-end test of the browser viewer (host-web/www + the wasm pkg) in headless Chromium.
//
// Started by the Rust test that has already started a moto S3 server, created the bucket with
// its CORS rule and synced a CLI machine's archive into it. Inputs (environment):
//
//   DIST                   the built app (www/ files + pkg/) to serve
//   S3_ENDPOINT            e.g. http://127.0.0.1:9000
//   S3_BUCKET, S3_PREFIX   the archive's bucket and prefix (prefix may be empty)
//   S3_REGION              optional, default us-east-1
//   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
//   AGENTSYNC_BIN          the CLI, and AGENTSYNC_DATA its data folder (the machine that synced)
//   EXPECT_SESSIONS        how many sessions the page must list
//   FORGED_KEY             optional: a key in the bucket holding garbage; the machines page
//                          must list it as a problem, and no session may come of it
//   SEARCH_WORD            a word known to be in a message
//   SCREENSHOTS            optional folder: list.png, search.png, transcript.png (+ offline.png)
//   CHROMIUM               optional, default /usr/bin/chromium
//   E2E_TIMEOUT_MS         optional, how long one sync may take (default 120000)
//   E2E_KEEP_PROFILE       optional: keep the browser profile folder (its path is printed)
//
// Prints one line per step; exits 1 with the reason on the first failure.

import { launch } from './chromium.mjs';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { serveStatic } from './static-server.mjs';

const NEW_NAME = 'renamed in the browser';

function need(name) {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`${name} is not set`);
  return v;
}

const started = Date.now();
const log = (line) => console.log(`[e2e ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}`);
const step = (line) => log(`step: ${line}`);

class Failure extends Error {}
const fail = (msg) => {
  throw new Failure(msg);
};

function run(bin, args, env) {
  return new Promise((ok) => {
    execFile(bin, args, { env, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      ok({ code, stdout, stderr, err });
    });
  });
}

/** Waits until the status line leaves "syncing"/"opening"; returns {state, text, pending}. */
async function waitSyncDone(page, timeout, { pendingZero = false } = {}) {
  await page.waitForFunction(
    (pendingZero) => {
      const el = document.querySelector('[data-testid="sync-status"]');
      if (!el) return false;
      const s = el.dataset.state;
      if (s === 'offline' || s === 'error') return true;
      if (s !== 'ok') return false;
      return !pendingZero || el.dataset.pending === '0';
    },
    pendingZero,
    { timeout, polling: 100 },
  );
  return page.evaluate(() => {
    const el = document.querySelector('[data-testid="sync-status"]');
    return { state: el.dataset.state, text: el.textContent, pending: el.dataset.pending };
  });
}

/** Polls until the list shows `want` rows (the list is refreshed right after a sync). */
async function expectRows(page, want, timeout = 15_000) {
  const rows = page.locator('[data-testid="session-row"]');
  const until = Date.now() + timeout;
  let n = -1;
  while (Date.now() < until) {
    // The list renders its first 500 rows; "Show all" renders the rest.
    const more = page.locator('#list-more-btn');
    if (await more.isVisible()) await more.click();
    n = await rows.count();
    if (n === want) return n;
    await page.waitForTimeout(200);
  }
  const ids = await rows.evaluateAll((els) => els.map((e) => e.dataset.id));
  const status = await page.getByTestId('sync-status').textContent();
  fail(`the session list shows ${n} rows, expected ${want}: [${ids.join(', ')}] (status: ${status})`);
}

async function search(page, word) {
  const input = page.getByTestId('search-input');
  await input.fill(word);
  await input.press('Enter');
  const hits = page.getByTestId('search-hit');
  try {
    await hits.first().waitFor({ timeout: 15_000 });
  } catch {
    const summary = await page.locator('#search-summary').textContent().catch(() => '');
    fail(`searching "${word}" found nothing (${summary})`);
  }
  const n = await hits.count();
  const marks = await hits.first().locator('mark').count();
  if (marks < 1) fail(`the first hit for "${word}" has no highlighted <mark>: ${await hits.first().textContent()}`);
  return n;
}

async function main() {
  const DIST = resolve(need('DIST'));
  const S3_ENDPOINT = need('S3_ENDPOINT').replace(/\/+$/, '');
  const S3_BUCKET = need('S3_BUCKET');
  const S3_PREFIX = (process.env.S3_PREFIX || '').replace(/^\/+|\/+$/g, '');
  const S3_REGION = process.env.S3_REGION || 'us-east-1';
  const KEY_ID = need('AWS_ACCESS_KEY_ID');
  const SECRET = need('AWS_SECRET_ACCESS_KEY');
  const BIN = need('AGENTSYNC_BIN');
  const DATA = need('AGENTSYNC_DATA');
  const EXPECT = Number(need('EXPECT_SESSIONS'));
  const WORD = need('SEARCH_WORD');
  const SHOTS = process.env.SCREENSHOTS || '';
  const SYNC_TIMEOUT = Number(process.env.E2E_TIMEOUT_MS || 120_000);
  if (!Number.isInteger(EXPECT) || EXPECT < 1) fail(`EXPECT_SESSIONS must be a positive integer, not "${process.env.EXPECT_SESSIONS}"`);
  if (SHOTS) await mkdir(SHOTS, { recursive: true });
  const shot = async (page, name) => {
    if (!SHOTS) return;
    await page.screenshot({ path: join(SHOTS, name), fullPage: false });
    log(`screenshot ${join(SHOTS, name)}`);
  };

  let server = null;
  let context = null;
  const profile = await mkdtemp(join(tmpdir(), 'agentsync-e2e-profile-'));
  try {
    server = await serveStatic(DIST);
    step(`serving ${DIST} at ${server.url}`);

    context = await launch(profile, { viewport: { width: 1280, height: 860 } });
    context.on('weberror', (e) => log(`page error: ${e.error()?.stack || e.error()}`));
    const page = context.pages()[0] || (await context.newPage());
    let networkCut = false;
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') log(`console.${m.type()}: ${m.text()}`);
    });
    page.on('worker', (w) => {
      log(`worker started: ${w.url()}`);
      w.on('close', () => log(`worker closed: ${w.url()}`));
    });
    page.on('crash', () => log('the page crashed'));
    page.on('framenavigated', (f) => f === page.mainFrame() && log(`navigated: ${f.url()}`));
    page.on('requestfailed', (r) => {
      if (!networkCut) log(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
    });

    step('open the page');
    await page.goto(server.url, { waitUntil: 'load' });
    const fatal = page.locator('#view-fatal');
    const form = page.getByTestId('endpoint');
    await Promise.race([
      form.waitFor({ timeout: 60_000 }),
      fatal.waitFor({ timeout: 60_000 }).then(async () => fail(`the viewer could not start: ${await page.locator('#fatal-text').textContent()}`)),
    ]);

    step(`connect to ${S3_ENDPOINT} bucket ${S3_BUCKET} prefix "${S3_PREFIX}"`);
    await page.getByTestId('endpoint').fill(S3_ENDPOINT);
    await page.getByTestId('region').fill(S3_REGION);
    await page.getByTestId('bucket').fill(S3_BUCKET);
    await page.getByTestId('prefix').fill(S3_PREFIX);
    await page.getByTestId('access-key').fill(KEY_ID);
    await page.getByTestId('secret').fill(SECRET);
    await page.getByTestId('connect').click();
    const connectError = page.getByTestId('connect-error');
    await page.waitForFunction(
      () =>
        document.querySelector('[data-testid="connect-error"]')?.textContent ||
        document.querySelector('[data-testid="sync-status"]')?.dataset.state === 'syncing' ||
        ['ok', 'offline', 'error'].includes(document.querySelector('[data-testid="sync-status"]')?.dataset.state),
      null,
      { timeout: 60_000 },
    );
    const cerr = await connectError.textContent();
    if (cerr) fail(`connect refused the settings: ${cerr}`);

    step('wait for the first sync');
    let st = await waitSyncDone(page, SYNC_TIMEOUT);
    log(`status: [${st.state}] ${st.text}`);
    if (st.state !== 'ok') fail(`the first sync failed: ${st.text}`);

    step(`the list shows ${EXPECT} sessions`);
    await page.getByTestId('sessions-tab').click();
    await expectRows(page, EXPECT);
    await shot(page, 'list.png');

    const forged = process.env.FORGED_KEY;
    if (forged) {
      step(`the machines page lists the forged object ${forged}`);
      await page.getByTestId('machines-tab').click();
      const row = page.locator(`[data-testid="problem-row"][data-key="${forged}"]`);
      await row.waitFor({ timeout: 10_000 }).catch(() => fail(`no problem row for ${forged}`));
      log(`problem: ${(await row.innerText()).replace(/\s+/g, ' ')}`);
      await page.getByTestId('sessions-tab').click();
      await expectRows(page, EXPECT);
    }

    step(`search "${WORD}"`);
    const nHits = await search(page, WORD);
    log(`${nHits} hits`);
    await shot(page, 'search.png');

    step('open a transcript from the first hit');
    const hit = page.getByTestId('search-hit').first();
    const sessionId = await hit.getAttribute('data-session');
    const ordinal = await hit.getAttribute('data-ordinal');
    await hit.locator('a').click();
    const transcript = page.getByTestId('transcript');
    await transcript.waitFor();
    if ((await transcript.getAttribute('data-id')) !== sessionId) {
      await page.waitForFunction((id) => document.querySelector('[data-testid="transcript"]')?.dataset.id === id, sessionId, { timeout: 15_000 });
    }
    try {
      await transcript.locator(`[data-testid="message"][data-ordinal="${ordinal}"]`).waitFor({ timeout: 15_000 });
    } catch {
      const text = await transcript.textContent();
      fail(`the transcript of ${sessionId} has no message #${ordinal}: ${text.slice(0, 300)}`);
    }
    const nMessages = await transcript.getByTestId('message').count();
    log(`session ${sessionId}: ${nMessages} messages, hit at #${ordinal}`);

    step('star it');
    const star = page.getByTestId('star');
    if ((await star.getAttribute('data-starred')) !== 'true') {
      await star.click();
      await page.locator('[data-testid="star"][data-starred="true"]').waitFor({ timeout: 15_000 });
    } else {
      log('(it was starred already)');
    }

    step(`rename it to "${NEW_NAME}"`);
    await page.getByTestId('rename-input').fill(NEW_NAME);
    await page.getByTestId('rename-save').click();
    await page.waitForFunction(
      (name) => document.querySelector('[data-testid="session-name"]')?.textContent === name,
      NEW_NAME,
      { timeout: 15_000 },
    );
    await transcript.locator(`[data-testid="message"][data-ordinal="${ordinal}"]`).scrollIntoViewIfNeeded();
    await shot(page, 'transcript.png');

    step("wait for the page's sync to publish the edits");
    st = await waitSyncDone(page, SYNC_TIMEOUT, { pendingZero: true });
    log(`status: [${st.state}] ${st.text}`);
    if (st.state !== 'ok') fail(`the sync that publishes the edits failed: ${st.text}`);

    step('the CLI syncs and sees the edits');
    const target = `s3://${S3_BUCKET}${S3_PREFIX ? '/' + S3_PREFIX : ''}`;
    const cliEnv = {
      ...process.env,
      AWS_ENDPOINT_URL_S3: process.env.AWS_ENDPOINT_URL_S3 || S3_ENDPOINT,
      AWS_REGION: process.env.AWS_REGION || S3_REGION,
    };
    const syncArgs = ['--data-dir', DATA, '--json', 'sync', target, '--no-ingest'];
    const sync = await run(BIN, syncArgs, cliEnv);
    if (sync.code !== 0 && sync.code !== 3) {
      fail(`\`${BIN} ${syncArgs.join(' ')}\` exited ${sync.code}: ${sync.stderr || sync.err?.message}`);
    }
    let report;
    try {
      report = JSON.parse(sync.stdout);
    } catch {
      fail(`the CLI's sync --json printed no JSON: ${sync.stdout.slice(0, 500)}`);
    }
    log(`CLI sync (exit ${sync.code}): ${report.events_applied ?? '?'} edits applied, ${report.fetched ?? '?'} fetched${sync.code === 3 ? `; partial: ${sync.stderr.trim()}` : ''}`);
    const listArgs = ['--data-dir', DATA, '--json', 'sessions'];
    const list = await run(BIN, listArgs, cliEnv);
    if (list.code !== 0) fail(`\`${BIN} ${listArgs.join(' ')}\` exited ${list.code}: ${list.stderr || list.err?.message}`);
    let sessions;
    try {
      sessions = JSON.parse(list.stdout);
    } catch {
      fail(`the CLI's sessions --json printed no JSON: ${list.stdout.slice(0, 500)}`);
    }
    const mine = sessions.find((s) => s.id === sessionId);
    if (!mine) fail(`the CLI does not list ${sessionId} (it lists ${sessions.map((s) => s.id).join(', ')})`);
    if (mine.starred !== true) fail(`the CLI shows ${sessionId} not starred`);
    if (mine.display_name !== NEW_NAME) fail(`the CLI shows ${sessionId} named "${mine.display_name}", not "${NEW_NAME}"`);
    log(`CLI: ${sessionId} starred, named "${mine.display_name}"`);

    step('cut the network to S3 and the web server, reload');
    // The app shell must come from the service worker's cache now.
    const controlled = await page.evaluate(async () => {
      if (!('serviceWorker' in navigator)) return 'no service worker support';
      const reg = await Promise.race([navigator.serviceWorker.ready, new Promise((r) => setTimeout(() => r(null), 20_000))]);
      if (!reg) return 'the service worker never became ready';
      return navigator.serviceWorker.controller ? '' : 'the page is not controlled by the service worker';
    });
    if (controlled) fail(`no offline copy of the page: ${controlled}`);
    const s3Origin = new URL(S3_ENDPOINT).origin;
    networkCut = true;
    await context.route((url) => url.origin === s3Origin, (r) => r.abort('internetdisconnected'));
    await server.close();
    server = null;
    await page.reload({ waitUntil: 'load' });
    await Promise.race([
      page.getByTestId('sessions-tab').waitFor({ timeout: 30_000 }),
      fatal.waitFor({ timeout: 30_000 }).then(async () => fail(`the viewer could not start offline: ${await page.locator('#fatal-text').textContent()}`)),
    ]);
    await page.getByTestId('sessions-tab').click();

    step(`offline: the list still shows ${EXPECT} sessions`);
    await expectRows(page, EXPECT);

    step('offline: the status line says the bucket cannot be reached');
    st = await waitSyncDone(page, SYNC_TIMEOUT);
    log(`status: [${st.state}] ${st.text}`);
    if (st.state === 'ok') fail(`the sync succeeded with the network cut: ${st.text}`);
    if (!/offline|unreachable|cannot be reached|could not reach|network|fetch/i.test(st.text)) {
      fail(`the status line does not say that the bucket is unreachable: ${st.text}`);
    }
    await shot(page, 'offline.png');

    step(`offline: search "${WORD}" still finds it`);
    const nOffline = await search(page, WORD);
    log(`${nOffline} hits`);

    step('all steps passed');
  } finally {
    if (context) await context.close().catch((e) => log(`closing the browser: ${e.message}`));
    if (server) await server.close().catch(() => {});
    if (process.env.E2E_KEEP_PROFILE) log(`browser profile kept in ${profile}`);
    else await rm(profile, { recursive: true, force: true }).catch(() => {});
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.log(`[e2e] FAILED: ${e instanceof Failure ? e.message : e?.stack || e}`);
    process.exit(1);
  },
);
