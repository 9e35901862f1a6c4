import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { api, eventually, type PierProcess } from '../helpers/pier.js';

export const PG = '/api/2.0/postgres';

export interface Operation {
  name: string;
  done: boolean;
  metadata: Record<string, unknown>;
  response?: Record<string, unknown>;
  error?: { error_code: string; message: string };
}

/** Polls an operation (`GET /api/2.0/postgres/{name}`) until it is done, as the SDKs' wait() does. */
export async function waitOperation(
  pier: PierProcess,
  token: string,
  operation: Operation,
  timeoutMs = 60_000,
) {
  return eventually(
    async () => {
      const { status, body } = await api(pier, token, 'GET', `${PG}/${operation.name}`);
      assert.equal(status, 200, JSON.stringify(body));
      return (body as unknown as Operation).done ? (body as unknown as Operation) : undefined;
    },
    timeoutMs,
    `operation ${operation.name}`,
  );
}

/** Calls a long-running method and waits for it; returns the finished operation. */
export async function lro(pier: PierProcess, token: string, method: string, path: string, body?: unknown) {
  const started = await api(pier, token, method, `${PG}/${path}`, body);
  assert.equal(started.status, 200, JSON.stringify(started.body));
  const operation = started.body as unknown as Operation;
  assert.match(operation.name, /\/operations\/[0-9a-f-]{36}$/);
  const done = await waitOperation(pier, token, operation);
  assert.equal(done.error, undefined, JSON.stringify(done.error));
  assert.ok(done.response, 'a finished operation always has a response');
  return done;
}

/** Connects through the proxy to an endpoint (its `status.hosts.host`) with a fresh credential. */
export async function connectEndpoint(
  pier: PierProcess,
  token: string,
  endpoint: string,
  user: string,
  database = 'databricks_postgres',
): Promise<pg.Client> {
  const { body: found } = await api(pier, token, 'GET', `${PG}/${endpoint}`);
  const host = (found.status as { hosts: { host: string } }).hosts.host;
  const credential = await api(pier, token, 'POST', `${PG}/credentials`, { endpoint });
  assert.equal(credential.status, 200, JSON.stringify(credential.body));
  const client = new pg.Client({
    host,
    port: pier.proxyPort,
    user,
    password: credential.body.token as string,
    database,
    ssl: { ca: readFileSync(pier.caCertPath as string, 'utf8') },
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** Runs SQL on an endpoint and returns the rows. */
export async function query(
  pier: PierProcess,
  token: string,
  endpoint: string,
  user: string,
  sql: string,
  database = 'databricks_postgres',
) {
  const client = await connectEndpoint(pier, token, endpoint, user, database);
  try {
    const result = (await client.query(sql)) as unknown as pg.QueryResult | pg.QueryResult[];
    // Several statements answer with one result each: the last one's rows.
    return Array.isArray(result) ? (result[result.length - 1]?.rows ?? []) : result.rows;
  } finally {
    await client.end();
  }
}

export function expectError(
  result: { status: number; body: Record<string, unknown> },
  status: number,
  code: string,
  message?: RegExp,
) {
  assert.equal(result.status, status, JSON.stringify(result.body));
  assert.equal(result.body.error_code, code, JSON.stringify(result.body));
  if (message) assert.match(String(result.body.message), message);
}
