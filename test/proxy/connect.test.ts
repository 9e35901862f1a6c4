import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import pg from 'pg';
import { generateSigningKey, issueDatabaseCredential } from '../../src/auth/credentials.js';
import { connectError, type Harness, ISSUER, startHarness } from './harness.js';

const run = promisify(execFile);

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.close();
});

async function query(config: pg.ClientConfig, sql: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client(config);
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

/** Reads one backend message (type + body) from a buffer stream, or undefined. */
function firstMessage(data: Buffer): { type: string; fields: Map<string, string> } | undefined {
  if (data.length < 5) return undefined;
  const type = String.fromCharCode(data[0]);
  const body = data.subarray(5, 1 + data.readInt32BE(1));
  const fields = new Map<string, string>();
  for (const part of body.toString('utf8').split('\0')) if (part) fields.set(part[0], part.slice(1));
  return { type, fields };
}

/** TLS from the first byte (sslnegotiation=direct) to db1's name, offering these ALPN protocols. */
function directTls(alpn?: string[]) {
  return tlsConnect({
    host: '127.0.0.1',
    port: h.proxy.port,
    servername: h.db1.dnsName,
    ca: h.ca,
    ...(alpn ? { ALPNProtocols: alpn } : {}),
  });
}

/** Sends `bytes` in the clear and collects everything the proxy says until it closes. */
function plainExchange(bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port: h.proxy.port }, () => socket.write(bytes));
    let data = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      data = Buffer.concat([data, chunk]);
    });
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
  });
}

function startupPacket(params: Record<string, string>): Buffer {
  const body = Buffer.from(`${Object.entries(params).flat().join('\0')}\0\0`);
  const packet = Buffer.alloc(8 + body.length);
  packet.writeInt32BE(packet.length, 0);
  packet.writeInt32BE(196608, 4);
  body.copy(packet, 8);
  return packet;
}

