import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core (no browser download): `.ci/run` installs the `chromium`
 * package where it is missing. Screenshots go to test-artifacts/console (gitignored), one per page at
 * each width the console must read well at.
 */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS = path.resolve(import.meta.dirname, '../../../test-artifacts/console');
export const WIDTHS = [
  { name: 'desktop', width: 1280, height: 800 },
  { name: 'phone', width: 390, height: 844 },
] as const;

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium package (apt-get install chromium)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-dev-shm-usage',
    ],
  });
}

export interface ConsoleSession {
  context: BrowserContext;
  page: Page;
  /** Browser console errors and failed requests seen so far (a page must produce none). */
  problems: string[];
}

/** A fresh browser context (no shared storage) with one page, collecting page errors. */
export async function openSession(browser: Browser): Promise<ConsoleSession> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US' });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} ${response.url()}`);
  });
  return { context, page, problems };
}

/** The sign-in link the start banner prints: the token rides in the fragment. */
export function signInUrl(baseUrl: string, token: string, next = '/search'): string {
  return `${baseUrl}/console#token=${encodeURIComponent(token)}&next=${encodeURIComponent(next)}`;
}

/**
 * Screenshots of the current page at 1280 and 390 px wide (full page), named `<name>-<width>.png`;
 * returns their paths. Restores the desktop viewport afterwards.
 */
export async function screenshots(page: Page, name: string): Promise<string[]> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const files: string[] = [];
  for (const w of WIDTHS) {
    await page.setViewportSize({ width: w.width, height: w.height });
    // Let layout (and charts, which follow their container's width) settle at the new size.
    await page.waitForTimeout(150);
    const file = path.join(ARTIFACTS, `${name}-${w.width}.png`);
    await page.screenshot({ path: file, fullPage: true });
    files.push(file);
  }
  await page.setViewportSize({ width: WIDTHS[0].width, height: WIDTHS[0].height });
  return files;
}

/** Runs `expression` in the page (strings: the tests' TypeScript program has no DOM types). */
export function inPage<T>(page: Page, expression: string): Promise<T> {
  return page.evaluate<T>(expression);
}

/** Nothing on the page is wider than the viewport (no sideways scrolling of the whole page). */
export async function pageOverflowPx(page: Page): Promise<number> {
  // A string: the test program has no DOM types (the expression runs in the page).
  return page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
}
