import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import pg from 'pg';
import { nativeTls } from '../../src/proxy/native-tls.js';
import { Query, StartupMessage } from '../../src/proxy/protocol.js';
import { type Harness, startHarness } from './harness.js';

/**
 * The proxy has two TLS paths with the same behaviour: Node's TLS, and the
 * native one (built at install when a C compiler is there) that splices in C.
 * These tests run the data path of both. `.ci/run` sets
 * PIER_REQUIRE_NATIVE_TLS=1, so there a missing native build fails instead of
 * being skipped. (The other proxy tests run on the native path when it is
 * built; `npm test` runs them again with PIER_NATIVE_TLS=0.)
 */

const native = nativeTls();
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
// Required in CI, unless this run turned the native path off on purpose (npm test's second pass).
const nativeRequired = process.env.PIER_REQUIRE_NATIVE_TLS === '1' && process.env.PIER_NATIVE_TLS !== '0';

describe('the native TLS path is built where a C compiler is', () => {
  it('loads', { skip: !nativeRequired && !native.binding && `native TLS path ${native.why}` }, () => {
    assert.ok(native.binding, `native TLS path ${native.why}`);
  });
});

for (const path of ['native', 'javascript'] as const) {
  const unavailable = path === 'native' && !native.binding && !nativeRequired;
  describe(`the ${path} TLS path`, { skip: unavailable && `native TLS path ${native.why}` }, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ proxy: { nativeTls: path === 'native' } });
    });
    after(async () => {
      await h?.close();
    });

    it(`serves connections on the ${path} path`, async () => {
      assert.equal(h.proxy.tlsPath.kind, path);
      const client = new pg.Client(h.clientConfig('alice', await h.token('alice')));
      await client.connect();
      const { rows } = await client.query('SELECT current_user AS who, $1::int + 1 AS n', [41]);
      assert.deepEqual(rows, [{ who: 'alice', n: 42 }]);
      await client.end();
    });

    it('speaks TLS 1.2 and TLS 1.3, with the ciphers it prefers', async () => {
      for (const [version, cipher] of [
        ['TLSv1.2', 'ECDHE-ECDSA-AES128-GCM-SHA256'],
        ['TLSv1.3', 'TLS_AES_128_GCM_SHA256'],
      ] as const) {
        const config = h.clientConfig('alice', await h.token('alice'));
        const client = new pg.Client({
          ...config,
          ssl: { ...(config.ssl as object), minVersion: version, maxVersion: version },
        });
        await client.connect();
        const socket = (client as unknown as { connection: { stream: import('node:tls').TLSSocket } })
          .connection.stream;
        assert.equal(socket.getProtocol(), version);
        assert.equal(socket.getCipher().name, cipher);
        assert.deepEqual((await client.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
        await client.end();
      }
    });

    it('relays a 30 MB result to a client that stops reading for a while, and stays in step', async () => {
      const token = await h.token('alice');
      const psql = spawn(
        '/usr/bin/psql',
        [
          `host=${h.db1.dnsName} hostaddr=127.0.0.1 port=${h.proxy.port} user=alice dbname=app sslmode=verify-full sslrootcert=${h.proxy.caCertPath}`,
          '-At',
          '-c',
          "SELECT repeat('x', 100000) FROM generate_series(1, 300)",
          '-c',
          "SELECT 'after'",
        ],
        { env: { ...process.env, PGPASSWORD: token }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const exited = new Promise<number | null>((resolve) => psql.on('close', resolve));
      let bytes = 0;
      let tail = '';
      let stderr = '';
      psql.stdout.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        tail = (tail + chunk.toString('latin1')).slice(-16);
      });
      psql.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      // Stop the client mid-result: the proxy must hold back, not drop or reorder bytes.
      while (bytes < 1_000_000 && psql.exitCode === null)
        await new Promise((resolve) => setTimeout(resolve, 5));
      psql.kill('SIGSTOP');
      await new Promise((resolve) => setTimeout(resolve, 700));
      psql.kill('SIGCONT');
      const code = await exited;
      assert.equal(code, 0, stderr);
      assert.equal(bytes, 300 * 100_001 + 'after\n'.length);
      assert.ok(tail.endsWith('x\nafter\n'), JSON.stringify(tail));
    });

    it('passes on a query sent in the same packet as the password', async () => {
      // The proxy has already read (and decrypted) the query when it hands the session over.
      const raw = connect(h.proxy.port, '127.0.0.1');
      await once(raw, 'connect');
      raw.write(SSL_REQUEST);
      const [answer] = (await once(raw, 'data')) as [Buffer];
      assert.equal(answer.toString(), 'S');
      const client = tlsConnect({ socket: raw, ca: h.ca, servername: h.db1.dnsName });
      await once(client, 'secureConnect');
      let received = Buffer.alloc(0);
      client.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
      });
      const until = async (done: () => boolean) => {
        while (!done()) await once(client, 'data');
      };
      client.write(StartupMessage({ user: 'alice', database: 'app' }));
      await until(() => received.length >= 9);
      assert.equal(received[0], 0x52, 'an authentication request');
      received = Buffer.alloc(0);
      const password = Buffer.from(`${await h.token('alice')}\0`);
      const passwordMessage = Buffer.alloc(5);
      passwordMessage[0] = 0x70;
      passwordMessage.writeInt32BE(4 + password.length, 1);
      client.write(Buffer.concat([passwordMessage, password, Query('SELECT 6 * 7 AS answer')]));
      const readyIdle = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);
      const count = () => received.toString('latin1').split(readyIdle.toString('latin1')).length - 1;
      await until(() => count() >= 2); // after authentication, then after the query
      // DataRow: one column, two bytes, "42"
      const dataRow = Buffer.from([0x44, 0, 0, 0, 12, 0, 1, 0, 0, 0, 2, 0x34, 0x32]);
      assert.ok(received.includes(dataRow), received.toString('latin1'));
      client.on('error', () => {}); // the proxy may reset the socket once it has seen Terminate
      client.end(Buffer.from([0x58, 0, 0, 0, 4]));
      await once(client, 'close');
    });

    it('reuses a backend after a clean exit on this path too', async () => {
      const token = await h.token('bob');
      const first = new pg.Client(h.clientConfig('bob', token));
      await first.connect();
      const pid = (await first.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      await first.query("SET application_name = 'dirty'");
      await first.end();
      await new Promise((resolve) => setTimeout(resolve, 100));
      const second = new pg.Client(h.clientConfig('bob', token));
      await second.connect();
      const { rows } = await second.query(
        "SELECT pg_backend_pid() AS pid, current_setting('application_name') AS app",
      );
      assert.deepEqual(rows, [{ pid, app: '' }]);
      await second.end();
    });

    it('closes spliced sessions when the proxy closes', async () => {
      const proxy = await h.startProxy({ nativeTls: path === 'native' });
      const client = new pg.Client({ ...h.clientConfig('alice', await h.token('alice')), port: proxy.port });
      await client.connect();
      await client.query('SELECT 1');
      const ended = new Promise<Error | undefined>((resolve) => {
        client.on('error', resolve);
        client.on('end', () => resolve(undefined));
      });
      await proxy.close();
      await ended;
      await assert.rejects(client.query('SELECT 1'));
    });
  });
}
