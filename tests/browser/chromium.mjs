// Debian's Chromium, headless, with a profile of its own (so OPFS survives a reload), as every
// browser script here starts it. Without the background-networking flags Chromium keeps trying
// hosts this closed network refuses; as root it needs --no-sandbox.

import { chromium } from 'playwright-core';

export function launch(profile, options = {}) {
  return chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    ...options,
  });
}
