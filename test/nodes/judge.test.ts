import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { judgeNode } from '../../src/nodes/service.js';
import type { NodeRow } from '../../src/nodes/store.js';

const HOST = 'vm/boot/pid:[1]';

function row(pid: number, pidStart: string | null, fields: Partial<NodeRow> = {}): NodeRow {
  return {
    node_id: 'n1',
    host: HOST,
    reach: { kind: 'local', host: HOST },
    api_url: null,
    pid,
    pid_start: pidStart,
    pier_version: '0.1.0',
    started_at: new Date(),
    heartbeat_at: new Date(),
    stopped_at: null,
    alive: true,
    ...fields,
  };
}

/** Start time of a real process, as the node registers it (/proc/<pid>/stat field 22). */
function startOf(pid: number): string {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ')[19];
}

test('a node whose process runs on this host is alive while its heartbeat is fresh', () => {
  const judged = judgeNode(row(process.pid, startOf(process.pid)), HOST);
  assert.deepEqual([judged.alive, judged.gone], [true, false]);
  // The store's verdict stands when the heartbeat ran out (a hung process is there, but not alive).
  const hung = judgeNode(row(process.pid, startOf(process.pid), { alive: false }), HOST);
  assert.deepEqual([hung.alive, hung.gone], [false, false]);
});

test('a node whose process ended is gone at once, whatever its heartbeat says', async () => {
  const child = spawn('sleep', ['30']);
  await once(child, 'spawn');
  const pid = child.pid as number;
  const start = startOf(pid);
  assert.equal(judgeNode(row(pid, start), HOST).alive, true);
  child.kill('SIGKILL');
  await once(child, 'exit');
  const judged = judgeNode(row(pid, start), HOST);
  assert.deepEqual([judged.alive, judged.gone], [false, true]);
});

test('a pid that now names another process is gone, not alive', () => {
  // This process's pid, but not the start time the node registered: the pid was reused.
  const judged = judgeNode(row(process.pid, '1'), HOST);
  assert.deepEqual([judged.alive, judged.gone], [false, true]);
});

test('on another host only the heartbeat counts', () => {
  const judged = judgeNode(row(2 ** 22 + 1, null, { host: 'other/boot/pid:[2]' }), HOST);
  assert.deepEqual([judged.alive, judged.gone], [true, false]);
});
