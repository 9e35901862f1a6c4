import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createUser } from '../catalog/users.js';
import { api, type PierProcess, removePier, runPier, startPier } from '../helpers/pier.js';
import { capturePage, launchChromium, newConsoleContext } from './browser.js';

/**
 * The console end to end, in headless Chromium against a real `pier up`:
 * what a user clicks, what they see, and that what the page says works
 * (the copied psql command connects). Screenshots of every page at 1280 px
 * and 390 px land in test-results/.
 */

const INSTANCE = 'console-db';
/** The synced table, in the instance's database catalog (its schemas and tables are Postgres' own, read live). */
const SYNCED = 'console_ops.operational.daily_revenue';

let pier: PierProcess;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let env: NodeJS.ProcessEnv;
const a11y: string[] = [];

before(async () => {
  [pier, browser] = await Promise.all([
    // Suspend timeouts from 1 s: the Autoscaling page's scale to zero and wake-up within the test's time.
    startPier({ env: { PIER_METRICS_SAMPLE_MS: '1000' }, args: ['--min-suspend-timeout', '1'] }),
    launchChromium(),
  ]);
  env = { DATABRICKS_HOST: pier.apiUrl, DATABRICKS_TOKEN: pier.adminToken };
  context = await newConsoleContext(browser, pier.apiUrl);
  page = await context.newPage();
  page.setDefaultTimeout(20_000);
});

after(async () => {
  await browser?.close();
  if (pier) await removePier(pier);
});

function psql(command: string, password: string, sql: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', `${command} -tAc '${sql}'`], {
      env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d;
    });
    child.on('exit', (code) => resolve({ code, out: out.trim() }));
  });
}

