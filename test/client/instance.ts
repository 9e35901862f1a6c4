import { api, eventually, type PierProcess, startPier } from '../helpers/pier.js';

export interface InstanceUnderTest {
  pier: PierProcess;
  name: string;
  readWriteDns: string;
}

/** `pier up` with extra flags and one AVAILABLE instance. */
export async function pierWithInstance(name: string, args: string[] = []): Promise<InstanceUnderTest> {
  const pier = await startPier({ args });
  const created = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', {
    name,
    capacity: 'CU_1',
  });
  if (created.status !== 200) throw new Error(`create failed: ${JSON.stringify(created.body)}`);
  const readWriteDns = await eventually(
    async () => {
      const { body } = await api(pier, pier.adminToken, 'GET', `/api/2.0/database/instances/${name}`);
      return body.state === 'AVAILABLE' ? (body.read_write_dns as string) : undefined;
    },
    90_000,
    `${name} AVAILABLE`,
  );
  return { pier, name, readWriteDns };
}
