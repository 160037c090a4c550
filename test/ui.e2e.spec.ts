// The web UI in a real browser (Debian's chromium through playwright-core) against a real
// ledger: `up` with three agents and the API of master.yaml's rest_cherrypy: section.
// JOBLEDGER_UI_SCREENSHOTS=1 writes the screenshots into docs/ (else into the test's home).

import fs from 'node:fs';
import path from 'node:path';
import { createUser } from '@nats-io/nkeys';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './support/browser.js';
import { CliHome, REPO_ROOT } from './support/cli.js';
import { writeApiMaster } from './support/api-master.js';
import { freePort } from './support/ports.js';

const home = new CliHome('jobledger-ui-e2e-');
let base = '';
let browser: Browser;
const shots = process.env.JOBLEDGER_UI_SCREENSHOTS === '1' ? path.join(REPO_ROOT, 'docs') : home.root;
const problems: string[] = [];

beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  writeApiMaster(home.root, port, {
    saltdev: { password: 's3cret', rules: ['.*', '@runner', '@wheel'] },
    tester: { password: 't3st', rules: ['test.*', '@jobs'] },
  });
  [browser] = await Promise.all([launchChromium(), home.up(['a', 'b', 'c'])]);
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await home.downAndRemove();
}, 120_000);

async function loggedIn(user: string, password: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 }, colorScheme: 'light' });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`${user}: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() === 404 || r.status() >= 500) problems.push(`${user}: ${r.status()} ${r.url()}`);
  });
  page.on('console', (m) => {
    // A refused page is served with salt-api's 401, which chromium reports as a failed load.
    if (m.type() === 'error' && !/status of (401|404|5\d\d)/.test(m.text())) problems.push(`${user}: console: ${m.text()}`);
  });
  await page.goto(`${base}/ui/jobs`);
  expect(new URL(page.url()).pathname).toBe('/ui/login');
  await page.getByLabel('User').fill(user);
  await page.getByLabel('Password').fill(password);
  await Promise.all([page.waitForURL(/\/ui\/jobs/), page.getByRole('button', { name: 'Log in' }).click()]);
  return { context, page };
}

const jidOf = (stdout: string) => /jid: (\d{20})/.exec(stdout)![1]!;

describe('web UI', () => {
  let failedJid = '';

  it('logs in, and a job run from the CLI appears in the list live, without a reload', async () => {
    const { context, page } = await loggedIn('saltdev', 's3cret');
    await page.waitForFunction("document.documentElement.dataset.live === 'on'");
    await page.evaluate('window.marker = 42');
    const jid = jidOf((await home.run(['run', '*', 'test.ping', '--show-jid'])).stdout);
    const row = page.locator(`tr[data-jid="${jid}"]`);
    await row.waitFor({ timeout: 20_000 });
    await page.locator(`tr[data-jid="${jid}"]`, { hasText: '3/3' }).waitFor({ timeout: 20_000 });
    expect(await page.evaluate('window.marker')).toBe(42);
    expect(await row.textContent()).toContain('test.ping');

    failedJid = jidOf((await home.run(['run', 'b', 'cmd.run', 'exit 1', '--show-jid'])).stdout);
    await page.locator(`tr[data-jid="${failedJid}"]`, { hasText: 'failed on 1' }).waitFor({ timeout: 20_000 });
    await page.screenshot({ path: path.join(shots, 'ui-jobs.png') });

    // Open the job: Salt's info block, the return, the audit trail.
    await Promise.all([page.waitForURL(new RegExp(`/ui/jobs/${jid}`)), row.getByRole('link', { name: jid }).click()]);
    const info = page.locator('dl.info');
    expect(await info.textContent()).toContain('test.ping');
    expect(await page.locator('article.ret[data-agent="a"] pre').textContent()).toBe('a:\n    True');
    expect(await page.locator('table.trail').textContent()).toContain('job.published');
    await page.getByRole('link', { name: 'json' }).click();
    expect(await page.locator('article.ret[data-agent="a"] pre').textContent()).toBe('{\n    "a": true\n}');
    await page.screenshot({ path: path.join(shots, 'ui-job.png'), fullPage: true });
    await context.close();
  });

  it('filters the failed jobs, and reruns a job on its failed agent', async () => {
    const { context, page } = await loggedIn('saltdev', 's3cret');
    await page.getByRole('link', { name: 'Failed only' }).click();
    await page.waitForURL(/status=failed/);
    const rows = await page.locator('table.jobs tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-jid')));
    expect(rows).toContain(failedJid);
    expect(rows.length).toBeGreaterThan(0);
    for (const state of await page.locator('table.jobs tbody .badge').allTextContents()) expect(state).toMatch(/^failed on/);

    await page.goto(`${base}/ui/jobs/${failedJid}`);
    await Promise.all([
      page.waitForURL((u) => /\/ui\/jobs\/\d{20}$/.test(u.pathname) && !u.pathname.endsWith(failedJid)),
      page.getByRole('button', { name: 'Rerun on failed agents (1)' }).click(),
    ]);
    const info = await page.locator('dl.info').textContent();
    expect(info).toContain('cmd.run');
    expect(info).toMatch(/Target\s*b\s*Target-type\s*list/);
    await context.close();
  });

  it("refuses what the user's external_auth rules do not allow, with salt-api's words", async () => {
    const { context, page } = await loggedIn('tester', 't3st');
    await page.goto(`${base}/ui/run`);
    await page.getByLabel('Function').fill('cmd.run');
    await page.getByLabel('Arguments').fill("'touch /tmp/jobledger-ui-should-not-exist'");
    await page.getByRole('button', { name: 'Run' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').textContent()).toBe('Authorization error occurred.');
    expect(fs.existsSync('/tmp/jobledger-ui-should-not-exist')).toBe(false);

    await page.goto(`${base}/ui/agents`);
    expect(await page.getByRole('alert').textContent()).toBe('Authentication failure of type "token" occurred for user tester.');
    await context.close();
  });

  it('shows the agents with their keys to a user with @wheel, accepts a pending key, in the dark theme too', async () => {
    fs.writeFileSync(path.join(home.root, 'pki', 'minions_pre', 'newbie'), createUser().getPublicKey() + '\n', { mode: 0o600 });
    const { context, page } = await loggedIn('saltdev', 's3cret');
    await page.goto(`${base}/ui/agents`);
    const ids = await page.locator('table.agents tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-agent')));
    expect(ids).toEqual(['a', 'b', 'c', 'newbie']);
    expect(await page.locator('tr[data-agent="a"] .badge').textContent()).toBe('accepted');
    expect(await page.locator('tr[data-agent="newbie"] .badge').textContent()).toBe('pending');
    await page.locator('tr[data-agent="newbie"]').getByRole('button', { name: 'accept' }).click();
    await page.locator('tr[data-agent="newbie"] .badge', { hasText: 'accepted' }).waitFor({ timeout: 10_000 });
    expect(new URL(page.url()).pathname).toBe('/ui/agents');
    expect((await home.run(['key', 'list'])).stdout).toContain('Accepted Keys:\na\nb\nc\nnewbie\n');
    expect(await page.locator('figure.chart figcaption').textContent()).toMatch(/\d+ jobs/);
    await page.getByRole('button', { name: 'Switch between dark and light theme' }).click();
    expect(await page.evaluate('document.documentElement.dataset.theme')).toBe('dark');
    const bg = await page.evaluate('getComputedStyle(document.body).backgroundColor');
    expect(bg).toBe('rgb(18, 22, 28)');
    await page.reload();
    expect(await page.evaluate('document.documentElement.dataset.theme')).toBe('dark');
    await context.close();
    expect(problems).toEqual([]);
  });
});