describe('the console', () => {
  test('signs in with a personal access token, kept only as an HttpOnly session cookie', async () => {
    await page.goto(pier.apiUrl);
    await page.getByRole('heading', { name: 'Sign in to Pier' }).waitFor();
    a11y.push(...(await capturePage(page, 'sign-in')));

    await page.getByLabel('Personal access token').fill('dapi00000000000000000000000000000000');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'unknown, revoked or expired' }).waitFor();

    await page.getByLabel('Personal access token').fill(pier.adminToken);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Database instances' }).waitFor();

    const [cookie] = await context.cookies();
    assert.equal(cookie.name, 'pier_session');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.notEqual(cookie.value, pier.adminToken);
    const stored = await page.evaluate(
      () => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }),
    );
    assert.ok(!stored.includes(pier.adminToken), 'the token is in web storage');
  });

  test('reaches every control from the keyboard, with a visible focus', async () => {
    // Tab from the top of the page to "Create instance", open its dialog with Enter, close it with Esc.
    await page.locator('body').focus();
    let focused = '';
    for (let i = 0; i < 12 && focused !== 'Create instance'; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => document.activeElement?.textContent?.trim() ?? '');
    }
    assert.equal(focused, 'Create instance');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    assert.notEqual(outline, 'none', 'the focused button shows no focus ring');
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Create a database instance' });
    await dialog.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'instance-name');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });

  test('creates an instance, showing the API validation message inline, and watches it reach AVAILABLE', async () => {
    await page.getByRole('button', { name: 'Create instance' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create a database instance' });
    a11y.push(...(await capturePage(page, 'create-instance')));
    await dialog.getByLabel('Name').fill('Not A Valid Name!');
    await dialog.getByRole('button', { name: 'Create' }).click();
    const refusal = dialog.getByRole('alert');
    await refusal.waitFor();
    assert.match(await refusal.innerText(), /INVALID_PARAMETER_VALUE/);
    const listed = await api(pier, pier.adminToken, 'GET', '/api/2.0/database/instances');
    assert.deepEqual(listed.body.database_instances ?? [], [], 'a refused create made no instance');

    await dialog.getByLabel('Name').fill(INSTANCE);
    await dialog.getByLabel('Tags').fill('team=orders');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: INSTANCE }).waitFor();
    // The badge changes without a reload: from STARTING to AVAILABLE.
    await page.locator('.title-row .badge[data-state="AVAILABLE"]').waitFor({ timeout: 90_000 });

    await page.getByRole('link', { name: 'Instances' }).first().click();
    await page.locator(`tr[data-instance="${INSTANCE}"] .badge[data-state="AVAILABLE"]`).waitFor();
    a11y.push(...(await capturePage(page, 'instances')));
    await page.getByRole('link', { name: INSTANCE }).click();
    await page.getByRole('heading', { name: INSTANCE }).waitFor();
  });

  test('generates a credential shown once with its expiry, and the copied psql command connects with it', async () => {
    await page.getByRole('button', { name: 'Generate credential' }).click();
    const token = (await page.getByTestId('credential').innerText()).trim();
    assert.match(token, /^eyJ/);
    assert.match(await page.getByTestId('credential-expiry').innerText(), /^Expires in (59|60) min/);

    await page.getByRole('button', { name: 'Copy psql command' }).click();
    const command = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(command, await page.getByTestId('psql-command').innerText());
    assert.match(
      command,
      /^psql "host=127\.1\.\d+\.\d+ port=\d+ dbname=databricks_postgres user=admin@pier\.local sslmode=verify-full sslrootcert=/,
    );
    const result = await psql(command, token, 'SELECT current_user');
    assert.equal(result.code, 0, result.out);
    assert.equal(result.out, 'admin@pier.local');
    // A wrong password is refused (and counted on /metrics, below).
    const refused = await psql(command, 'not-a-credential', 'SELECT 1');
    assert.notEqual(refused.code, 0);
  });

  test('resizes the instance, with confirmation and progress until it is AVAILABLE again', async () => {
    await page.getByLabel('Capacity', { exact: true }).selectOption('CU_2');
    await page.getByRole('button', { name: 'Resize' }).click();
    const confirm = page.getByRole('dialog', { name: `Resize ${INSTANCE} to CU_2?` });
    await confirm.getByRole('button', { name: 'Resize' }).click();
    await page.getByRole('status').filter({ hasText: 'Resizing to CU_2' }).waitFor();
    await page
      .getByRole('status')
      .filter({ hasText: 'Resizing to CU_2' })
      .waitFor({ state: 'detached', timeout: 90_000 });
    await page.locator('.title-row .badge[data-state="AVAILABLE"]').waitFor();
    const instance = await api(pier, pier.adminToken, 'GET', `/api/2.0/database/instances/${INSTANCE}`);
    assert.equal(instance.body.capacity, 'CU_2');
    assert.equal(instance.body.state, 'AVAILABLE');
    // Samples arrive every second here (15 s by default): the charts fill in.
    await page.getByRole('img', { name: /^Connections: connections: \d+/ }).waitFor({ timeout: 30_000 });
    a11y.push(...(await capturePage(page, 'instance')));
  });

  test('creates a synced table from the demo table, watches the snapshot reach 100%, then sees a new version', async () => {
    for (const args of [
      ['demo', '--data-dir', pier.dataDir],
      [
        'database',
        'register-database-instance',
        INSTANCE,
        '--catalog',
        'console_ops',
        '--schema',
        'operational',
      ],
    ]) {
      const run = await runPier(args, env);
      assert.equal(run.code, 0, run.stderr);
    }
    await page.getByRole('link', { name: 'Synced tables' }).click();
    await page.getByRole('button', { name: 'Create synced table' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create a synced table' });
    await dialog.getByLabel('Instance').selectOption(INSTANCE);
    await dialog.getByLabel('Source Delta table').fill('analytics.gold.daily_revenue');
    await dialog.getByRole('button', { name: 'Load columns' }).click();
    // The key is picked from the source's columns; none picked is the API's refusal, shown in place.
    await dialog.getByRole('checkbox', { name: 'day' }).waitFor();
    await dialog.getByLabel('Target table').fill(SYNCED);
    await dialog.getByRole('button', { name: 'Create' }).click();
    const noKey = dialog.getByRole('alert');
    await noKey.waitFor();
    assert.match(await noKey.innerText(), /primary_key_columns/);
    await dialog.getByRole('checkbox', { name: 'day' }).check();
    await dialog.getByRole('checkbox', { name: 'region' }).check();
    await dialog.getByLabel('Scheduling policy').selectOption('TRIGGERED');
    a11y.push(...(await capturePage(page, 'create-synced-table')));
    await dialog.getByRole('button', { name: 'Create' }).click();

    await page.getByRole('heading', { name: SYNCED }).waitFor();
    await page.getByTestId('sync-percent').filter({ hasText: '100%' }).waitFor({ timeout: 90_000 });
    await page.getByTestId('last-version').filter({ hasText: /^1$/ }).waitFor();

    const advanced = await runPier(['demo', 'advance', '--data-dir', pier.dataDir], env);
    assert.equal(advanced.code, 0, advanced.stderr);
    await page.getByRole('button', { name: 'Start an update' }).click();
    await page.getByTestId('last-version').filter({ hasText: /^2$/ }).waitFor({ timeout: 60_000 });
    await page.getByRole('img', { name: /^Rows synced per pass/ }).waitFor({ timeout: 20_000 });
    a11y.push(...(await capturePage(page, 'synced-table')));

    await page.getByRole('link', { name: 'Synced tables' }).first().click();
    await page.getByRole('link', { name: SYNCED }).waitFor();
    a11y.push(...(await capturePage(page, 'synced-tables')));
  });

  test('explores the catalog: the Delta table, its history, rows and lineage, and the live database schema', async () => {
    await page.getByRole('link', { name: 'Catalog' }).click();
    await page.getByRole('link', { name: 'analytics' }).click();
    await page.getByRole('link', { name: 'gold' }).click();
    a11y.push(...(await capturePage(page, 'catalog-schema')));
    await page.getByRole('link', { name: 'daily_revenue' }).click();
    await page.getByRole('heading', { name: 'analytics.gold.daily_revenue' }).waitFor();
    await page.getByRole('cell', { name: 'decimal(12,2)' }).waitFor();
    const history = page.locator('section[aria-labelledby="history-title"] tbody tr');
    await history.first().waitFor();
    assert.equal(await history.count(), 3);
    assert.equal(await history.first().locator('td').first().innerText(), '2');
    await page.getByRole('heading', { name: /^Rows \(version 2, first \d+\)$/ }).waitFor();
    await page.getByRole('link', { name: SYNCED }).waitFor();
    a11y.push(...(await capturePage(page, 'catalog-table')));

    // The lineage graph's target opens the synced table's Postgres side: the live database schema.
    await page.getByRole('link', { name: SYNCED }).click();
    await page.getByRole('heading', { name: SYNCED }).waitFor();
    await page.getByRole('cell', { name: 'revenue' }).waitFor();
    await page.getByRole('cell', { name: 'decimal(12,2)' }).waitFor(); // read from Postgres' numeric(12,2)
    await page.getByRole('link', { name: 'Catalog' }).first().click();
    await page.getByRole('heading', { name: 'Catalogs' }).waitFor();
    await page.getByText('Database catalog (live Postgres)').waitFor();
    a11y.push(...(await capturePage(page, 'catalogs')));
    await page.getByRole('link', { name: 'console_ops' }).click();
    await page.getByRole('link', { name: 'operational' }).click();
    await page.getByRole('link', { name: 'daily_revenue' }).waitFor();
  });

  test('grants CAN_USE, creates and deletes a role, stops and starts the instance, deletes another', async () => {
    await createUser(pier, 'ravi@example.com');
    await page.goto(`${pier.apiUrl}/#/instances/${INSTANCE}`);
    await page.getByRole('heading', { name: INSTANCE }).waitFor();
    await page.getByLabel('User', { exact: true }).fill('ravi@example.com');
    await page.getByLabel('Permission', { exact: true }).selectOption('CAN_USE');
    await page.getByRole('button', { name: 'Grant' }).click();
    await page.getByRole('cell', { name: 'ravi@example.com', exact: true }).waitFor();
    const acl = await api(
      pier,
      pier.adminToken,
      'GET',
      `/api/2.0/permissions/database-instances/${INSTANCE}`,
    );
    assert.match(
      JSON.stringify(acl.body),
      /"user_name":"ravi@example.com","all_permissions":\[\{"permission_level":"CAN_USE"/,
    );

    await page.getByLabel('Role name').fill('ravi@example.com');
    await page.getByLabel('Identity type').selectOption('USER');
    await page.getByRole('button', { name: 'Create role' }).click();
    await page.getByRole('button', { name: 'Delete role ravi@example.com' }).click();
    await page
      .getByRole('dialog', { name: 'Delete role ravi@example.com?' })
      .getByRole('button', { name: 'Delete' })
      .click();
    await page.getByRole('button', { name: 'Delete role ravi@example.com' }).waitFor({ state: 'detached' });

    for (const [action, state] of [
      ['Stop', 'STOPPED'],
      ['Start', 'AVAILABLE'],
    ]) {
      await page.getByRole('button', { name: action, exact: true }).click();
      await page.getByRole('dialog').getByRole('button', { name: action, exact: true }).click();
      await page.locator(`.title-row .badge[data-state="${state}"]`).waitFor({ timeout: 90_000 });
    }

    // Deleting: another instance (the one above serves the checks below), made stopped through the API.
    const made = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', {
      name: 'console-tmp',
      capacity: 'CU_1',
      stopped: true,
    });
    assert.equal(made.status, 200, JSON.stringify(made.body));
    await page.goto(`${pier.apiUrl}/#/instances/console-tmp`);
    await page.locator('.title-row .badge[data-state="STOPPED"]').waitFor({ timeout: 90_000 });
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page
      .getByRole('dialog', { name: 'Delete console-tmp?' })
      .getByRole('button', { name: 'Delete' })
      .click();
    await page.getByRole('heading', { name: 'Database instances' }).waitFor({ timeout: 90_000 });
    await page.locator('tr[data-instance="console-tmp"]').waitFor({ state: 'detached', timeout: 90_000 });
    assert.equal(
      (await api(pier, pier.adminToken, 'GET', '/api/2.0/database/instances/console-tmp')).status,
      404,
    );
  });

  test('Autoscaling: a project, a branch at a point in time in its tree, an endpoint suspended and woken', async () => {
    const PROJECT = 'console-shop';
    await page.getByRole('link', { name: 'Projects' }).first().click();
    await page.getByRole('button', { name: 'Create project' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create a project' });
    await dialog.getByLabel('Project id').fill('Shop!');
    await dialog.getByRole('button', { name: 'Create' }).click();
    const refusal = dialog.getByRole('alert');
    await refusal.waitFor();
    assert.match(await refusal.innerText(), /^INVALID_PARAMETER_VALUE: project_id "Shop!" is invalid/);
    const none = await api(pier, pier.adminToken, 'GET', '/api/2.0/postgres/projects');
    assert.deepEqual(none.body.projects ?? [], [], 'a refused create made no project');
    await dialog.getByLabel('Project id').fill(PROJECT);
    await dialog.getByLabel('Display name').fill('Console shop');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: PROJECT }).waitFor();
    const endpointBadge = (state: string) =>
      page.locator(`li[data-endpoint="primary"] .badge[data-state="${state}"]`);
    await endpointBadge('ACTIVE').waitFor({ timeout: 60_000 });

    // A branch at a point in time, from the page: a wrong LSN first, refused in place.
    await page.getByRole('button', { name: 'Create branch' }).click();
    const branching = page.getByRole('dialog', { name: 'Create a branch' });
    await branching.getByLabel('Branch id').fill('dev');
    await branching.getByLabel('An LSN').check();
    await branching.getByLabel('LSN', { exact: true }).fill('not-an-lsn');
    await branching.getByRole('button', { name: 'Create' }).click();
    await branching
      .getByRole('alert')
      .filter({ hasText: /INVALID_PARAMETER_VALUE: spec.source_branch_lsn/ })
      .waitFor();
    await branching.getByLabel('A point in time').check();
    a11y.push(...(await capturePage(page, 'create-branch')));
    // The first base backup is taken just after the endpoint starts: until then a time is outside the window.
    let at = '';
    for (let tries = 0; ; tries++) {
      at = await page.evaluate(() => {
        const d = new Date();
        const p = (n: number) => String(n).padStart(2, '0');
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
      });
      await branching.getByLabel('Time (your time zone)').fill(at);
      await branching.getByRole('button', { name: 'Create' }).click();
      const outcome = await Promise.race([
        branching.waitFor({ state: 'detached' }).then(() => 'created'),
        branching
          .getByRole('alert')
          .waitFor()
          .then(() => 'refused'),
      ]);
      if (outcome === 'created') break;
      const message = await branching.getByRole('alert').innerText();
      assert.ok(tries < 20 && /backup|window/i.test(message), message);
      await page.waitForTimeout(1000);
    }
    // The tree: dev under production, with the point it was taken from.
    await page.locator('li[data-branch="production"] li[data-branch="dev"]').waitFor();
    await page.getByRole('heading', { name: 'Branch dev' }).waitFor();
    assert.match(await page.getByTestId('branch-source').innerText(), /^from production at /);
    await endpointBadge('ACTIVE').waitFor({ timeout: 60_000 });
    const dev = await api(pier, pier.adminToken, 'GET', `/api/2.0/postgres/projects/${PROJECT}/branches/dev`);
    const status = dev.body.status as Record<string, string>;
    assert.equal(status.source_branch, `projects/${PROJECT}/branches/production`);
    const zone = await page.evaluate((local) => new Date(local).toISOString(), at);
    assert.equal(status.source_branch_time, zone, 'the time entered, in the browser zone');
    a11y.push(...(await capturePage(page, 'project')));

    // Edit: the API's refusal in the dialog, then a suspend timeout that lets it scale to zero.
    // From the keyboard: Enter opens the dialog, focus lands in it, Esc closes it.
    await page.getByRole('button', { name: 'Edit primary' }).focus();
    await page.keyboard.press('Enter');
    const editing = page.getByRole('dialog', { name: 'Edit endpoint primary' });
    await editing.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'endpoint-min');
    await page.keyboard.press('Escape');
    await editing.waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Edit primary' }).press('Enter');
    await editing.getByLabel('Maximum CU').fill('40');
    await editing.getByRole('button', { name: 'Save' }).click();
    await editing
      .getByRole('alert')
      .filter({ hasText: /must be at most 16 CU/ })
      .waitFor();
    await editing.getByLabel('Maximum CU').fill('2');
    await editing.getByLabel('Suspend after idle (seconds)').fill('3');
    await editing.getByRole('button', { name: 'Save' }).click();
    await editing.waitFor({ state: 'detached' });
    // No client: suspended after 3 s, shown without a reload; Wake up starts it again.
    await endpointBadge('IDLE').waitFor({ timeout: 30_000 });
    a11y.push(...(await capturePage(page, 'project-idle')));
    await page.getByRole('button', { name: 'Wake up primary' }).click();
    await endpointBadge('ACTIVE').waitFor({ timeout: 30_000 });

    // The wake route keeps the endpoint's rules: hidden from others, refused when disabled (no button then).
    const endpoint = `/api/2.0/postgres/projects/${PROJECT}/branches/dev/endpoints/primary`;
    const wake = `/api/2.0/pier/postgres/projects/${PROJECT}/branches/dev/endpoints/primary/wake`;
    const mo = await createUser(pier, 'mo@example.com');
    assert.equal((await api(pier, mo, 'POST', wake)).status, 404);
    const disabled = await api(pier, pier.adminToken, 'PATCH', `${endpoint}?update_mask=spec.disabled`, {
      spec: { disabled: true },
    });
    assert.equal(disabled.status, 200, JSON.stringify(disabled.body));
    await endpointBadge('DISABLED').waitFor();
    const refused = await api(pier, pier.adminToken, 'POST', wake);
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error_code, 'BAD_REQUEST');
    assert.match(refused.body.message as string, /^endpoint primary is disabled: nothing wakes it\./);
    assert.equal(await page.getByRole('button', { name: 'Wake up primary' }).count(), 0);

    // The list, then deleting the project (softly: hidden, and undeletable for its history retention).
    await page.getByRole('link', { name: 'Projects' }).first().click();
    await page.locator(`tr[data-project="${PROJECT}"]`).waitFor();
    a11y.push(...(await capturePage(page, 'projects')));
    await page.getByRole('link', { name: PROJECT }).click();
    await page.getByRole('button', { name: 'Delete project' }).click();
    await page
      .getByRole('dialog', { name: `Delete project ${PROJECT}?` })
      .getByRole('button', { name: 'Delete' })
      .click();
    await page.getByRole('heading', { name: 'Autoscaling projects' }).waitFor();
    await page.locator(`tr[data-project="${PROJECT}"]`).waitFor({ state: 'detached' });
    const gone = await api(pier, pier.adminToken, 'GET', `/api/2.0/postgres/projects/${PROJECT}`);
    assert.equal(gone.status, 404);
  });

  test('the Nodes page shows the Pier processes on the store: this one running, with its instances', async () => {
    await page.getByRole('link', { name: 'Nodes' }).click();
    await page.getByRole('heading', { name: 'Nodes' }).waitFor();
    const row = page.locator('tbody tr', { hasText: '(this node)' });
    await row.locator('[data-state="RUNNING"]').waitFor();
    const cells = await row.locator('td').allInnerTexts();
    const nodeId = (await readFile(join(pier.dataDir, 'node-id'), 'utf8')).trim();
    assert.equal(cells[0], `${nodeId} (this node)`);
    // As the API says; at least the Provisioned instances (Autoscaling computes run here too).
    const nodes = (await api(pier, pier.adminToken, 'GET', '/api/2.0/pier/nodes')).body.nodes as {
      instance_count: number;
    }[];
    assert.equal(Number(cells[4]), nodes[0].instance_count);
    const instances = (await api(pier, pier.adminToken, 'GET', '/api/2.0/database/instances')).body
      .database_instances as unknown[];
    assert.ok(nodes[0].instance_count >= instances.length);
    a11y.push(...(await capturePage(page, 'nodes')));
  });

  test('every page has no serious accessibility violations and fits a phone screen', () => {
    assert.deepEqual(a11y, []);
  });

  test('signing out ends the session server-side', async () => {
    const [cookie] = await context.cookies();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Pier' }).waitFor();
    const response = await fetch(`${pier.apiUrl}/api/2.0/database/instances`, {
      headers: { cookie: `pier_session=${cookie.value}` },
    });
    assert.equal(response.status, 401);
  });
});