describe('connecting through the proxy', () => {
  it('node-postgres connects with a verified certificate (SNI routes to db1) and queries', async () => {
    const token = await h.token('alice');
    const rows = await query(h.clientConfig('alice', token), 'SELECT current_user AS who, 1 + 1 AS two');
    assert.deepEqual(rows, [{ who: 'alice', two: 2 }]);
  });

  it('routes by the per-instance address the client dialled, with a certificate for that IP', async () => {
    const token = await h.token('alice', [h.db2]);
    const rows = await query(
      h.clientConfig('alice', token, { host: h.db2.address, ssl: { rejectUnauthorized: true, ca: h.ca } }),
      'SELECT current_user AS who',
    );
    assert.deepEqual(rows, [{ who: 'alice' }]);
  });

  it("routes by options '-c instance=<name>' and by the token's single instance", async () => {
    const both = await h.token('alice', [h.db1, h.db2]);
    const viaOptions = {
      ssl: { rejectUnauthorized: true, ca: h.ca, servername: 'localhost' },
      options: '-c instance=db2 -c search_path=public',
    };
    assert.deepEqual(await query(h.clientConfig('alice', both, viaOptions), 'SHOW search_path'), [
      { search_path: 'public' },
    ]);
    const only2 = await h.token('alice', [h.db2]);
    assert.deepEqual(
      await query(h.clientConfig('alice', only2, { ssl: viaOptions.ssl }), 'SELECT 1 AS one'),
      [{ one: 1 }],
    );
    const error = await connectError(h.clientConfig('alice', both, { ssl: viaOptions.ssl }));
    assert.equal(error?.code, '08004');
    assert.match(error!.message, /opens 2 instances/);
  });

  it('psql connects with sslmode=verify-full to the instance DNS name', async () => {
    const token = await h.token('alice');
    const { stdout } = await run(
      '/usr/bin/psql',
      [
        `host=${h.db1.dnsName} hostaddr=127.0.0.1 port=${h.proxy.port} user=alice dbname=app sslmode=verify-full sslrootcert=${h.proxy.caCertPath}`,
        '-tAc',
        'SELECT current_user, current_database()',
      ],
      { env: { ...process.env, PGPASSWORD: token } },
    );
    assert.equal(stdout.trim(), 'alice|app');
  });

  it('psql connects with verify-full to the per-instance IP address', async () => {
    const token = await h.token('alice');
    const { stdout } = await run(
      '/usr/bin/psql',
      [
        `host=${h.db1.address} port=${h.proxy.port} user=alice dbname=postgres sslmode=verify-full sslrootcert=${h.proxy.caCertPath}`,
        '-tAc',
        'SELECT 42',
      ],
      { env: { ...process.env, PGPASSWORD: token } },
    );
    assert.equal(stdout.trim(), '42');
  });

  // CI installs psycopg and sets PIER_REQUIRE_PSYCOPG=1: there a missing psycopg fails instead of skipping.
  const psycopgRequired = process.env.PIER_REQUIRE_PSYCOPG === '1';
  it('psycopg connects with verify-full', {
    skip: !psycopgRequired && !existsSync('/usr/bin/python3'),
  }, async (t) => {
    try {
      await run('/usr/bin/python3', ['-c', 'import psycopg']);
    } catch (error) {
      if (psycopgRequired)
        throw new Error('PIER_REQUIRE_PSYCOPG=1 but /usr/bin/python3 cannot import psycopg', {
          cause: error,
        });
      t.skip('python3-psycopg is not installed');
      return;
    }
    const token = await h.token('alice');
    const script = [
      'import psycopg, sys',
      `conn = psycopg.connect(host="${h.db1.dnsName}", hostaddr="127.0.0.1", port=${h.proxy.port}, user="alice", dbname="postgres", password=sys.argv[1], sslmode="verify-full", sslrootcert="${h.proxy.caCertPath}")`,
      'print(conn.execute("SELECT current_user").fetchone()[0])',
      'conn.close()',
    ].join('\n');
    const { stdout } = await run('/usr/bin/python3', ['-c', script, token]);
    assert.equal(stdout.trim(), 'alice');
  });

  it('accepts direct TLS with ALPN "postgresql" (sslnegotiation=direct)', async () => {
    const token = await h.token('alice');
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const socket = directTls(['postgresql']);
      let data = Buffer.alloc(0);
      let sentPassword = false;
      socket.on('secureConnect', () => socket.write(startupPacket({ user: 'alice', database: 'postgres' })));
      socket.on('data', (chunk) => {
        data = Buffer.concat([data, chunk]);
        if (!sentPassword && data.length >= 9 && data[0] === 0x52) {
          sentPassword = true;
          data = data.subarray(9);
          const body = Buffer.from(`${token}\0`);
          const message = Buffer.alloc(5 + body.length);
          message[0] = 0x70;
          message.writeInt32BE(4 + body.length, 1);
          body.copy(message, 5);
          socket.write(message);
        } else if (data.length >= 6 && data.subarray(-6).equals(Buffer.from([0x5a, 0, 0, 0, 5, 0x49]))) {
          socket.end();
          resolve(data);
        }
      });
      socket.on('error', reject);
    });
    assert.equal(reply[0], 0x52); // AuthenticationOk
    assert.equal(reply.readInt32BE(5), 0);
  });

  it('refuses a plaintext StartupMessage with SQLSTATE 28000 "SSL is required"', async () => {
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const socket = netConnect({ host: '127.0.0.1', port: h.proxy.port }, () =>
        socket.write(startupPacket({ user: 'alice', database: 'postgres' })),
      );
      let data = Buffer.alloc(0);
      socket.on('data', (chunk) => {
        data = Buffer.concat([data, chunk]);
      });
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
    });
    const message = firstMessage(reply);
    assert.equal(message?.type, 'E');
    assert.equal(message?.fields.get('C'), '28000');
    assert.match(message!.fields.get('M')!, /^SSL is required/);
    // and node-postgres without ssl sees the same
    const error = await connectError({ ...h.clientConfig('alice', 'x'), ssl: false });
    assert.equal(error?.code, '28000');
  });

  it('refuses bytes sent before the SSLRequest is answered (CVE-2021-23214)', async () => {
    const ssl = Buffer.alloc(8);
    ssl.writeInt32BE(8, 0);
    ssl.writeInt32BE(80877103, 4);
    const reply = await plainExchange(Buffer.concat([ssl, startupPacket({ user: 'alice' })]));
    const message = firstMessage(reply);
    assert.equal(message?.type, 'E', 'an ErrorResponse, not the S that would start TLS');
    assert.equal(message?.fields.get('C'), '08P01');
    assert.match(message!.fields.get('M')!, /before the server answered the SSLRequest/);
  });

  it('refuses a startup packet over the size limit, naming the limit', async () => {
    const header = Buffer.alloc(8);
    header.writeInt32BE(1_000_000, 0);
    header.writeInt32BE(196608, 4);
    const message = firstMessage(await plainExchange(header));
    assert.equal(message?.fields.get('C'), '08P01');
    assert.match(message!.fields.get('M')!, /startup packet of 1000000 bytes exceeds 10000/);
  });

  it('refuses direct TLS without ALPN "postgresql"', async () => {
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const socket = directTls();
      let data = Buffer.alloc(0);
      socket.on('secureConnect', () => socket.write(startupPacket({ user: 'alice', database: 'postgres' })));
      socket.on('data', (chunk) => {
        data = Buffer.concat([data, chunk]);
      });
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
    });
    const message = firstMessage(reply);
    assert.equal(message?.fields.get('C'), '08P01');
    assert.match(message!.fields.get('M')!, /must use ALPN "postgresql"/);
  });

  it('declines GSSAPI encryption, then accepts SSL on the same connection', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = netConnect({ host: '127.0.0.1', port: h.proxy.port }, () => {
        const gss = Buffer.alloc(8);
        gss.writeInt32BE(8, 0);
        gss.writeInt32BE(80877104, 4);
        socket.write(gss);
      });
      let seen = '';
      socket.on('data', (chunk) => {
        seen += chunk.toString('latin1');
        if (seen === 'N') {
          const ssl = Buffer.alloc(8);
          ssl.writeInt32BE(8, 0);
          ssl.writeInt32BE(80877103, 4);
          socket.write(ssl);
        } else if (seen === 'NS') {
          socket.destroy();
          resolve(seen);
        }
      });
      socket.on('error', reject);
    });
    assert.equal(answer, 'NS');
  });
});

