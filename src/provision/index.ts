export type {
  DatabaseInfo,
  Drift,
  Fence,
  Precondition,
  ProvisionEngine,
  ReplicaDatabaseStatus,
  ReplicaState,
} from "./engine.ts";
export { dumpStream, restoreInto } from "./postgres_dump.ts";
export { PostgresEngine, type PostgresEngineOptions } from "./postgres_engine.ts";
export { Provisioner, type ProvisionerOptions, StaleTermError, type TargetStatus } from "./provisioner.ts";
