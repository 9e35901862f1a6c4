import assert from 'node:assert/strict';
import { api, eventually, type PierProcess } from '../helpers/pier.js';

export const INSTANCES = '/api/2.0/database/instances';

/** Waits until the instance reports `state`; returns its body. */
export async function instanceInState(
  pier: PierProcess,
  name: string,
  state: string,
  timeoutMs = 90_000,
): Promise<Record<string, unknown>> {
  return eventually(
    async () => {
      const { body } = await api(pier, pier.adminToken, 'GET', `${INSTANCES}/${name}`);
      return body.state === state ? body : undefined;
    },
    timeoutMs,
    `${name} ${state}`,
  );
}

/** Waits until the instance has at least `count` base backups; returns them, oldest first. */
export async function baseBackups(
  pier: PierProcess,
  name: string,
  count = 1,
): Promise<Record<string, string>[]> {
  return eventually(
    async () => {
      const { body } = await api(pier, pier.adminToken, 'GET', `${INSTANCES}/${name}/backups`);
      const list = (body.base_backups ?? []) as Record<string, string>[];
      return list.length >= count ? list : undefined;
    },
    60_000,
    `${count} base backup(s) of ${name}`,
  );
}

/** Creates a point-in-time child (as the admin) and returns the create response's body. */
export async function createChild(
  pier: PierProcess,
  name: string,
  parentRef: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const created = await api(pier, pier.adminToken, 'POST', INSTANCES, {
    name,
    parent_instance_ref: parentRef,
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  return created.body;
}
