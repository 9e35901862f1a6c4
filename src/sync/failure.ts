import { PierError } from '../errors.js';

/** Why a pass could not sync. Each has a message that says what to do. */
export type SyncFailureReason =
  | 'SOURCE_MISSING'
  | 'HISTORY_GONE'
  | 'CHANGE_DATA_FEED_DISABLED'
  | 'SCHEMA_CHANGED'
  | 'PRIMARY_KEY_CONSTRAINT_VIOLATION'
  | 'NUL_IN_TEXT'
  | 'INSTANCE_UNAVAILABLE'
  | 'DATABASE_MISSING';

/**
 * A pass that failed for a reason in the data, not in Pier: it is reported
 * on the synced table and retried, and `needsFullRefresh` says whether it
 * can heal by itself (the source comes back) or needs a full refresh.
 */
export class SyncFailure extends PierError {
  constructor(
    readonly reason: SyncFailureReason,
    message: string,
    readonly needsFullRefresh: boolean,
    options?: { cause?: unknown },
  ) {
    super('INVALID_STATE', message, options);
    this.name = 'SyncFailure';
  }
}
