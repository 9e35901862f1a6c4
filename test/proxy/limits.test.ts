import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import pg from 'pg';
import { MAX_SCRAM_ITERATIONS } from '../../src/auth/scram.js';
import { nativePasswordCheck } from '../../src/instances/directory.js';
import { NATIVE_REFUSAL_MS } from '../../src/proxy/auth.js';
import { CancelMap } from '../../src/proxy/cancel.js';
import type { ProxyContext, ProxyEvent } from '../../src/proxy/connection.js';
import {
  type InstanceRoute,
  type PierProxy,
  type ProxyOptions,
  staticDirectory,
} from '../../src/proxy/index.js';
import { LoginThrottle } from '../../src/proxy/login-throttle.js';
import { startNativeFrontDoor } from '../../src/proxy/native-front-door.js';
import { nativeTls } from '../../src/proxy/native-tls.js';
import { DEFAULT_WARM_POOL, WarmPool } from '../../src/proxy/pool.js';
import { DEFAULT_LIMITS } from '../../src/proxy/server.js';
import { loadTlsMaterial } from '../../src/proxy/tls.js';
import { connectError, type Harness, startHarness } from './harness.js';

/**
 * What the proxy does before anyone has logged in, as an attacker would try
 * it: too many connections, parallel password guessing, a login that makes
 * the server slow, a verifier that asks for hours of PBKDF2, probing which
 * instances exist, and (native path) bytes piled up during the handshake.
 * Every test runs on both TLS paths.
 */

const run = promisify(execFile);
const native = nativeTls();

let h: Harness;
let nativeRoute: InstanceRoute;
/** The harness's instances plus `native1` (native login on), with the real native-login check. */
let nativeDirectory: ReturnType<typeof staticDirectory> & {
  verifyNativePassword: ReturnType<typeof nativePasswordCheck>;
};

before(async () => {
  h = await startHarness();
  nativeRoute = {
    ...h.db1,
    name: 'native1',
    uid: randomUUID(),
    dnsName: 'native1.pier.test',
    address: undefined,
    nativeLogin: true,
  };
  nativeDirectory = {
    ...staticDirectory([...h.directory.routes, nativeRoute]),
    verifyNativePassword: nativePasswordCheck(),
  };
  const admin = await h.superuser();
  // A verifier asking for 2^31 - 1 PBKDF2 iterations: computing it would take hours.
  const key = Buffer.alloc(32, 7).toString('base64');
  await admin.query(`CREATE ROLE app_user LOGIN PASSWORD 'correct horse'; CREATE ROLE heavy LOGIN`);
  // Written to the catalog directly: this Postgres would itself compute the verifier on ALTER ROLE.
  await admin.query(`UPDATE pg_authid SET rolpassword = $1 WHERE rolname = 'heavy'`, [
    `SCRAM-SHA-256$2147483647:${Buffer.alloc(16, 1).toString('base64')}$${key}:${key}`,
  ]);
  await admin.end();
});
after(async () => {
  await h?.close();
});

/** node-postgres options for `proxy`, routed by SNI to `servername`. */
function config(proxy: PierProxy, user: string, password: string, servername = h.db1.dnsName, extra = {}) {
  return {
    ...h.clientConfig(user, password),
    port: proxy.port,
    ssl: { rejectUnauthorized: true, ca: h.ca, servername },
    ...extra,
  };
}

type Reply = { type: string; fields: Map<string, string> };

/**
 * Logs in by hand from `localAddress` (any 127/8 address is this machine):
 * SSLRequest, TLS, startup, and the password when asked. Resolves with the
 * ErrorResponse, or ReadyForQuery ('Z') once logged in.
 */