describe('refusals say which check failed', () => {
  it('a credential for another instance', async () => {
    const token = await h.token('alice', [h.db2]);
    const error = await connectError(h.clientConfig('alice', token));
    assert.equal(error?.code, '28P01');
    assert.match(error!.message, /not valid for instance 'db1'/);
  });

  it('an expired credential, with its expiry time', async () => {
    const credential = await issueDatabaseCredential(h.key, {
      subject: 'alice',
      instanceUids: [h.db1.uid],
      ttlSeconds: 1,
      issuer: ISSUER,
      now: new Date(Date.now() - 5000),
    });
    const error = await connectError(h.clientConfig('alice', credential.token));
    assert.equal(error?.code, '28P01');
    assert.match(
      error!.message,
      new RegExp(`expired at ${credential.expiration_time.replace(/[.]/g, '\\.')}`),
    );
  });

  it('a tampered signature', async () => {
    const token = await h.token('alice');
    const [header, payload, signature] = token.split('.');
    const flipped = signature[5] === 'A' ? 'B' : 'A';
    const tampered = `${header}.${payload}.${signature.slice(0, 5)}${flipped}${signature.slice(6)}`;
    const error = await connectError(h.clientConfig('alice', tampered));
    assert.equal(error?.code, '28P01');
    assert.match(error!.message, /signature is invalid/);
  });

  it('a credential signed by an unknown key', async () => {
    const stranger = await generateSigningKey();
    const { token } = await issueDatabaseCredential(stranger, {
      subject: 'alice',
      instanceUids: [h.db1.uid],
      ttlSeconds: 60,
      issuer: ISSUER,
    });
    const error = await connectError(h.clientConfig('alice', token));
    assert.equal(error?.code, '28P01');
    assert.match(error!.message, /key this server does not know/);
  });

  it('a credential of another user', async () => {
    const token = await h.token('bob');
    const error = await connectError(h.clientConfig('alice', token));
    assert.equal(error?.code, '28P01');
    assert.match(error!.message, /belongs to "bob", not "alice"/);
  });

  it('a personal access token', async () => {
    const error = await connectError(h.clientConfig('alice', 'dapi0123456789abcdef0123456789abcdef'));
    assert.equal(error?.code, '28P01');
    assert.match(error!.message, /personal access tokens cannot be used as Postgres passwords/i);
    assert.match(error!.hint ?? '', /generate-database-credential/);
  });

  it('a stopped instance, naming the command that starts it', async () => {
    const token = await h.token('alice', [h.stopped]);
    const error = await connectError(
      h.clientConfig('alice', token, {
        ssl: { rejectUnauthorized: true, ca: h.ca, servername: h.stopped.dnsName },
      }),
    );
    assert.equal(error?.code, '57P03');
    assert.match(error!.message, /'sleepy' is STOPPED/);
    assert.match(error!.hint ?? '', /pier database start-database-instance sleepy/);
  });

  it('an unknown instance name', async () => {
    const token = await h.token('alice');
    const error = await connectError(
      h.clientConfig('alice', token, {
        ssl: { rejectUnauthorized: true, ca: h.ca, servername: 'localhost' },
        options: '-c instance=nope',
      }),
    );
    assert.equal(error?.code, '3D000');
    assert.match(error!.message, /'nope' does not exist/);
  });

  it("a role missing in the backend: Postgres' error plus how to create the role", async () => {
    const token = await h.token('carol');
    const error = await connectError(h.clientConfig('carol', token));
    assert.equal(error?.code, '28000');
    assert.match(error!.message, /role "carol" does not exist/);
    assert.match(error!.hint ?? '', /create-database-instance-role db1/);
  });

  it('a client that stalls before authenticating is cut off', async () => {
    const quick = await h.startProxy({ preAuthTimeoutMs: 300 });
    const started = Date.now();
    const reply = await new Promise<Buffer>((resolve) => {
      const socket = netConnect({ host: '127.0.0.1', port: quick.port });
      let data = Buffer.alloc(0);
      socket.on('data', (chunk) => {
        data = Buffer.concat([data, chunk]);
      });
      socket.on('error', () => {});
      socket.on('close', () => resolve(data));
    });
    assert.ok(Date.now() - started < 2000);
    assert.equal(firstMessage(reply)?.fields.get('C'), '08P01');
  });
});
