// Backups of this node on request (the API, `tandem backup`) and on schedules (croner), one at a time,
// each to a configured target (a store and a folder: a request names a target, never a path), with its
// progress kept for GET /api/v1/backups/{id}; after a scheduled backup, the target's retention removes
// this node's backups no rule keeps (src/core/backup_retention.ts).
import { Cron } from "croner";
import type { Logger } from "pino";
import type { BackupScheduleConfig, BackupTargetConfig } from "../config/index.ts";
import { backupsToKeep } from "../core/backup_retention.ts";
import { globMatches } from "../core/name_pattern.ts";
import { type BackupProgress, backupId, parseBackupKey, takeBackup } from "./backup.ts";
import type { BlobStores } from "./blob_stores.ts";
import { type DatabaseDumps, parseDatabaseBackupKey, takeDatabaseBackup } from "./database_backup.ts";

/** Finished jobs remembered for GET /api/v1/backups/{id}. */
const JOBS_KEPT = 32;

export interface BackupJob {
  id: string;
  target: string;
  /** A database's backup (provisioning's), or null for this node's state. */
  database: string | null;
  state: "running" | "done" | "failed";
  phase: BackupProgress["phase"];
  bytesDone: number;
  bytesTotal: number;
  withKeys: boolean;
  trigger: "request" | "schedule";
  startedAt: string;
  finishedAt: string | null;
  key: string | null;
  size: number | null;
  error: string | null;
}

export interface BackupListing {
  id: string;
  kind: "node" | "database";
  /** The node whose state it holds, or the database. */
  node: string;
  key: string;
  size: number;
  createdAt: string;
}

export interface BackupRunnerOptions {
  nodeId: string;
  clusterName: string;
  version: string;
  dataDir: string;
  stores: BlobStores;
  targets: readonly BackupTargetConfig[];
  schedules: readonly BackupScheduleConfig[];
  recipients: readonly string[];
  keyMaterial: readonly string[];
  logger: Logger;
  onEvent?: (fields: Record<string, unknown>) => void;
}

export class BackupRequestError extends Error {
  override readonly name = "BackupRequestError";
  readonly conflict: boolean;
  constructor(message: string, conflict = false) {
    super(message);
    this.conflict = conflict;
  }
}

export class BackupRunner {
  private readonly options: BackupRunnerOptions;
  private readonly jobs = new Map<string, BackupJob>();
  private running: Promise<void> | null = null;
  private dumps: DatabaseDumps | null = null;
  /** Scheduled runs (a backup, then its pruning) in progress: stop() waits for them. */
  private readonly scheduledRuns = new Set<Promise<void>>();
  private readonly crons: Cron[] = [];

  constructor(options: BackupRunnerOptions) {
    this.options = options;
  }

  targetNames(): string[] {
    return this.options.targets.map((t) => t.name);
  }

  /** Arms the schedules. */
  start(): void {
    for (const schedule of this.options.schedules) {
      const cron = new Cron(schedule.cron, { timezone: schedule.timezone, protect: true }, () => {
        const run = this.scheduled(schedule).finally(() => this.scheduledRuns.delete(run));
        this.scheduledRuns.add(run);
        return run;
      });
      this.crons.push(cron);
    }
  }

  async stop(): Promise<void> {
    for (const cron of this.crons) cron.stop();
    await this.running?.catch(() => {});
    await Promise.allSettled([...this.scheduledRuns]);
  }

  /** Provisioning's dumps, for database backups (it starts after this capability). */
  useDatabaseDumps(dumps: DatabaseDumps): void {
    this.dumps = dumps;
  }

  /**
   * Starts a backup of this node's state, or of `database`, to `targetName` (or the only target); refused
   * while one runs.
   */
  begin(
    targetName: string | undefined,
    withKeys: boolean,
    trigger: BackupJob["trigger"] = "request",
    database: string | null = null,
  ): BackupJob {
    const target = this.targetOf(targetName);
    if (database !== null && this.dumps === null) {
      throw new BackupRequestError("database backups need a provision: section naming the database's server");
    }
    if (this.running !== null) throw new BackupRequestError("a backup of this node is already running", true);
    const now = new Date();
    const job: BackupJob = {
      id: backupId(database ?? this.options.nodeId, now),
      target: target.name,
      database,
      state: "running",
      phase: "snapshot",
      bytesDone: 0,
      bytesTotal: 0,
      withKeys,
      trigger,
      startedAt: new Date().toISOString(),
      finishedAt: null,
      key: null,
      size: null,
      error: null,
    };
    if (this.jobs.has(job.id))
      throw new BackupRequestError("a backup of this node started this second; try again", true);
    this.remember(job);
    this.running = this.run(job, target, now).finally(() => {
      this.running = null;
    });
    return job;
  }

  job(id: string): BackupJob | undefined {
    return this.jobs.get(id);
  }

  /** Every backup in `targetName` (of every node), newest first. */
  async list(targetName: string | undefined): Promise<BackupListing[]> {
    const target = this.targetOf(targetName);
    const store = await this.options.stores.get(target.store);
    const found: BackupListing[] = [];
    for await (const object of store.list(`${target.prefix}/`)) {
      const database = parseDatabaseBackupKey(object.key);
      if (database !== null) {
        found.push({
          id: database.id,
          kind: "database",
          node: database.database,
          key: object.key,
          size: object.size,
          createdAt: new Date(database.createdMs).toISOString(),
        });
        continue;
      }
      const parsed = parseBackupKey(object.key);
      if (parsed === null) continue;
      found.push({
        id: parsed.id,
        kind: "node",
        node: parsed.node,
        key: object.key,
        size: object.size,
        createdAt: new Date(parsed.createdMs).toISOString(),
      });
    }
    return found.sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
  }

