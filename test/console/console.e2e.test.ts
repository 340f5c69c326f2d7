import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { token } from '../api/support/harness.js';
import { type RealStack, startRealStack } from '../api/support/realStack.js';
import {
  inPage,
  launchBrowser,
  openSession,
  pageOverflowPx,
  screenshots,
  signInUrl,
} from './support/browser.js';

/**
 * The finance console in a real browser (Debian's Chromium) against the real stack: sign-in, the token's
 * handling, and the shell. The money pages have their own files.
 */
const T = 'acme';

describe('finance console: sign-in and shell', () => {
  let stack: RealStack;
  let browser: Browser;
  beforeAll(async () => {
    [stack, browser] = await Promise.all([startRealStack(), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.close();
  });

  it('GET / links to the console; /console serves a page whose script and styles load', async () => {
    const home = await fetch(`${stack.baseUrl}/`);
    expect(home.status).toBe(200);
    expect(await home.text()).toContain('href="/console"');
    const page = await fetch(`${stack.baseUrl}/console`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    const script = /src="(\/console\/assets\/app-[A-Za-z0-9]+\.js)"/.exec(html)?.[1];
    const css = /href="(\/console\/assets\/app-[A-Za-z0-9]+\.css)"/.exec(html)?.[1];
    expect(script && css).toBeTruthy();
    const js = await fetch(`${stack.baseUrl}${script}`);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(js.headers.get('cache-control')).toContain('immutable');
    expect((await fetch(`${stack.baseUrl}${css}`)).status).toBe(200);
    const missing = await fetch(`${stack.baseUrl}/console/assets/nope.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('the sign-in link moves the token out of the address bar into this tab only', async () => {
    const fin = await token(T, 'fin_1', 'finance_admin');
    const { context, page, problems } = await openSession(browser);
    try {
      await page.goto(signInUrl(stack.baseUrl, fin, '/finance'));
      await page.getByRole('heading', { name: 'Trial balance' }).waitFor();
      expect(page.url()).toBe(`${stack.baseUrl}/console#/finance`);
      // The token's URL was replaced, not pushed: Back does not bring it back.
      await page.goBack();
      expect(page.url()).not.toContain('token');
      await page.goForward();
      await page.getByRole('heading', { name: 'Trial balance' }).waitFor();
      const stored = await inPage(
        page,
        `({ session: Object.keys(sessionStorage).map((k) => sessionStorage.getItem(k)),
            local: localStorage.length, cookie: document.cookie })`,
      );
      expect(stored).toEqual({ session: [fin], local: 0, cookie: '' });
      expect((await context.cookies()).length).toBe(0);
      await page.getByText('fin_1').first().waitFor();
      await page.getByText('balanced', { exact: true }).waitFor();
      await screenshots(page, 'trial-balance');
      expect(await pageOverflowPx(page)).toBe(0);

      // A new tab of the same browser is not signed in: nothing outlives the tab.
      const other = await context.newPage();
      await other.goto(`${stack.baseUrl}/console#/finance`);
      await other.getByRole('heading', { name: 'Finance console' }).waitFor();
      await other.close();

      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('Bearer token').waitFor();
      expect(await inPage(page, 'sessionStorage.length')).toBe(0);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('signing in by pasting a token, with the keyboard only; a bad or refused token is said so', async () => {
    const { context, page } = await openSession(browser);
    try {
      await page.goto(`${stack.baseUrl}/console#/finance`);
      await screenshots(page, 'sign-in');
      await page.getByLabel('Bearer token').focus();
      await page.keyboard.type('not a token');
      await page.keyboard.press('Tab');
      await page.keyboard.press('Enter');
      await page.getByRole('alert').filter({ hasText: 'not a valid' }).waitFor();

      // Signed with another secret: the page cannot tell, the API refuses it and the page says so.
      const forged = await token(T, 'fin_1', 'finance_admin', { secret: 'another-secret-0123456789abcdef' });
      await page.getByLabel('Bearer token').fill(forged);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByText('Your session ended').waitFor();

      const student = await token(T, 'stu_1', 'student');
      await page.getByLabel('Bearer token').fill(student);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByText('forbidden').first().waitFor();
    } finally {
      await context.close();
    }
  });
});
