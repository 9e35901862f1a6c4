import type { Queryable } from '../store/store.js';

export interface LineageEdge {
  source_name: string;
  target_name: string;
  created_at: Date;
}

/** Records that `target` is derived from `source` (three-part names); recording it twice is a no-op. */
export async function insertLineageEdge(db: Queryable, source: string, target: string): Promise<void> {
  await db.query(
    'INSERT INTO table_lineage (source_name, target_name) VALUES ($1, $2) ON CONFLICT DO NOTHING',
    [source, target],
  );
}

export async function listUpstreams(db: Queryable, target: string): Promise<LineageEdge[]> {
  const { rows } = await db.query<LineageEdge>(
    'SELECT source_name, target_name, created_at FROM table_lineage WHERE target_name = $1 ORDER BY source_name',
    [target],
  );
  return rows;
}

export async function listDownstreams(db: Queryable, source: string): Promise<LineageEdge[]> {
  const { rows } = await db.query<LineageEdge>(
    'SELECT source_name, target_name, created_at FROM table_lineage WHERE source_name = $1 ORDER BY target_name',
    [source],
  );
  return rows;
}
