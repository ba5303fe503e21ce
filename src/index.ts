/**
 * fleetbox: real Linux machines (or plain processes) as test fixtures and throw-away clusters.
 *
 *   await using cluster = await startCluster({ name: 'raft', members: 3 });
 */
export { startCluster, attach, Cluster, uniqueSuffix, type SnapshotInfo, type StartClusterOptions } from './lib/cluster.js';
export { Member, type DelayOptions } from './lib/member.js';
export { buildImage, listImages, removeImage, type BuildImageOptions, type ImageInfo } from './lib/image.js';
export { listSnapshots, removeSnapshot, type SnapshotListing } from './lib/snapshots.js';
export type { ExecOptions, ExecResult } from './lib/exec.js';
export type { CopyOptions } from './lib/copy.js';
export { FleetboxError, ERROR_CODES, isFleetboxError, type ErrorCode } from './protocol/errors.js';
export type { Fault, MemberState, MemberStatus } from './protocol/schemas.js';
export type { MemberView } from './control/status.js';
