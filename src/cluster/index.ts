export {
  Cluster,
  type ClusterMember,
  type ClusterOptions,
  type ClusterStatus,
  grantAnswerWindowTicks,
  grantLeaseMsDefault,
  type PeerStatus,
} from "./cluster.ts";
export type {
  CatchUpCheck,
  Coordination,
  FenceCheck,
  GrantAsk,
  HeldGrant,
  LeadershipView,
  MemberLiveness,
} from "./coordination.ts";
export {
  CoordinationUnavailableError,
  GrantRefusedError,
  NotLeaderError,
} from "./coordination_errors.ts";
export { FileHardStateStore, type HardStateStore, MemoryHardStateStore } from "./hard_state_store.ts";
export { requestJoin } from "./join_request.ts";
export type { ChangeOutcome, ChangeRefusal } from "./membership_wire.ts";
export { membershipChangeSchema } from "./membership_wire.ts";
