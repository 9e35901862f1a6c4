import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PierError } from '../../src/errors.js';
import { failureStatus, INTERNAL_FAILURE } from '../../src/reconcile/failure.js';

test("a failed pass is recorded as a kind and a client-safe message, never the exception's text", () => {
  const raw = new Error("EACCES: permission denied, open '/var/lib/pier/instances/1234/postgresql.conf'");
  assert.deepEqual(failureStatus(raw), { error_kind: 'INTERNAL_ERROR', message: INTERNAL_FAILURE });
  assert.deepEqual(failureStatus('a thrown string'), {
    error_kind: 'INTERNAL_ERROR',
    message: INTERNAL_FAILURE,
  });
  const internal = new PierError(
    'INTERNAL_ERROR',
    'pg_ctl exited with 1: FATAL could not bind /tmp/.s.PGSQL',
  );
  assert.deepEqual(failureStatus(internal), { error_kind: 'INTERNAL_ERROR', message: INTERNAL_FAILURE });
  // A Pier error's message is written for users: it is kept, with its kind.
  const known = new PierError(
    'RESOURCE_EXHAUSTED',
    'The disk holding the data dir is full. Free space and the instance starts again.',
  );
  assert.deepEqual(failureStatus(known), { error_kind: 'RESOURCE_EXHAUSTED', message: known.message });
});
