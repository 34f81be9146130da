// The provisioner of one target (DESIGN.md, Layout: provision/): every interval, and at once when this node
// becomes the leader, the leader alone runs a pass: check the servers, make every selected database complete
// on every replica, note orphans. Each step is fenced by the term the pass began in: a node that lost its
// leadership (or its lease) stops at the next step, and the next leader's pass finishes what it left,
// since every step is idempotent. The pass's outcome, stamped with leader and term, goes into the
// replicated store, so every node serves the same status.
import type { Logger } from "pino";
import type { LeadershipView } from "../cluster/index.ts";
import type { ProvisionTargetConfig } from "../config/index.ts";
import type { MonotonicTicker } from "../shell/index.ts";
import type { DatabaseInfo, Fence, Precondition, ProvisionEngine, ReplicaDatabaseStatus } from "./engine.ts";

/** Thrown by a fence once the pass's term is over (this node no longer leads, or its lease lapsed). */
export class StaleTermError extends Error {
  override readonly name = "StaleTermError";
}

export interface TargetStatus {
  target: string;
  leader: string;
  term: number;
  passStartedAt: string;
  passEndedAt: string;
  preconditions: Precondition[];
  databases: ReplicaDatabaseStatus[];
  orphans: Array<{ replica: string; database: string }>;
  /** The primary's synchronous_standby_names after the pass (mode sync: Tandem's subscriptions). */
  synchronousStandbyNames: string | null;
  /** Why the pass stopped short (a server unreachable), or null. */
  error: string | null;
}

export interface ProvisionerOptions {
  nodeId: string;
  target: ProvisionTargetConfig;
  engine: ProvisionEngine;
  leadership: () => LeadershipView;
  /** The agent's ticker, at the target's interval. */
  every: (periodMs: number, onTick: () => void) => MonotonicTicker;
  /** The follower's password as configured now (its file may have changed since the start). */
  followerPassword: () => Promise<string>;
  /** Databases released (tandem provision release): passes leave them alone. Kept in the replicated store. */
  released: { has(database: string): boolean; add(database: string): Promise<void> };
  /** Records the pass's status where every node reads it (the replicated store). */
  publish: (status: TargetStatus) => Promise<void>;
  logger: Logger;
  onEvent?: (fields: Record<string, unknown>) => void;
}

export class Provisioner {
  private readonly options: ProvisionerOptions;
  private ticker: MonotonicTicker | null = null;
  private passing: Promise<void> | null = null;
  private again = false;
  private lastPassStartedMs = 0;
  private readonly lastStates = new Map<string, string>();
  private stopped = false;

  constructor(options: ProvisionerOptions) {
    this.options = options;
  }

  start(): void {
    // Checked every second (at most), a pass runs once `interval` has passed since the last began: the
    // shared ticker's first tick of a long period would come up to two periods after the start.
    const checkMs = Math.min(1_000, this.options.target.intervalMs);
    this.ticker = this.options.every(checkMs, () => {
      if (Date.now() - this.lastPassStartedMs >= this.options.target.intervalMs) this.wake();
    });
    this.ticker.start();
    this.wake();
  }

