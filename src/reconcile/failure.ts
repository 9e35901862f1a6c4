import { type ErrorKind, isPierError } from '../errors.js';
import type { InstanceStatus } from '../instances/store.js';

/** What a user is told of a failed pass that will be retried: never the exception's own text. */
export const INTERNAL_FAILURE =
  'Pier could not finish the last change to this instance and keeps retrying; the details are in the Pier log.';

/**
 * How a failed reconcile pass is recorded in an instance's status: its error
 * kind, and a message a client may see. A PierError's message is written for
 * users and kept; anything else (an engine's exception, a store error, with
 * paths and internals in its text) is INTERNAL_ERROR with a generic message,
 * its own text only in the log.
 *
 * @example
 * failureStatus(new Error('EACCES: /var/lib/pier/instances/…'))
 * // → { error_kind: 'INTERNAL_ERROR', message: INTERNAL_FAILURE }
 */
export function failureStatus(error: unknown): Required<Pick<InstanceStatus, 'error_kind' | 'message'>> {
  if (isPierError(error) && error.kind !== 'INTERNAL_ERROR') {
    return { error_kind: error.kind satisfies ErrorKind, message: error.message };
  }
  return { error_kind: 'INTERNAL_ERROR', message: INTERNAL_FAILURE };
}
