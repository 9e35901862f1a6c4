import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { nativeTls } from '../../src/proxy/native-tls.js';
import { api, eventually, removePier, runPier, startPier, tempDataDir } from '../helpers/pier.js';

/** Postgres server processes (postmasters) whose data directory lies under `dataDir`. */
function postmastersUnder(dataDir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const d = args.indexOf('-D');
      if (args[0].endsWith('/postgres') && d >= 0 && args[d + 1]?.startsWith(dataDir))
        pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

async function instanceState(pier: { apiUrl: string; adminToken: string }, name: string) {
  const { body } = await api(pier, pier.adminToken, 'GET', `/api/2.0/database/instances/${name}`);
  return body as { state?: string; uid?: string };
}

test('kill -9 of Pier at any point of a create converges after restart, losing nothing', async () => {
  const dataDir = await tempDataDir();
  let pier = await startPier({ dataDir });
  // Rows written before the crashes must survive them.
  await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', { name: 'keeper' });
  const keeper = await eventually(async () => {
    const s = await instanceState(pier, 'keeper');
    return s.state === 'AVAILABLE' ? s : undefined;
  });
  const client = new pg.Client({
    host: join(dataDir, 'run', keeper.uid!),
    user: 'postgres',
    database: 'postgres',
  });
  await client.connect();
  await client.query('CREATE TABLE t AS SELECT generate_series(1, 500) AS n');
  await client.end();

  const delays = [0, 5, 15, 40, 80, 150];
  for (const [i, delay] of delays.entries()) {
    const name = `crash-${i}`;
    const created = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', { name });
    assert.equal(created.status, 200);
    await sleep(delay);
    await pier.kill();
    pier = await startPier({ dataDir });
    await eventually(
      async () => ((await instanceState(pier, name)).state === 'AVAILABLE' ? true : undefined),
      30_000,
      `${name} AVAILABLE`,
    );
  }
  // Every instance up, one postmaster each (plus the store), no half-made copies.
  for (let i = 0; i < delays.length; i++)
    assert.equal((await instanceState(pier, `crash-${i}`)).state, 'AVAILABLE');
  assert.equal(postmastersUnder(join(dataDir, 'instances')).length, delays.length + 1);
  // Half-made copies of a killed Pier are gone (spare clones being refilled right now aside).
  const leftovers = readdirSync(join(dataDir, 'instances')).filter(
    (d) => d.includes('partial') && !d.startsWith('.spare-'),
  );
  assert.deepEqual(leftovers, []);
  const after = new pg.Client({
    host: join(dataDir, 'run', keeper.uid!),
    user: 'postgres',
    database: 'postgres',
  });
  await after.connect();
  assert.equal((await after.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 500);
  await after.end();

  // pier down leaves no process behind.
  await pier.stop();
  await runPier(['down', '--data-dir', dataDir]);
  assert.deepEqual(postmastersUnder(dataDir), []);
  await rm(dataDir, { recursive: true, force: true });
});

test('a Postgres that dies is restarted by the reconciler', async () => {
  const pier = await startPier();
  await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', { name: 'fragile' });
  const instance = await eventually(async () => {
    const s = await instanceState(pier, 'fragile');
    return s.state === 'AVAILABLE' ? s : undefined;
  });
  const [pid] = postmastersUnder(join(pier.dataDir, 'instances', instance.uid!));
  assert.ok(pid);
  process.kill(pid, 'SIGKILL');
  const restarted = await eventually(
    async () => {
      const [next] = postmastersUnder(join(pier.dataDir, 'instances', instance.uid!));
      return next && next !== pid ? next : undefined;
    },
    30_000,
    'a new postmaster',
  );
  assert.notEqual(restarted, pid);
  await eventually(async () =>
    (await instanceState(pier, 'fragile')).state === 'AVAILABLE' ? true : undefined,
  );
  await removePier(pier);
});

test('a second pier up on the same data dir, a busy port and an unusable data dir get one-line errors', async () => {
  const pier = await startPier();
  const second = await runPier(['up', '--data-dir', pier.dataDir, '--api-port', '0', '--proxy-port', '0']);
  assert.equal(second.code, 1);
  assert.match(second.stderr, /already running on .* \(pid \d+\)\. Stop it with `pier down --data-dir/);
  assert.equal(second.stderr.trim().split('\n').length, 1);

  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const port = (busy.address() as { port: number }).port;
  const other = await tempDataDir();
  const portInUse = await runPier([
    'up',
    '--data-dir',
    other,
    '--api-port',
    String(port),
    '--proxy-port',
    '0',
  ]);
  busy.close();
  assert.equal(portInUse.code, 1);
  assert.match(portInUse.stderr, new RegExp(`Port ${port} on 127\\.0\\.0\\.1 is already in use.*--api-port`));
  await runPier(['down', '--data-dir', other]);
  await rm(other, { recursive: true, force: true });

  const file = join(pier.dataDir, 'not-a-dir');
  writeFileSync(file, 'x');
  const unusable = await runPier([
    'up',
    '--data-dir',
    join(file, 'pier'),
    '--api-port',
    '0',
    '--proxy-port',
    '0',
  ]);
  assert.equal(unusable.code, 1);
  assert.match(unusable.stderr, /data dir .* is not writable .*--data-dir/);
  await removePier(pier);
});

test('pier up --detach returns when ready; status and down work on it', async () => {
  const dataDir = await tempDataDir();
  const up = await runPier(['up', '--detach', '--data-dir', dataDir, '--api-port', '0', '--proxy-port', '0']);
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stdout, /Pier is running/);
  const status = await runPier(['status', '--data-dir', dataDir, '-o', 'json']);
  const state = JSON.parse(status.stdout) as {
    apiUrl: string;
    databricks_token: string;
    proxyTlsPath: string;
  };
  const health = await fetch(`${state.apiUrl}/health`);
  assert.equal(health.status, 200);
  // Which TLS implementation serves Postgres connections, and why when it is not the native one.
  const native = nativeTls();
  assert.equal(state.proxyTlsPath, native.binding ? 'native' : `javascript (native path ${native.why})`);
  const text = await runPier(['status', '--data-dir', dataDir]);
  assert.match(text.stdout, new RegExp(`^  TLS path     ${native.binding ? 'native' : 'javascript'}`, 'm'));
  const env = await runPier(['status', '--data-dir', dataDir, '-o', 'env']);
  assert.match(
    env.stdout,
    new RegExp(`^export DATABRICKS_HOST=${state.apiUrl.replaceAll('.', '\\.')}$`, 'm'),
  );
  assert.match(env.stdout, /^export DATABRICKS_TOKEN=dapi[0-9a-f]{32}$/m);
  const created = await runPier(
    ['database', 'create-database-instance', 'detached-db', '--capacity', 'CU_1', '--data-dir', dataDir],
    {
      DATABRICKS_HOST: state.apiUrl,
      DATABRICKS_TOKEN: state.databricks_token,
    },
  );
  assert.equal(created.code, 0, created.stderr);
  assert.equal(JSON.parse(created.stdout).state, 'AVAILABLE');
  const down = await runPier(['down', '--data-dir', dataDir]);
  assert.equal(down.code, 0);
  assert.deepEqual(postmastersUnder(dataDir), []);
  const after = await runPier(['status', '--data-dir', dataDir]);
  assert.equal(after.code, 1);
  assert.match(after.stderr, /not running.*npx pier up/);
  await rm(dataDir, { recursive: true, force: true });
});

test('two pier up started at the same moment on one data dir leave exactly one running, also over a stale pid file', async () => {
  const { spawn, spawnSync } = await import('node:child_process');
  const { PIER_BIN } = await import('../helpers/pier.js');
  for (const stale of [false, true]) {
    const dataDir = await tempDataDir();
    if (stale) {
      // The pid of a process that has exited: what a killed Pier leaves behind.
      const gone = spawnSync(process.execPath, ['-e', '0']).pid;
      writeFileSync(join(dataDir, 'pier.pid'), `${gone}\n`);
    }
    const starts = [0, 1].map(() => {
      const child = spawn(
        process.execPath,
        [PIER_BIN, 'up', '--data-dir', dataDir, '--api-port', '0', '--proxy-port', '0'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      return { child, exited, stderr: () => stderr };
    });
    // One of them gives up at once; the other runs.
    const loser = await Promise.race(starts.map((start, i) => start.exited.then(() => i)));
    assert.equal(await starts[loser].exited, 1, starts[loser].stderr());
    assert.match(starts[loser].stderr(), /already running on .* \(pid \d+\)/);
    const winner = starts[1 - loser];
    const state = await eventually(
      async () => {
        const text = await readFile(join(dataDir, 'pier.json'), 'utf8').catch(() => undefined);
        return text ? (JSON.parse(text) as { pid: number }) : undefined;
      },
      90_000,
      'the winner to be ready',
    );
    assert.equal(state.pid, winner.child.pid);
    assert.equal(winner.child.exitCode, null, 'the winner still runs');
    winner.child.kill('SIGTERM');
    await winner.exited;
    await runPier(['down', '--data-dir', dataDir]);
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('the data-dir lock has one winner among many starts at once, also over a stale pid file', async () => {
  const { spawn, spawnSync } = await import('node:child_process');
  const dataDirModule = new URL('../../src/server/data-dir.js', import.meta.url).href;
  // Each contender takes the lock as `pier up` does, says whether it won, and holds it for a moment.
  const contender = `
    const { dataDirLayout, lockDataDir } = await import(${JSON.stringify(dataDirModule)});
    // Everyone starts at the same instant, as far as two cores allow.
    while (Date.now() < Number(process.argv[2])) {}
    try { await lockDataDir(dataDirLayout(process.argv[1])); console.log('won'); }
    catch (error) { console.log(/already running/.test(error.message) ? 'lost' : 'error: ' + error.message); }
    setTimeout(() => {}, 1500);`;
  for (const stale of [false, true]) {
    const dataDir = await tempDataDir();
    if (stale) writeFileSync(join(dataDir, 'pier.pid'), `${spawnSync(process.execPath, ['-e', '0']).pid}\n`);
    const startAt = String(Date.now() + 1500);
    const results = await Promise.all(
      Array.from({ length: 8 }, () => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', contender, dataDir, startAt], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
        });
        return new Promise<string>((resolve) => child.once('exit', () => resolve(out.trim())));
      }),
    );
    assert.deepEqual(
      results.sort(),
      ['lost', 'lost', 'lost', 'lost', 'lost', 'lost', 'lost', 'won'],
      `stale: ${stale}`,
    );
    await rm(dataDir, { recursive: true, force: true });
  }
});
