// @ts-check
/**
 * Daily revenue over HTTP, read from the synced table the seed's reverse-ETL
 * flow makes (Delta `analytics.gold.daily_revenue` → Postgres
 * `operational.daily_revenue`, kept up to date by a synced table):
 *
 *   GET /revenue[?region=emea&days=7]   the latest days, newest first
 *   GET /revenue/totals                 per region over all days
 *
 * While the table is missing, or the app's role may not read it, every
 * request gets a 503 that says what to run.
 */
import { createServer } from 'node:http';
import { createPool } from 'pier/client';

const TABLE = process.env.REVENUE_TABLE ?? 'operational.daily_revenue';
const INSTANCE = 'order-mgmt-db';
const role = process.env.PGUSER ?? '<the app client id>';
const database = process.env.PGDATABASE ?? 'databricks_postgres';

const pool = createPool();
pool.on('credentialError', ({ error, retryInMs }) =>
  console.warn(`database credential refresh failed (${error.message}); retrying in ${retryInMs} ms`),
);

const CREATE_IT = [
  'npx pier demo',
  `npx pier database register-database-instance ${INSTANCE} --catalog analytics --schema operational`,
  `npx pier database create-synced-table --instance-name ${INSTANCE} --source-table analytics.gold.daily_revenue --target-table daily_revenue --scheduling-policy CONTINUOUS`,
];
const GRANT_IT = [`GRANT pier_sync_reader_${database} TO "${role}";`];

/**
 * What is in the way of serving, or undefined when the table can be read.
 * @returns {Promise<{ error: string, run: string[] } | undefined>}
 */
async function blocker() {
  // The catalog is readable without any privilege on the schema (to_regclass is not).
  const [schema, table] = TABLE.split('.');
  const { rows } = await pool.query(
    `SELECT has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT') AS readable
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
    [schema, table],
  );
  if (rows.length === 0) {
    return { error: `The synced table ${TABLE} does not exist yet. Create it with:`, run: CREATE_IT };
  }
  if (!rows[0].readable) {
    return {
      error: `This app's role ${role} may not read ${TABLE}. Connected to ${database} as a member of databricks_superuser (the instance's creator, an admin), run:`,
      run: GRANT_IT,
    };
  }
  return undefined;
}

/** @param {import('node:http').ServerResponse} res @param {number} status @param {unknown} body */
const send = (res, status, body) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body, null, 2)}\n`);

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url ?? '/', 'http://app');
    if (req.method !== 'GET' || !['/revenue', '/revenue/totals'].includes(url.pathname)) {
      return send(res, 404, { error: 'Try GET /revenue or GET /revenue/totals.' });
    }
    const blocked = await blocker();
    if (blocked) return send(res, 503, blocked);
    if (url.pathname === '/revenue/totals') {
      const { rows } = await pool.query(
        `SELECT region, sum(orders)::text AS orders, sum(revenue)::text AS revenue, count(*)::int AS days
           FROM ${TABLE} GROUP BY region ORDER BY region`,
      );
      return send(res, 200, { totals: rows });
    }
    const days = Math.min(Math.max(Number(url.searchParams.get('days') ?? 7) || 7, 1), 366);
    const region = url.searchParams.get('region');
    const { rows } = await pool.query(
      `SELECT day::text AS day, region, orders::text AS orders, revenue::text AS revenue FROM ${TABLE}
        WHERE ($1::text IS NULL OR region = $1)
          AND day > (SELECT max(day) FROM ${TABLE}) - $2::int
        ORDER BY day DESC, region`,
      [region, days],
    );
    return send(res, 200, { table: TABLE, days, revenue: rows });
  } catch (error) {
    console.error(error);
    return send(res, 500, { error: 'The database did not answer; see the app log.' });
  }
});

const port = Number(process.env.DATABRICKS_APP_PORT ?? 8000);
server.listen(port, async () => {
  console.log(`revenue-api listening on ${port}`);
  const blocked = await blocker().catch(() => undefined);
  if (blocked) console.log(`${blocked.error}\n  ${blocked.run.join('\n  ')}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    void pool.end().finally(() => process.exit(0));
  });
}
