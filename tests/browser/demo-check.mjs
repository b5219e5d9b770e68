// scripts/demo --check: opens the demo's viewer link in headless Chromium, types the demo's
// secret, connects, and waits until the page lists every session the demo machines hold.
// Environment: URL (the printed link), SECRET, EXPECT_SESSIONS. Exits 1 with the reason.

import { launch } from './chromium.mjs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const url = process.env.URL;
const expected = Number(process.env.EXPECT_SESSIONS);
const profile = await mkdtemp(join(tmpdir(), 'agentsync-demo-check-'));
const context = await launch(profile);
let code = 0;
try {
  const page = await context.newPage();
  await page.goto(url);
  await page.fill('[data-testid="secret"]', process.env.SECRET || '');
  await page.click('[data-testid="connect"]');
  await page.waitForFunction(
    (n) => document.querySelectorAll('[data-testid="session-row"]').length === n,
    expected, { timeout: 120_000 });
  const status = await page.locator('[data-testid="sync-status"]').innerText();
  console.log(`demo check: the viewer lists ${expected} sessions (${status})`);
} catch (e) {
  console.error(`demo check failed: ${e.message}`);
  code = 1;
} finally {
  await context.close();
  await rm(profile, { recursive: true, force: true });
}
process.exit(code);
