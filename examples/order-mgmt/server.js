// @ts-check
/**
 * Orders over HTTP: Hono routes on a pier/client pool.
 *
 *   GET    /orders[?status=NEW]   list (newest first, at most 100)
 *   POST   /orders                {customer, total, status?} → 201
 *   GET    /orders/:id
 *   PATCH  /orders/:id            {status?, total?}
 *   DELETE /orders/:id            → 204
 *
 * The schema is made on start; ids are bigints and travel as strings.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createPool } from 'pier/client';

const STATUSES = ['NEW', 'PAID', 'SHIPPED', 'CANCELLED'];
const COLUMNS = 'id::text AS id, customer, total::text AS total, status, created_at, updated_at';

const pool = createPool();
pool.on('credentialError', ({ error, retryInMs }) =>
  console.warn(`database credential refresh failed (${error.message}); retrying in ${retryInMs} ms`),
);
await pool.query(`CREATE SCHEMA IF NOT EXISTS orders;
  CREATE TABLE IF NOT EXISTS orders.orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer text NOT NULL CHECK (customer <> ''),
    total numeric(12, 2) NOT NULL CHECK (total >= 0),
    status text NOT NULL DEFAULT 'NEW' CHECK (status IN ('NEW', 'PAID', 'SHIPPED', 'CANCELLED')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
  )`);

/** A 400 with what was wrong. */
class BadRequest extends Error {}

/** @param {unknown} body @param {boolean} creating */
function orderFields(body, creating) {
  if (typeof body !== 'object' || body === null) throw new BadRequest('The body must be a JSON object.');
  const { customer, total, status } = /** @type {Record<string, unknown>} */ (body);
  if (creating && (typeof customer !== 'string' || customer.trim() === '')) {
    throw new BadRequest('customer is required: a non-empty string.');
  }
  if ((creating || total !== undefined) && !(typeof total === 'number' || typeof total === 'string')) {
    throw new BadRequest('total is required: a number such as 19.99.');
  }
  if (total !== undefined && !/^\d+(\.\d{1,2})?$/.test(String(total))) {
    throw new BadRequest(`total must be an amount of at most 2 decimals, got ${JSON.stringify(total)}.`);
  }
  if (status !== undefined && !STATUSES.includes(String(status))) {
    throw new BadRequest(`status must be one of ${STATUSES.join(', ')}.`);
  }
  return { customer: /** @type {string | undefined} */ (customer), total, status };
}

/** @param {string} id */
const validId = (id) => /^\d{1,18}$/.test(id);

const app = new Hono();

app.onError((error, c) => {
  if (error instanceof BadRequest) return c.json({ error: error.message }, 400);
  console.error(error);
  return c.json({ error: 'The database did not answer; see the app log.' }, 500);
});

app.get('/orders', async (c) => {
  const status = c.req.query('status');
  if (status !== undefined && !STATUSES.includes(status)) throw new BadRequest(`status must be one of ${STATUSES.join(', ')}.`);
  const { rows } = await pool.query(
    `SELECT ${COLUMNS} FROM orders.orders WHERE $1::text IS NULL OR status = $1 ORDER BY id DESC LIMIT 100`,
    [status ?? null],
  );
  return c.json({ orders: rows });
});

app.post('/orders', async (c) => {
  const order = orderFields(await c.req.json().catch(() => null), true);
  const { rows } = await pool.query(
    `INSERT INTO orders.orders (customer, total, status) VALUES ($1, $2, coalesce($3, 'NEW')) RETURNING ${COLUMNS}`,
    [order.customer, String(order.total), order.status ?? null],
  );
  return c.json(rows[0], 201);
});

app.get('/orders/:id', async (c) => {
  const id = c.req.param('id');
  const { rows } = validId(id) ? await pool.query(`SELECT ${COLUMNS} FROM orders.orders WHERE id = $1`, [id]) : { rows: [] };
  return rows[0] ? c.json(rows[0]) : c.json({ error: `Order ${id} does not exist.` }, 404);
});

app.patch('/orders/:id', async (c) => {
  const id = c.req.param('id');
  const change = orderFields(await c.req.json().catch(() => null), false);
  const { rows } = validId(id)
    ? await pool.query(
        `UPDATE orders.orders SET status = coalesce($2, status), total = coalesce($3::numeric, total), updated_at = now()
          WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, change.status ?? null, change.total === undefined ? null : String(change.total)],
      )
    : { rows: [] };
  return rows[0] ? c.json(rows[0]) : c.json({ error: `Order ${id} does not exist.` }, 404);
});

app.delete('/orders/:id', async (c) => {
  const id = c.req.param('id');
  const { rowCount } = validId(id) ? await pool.query('DELETE FROM orders.orders WHERE id = $1', [id]) : { rowCount: 0 };
  return rowCount ? c.body(null, 204) : c.json({ error: `Order ${id} does not exist.` }, 404);
});

const port = Number(process.env.DATABRICKS_APP_PORT ?? 8000);
const server = serve({ fetch: app.fetch, port }, () => console.log(`order-mgmt listening on ${port}`));
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    void pool.end().finally(() => process.exit(0));
  });
}
