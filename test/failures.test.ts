import assert from 'node:assert/strict';
import { test } from 'node:test';
import { failureCounts, noteFailure, setFailureLog } from '../src/failures.js';

test('a failure Pier recovers from is logged with its cause and counted by kind', () => {
  const lines: string[] = [];
  setFailureLog((line) => lines.push(line));
  const before = failureCounts()['test.refresh'] ?? 0;
  const cause = new Error('connection terminated unexpectedly');
  noteFailure('test.refresh', new Error('Cannot reload the signing keys', { cause }));
  noteFailure('test.refresh', 'a thrown string');
  assert.equal(failureCounts()['test.refresh'], before + 2);
  assert.deepEqual(lines, [
    'test.refresh failed: Cannot reload the signing keys (cause: connection terminated unexpectedly)',
    'test.refresh failed: a thrown string',
  ]);
});