  /** Runs a pass now if this node leads (a pass under way is followed by another). */
  wake(): void {
    if (this.stopped) return;
    if (this.passing !== null) {
      this.again = true;
      return;
    }
    const view = this.options.leadership();
    if (view.role !== "leader" || !view.leaseValid) return;
    this.lastPassStartedMs = Date.now();
    this.passing = this.pass(view.term)
      .catch((error: Error) => this.options.logger.error({ err: error.message }, "provisioning pass failed"))
      .finally(() => {
        this.passing = null;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  /** The fence of a pass begun in `term`. */
  fence(term: number): Fence {
    return () => {
      const now = this.options.leadership();
      if (this.stopped || now.role !== "leader" || now.term !== term || !now.leaseValid) {
        throw new StaleTermError(
          `the pass of term ${term} stopped: this node no longer leads (term ${now.term})`,
        );
      }
    };
  }

  /** Drops every orphan on every replica (tandem provision prune --yes); the leader only. */
  async prune(): Promise<Array<{ replica: string; database: string }>> {
    const fence = this.leaderFence();
    const dropped: Array<{ replica: string; database: string }> = [];
    for (const replica of this.options.target.replicas) {
      for (const database of await this.options.engine.orphans(replica.name)) {
        await this.options.engine.dropOrphan(database, replica.name, fence);
        dropped.push({ replica: replica.name, database });
        this.options.logger.warn({ replica: replica.name, database }, "orphan dropped on the replica");
        this.options.onEvent?.({
          event: "orphan-dropped",
          target: this.options.target.name,
          replica: replica.name,
          database,
        });
      }
    }
    this.wake();
    return dropped;
  }

  /**
   * Stops replicating `database` (tandem provision release), so that the primary can drop it: marked
   * released for every later pass first, then its subscriptions and slots dropped; the leader only.
   */
  async release(database: string): Promise<void> {
    const fence = this.leaderFence();
    await this.options.released.add(database);
    for (const replica of this.options.target.replicas) {
      await this.options.engine.release(database, replica.name, fence);
    }
    this.options.logger.info({ database }, "database released: no longer replicated");
    this.options.onEvent?.({ event: "released", target: this.options.target.name, database });
  }

  /** Sets the follower's (new) password on the primary and every subscription; the leader only. */
  async rotatePassword(): Promise<void> {
    const fence = this.leaderFence();
    await this.options.engine.rotatePassword(await this.options.followerPassword(), fence);
    this.options.logger.info({ role: this.options.target.follower.role }, "follower password rotated");
    this.options.onEvent?.({ event: "password-rotated", target: this.options.target.name });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ticker?.stop();
    await this.passing;
    await this.options.engine.close();
  }

  private leaderFence(): Fence {
    const view = this.options.leadership();
    if (view.role !== "leader")
      throw new StaleTermError(`not the leader: ask ${view.leaderId ?? "the leader (none now)"}`);
    return this.fence(view.term);
  }

  private async pass(term: number): Promise<void> {
    const { engine, target, logger } = this.options;
    const fence = this.fence(term);
    const status: TargetStatus = {
      target: target.name,
      leader: this.options.nodeId,
      term,
      passStartedAt: new Date().toISOString(),
      passEndedAt: "",
      preconditions: [],
      databases: [],
      orphans: [],
      synchronousStandbyNames: null,
      error: null,
    };
    try {
      engine.useFollowerPassword(await this.options.followerPassword());
      status.preconditions = await engine.check();
      fence();
      const databases = (await engine.databases()).filter((d) => !this.options.released.has(d.name));
      for (const database of databases) {
        for (const replica of target.replicas)
          status.databases.push(await this.ensure(database, replica.name, fence));
      }
      for (const replica of target.replicas) {
        for (const database of await engine.orphans(replica.name))
          status.orphans.push({ replica: replica.name, database });
      }
      status.synchronousStandbyNames = await engine.applyMode(
        target.mode === "sync" ? "sync" : "async",
        fence,
      );
    } catch (error) {
      if (error instanceof StaleTermError) {
        logger.info({ term, reason: error.message }, "provisioning pass stopped");
        return;
      }
      status.error = (error as Error).message;
    }
    status.passEndedAt = new Date().toISOString();
    try {
      fence();
    } catch (error) {
      // Deposed while finishing: the next leader's pass publishes.
      logger.info({ term, reason: (error as Error).message }, "provisioning pass stopped");
      return;
    }
    this.noteChanges(status);
    await this.options.publish(status);
  }

  /** One database on one replica; a failure is its status (the pass goes on), except a stale term. */
  private async ensure(
    database: DatabaseInfo,
    replica: string,
    fence: Fence,
  ): Promise<ReplicaDatabaseStatus> {
    try {
      return await this.options.engine.ensureReplicated(database, replica, fence);
    } catch (error) {
      if (error instanceof StaleTermError) throw error;
      return {
        database: database.name,
        replica,
        state: "error",
        lagBytes: null,
        lagSeconds: null,
        drift: [],
        lastError: (error as Error).message,
      };
    }
  }

  /** Events and log lines for what changed since the last pass: states, drift, orphans, preconditions. */
  private noteChanges(status: TargetStatus): void {
    const { logger, onEvent } = this.options;
    const seen = new Map<string, string>();
    for (const d of status.databases) {
      const key = `${d.replica}/${d.database}`;
      const note = `${d.state}|${d.lastError ?? ""}|${d.drift.map((x) => `${x.table}:${x.difference}`).join(";")}`;
      seen.set(key, note);
      if (this.lastStates.get(key) === note) continue;
      const fields = {
        target: status.target,
        replica: d.replica,
        database: d.database,
        state: d.state,
        term: status.term,
      };
      if (d.state === "error") logger.warn({ ...fields, reason: d.lastError }, "replica database in error");
      else logger.info(fields, "replica database state");
      if (d.drift.length > 0)
        logger.warn({ ...fields, drift: d.drift }, "schema drift between primary and replica");
      onEvent?.({ event: "database", ...fields, lastError: d.lastError, drift: d.drift });
    }
    for (const o of status.orphans) {
      const key = `orphan:${o.replica}/${o.database}`;
      seen.set(key, "orphan");
      if (this.lastStates.get(key) === "orphan") continue;
      logger.warn(
        { target: status.target, ...o },
        "database dropped on the primary, kept on the replica (tandem provision prune --yes)",
      );
      onEvent?.({ event: "orphan", target: status.target, ...o });
    }
    const problems = status.preconditions.map((p) => `${p.server}: ${p.problem}`).join("\n");
    if (problems !== (this.lastStates.get("preconditions") ?? "")) {
      for (const p of status.preconditions)
        logger.warn({ target: status.target, ...p }, "provisioning precondition");
      if (problems !== "")
        onEvent?.({ event: "preconditions", target: status.target, preconditions: status.preconditions });
    }
    seen.set("preconditions", problems);
    this.lastStates.clear();
    for (const [key, value] of seen) this.lastStates.set(key, value);
  }
}
