// Headless Chromium as the page tests and the profiler launch it: Debian's binary ($CHROMIUM,
// never a downloaded browser), a fresh profile directory, and the flags a closed network needs
// (without them Chromium's background connections are refused and logged as errors).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

// Returns the browser context and its profile directory (the caller removes it after closing).
export async function launchChromium() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ringstore-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 860 },
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
      '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  return { browser, profile };
}
