export {
  Cluster,
  type ClusterMember,
  type ClusterOptions,
  type ClusterStatus,
  type PeerStatus,
} from "./cluster.ts";
export type { Coordination, LeadershipView } from "./coordination.ts";
export { FileHardStateStore, type HardStateStore, MemoryHardStateStore } from "./hard_state_store.ts";