function loginFrom(proxy: PierProxy, localAddress: string, user: string, password: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const raw = netConnect({ host: '127.0.0.1', port: proxy.port, localAddress }, () =>
      raw.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])),
    );
    raw.on('error', reject);
    raw.once('data', (answer) => {
      assert.equal(answer.toString(), 'S');
      const secure = tlsConnect({ socket: raw, ca: h.ca, servername: h.db1.dnsName }, () => {
        const body = Buffer.from(`user\0${user}\0database\0postgres\0\0`);
        const startup = Buffer.alloc(8);
        startup.writeInt32BE(8 + body.length, 0);
        startup.writeInt32BE(196608, 4);
        secure.write(Buffer.concat([startup, body]));
      });
      secure.on('error', reject);
      let data = Buffer.alloc(0);
      secure.on('data', (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        while (data.length >= 5 && data.length >= 1 + data.readInt32BE(1)) {
          const type = String.fromCharCode(data[0]);
          const body = data.subarray(5, 1 + data.readInt32BE(1));
          data = data.subarray(1 + data.readInt32BE(1));
          if (type === 'R' && body.readInt32BE(0) === 3) {
            const message = Buffer.from(`p\0\0\0\0${password}\0`);
            message.writeInt32BE(message.length - 1, 1);
            secure.write(message);
          } else if (type === 'E' || type === 'Z') {
            const fields = new Map<string, string>();
            for (const part of body.toString('utf8').split('\0'))
              if (part) fields.set(part[0], part.slice(1));
            secure.destroy();
            resolve({ type, fields });
          }
        }
      });
    });
  });
}

/** Waits until the proxy holds at most `n` client connections. */
async function settle(proxy: PierProxy, n: number): Promise<void> {
  for (let i = 0; i < 100 && proxy.stats().activeClients > n; i++)
    await new Promise((r) => setTimeout(r, 20));
}

