import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { after, before, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import pg from 'pg';
import type { PierProxy } from '../../src/proxy/index.js';
import { type Harness, startHarness } from './harness.js';

/**
 * Throws ≥10,000 random and mutated handshake, startup and password packets
 * at the proxy (seeded: set FUZZ_SEED to replay), each from its own random
 * 127.x.y.z source address. Every connection must be closed by the proxy
 * promptly (no hang), the process must not crash, and afterwards a good
 * client still connects and queries.
 */

const CASES = 10_000;
const CONCURRENCY = 48;
const CASE_TIMEOUT_MS = 4000;
const seed = Number(process.env.FUZZ_SEED ?? 20250611);

let h: Harness;
let proxy: PierProxy;
before(async () => {
  h = await startHarness();
  // Bad passwords by the thousand from one address: the login throttle is not what this test is about.
  proxy = await h.startProxy({ preAuthTimeoutMs: 2000, loginThrottle: { maxFailures: 1_000_000 } });
});
after(async () => {
  await h?.close();
});

function mulberry32(state: number): () => number {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = mulberry32(seed);
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)];

function packet(code: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(8 + body.length);
  out.writeInt32BE(out.length, 0);
  out.writeInt32BE(code, 4);
  body.copy(out, 8);
  return out;
}

function startup(params: Record<string, string>): Buffer {
  return packet(196608, Buffer.from(`${Object.entries(params).flat().join('\0')}\0\0`));
}

function passwordMessage(password: string): Buffer {
  const body = Buffer.from(`${password}\0`);
  const out = Buffer.alloc(5 + body.length);
  out[0] = 0x70;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function mutate(input: Buffer): Buffer {
  let data = Buffer.from(input);
  const rounds = 1 + int(4);
  for (let i = 0; i < rounds; i++) {
    switch (int(7)) {
      case 0: // flip a bit
        if (data.length) data[int(data.length)] ^= 1 << int(8);
        break;
      case 1: // random byte
        if (data.length) data[int(data.length)] = int(256);
        break;
      case 2: // truncate
        data = data.subarray(0, int(data.length + 1));
        break;
      case 3: // append garbage
        data = Buffer.concat([data, Buffer.from(Array.from({ length: int(64) }, () => int(256)))]);
        break;
      case 4: // lie about the length
        if (data.length >= 4)
          data.writeInt32BE(pick([0, 1, 7, 8, 9, -1, 2 ** 31 - 1, 10_001, 100_000, int(2 ** 31)]), 0);
        break;
      case 5: // drop a byte
        if (data.length)
          data = Buffer.concat([data.subarray(0, int(data.length)), data.subarray(int(data.length) + 1)]);
        break;
      default: // duplicate a slice
        data = Buffer.concat([data, data.subarray(int(data.length))]);
    }
  }
  return data;
}

function randomBytes(max: number): Buffer {
  return Buffer.from(Array.from({ length: int(max) }, () => int(256)));
}

const validStartups = [
  startup({ user: 'alice', database: 'postgres' }),
  startup({ user: 'alice', database: 'postgres', options: '-c instance=db1' }),
  startup({ user: 'bob', database: 'app', application_name: 'fuzz', options: '--instance=db2 -c x=y' }),
];

type Case = { tls: false; bytes: Buffer } | { tls: 'ssl' | 'direct'; first: Buffer; password?: Buffer };

function nextCase(token: string): Case {
  const roll = random();
  if (roll < 0.25) return { tls: false, bytes: randomBytes(80) };
  if (roll < 0.6) {
    const base = pick([
      packet(80877103),
      packet(80877104),
      packet(80877102, randomBytes(8)),
      ...validStartups,
    ]);
    return { tls: false, bytes: mutate(base) };
  }
  const via = random() < 0.8 ? 'ssl' : 'direct';
  if (roll < 0.8) return { tls: via, first: mutate(pick(validStartups)) };
  const password = pick([
    passwordMessage(token),
    passwordMessage(`${token.slice(0, -3)}abc`),
    passwordMessage('dapi0123'),
    passwordMessage(randomBytes(200).toString('latin1')),
    passwordMessage('x'.repeat(20_000)),
  ]);
  return { tls: via, first: pick(validStartups), password: random() < 0.7 ? mutate(password) : password };
}

function sourceAddress(): string {
  return `127.${1 + int(250)}.${int(256)}.${1 + int(254)}`;
}

/** Runs one case; resolves 'closed' when the proxy closed the connection, 'hung' otherwise. */
function runCase(port: number, c: Case): Promise<'closed' | 'hung'> {
  return new Promise((resolve) => {
    let settled = false;
    const sockets: Socket[] = [];
    const done = (result: 'closed' | 'hung') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done('hung'), CASE_TIMEOUT_MS);
    const raw = netConnect({ host: '127.0.0.1', port, localAddress: sourceAddress() });
    sockets.push(raw);
    raw.on('error', () => done('closed'));
    raw.on('close', () => done('closed'));
    if (c.tls === false) {
      raw.on('connect', () => raw.end(c.bytes));
      raw.resume();
      return;
    }
    const secure = (socket: Socket) => {
      const stream = tlsConnect({
        socket,
        rejectUnauthorized: false,
        ALPNProtocols: ['postgresql'],
        servername: 'localhost',
      });
      sockets.push(stream);
      stream.on('error', () => done('closed'));
      stream.on('close', () => done('closed'));
      stream.on('secureConnect', () => {
        stream.write(c.first);
        if (!c.password) stream.end();
      });
      stream.on('data', (chunk: Buffer) => {
        // AuthenticationCleartextPassword: answer with the (maybe mutated) password, then hang up.
        if (c.password && chunk[0] === 0x52 && chunk.length >= 9 && chunk.readInt32BE(5) === 3)
          stream.end(c.password);
      });
    };
    if (c.tls === 'direct') {
      raw.on('connect', () => secure(raw));
      return;
    }
    raw.on('connect', () => raw.write(packet(80877103)));
    raw.once('data', (answer) => {
      if (answer.toString() === 'S') secure(raw);
      else done('closed');
    });
  });
}

it(`survives ${CASES} random and mutated packets (seed ${seed}), then serves a good client`, {
  timeout: 60_000,
}, async () => {
  const token = await h.token('alice');
  let next = 0;
  const outcomes = { closed: 0, hung: 0 };
  const hungExamples: Case[] = [];
  const started = Date.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < CASES) {
        next++;
        const c = nextCase(token);
        const outcome = await runCase(proxy.port, c);
        outcomes[outcome]++;
        if (outcome === 'hung' && hungExamples.length < 3) hungExamples.push(c);
      }
    }),
  );
  assert.equal(
    outcomes.hung,
    0,
    `connections left hanging: ${JSON.stringify(hungExamples.map((c) => ('bytes' in c ? c.bytes : c.first).toString('hex')))}`,
  );
  assert.equal(outcomes.closed, CASES);
  const client = new pg.Client({ ...h.clientConfig('alice', token), port: proxy.port });
  await client.connect();
  assert.deepEqual((await client.query('SELECT 7 AS n')).rows, [{ n: 7 }]);
  await client.end();
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(proxy.stats().activeClients, 0, 'no connection left open');
  process.stdout.write(`# fuzz: ${CASES} cases in ${Date.now() - started} ms\n`);
});
