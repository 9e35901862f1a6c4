import type { Queryable } from '../store/store.js';

/**
 * Which workspace identities exist and are active, in memory, so the proxy
 * can refuse a database credential whose identity was deleted (or
 * deactivated) without asking the store on every connection. Rebuilt from
 * the store by `refresh`, on every change to the identities in any Pier
 * process sharing the store (NOTIFY, see store/notifications.ts); a deletion in this process takes effect at once
 * through `forget`. An identity created since the last refresh is looked up
 * once, on its first login.
 *
 * @example
 * const identities = new ActiveIdentities(store);
 * await identities.refresh();
 * await identities.isActive('1001', 'jane@example.com'); // true
 * identities.forget('1001'); // after the delete commits
 */
export class ActiveIdentities {
  /** Identity id → lower-case user name. */
  private active = new Map<string, string>();
  /** Ids forgotten here, with when: a refresh that began before then may still hold them. */
  private forgotten = new Map<string, number>();
  /** Ids looked up and not found since the last refresh. */
  private missing = new Set<string>();
  private loading: Promise<void> | undefined;

  constructor(
    private readonly db: Queryable,
    private readonly now: () => number = Date.now,
  ) {}

  /** Reloads every active identity; concurrent calls share one load. */
  refresh(): Promise<void> {
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  /** The identity is gone or inactive: refuse it from now on, whatever a refresh in flight read. */
  forget(id: string): void {
    this.active.delete(id);
    this.forgotten.set(id, this.now());
  }

  /** Whether identity `id` exists, is active and is still called `userName` (any case). */
  async isActive(id: string, userName: string): Promise<boolean> {
    if (!/^\d{1,18}$/.test(id) || this.forgotten.has(id) || this.missing.has(id)) return false;
    let name = this.active.get(id);
    if (name === undefined) {
      const { rows } = await this.db.query<{ user_name: string }>(
        `SELECT user_name FROM identities WHERE id = $1::bigint AND active`,
        [id],
      );
      if (rows.length === 0) {
        if (this.missing.size >= 10_000) this.missing.clear();
        this.missing.add(id);
        return false;
      }
      name = rows[0].user_name.toLowerCase();
      // Forgotten while the query ran: the deletion wins.
      if (!this.forgotten.has(id)) this.active.set(id, name);
    }
    return name === userName.toLowerCase();
  }

  private async load(): Promise<void> {
    const startedAt = this.now();
    const { rows } = await this.db.query<{ id: string; user_name: string }>(
      'SELECT id::text, user_name FROM identities WHERE active',
    );
    const active = new Map(rows.map((row) => [row.id, row.user_name.toLowerCase()]));
    for (const [id, at] of this.forgotten) {
      // Forgotten before this load began: the load saw the change itself.
      if (at < startedAt) this.forgotten.delete(id);
      else active.delete(id);
    }
    this.active = active;
    this.missing = new Set();
  }
}