for (const path of ['native', 'javascript'] as const) {
  describe(`limits before login, ${path} TLS path`, {
    skip: path === 'native' && !native.binding && `native TLS path ${native.why}`,
  }, () => {
    const proxies: PierProxy[] = [];
    const start = async (options: Partial<ProxyOptions>) => {
      const proxy = await h.startProxy({ nativeTls: path === 'native', ...options });
      proxies.push(proxy);
      assert.equal(proxy.tlsPath.kind, path);
      return proxy;
    };
    after(async () => {
      for (const proxy of proxies) await proxy.close();
    });

    it('refuses the connection over the total cap with 53300, which psql prints; a closed one frees its place', async () => {
      const proxy = await start({ limits: { maxConnections: 3 } });
      const token = await h.token('alice');
      const held = Array.from({ length: 3 }, () => new pg.Client(config(proxy, 'alice', token)));
      await Promise.all(held.map((client) => client.connect()));
      const admin = await h.superuser();
      const since = (await admin.query('SELECT clock_timestamp() AS t')).rows[0].t;
      const error = await connectError(config(proxy, 'alice', token));
      assert.equal(error?.code, '53300');
      assert.match(
        error!.message,
        /^sorry, too many clients already: the Pier proxy holds 3 connections, its limit\.$/,
      );
      assert.match(error!.hint ?? '', /pier up --proxy-max-connections <n>/);
      const psql = await run(
        '/usr/bin/psql',
        [`host=127.0.0.1 port=${proxy.port} user=alice dbname=postgres sslmode=require`, '-c', 'SELECT 1'],
        { env: { ...process.env, PGPASSWORD: token } },
      ).catch((failure: { code: number; stderr: string }) => failure);
      assert.equal((psql as { code?: number }).code, 2);
      assert.match((psql as { stderr: string }).stderr, /FATAL: {2}sorry, too many clients already/);
      // The refused clients never reached Postgres.
      const { rows } = await admin.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'alice' AND backend_start > $1",
        [since],
      );
      await admin.end();
      assert.equal(rows[0].n, 0);

      await held[0].end();
      await settle(proxy, 2);
      const again = new pg.Client(config(proxy, 'alice', token));
      await again.connect();
      assert.equal((await again.query('SELECT 1 AS one')).rows[0].one, 1);
      await Promise.all([again.end(), held[1].end(), held[2].end()]);
    });

    it('at the cap, a CancelRequest still goes through; past 64 being refused, a new connection is closed unanswered', async () => {
      const proxy = await start({ limits: { maxConnections: 1 } });
      const client = new pg.Client(config(proxy, 'alice', await h.token('alice'))) as pg.Client & {
        processID: number;
        secretKey: number;
      };
      await client.connect();
      const sleeping = client.query('SELECT pg_sleep(30)').then(
        () => undefined,
        (error: Error & { code?: string }) => error,
      );
      await new Promise((r) => setTimeout(r, 100));
      const cancel = Buffer.alloc(16);
      cancel.writeInt32BE(16, 0);
      cancel.writeInt32BE(80877102, 4);
      cancel.writeInt32BE(client.processID, 8);
      cancel.writeInt32BE(client.secretKey, 12);
      const canceller = netConnect({ host: '127.0.0.1', port: proxy.port }, () => canceller.end(cancel));
      assert.equal((await sleeping)?.code, '57014');

      // 64 connections over the cap, each waiting to be told so: the next is not answered at all.
      const waiting = Array.from({ length: 64 }, () => netConnect({ host: '127.0.0.1', port: proxy.port }));
      await Promise.all(waiting.map((socket) => once(socket, 'connect')));
      await new Promise((r) => setTimeout(r, 100));
      const extra = netConnect({ host: '127.0.0.1', port: proxy.port }, () =>
        extra.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])),
      );
      const received: Buffer[] = [];
      extra.on('data', (chunk) => received.push(chunk));
      extra.on('error', () => {});
      await once(extra, 'close');
      assert.equal(Buffer.concat(received).length, 0, 'closed without a word');
      assert.equal(proxy.stats().activeClients, 65);
      for (const socket of waiting) socket.destroy();
      await client.end();
    });

    it('refuses the connection over the per-address cap with 53300; another address still gets in', async () => {
      const proxy = await start({ limits: { maxConnectionsPerAddress: 2 } });
      const token = await h.token('alice');
      // Connections that have not even sent a byte count.
      const idle = [0, 1].map(() => netConnect({ host: '127.0.0.1', port: proxy.port }));
      await Promise.all(idle.map((socket) => once(socket, 'connect')));
      await new Promise((r) => setTimeout(r, 50));
      const error = await connectError(config(proxy, 'alice', token));
      assert.equal(error?.code, '53300');
      assert.match(
        error!.message,
        /^sorry, too many clients already: 127\.0\.0\.1 has 2 connections open, the limit for one address\.$/,
      );
      assert.match(error!.hint ?? '', /--proxy-max-connections-per-address/);
      const other = await loginFrom(proxy, '127.0.0.2', 'alice', token);
      assert.equal(other.type, 'Z', `logged in from another address: ${other.fields.get('M')}`);
      for (const socket of idle) socket.destroy();
    });

    it('counts failed logins per address across parallel connections, then refuses with the time to wait', async () => {
      const events: ProxyEvent[] = [];
      const proxy = await start({ loginThrottle: { maxFailures: 3 }, logger: (event) => events.push(event) });
      const errors = await Promise.all(
        Array.from({ length: 20 }, () => connectError(config(proxy, 'alice', 'not-a-token'))),
      );
      const codes = errors.map((error) => error?.code);
      assert.equal(
        codes.filter((code) => code === '28P01').length,
        3,
        `three guesses were checked: ${codes}`,
      );
      assert.equal(codes.filter((code) => code === '28000').length, 17, `the rest were refused: ${codes}`);
      const refused = errors.find((error) => error?.code === '28000');
      assert.match(
        refused!.message,
        /^Too many failed logins from 127\.0\.0\.1: 3 in the last 60 s\. Try again in \d+ s\.$/,
      );
      // While refused, even a good credential from that address is not checked …
      const good = await h.token('alice');
      assert.equal((await connectError(config(proxy, 'alice', good)))?.code, '28000');
      // … but another address is not affected.
      assert.equal((await loginFrom(proxy, '127.0.0.2', 'alice', good)).type, 'Z');
      assert.equal(events.filter((event) => event.kind === 'LOGIN_THROTTLED').length, 18);
    });

    it('drops a client past the deadline even when the check of its Postgres password hangs', async () => {
      const proxy = await start({ directory: nativeDirectory, preAuthTimeoutMs: 500 });
      const postmaster = Number(readFileSync(`${h.dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
      // A Postgres that accepts connections and never answers: the check reading the verifier waits.
      process.kill(postmaster, 'SIGSTOP');
      try {
        const started = Date.now();
        const error = await connectError(config(proxy, 'app_user', 'correct horse', nativeRoute.dnsName));
        assert.equal(error?.code, '08P01');
        assert.match(error!.message, /did not authenticate in time/);
        assert.ok(Date.now() - started < 2500, `dropped after ${Date.now() - started} ms`);
      } finally {
        process.kill(postmaster, 'SIGCONT');
      }
    });

    it('refuses a verifier with 2^31 iterations at once, telling the client no more than for a wrong password', async () => {
      const events: ProxyEvent[] = [];
      const proxy = await start({ directory: nativeDirectory, logger: (event) => events.push(event) });
      const started = Date.now();
      const heavy = await connectError(config(proxy, 'heavy', 'anything', nativeRoute.dnsName));
      assert.ok(Date.now() - started < 2000, `answered in ${Date.now() - started} ms`);
      assert.equal(heavy?.code, '28P01');
      assert.equal(heavy!.message, 'password authentication failed for user "heavy"');
      const logged = events.find((event) => event.user === 'heavy');
      assert.match(logged?.message ?? '', /asks for more iterations than Pier computes/);
      assert.ok(MAX_SCRAM_ITERATIONS >= 4096, "Postgres' default iteration count is accepted");
      // The check still works for a role with an ordinary verifier.
      const client = new pg.Client(config(proxy, 'app_user', 'correct horse', nativeRoute.dnsName));
      await client.connect();
      assert.equal((await client.query('SELECT current_user AS u')).rows[0].u, 'app_user');
      await client.end();
    });

    it('before login, an unknown instance, a stopped one, one without password login and a wrong password look the same', async () => {
      const proxy = await start({ directory: nativeDirectory, loginThrottle: { maxFailures: 1000 } });
      const attempts = {
        'wrong password': config(proxy, 'app_user', 'wrong', nativeRoute.dnsName),
        'unknown instance': config(proxy, 'app_user', 'wrong', 'localhost', { options: '-c instance=nope' }),
        'unknown DNS name, no instance named': config(proxy, 'app_user', 'wrong', 'nope.pier.test'),
        'native login off': config(proxy, 'app_user', 'wrong', h.db1.dnsName),
        'stopped instance': config(proxy, 'app_user', 'wrong', h.stopped.dnsName),
      };
      const answers = new Map<string, string>();
      for (const [what, attempt] of Object.entries(attempts)) {
        const started = Date.now();
        const error = await connectError({ ...attempt, ssl: { ...attempt.ssl, rejectUnauthorized: false } });
        answers.set(what, JSON.stringify([error?.code, error?.message, error?.hint]));
        // Nor does the time to answer tell (a floor, as Postgres' auth_delay).
        assert.ok(
          Date.now() - started >= NATIVE_REFUSAL_MS,
          `${what} answered in ${Date.now() - started} ms`,
        );
      }
      const first = answers.get('wrong password');
      assert.match(first ?? '', /"28P01","password authentication failed for user \\"app_user\\""/);
      for (const [what, answer] of answers) assert.equal(answer, first, what);
      // A role that does not exist: the same words for its name.
      const missing = await connectError(config(proxy, 'carol', 'wrong', nativeRoute.dnsName));
      assert.equal(missing?.message, 'password authentication failed for user "carol"');
      // A forged token is refused for what it is, whichever instance it names.
      const [header, payload] = (await h.token('alice', [h.db1])).split('.');
      const forged = `${header}.${payload}.${Buffer.alloc(64).toString('base64url')}`;
      const forUnknown = await connectError(
        config(proxy, 'alice', forged, 'localhost', { options: '-c instance=nope' }),
      );
      const forKnown = await connectError(config(proxy, 'alice', forged));
      assert.equal(forUnknown?.message, forKnown?.message);
      assert.equal(forUnknown?.code, '28P01');
      // Once authenticated, messages help again.
      const token = await h.token('alice');
      const unknown = await connectError(
        config(proxy, 'alice', token, 'localhost', { options: '-c instance=nope' }),
      );
      assert.equal(unknown?.code, '3D000');
      assert.match(unknown!.message, /'nope' does not exist/);
    });

    if (path === 'native') {
      it('stops reading a client while its certificate is chosen, so its bytes cannot pile up', async () => {
        const binding = native.binding!;
        const material = await loadTlsMaterial(
          { dir: await mkdtemp(`${tmpdir()}/pier-hello-`) },
          { native: binding },
        );
        const ctx: ProxyContext = {
          tls: material,
          directory: h.directory,
          passwords: { verify: async () => ({ ok: false, reason: 'malformed', message: 'no' }) },
          cancels: new CancelMap(),
          pool: new WarmPool({ ...DEFAULT_WARM_POOL, maxIdlePerKey: 0 }),
          throttle: new LoginThrottle(),
          limits: { ...DEFAULT_LIMITS, preAuthTimeoutMs: 5000 },
          log() {},
        };
        // A certificate that takes forever to choose: the handshake stays paused.
        const front = startNativeFrontDoor(
          binding,
          ctx,
          { defaultContext: material.native!.defaultContext, contextFor: () => new Promise(() => {}) },
          1000,
        );
        const listening = front.listen('127.0.0.1', 0);
        try {
          const hello = await clientHello(h.db1.dnsName);
          const socket = netConnect({ host: '127.0.0.1', port: listening.port });
          socket.on('error', () => {});
          await once(socket, 'connect');
          socket.write(hello);
          const chunk = Buffer.alloc(1 << 20, 0x17);
          let flushed = 0;
          const deadline = Date.now() + 1500;
          while (Date.now() < deadline && flushed < 64 << 20) {
            const written = await Promise.race([
              new Promise<boolean>((resolve) => socket.write(chunk, () => resolve(true))),
              new Promise<boolean>((resolve) => setTimeout(() => resolve(false), deadline - Date.now())),
            ]);
            if (!written) break;
            flushed += chunk.length;
          }
          socket.destroy();
          // Only what the kernel's socket buffers hold got through; the proxy took nothing more.
          assert.ok(flushed < 32 << 20, `the client pushed ${flushed >> 20} MiB while the handshake waited`);
        } finally {
          listening.close();
          front.closeAll();
        }
      });
    }
  });
}

/** The bytes of a real ClientHello for `servername` (ALPN postgresql), caught by a throwaway server. */
async function clientHello(servername: string): Promise<Buffer> {
  const catcher = createServer();
  catcher.listen(0, '127.0.0.1');
  await once(catcher, 'listening');
  const caught = new Promise<Buffer>((resolve) =>
    catcher.once('connection', (socket) =>
      socket.once('data', (data: Buffer) => {
        socket.destroy();
        resolve(data);
      }),
    ),
  );
  const client = tlsConnect({
    host: '127.0.0.1',
    port: (catcher.address() as { port: number }).port,
    servername,
    ALPNProtocols: ['postgresql'],
  });
  client.on('error', () => {});
  const hello = await caught;
  client.destroy();
  catcher.close();
  return hello;
}