  private targetOf(name: string | undefined): BackupTargetConfig {
    const targets = this.options.targets;
    if (targets.length === 0)
      throw new BackupRequestError("no backup targets are configured (blob.backups.targets)");
    if (name === undefined) {
      if (targets.length === 1) return targets[0] as BackupTargetConfig;
      throw new BackupRequestError(`name a target: ${targets.map((t) => t.name).join(", ")}`);
    }
    const target = targets.find((t) => t.name === name);
    if (target === undefined) {
      throw new BackupRequestError(
        `no backup target ${name} (configured: ${targets.map((t) => t.name).join(", ")})`,
      );
    }
    return target;
  }

  private async run(job: BackupJob, target: BackupTargetConfig, now: Date): Promise<void> {
    const fields = {
      backup: job.id,
      target: target.name,
      ...(job.database === null ? {} : { database: job.database }),
    };
    this.options.logger.info({ ...fields, withKeys: job.withKeys, trigger: job.trigger }, "backup started");
    this.options.onEvent?.({ event: "backup-started", ...fields });
    try {
      const result =
        job.database !== null
          ? await this.databaseBackup(job, job.database, target, now)
          : await takeBackup({
              dataDir: this.options.dataDir,
              nodeId: this.options.nodeId,
              clusterName: this.options.clusterName,
              version: this.options.version,
              store: await this.options.stores.get(target.store),
              prefix: target.prefix,
              recipients: [...this.options.recipients, ...this.options.stores.recipientsFor(target.store)],
              keyFiles: job.withKeys ? this.options.keyMaterial : [],
              now,
              onProgress: (progress) => {
                job.phase = progress.phase;
                job.bytesDone = progress.bytesDone;
                job.bytesTotal = progress.bytesTotal;
              },
            });
      Object.assign(job, {
        state: "done",
        key: result.key,
        size: result.size,
        finishedAt: new Date().toISOString(),
      });
      this.options.logger.info({ ...fields, key: result.key, size: result.size }, "backup done");
      this.options.onEvent?.({ event: "backup-done", ...fields, key: result.key, size: result.size });
    } catch (error) {
      Object.assign(job, {
        state: "failed",
        error: (error as Error).message,
        finishedAt: new Date().toISOString(),
      });
      this.options.logger.error({ ...fields, err: (error as Error).message }, "backup failed");
      this.options.onEvent?.({ event: "backup-failed", ...fields, reason: (error as Error).message });
    }
  }

  /** A database's dump, streamed to the target; its progress in bytes dumped (the total is not known). */
  private async databaseBackup(job: BackupJob, database: string, target: BackupTargetConfig, now: Date) {
    const dumps = this.dumps as DatabaseDumps;
    job.phase = "upload";
    return takeDatabaseBackup({
      store: await this.options.stores.get(target.store),
      prefix: target.prefix,
      database,
      dumps,
      recipients: [...this.options.recipients, ...this.options.stores.recipientsFor(target.store)],
      now,
      onProgress: (bytesDone) => {
        job.bytesDone = bytesDone;
        job.bytesTotal = bytesDone;
      },
    });
  }

  /** A schedule's run: this node's state, or each database its patterns select, one after the other. */
  private async scheduled(schedule: BackupScheduleConfig): Promise<void> {
    const databases =
      schedule.databases === null
        ? [null]
        : ((await this.dumps?.databases().catch(() => [])) ?? []).filter((d) =>
            (schedule.databases ?? []).some((pattern) => globMatches(pattern, d)),
          );
    for (const database of databases) {
      let job: BackupJob;
      try {
        job = this.begin(schedule.target, schedule.withKeys, "schedule", database);
      } catch (error) {
        this.options.logger.warn(
          { target: schedule.target, database, err: (error as Error).message },
          "scheduled backup skipped",
        );
        continue;
      }
      await this.running;
      if (job.state === "done")
        await this.prune(schedule, database ?? this.options.nodeId, database === null ? "node" : "database");
    }
  }

  /** Removes the backups of this node (or of a database) in the schedule's target that retention does not keep. */
  private async prune(
    schedule: BackupScheduleConfig,
    owner: string,
    kind: BackupListing["kind"],
  ): Promise<void> {
    try {
      const target = this.targetOf(schedule.target);
      const ours = (await this.list(schedule.target)).filter((b) => b.kind === kind && b.node === owner);
      const keep = backupsToKeep(
        ours.map((b) => ({ id: b.id, createdMs: Date.parse(b.createdAt) })),
        schedule.keep,
      );
      const store = await this.options.stores.get(target.store);
      for (const backup of ours.filter((b) => !keep.has(b.id))) {
        await store.delete(backup.key);
        this.options.logger.info({ backup: backup.id, target: target.name }, "backup removed by retention");
      }
    } catch (error) {
      this.options.logger.warn(
        { target: schedule.target, err: (error as Error).message },
        "backup retention failed",
      );
    }
  }

  private remember(job: BackupJob): void {
    this.jobs.set(job.id, job);
    for (const id of this.jobs.keys()) {
      if (this.jobs.size <= JOBS_KEPT) break;
      if (this.jobs.get(id)?.state !== "running") this.jobs.delete(id);
    }
  }
}
