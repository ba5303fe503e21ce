import { z } from 'zod';

/**
 * clusters/<cluster>/network.json: the cluster's subnet and address book. Written before the
 * network it describes is created and removed only after its teardown was verified, so a crash
 * in between always leaves a record that reconcile can act on.
 */
export const NetworkRecordSchema = z.object({
  cluster: z.string(),
  kind: z.enum(['loopback', 'bridge']),
  /** First three octets of the /24, e.g. "127.18.4". */
  subnet: z.string().regex(/^\d{1,3}\.\d{1,3}\.\d{1,3}$/),
  prefix: z.number().int().min(8).max(30),
  gateway: z.string().nullable(),
  /** bridge networks: the namespace, e.g. fbx-0123abcd. */
  namespace: z.string().nullable(),
  /** member name → IPv4 address; kept when a member stops so a re-join gets the same address. */
  addresses: z.record(z.string(), z.string()),
  /** holder that created the network: reconcile tears it down only when this holder is dead. */
  owner: z.object({ pid: z.number().int(), startTime: z.string() }).nullable(),
  createdAt: z.string(),
});
export type NetworkRecord = z.infer<typeof NetworkRecordSchema>;
