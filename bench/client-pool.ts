/**
 * The cost of `pier/client`'s credential machinery: the same instance, in
 * the same run, through `createPool` and through a plain `pg.Pool` whose
 * password is one credential generated up front. Short rounds alternate
 * between the two (A B B A …) so drift in the machine's load hits both
 * alike; queries/s is compared round by round (the median of the paired
 * ratios), which cancels most of what a shared machine adds.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { createSecureContext, rootCertificates } from 'node:tls';
import pg from 'pg';
import { createPool } from 'pier/client';
import { api, type PierProcess } from '../test/helpers/pier.js';

// Many short rounds: on a busy machine, load drifts within seconds; slices this short
// put both pools under nearly the same conditions.
const ROUNDS = 40;
const CHECKOUTS = 250;
const NEW_SESSIONS = 10;
const LOAD_MS = 300;
const WORKERS = 8;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

interface Sample {
  checkout: number[];
  newSession: number[];
  queriesPerSecond: number[];
}

async function measure(pool: pg.Pool, into: Sample): Promise<void> {
  // Warm: every connection open, so checkout times the pool, not the login.
  const warm = await Promise.all(Array.from({ length: WORKERS }, () => pool.connect()));
  for (const client of warm) client.release();
  for (let i = 0; i < CHECKOUTS; i++) {
    const started = performance.now();
    const client = await pool.connect();
    into.checkout.push(performance.now() - started);
    client.release();
  }
  // A new session each time (release(true) closes it): TLS, the password, the login.
  for (let i = 0; i < NEW_SESSIONS; i++) {
    const started = performance.now();
    const client = await pool.connect();
    await client.query('SELECT 1');
    into.newSession.push(performance.now() - started);
    client.release(true);
  }
  let queries = 0;
  const deadline = performance.now() + LOAD_MS;
  await Promise.all(
    Array.from({ length: WORKERS }, async () => {
      while (performance.now() < deadline) {
        await pool.query('SELECT 1');
        queries++;
      }
    }),
  );
  into.queriesPerSecond.push(queries / (LOAD_MS / 1000));
}

/** Runs both pools against `instanceName` and returns the results as a Markdown table. */
export async function clientPoolTable(pier: PierProcess, instanceName: string): Promise<string> {
  const { body: instance } = await api(
    pier,
    pier.adminToken,
    'GET',
    `/api/2.0/database/instances/${instanceName}`,
  );
  const { body: credential } = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/credentials', {
    instance_names: [instanceName],
  });
  const ca = readFileSync(pier.caCertPath!, 'utf8');
  const fixed = {
    host: instance.read_write_dns as string,
    port: pier.proxyPort,
    user: 'admin@pier.local',
    database: 'databricks_postgres',
    password: credential.token as string,
    max: WORKERS,
  };
  // The same TLS set-up as createPool's (one context, Node's roots + Pier's CA), so the
  // difference measured is the credential machinery alone.
  const plain = new pg.Pool({
    ...fixed,
    ssl: { secureContext: createSecureContext({ ca: [...rootCertificates, ca] }) },
  });
  const refreshing = createPool({
    instanceName,
    port: pier.proxyPort,
    sslRootCert: pier.caCertPath,
    workspace: { host: pier.apiUrl, token: pier.adminToken },
    max: WORKERS,
    env: {},
  });
  const samples = {
    plain: { checkout: [], newSession: [], queriesPerSecond: [] } as Sample,
    client: { checkout: [], newSession: [], queriesPerSecond: [] } as Sample,
  };
  try {
    // One round each, not counted: JIT warm-up and the first logins.
    const discard = () => ({ checkout: [], newSession: [], queriesPerSecond: [] }) as Sample;
    await measure(plain, discard());
    await measure(refreshing, discard());
    for (let round = 0; round < ROUNDS; round++) {
      // A B B A …: neither pool always runs first.
      const order = round % 2 === 0 ? (['plain', 'client'] as const) : (['client', 'plain'] as const);
      for (const which of order) await measure(which === 'plain' ? plain : refreshing, samples[which]);
    }
  } finally {
    await plain.end();
    await refreshing.end();
  }
  // createPool's rate over the plain pool's, in the same round.
  const pairedRatio = percentile(
    samples.client.queriesPerSecond.map((rate, round) => rate / samples.plain.queriesPerSecond[round]),
    50,
  );
  const us = (n: number) => `${(n * 1000).toFixed(1)} µs`;
  const msf = (n: number) => `${n.toFixed(2)} ms`;
  const cost = (plainValue: number, clientValue: number, higherIsBetter = false) =>
    `${((higherIsBetter ? plainValue / clientValue - 1 : clientValue / plainValue - 1) * 100).toFixed(1)}%`;
  const row = (label: string, pick: (s: Sample) => number, format: (n: number) => string, higher = false) =>
    `| ${label} | ${format(pick(samples.plain))} | ${format(pick(samples.client))} | ${cost(pick(samples.plain), pick(samples.client), higher)} |`;
  return [
    `## pier/client createPool vs a plain pg.Pool`,
    '',
    `Same instance (${instanceName}), same run, ${ROUNDS} short rounds alternating A B B A (so the load of a shared machine hits both alike) after one uncounted warm-up round each; pools of ${WORKERS}. The plain pool's password is one credential generated up front and its TLS set-up is createPool's; createPool's password comes from its refreshing cache. Cost = how much slower createPool is (negative: faster). Load average during the run: ${loadavg()[0].toFixed(1)} (the p99 rows, a handful of samples each, mostly show the machine's other work).`,
    '',
    '| measure | plain pg.Pool | createPool | cost |',
    '|---|---|---|---|',
    row(`checkout p50 (warm pool, n=${CHECKOUTS * ROUNDS})`, (s) => percentile(s.checkout, 50), us),
    row('checkout p99', (s) => percentile(s.checkout, 99), us),
    row(
      `new session p50 (connect + TLS + login + SELECT 1, n=${NEW_SESSIONS * ROUNDS})`,
      (s) => percentile(s.newSession, 50),
      msf,
    ),
    row('new session p99', (s) => percentile(s.newSession, 99), msf),
    `| queries/s, median of ${ROUNDS} rounds of ${LOAD_MS} ms (${WORKERS} workers, SELECT 1); cost = median of the paired ratios | ${percentile(samples.plain.queriesPerSecond, 50).toFixed(0)} | ${percentile(samples.client.queriesPerSecond, 50).toFixed(0)} | ${((1 / pairedRatio - 1) * 100).toFixed(1)}% |`,
    '',
  ].join('\n');
}
