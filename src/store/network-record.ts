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

/**
 * Host numbers a member can get in its cluster's /24: .0 and .255 are the network and broadcast
 * addresses, and a bridge network's gateway takes .1. The loopback network also hands out .1, but
 * one bound for every backend lets `up` refuse a count before it knows which backend it gets.
 */
export const FIRST_MEMBER_HOST = 2;
export const LAST_MEMBER_HOST = 254;
/** The most members a cluster can have addresses for (253). */
export const MAX_CLUSTER_MEMBERS = LAST_MEMBER_HOST - FIRST_MEMBER_HOST + 1;
