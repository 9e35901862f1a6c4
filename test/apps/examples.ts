import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { freePort } from '../../src/apps/process.js';
import { instanceSuperuser } from '../helpers/access.js';
import { eventually, PIER_BIN, type PierProcess, runPier } from '../helpers/pier.js';

const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url));

/**
 * `pier apps run examples/<name>` in the background, as a user types it;
 * resolves once the app answers. `stop` is Ctrl-C: the exit code is returned.
 */
async function runExample(pier: PierProcess, name: string) {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [PIER_BIN, 'apps', 'run', `${EXAMPLES}${name}`, '--port', String(port), '--data-dir', pier.dataDir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited:\n${output}`);
      return fetch(url, { signal: AbortSignal.timeout(2000) }).then(
        () => true,
        () => undefined,
      );
    },
    60_000,
    `${name} answering`,
  );
  return {
    url,
    output: () => output,
    stop: async () => {
      child.kill('SIGINT');
      return exited;
    },
  };
}

async function json(url: string, init: RequestInit = {}) {
  const response = await fetch(url, {
    ...init,
    headers: init.body ? { 'content-type': 'application/json' } : {},
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/**
 * The three examples, each run with `pier apps run` against the Pier and the
 * instance `order-mgmt-db` that `context` gives (apps.test.ts shares its Pier).
 */
export function exampleTests(context: () => { pier: PierProcess; uid: string }): void {
  describe('examples, each run with pier apps run', () => {
    test('feature-flags: load, toggle, reload in headless Chromium; the change is stored', async () => {
      const { pier, uid } = context();
      const app = await runExample(pier, 'feature-flags');
      const browser = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        args: ['--headless', '--no-sandbox', '--disable-gpu'],
      });
      try {
        const page = await browser.newPage();
        await page.goto(app.url);
        assert.equal(await page.locator('h1').textContent(), 'Feature flags');
        const state = page.locator('tr[data-flag="new-checkout"] .state');
        assert.equal(await state.textContent(), 'off');
        await Promise.all([
          page.waitForURL(`${app.url}/`),
          page.locator('tr[data-flag="new-checkout"] button').click(),
        ]);
        assert.equal(await state.textContent(), 'on');
        await page.reload();
        assert.equal(await state.textContent(), 'on');
        assert.equal(await page.locator('tr[data-flag="dark-mode"] .state').textContent(), 'on');
      } finally {
        await browser.close();
      }
      assert.equal(await app.stop(), 0, app.output());
      assert.match(app.output(), /migration 2 applied/);

      const db = await instanceSuperuser(pier, uid, 'databricks_postgres');
      try {
        const { rows } = await db.query(
          "SELECT enabled FROM flags.feature_flags WHERE name = 'new-checkout'",
        );
        assert.deepEqual(rows, [{ enabled: true }]);
      } finally {
        await db.end();
      }
      // Started again, the migrations are not applied twice and the flag is as it was left.
      const again = await runExample(pier, 'feature-flags');
      assert.match(
        await (await fetch(again.url)).text(),
        /data-flag="new-checkout">[\s\S]*?<td class="state">on</,
      );
      assert.equal(await again.stop(), 0);
      assert.doesNotMatch(again.output(), /migration \d applied/);
    });

    test('order-mgmt: create, read, update, list, delete orders over HTTP', async () => {
      const { pier } = context();
      const app = await runExample(pier, 'order-mgmt');
      try {
        const created = await json(`${app.url}/orders`, {
          method: 'POST',
          body: JSON.stringify({ customer: 'acme', total: 19.99 }),
        });
        assert.equal(created.status, 201);
        assert.equal(created.body.status, 'NEW');
        assert.equal(created.body.total, '19.99');
        const id = created.body.id;
        assert.equal((await json(`${app.url}/orders/${id}`)).body.customer, 'acme');
        const paid = await json(`${app.url}/orders/${id}`, {
          method: 'PATCH',
          body: JSON.stringify({ status: 'PAID' }),
        });
        assert.equal(paid.body.status, 'PAID');
        const bad = await json(`${app.url}/orders`, {
          method: 'POST',
          body: JSON.stringify({ customer: 'x', total: 'lots' }),
        });
        assert.equal(bad.status, 400);
        assert.match(bad.body.error, /total must be an amount/);
        const listed = await json(`${app.url}/orders?status=PAID`);
        assert.deepEqual(
          listed.body.orders.map((o: { id: string }) => o.id),
          [id],
        );
        assert.equal((await fetch(`${app.url}/orders/${id}`, { method: 'DELETE' })).status, 204);
        assert.equal((await json(`${app.url}/orders/${id}`)).status, 404);
      } finally {
        assert.equal(await app.stop(), 0, app.output());
      }
    });

    test('revenue-api: says how to create the synced table, then serves it', async () => {
      const { pier, uid } = context();
      const app = await runExample(pier, 'revenue-api');
      try {
        const missing = await json(`${app.url}/revenue`);
        assert.equal(missing.status, 503);
        assert.match(missing.body.error, /operational\.daily_revenue does not exist yet/);
        assert.ok(missing.body.run.includes('npx pier demo'));

        const cli = (args: string[]) => runPier([...args, '--data-dir', pier.dataDir]);
        assert.equal((await cli(['demo'])).code, 0);
        const registered = await cli([
          'database',
          'register-database-instance',
          'order-mgmt-db',
          '--catalog',
          'analytics',
          '--schema',
          'operational',
        ]);
        assert.equal(registered.code, 0, registered.stderr);
        const synced = await cli([
          'database',
          'create-synced-table',
          '--instance-name',
          'order-mgmt-db',
          '--source-table',
          'analytics.gold.daily_revenue',
          '--target-table',
          'daily_revenue',
          '--scheduling-policy',
          'SNAPSHOT',
        ]);
        assert.equal(synced.code, 0, synced.stderr);

        const denied = await json(`${app.url}/revenue`);
        assert.equal(denied.status, 503);
        assert.match(denied.body.error, /may not read operational\.daily_revenue/);
        const db = await instanceSuperuser(pier, uid, 'databricks_postgres');
        try {
          await db.query(denied.body.run[0]);
          const served = await json(`${app.url}/revenue?days=3`);
          assert.equal(served.status, 200, JSON.stringify(served.body));
          const expected = await db.query(
            `SELECT day::text AS day, region, orders::text AS orders, revenue::text AS revenue FROM operational.daily_revenue
            WHERE day > (SELECT max(day) FROM operational.daily_revenue) - 3 ORDER BY day DESC, region`,
          );
          assert.ok(expected.rows.length > 0);
          assert.deepEqual(served.body.revenue, expected.rows);
          const totals = await json(`${app.url}/revenue/totals`);
          assert.deepEqual(
            totals.body.totals.map((t: { region: string }) => t.region),
            ['amer', 'apac', 'emea'],
          );
        } finally {
          await db.end();
        }
      } finally {
        assert.equal(await app.stop(), 0, app.output());
      }
    });
  });
}
