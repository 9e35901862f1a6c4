import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import pg from 'pg';
import { type Harness, startHarness } from './harness.js';

let h: Harness;
before(async () => {
  // 500 clients from one address: over the proxy's default cap per address (250).
  h = await startHarness({ maxConnections: 540, proxy: { limits: { maxConnectionsPerAddress: 600 } } });
});
after(async () => {
  await h?.close();
});

type Keyed = pg.Client & { processID: number; secretKey: number };

function cancelPacket(processId: number, secretKey: number): Buffer {
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(80877102, 4);
  packet.writeInt32BE(processId, 8);
  packet.writeInt32BE(secretKey, 12);
  return packet;
}

/** CancelRequest in the clear, as libpq before 17 sends it. */
function sendPlainCancel(port: number, processId: number, secretKey: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port }, () =>
      socket.end(cancelPacket(processId, secretKey)),
    );
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
}

/** CancelRequest inside TLS after SSLRequest, as PostgreSQL 17 clients send it. */
function sendTlsCancel(port: number, ca: string, processId: number, secretKey: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const raw = netConnect({ host: '127.0.0.1', port }, () => {
      const ssl = Buffer.alloc(8);
      ssl.writeInt32BE(8, 0);
      ssl.writeInt32BE(80877103, 4);
      raw.write(ssl);
    });
    raw.once('data', (answer) => {
      assert.equal(answer.toString(), 'S');
      const secure = tlsConnect({ socket: raw, ca, servername: 'localhost' }, () =>
        secure.end(cancelPacket(processId, secretKey)),
      );
      secure.on('close', () => resolve());
      secure.on('error', reject);
    });
    raw.on('error', reject);
  });
}

describe('sessions through the proxy', () => {
  for (const variant of ['in the clear', 'inside TLS'] as const) {
    it(`cancels pg_sleep(30) within a second (CancelRequest ${variant})`, async () => {
      const client = new pg.Client(h.clientConfig('alice', await h.token('alice'))) as Keyed;
      await client.connect();
      const backendPid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      assert.notEqual(client.processID, backendPid, 'the client sees the proxy key, not the backend pid');
      const started = Date.now();
      const sleeping = client.query('SELECT pg_sleep(30)').then(
        () => undefined,
        (error: Error & { code?: string }) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 150));
      if (variant === 'in the clear') await sendPlainCancel(h.proxy.port, client.processID, client.secretKey);
      else await sendTlsCancel(h.proxy.port, h.ca, client.processID, client.secretKey);
      const error = await sleeping;
      assert.equal(error?.code, '57014');
      assert.ok(Date.now() - started < 1000, `cancelled after ${Date.now() - started} ms`);
      assert.deepEqual((await client.query('SELECT 1 AS still')).rows, [{ still: 1 }]);
      await client.end();
    });
  }

  it('ignores a CancelRequest with a key it did not issue', async () => {
    const client = new pg.Client(h.clientConfig('alice', await h.token('alice'))) as Keyed;
    await client.connect();
    const sleeping = client.query('SELECT pg_sleep(0.4) AS done');
    await sendPlainCancel(h.proxy.port, client.processID, client.secretKey ^ 1);
    assert.deepEqual((await sleeping).rows, [{ done: '' }]);
    await client.end();
  });

  it('reuses a backend after a clean exit, with session state discarded', async () => {
    const token = await h.token('alice');
    const first = new pg.Client(h.clientConfig('alice', token, { application_name: 'warm' }));
    await first.connect();
    const pid = (await first.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    await first.query(
      "CREATE TEMP TABLE scratch (x int); SET search_path = 'nowhere'; PREPARE p AS SELECT 1",
    );
    await first.end();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const second = new pg.Client(h.clientConfig('alice', token, { application_name: 'warm' }));
    await second.connect();
    const row = (
      await second.query(
        "SELECT pg_backend_pid() AS pid, current_setting('search_path') AS path, to_regclass('pg_temp.scratch') AS temp, (SELECT count(*)::int FROM pg_prepared_statements) AS prepared",
      )
    ).rows[0];
    assert.deepEqual(row, { pid, path: '"$user", public', temp: null, prepared: 0 });
    await second.end();
  });

  it('drops a warm session whose backend ends while idle; the next client gets a live one', async () => {
    const token = await h.token('alice');
    const config = h.clientConfig('alice', token, { application_name: 'lost' });
    const first = new pg.Client(config);
    await first.connect();
    const pid = (await first.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    await first.end();
    await new Promise((resolve) => setTimeout(resolve, 100)); // the reset finishes: the session is warm
    const admin = await h.superuser();
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await admin.end();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = new pg.Client(config);
    await second.connect();
    const row = (await second.query('SELECT pg_backend_pid() AS pid, 1 AS alive')).rows[0];
    assert.notEqual(row.pid, pid, 'a terminated backend is never handed out');
    assert.equal(row.alive, 1);
    await second.end();
  });

  it('does not reuse a backend left inside a transaction', async () => {
    const token = await h.token('alice');
    const first = new pg.Client(h.clientConfig('alice', token, { application_name: 'tx' }));
    await first.connect();
    const pid = (await first.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    await first.query('BEGIN');
    await first.end();
    const second = new pg.Client(h.clientConfig('alice', token, { application_name: 'tx' }));
    await second.connect();
    const again = (await second.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    assert.notEqual(again, pid);
    await second.end();
  });

  it('closes idle warm sessions on request, so a database can be dropped', async () => {
    const admin = await h.superuser();
    await admin.query('CREATE DATABASE scratch OWNER alice');
    const client = new pg.Client(h.clientConfig('alice', await h.token('alice'), { database: 'scratch' }));
    await client.connect();
    await client.end();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const sessionsOnScratch = async () =>
      (await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'scratch'")).rows[0]
        .n;
    assert.equal(await sessionsOnScratch(), 1, 'the warm session keeps the database open');
    assert.ok(h.proxy.closeIdleBackends((socketDir) => socketDir === h.db1.socketDir) >= 1);
    for (let i = 0; i < 50 && (await sessionsOnScratch()) > 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    await admin.query('DROP DATABASE scratch');
    await admin.end();
  });

  it('serves 500 concurrent connections', async () => {
    const token = await h.token('bob');
    await new Promise((resolve) => setTimeout(resolve, 200)); // earlier sessions finish their reset
    const idleBefore = h.proxy.stats().idleBackends;
    const clients = Array.from({ length: 500 }, () => new pg.Client(h.clientConfig('bob', token)));
    await Promise.all(clients.map((client) => client.connect()));
    const results = await Promise.all(clients.map((client, i) => client.query('SELECT $1::int AS i', [i])));
    assert.deepEqual(
      results.map((result) => result.rows[0].i),
      clients.map((_, i) => i),
    );
    const admin = await h.superuser();
    const { rows } = await admin.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'bob'",
    );
    await admin.end();
    assert.equal(rows[0].n, 500);
    await Promise.all(clients.map((client) => client.end()));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const { idleBackends } = h.proxy.stats();
    assert.ok(
      idleBackends - idleBefore <= 16,
      `idle warm sessions of one role stay bounded (${idleBackends})`,
    );
  });
});