describe('sessions, CSRF and /metrics over HTTP', () => {
  async function signIn(token: string): Promise<{ cookie: string; csrf: string }> {
    const response = await fetch(`${pier.apiUrl}/console/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    assert.equal(response.status, 200);
    const setCookie = response.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.doesNotMatch(setCookie, /Secure/); // plain HTTP here; Secure when the API serves HTTPS
    const body = (await response.json()) as { csrf_token: string };
    return { cookie: setCookie.split(';')[0], csrf: body.csrf_token };
  }

  const create = (session: { cookie: string }, headers: Record<string, string>) =>
    fetch(`${pier.apiUrl}/api/2.0/database/instances`, {
      method: 'POST',
      headers: { cookie: session.cookie, 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ name: 'csrf-probe', capacity: 'CU_1', stopped: true }),
    });

  test('a state-changing call with the cookie needs the CSRF token and the same origin; refused ones change nothing', async () => {
    const session = await signIn(pier.adminToken);
    const without = await create(session, {});
    assert.equal(without.status, 403);
    assert.match(((await without.json()) as { message: string }).message, /x-pier-csrf/);
    const wrong = await create(session, { 'x-pier-csrf': 'guess' });
    assert.equal(wrong.status, 403);
    const crossOrigin = await create(session, { 'x-pier-csrf': session.csrf, origin: 'http://evil.example' });
    assert.equal(crossOrigin.status, 403);
    const missing = await api(pier, pier.adminToken, 'GET', '/api/2.0/database/instances/csrf-probe');
    assert.equal(missing.status, 404);

    const created = await create(session, { 'x-pier-csrf': session.csrf, origin: pier.apiUrl });
    assert.equal(created.status, 200);
    assert.equal(
      (await api(pier, pier.adminToken, 'DELETE', '/api/2.0/database/instances/csrf-probe')).status,
      200,
    );
  });

  test('a session ends with the token it was made from', async () => {
    const minted = await api(pier, pier.adminToken, 'POST', '/api/2.0/token/create', { comment: 'console' });
    const token = minted.body.token_value as string;
    const session = await signIn(token);
    const before = await fetch(`${pier.apiUrl}/console/session`, { headers: { cookie: session.cookie } });
    assert.equal(before.status, 200);
    const tokenId = (minted.body.token_info as { token_id: string }).token_id;
    assert.equal(
      (await api(pier, pier.adminToken, 'POST', '/api/2.0/token/delete', { token_id: tokenId })).status,
      200,
    );
    const afterRevoke = await fetch(`${pier.apiUrl}/api/2.0/database/instances`, {
      headers: { cookie: session.cookie },
    });
    assert.equal(afterRevoke.status, 401);
  });

  test('/metrics speaks the Prometheus text format, for admins only', async () => {
    assert.equal((await fetch(`${pier.apiUrl}/metrics`)).status, 401);
    const response = await fetch(`${pier.apiUrl}/metrics`, {
      headers: { authorization: `Bearer ${pier.adminToken}` },
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    for (const line of [
      new RegExp(`^pier_instance_connections\\{instance="${INSTANCE}"\\} \\d+$`, 'm'),
      new RegExp(`^pier_instance_database_size_bytes\\{instance="${INSTANCE}"\\} \\d+$`, 'm'),
      new RegExp(`^pier_instance_transactions_total\\{instance="${INSTANCE}"\\} \\d+$`, 'm'),
      /^pier_api_requests_total\{route="\/api\/2\.0\/database\/instances\/:name",method="GET",status="200"\} \d+$/m,
      /^pier_proxy_connections_total\{outcome="connected",kind=""\} [1-9]\d*$/m,
      /^pier_proxy_auth_failures_total\{kind="TOKEN_MALFORMED"\} [1-9]\d*$/m,
      /^pier_reconcile_duration_seconds_count\{outcome="done"\} [1-9]\d*$/m,
      /^pier_sync_duration_seconds_count\{policy="TRIGGERED",outcome="synced"\} [1-9]\d*$/m,
      /^# TYPE pier_sync_duration_seconds histogram$/m,
      // The one node of this Pier, running, with its instance.
      /^pier_node_up\{node="[0-9a-f-]{36}"\} 1$/m,
      /^pier_node_instances\{node="[0-9a-f-]{36}"\} [1-9]\d*$/m,
      /^# TYPE pier_node_sync_pipelines gauge$/m,
    ]) {
      assert.match(text, line);
    }
  });

  test("the console's read routes keep the resources' rules", async () => {
    const admin = (path: string) => api(pier, pier.adminToken, 'GET', path);
    const tooLong = await admin(`/api/2.0/pier/database/instances/${INSTANCE}/metrics?minutes=100000`);
    assert.equal(tooLong.status, 400);
    assert.equal(tooLong.body.error_code, 'INVALID_PARAMETER_VALUE');
    assert.equal(tooLong.body.message, "minutes must be a whole number from 1 to 1440, got '100000'.");
    assert.equal((await admin('/api/2.0/pier/database/instances/nope/metrics')).status, 404);
    const live = await admin(`/api/2.0/pier/tables/${SYNCED}/preview`);
    assert.equal(live.status, 400, JSON.stringify(live.body));
    assert.match(live.body.message as string, /is not a Delta table/);
    const passes = await admin(`/api/2.0/pier/database/synced_tables/${SYNCED}/passes`);
    assert.ok((passes.body.passes as { rows_synced: number }[]).some((p) => p.rows_synced === 21));

    // Someone without CAN_USE sees neither the instance's metrics nor /metrics.
    const jane = await createUser(pier, 'jane@example.com');
    const hidden = await api(pier, jane, 'GET', `/api/2.0/pier/database/instances/${INSTANCE}/metrics`);
    assert.equal(hidden.status, 404);
    const metrics = await fetch(`${pier.apiUrl}/metrics`, { headers: { authorization: `Bearer ${jane}` } });
    assert.equal(metrics.status, 403);
  });
});
