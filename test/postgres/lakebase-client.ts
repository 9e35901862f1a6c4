/**
 * Run as a child process by lakebase.test.ts: Databricks' own
 * `@databricks/lakebase` pool, configured from the environment only
 * (LAKEBASE_ENDPOINT, PGHOST, PGPORT, PGDATABASE, PGUSER, PGSSLMODE,
 * DATABRICKS_HOST, DATABRICKS_TOKEN; Pier's CA via NODE_EXTRA_CA_CERTS),
 * queries across a token expiry and across a suspend and wake. Prints one
 * JSON line of what it saw.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createLakebasePool } from '@databricks/lakebase';

// Idle pool connections close quickly, so the endpoint can go idle (the pool's default is 30 s).
const pool = createLakebasePool({ idleTimeoutMillis: 300 });
const seen: Record<string, unknown> = {};

async function endpointState(): Promise<string> {
  const response = await fetch(
    `${process.env.DATABRICKS_HOST}/api/2.0/postgres/${process.env.LAKEBASE_ENDPOINT}`,
    {
      headers: { authorization: `Bearer ${process.env.DATABRICKS_TOKEN}` },
    },
  );
  const body = (await response.json()) as { status: { current_state: string } };
  return body.status.current_state;
}

try {
  await pool.query('CREATE TABLE visits (id serial PRIMARY KEY, at timestamptz DEFAULT now())');
  await pool.query('INSERT INTO visits DEFAULT VALUES');
  seen.user = (await pool.query('SELECT current_user AS u')).rows[0].u;
  // The credential lives a few seconds: after this the first one has expired.
  await sleep(Number(process.env.WAIT_PAST_TOKEN_MS ?? 5000));
  await pool.query('INSERT INTO visits DEFAULT VALUES');
  seen.afterExpiry = (await pool.query('SELECT count(*)::int AS n FROM visits')).rows[0].n;
  const deadline = Date.now() + 30_000;
  while ((await endpointState()) !== 'IDLE') {
    if (Date.now() > deadline) throw new Error('the endpoint never suspended');
    await sleep(200);
  }
  seen.suspended = true;
  const started = performance.now();
  seen.afterWake = (await pool.query('SELECT count(*)::int AS n FROM visits')).rows[0].n;
  seen.wakeMs = Math.round(performance.now() - started);
  seen.stateAfterWake = await endpointState();
} catch (error) {
  seen.error = (error as Error).message;
} finally {
  await pool.end();
}
process.stdout.write(`${JSON.stringify(seen)}\n`);
