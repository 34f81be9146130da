// What provisioning asks of a database engine (DESIGN.md, Layout: provision/ per engine): list a primary's
// databases, make one complete on a replica (created, schema copied, replication running under the
// follower role), report each one's state and lag, and find what drifted or was orphaned. Every call is
// idempotent, so a pass cut off at any instant is finished by the next one. PostgreSQL (logical
// replication) is the engine built now; another engine implements this interface.
import type { Readable } from "node:stream";

/** A database on the primary, with what a replica's copy must be created with. */
export interface DatabaseInfo {
  name: string;
  owner: string;
  encoding: string;
  collate: string;
  ctype: string;
}

export type ReplicaState = "pending" | "copying" | "streaming" | "error";

/** A difference between a table on the primary and its copy on a replica, described for an operator. */
export interface Drift {
  table: string;
  /** e.g. "column email missing on the replica", "column age: integer on the primary, text on the replica". */
  difference: string;
}

export interface ReplicaDatabaseStatus {
  database: string;
  replica: string;
  state: ReplicaState;
  /** Bytes of WAL the replica's subscription has not confirmed (from the primary's replication slot). */
  lagBytes: number | null;
  /**
   * Seconds since the primary sent the last message the subscription received (pg_stat_subscription's
   * last_msg_send_time); 0 when the slot has confirmed all of the primary's WAL (nothing left to send).
   */
  lagSeconds: number | null;
  drift: Drift[];
  lastError: string | null;
}

/** A precondition the primary or a replica fails, with the fix to print. */
export interface Precondition {
  server: string;
  problem: string;
  fix: string;
}

/** Checked between steps: throws (StaleTermError) once this node is no longer the leader of that term. */
export type Fence = () => void;

export interface ProvisionEngine {
  /** The primary's and every replica's preconditions (version, wal_level, slots, workers, keys). */
  check(): Promise<Precondition[]>;
  /** The primary's databases that the include/exclude patterns select. */
  databases(): Promise<DatabaseInfo[]>;
  /** Databases a replica holds that the primary no longer has (and that Tandem had replicated). */
  orphans(replica: string): Promise<string[]>;
  /** Makes `database` complete on `replica`, step by step, calling `fence` before each step. */
  ensureReplicated(database: DatabaseInfo, replica: string, fence: Fence): Promise<ReplicaDatabaseStatus>;
  /** A dump of `database` (PostgreSQL: pg_dump's custom format) from a streaming replica, else the primary. */
  dump(database: string): Promise<{ stream: Readable; server: string }>;
  /** The state, lag and drift of `database` on `replica`, read only. */
  status(database: string, replica: string): Promise<ReplicaDatabaseStatus>;
  /**
   * Stops replicating `database` to `replica` (its subscription and the slot on the primary dropped),
   * keeping the copy: the primary refuses to drop a database while a slot holds it.
   */
  release(database: string, replica: string, fence: Fence): Promise<void>;
  /**
   * Makes the primary wait for the replicas (`sync`: its synchronous standbys are Tandem's subscriptions)
   * or not (`async`: a list Tandem set is removed; one the operator set is left alone), or leaves the
   * primary's own setting to decide (`auto`). Gives the value now.
   */
  applyMode(mode: "async" | "sync" | "auto", fence: Fence): Promise<string>;
  /** Drops an orphan on a replica: its subscription, then the database. */
  dropOrphan(database: string, replica: string, fence: Fence): Promise<void>;
  /**
   * The follower's password as configured now (read from its file or variable before each pass): the
   * passes set it on the primary, so every node must use the current one when it leads.
   */
  useFollowerPassword(password: string): void;
  /** Sets the follower role's new password on the primary and in every subscription. */
  rotatePassword(password: string, fence: Fence): Promise<void>;
  close(): Promise<void>;
}
