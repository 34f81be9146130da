// `tandem sync DIR PREFIX`: mirrors a staging folder into the store. Lists the store under PREFIX with
// content hashes, hashes the folder, plans (src/cli/sync_plan.ts), then uploads in bounded batches and,
// with --delete, removes what vanished from the folder. Nothing is sent before every file path is valid.
import { createHash } from "node:crypto";
import { lstat, readdir, readFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import type { Command } from "commander";
import { validateStorePath } from "../../core/store_path.ts";
import type { MinAcks } from "../../store/index.ts";
import type { StoreClient } from "../store_client.ts";
import {
  batchesOf,
  type ContentStamp,
  listingPrefixOf,
  planSync,
  type SyncPlan,
  storePathOf,
} from "../sync_plan.ts";
import {
  type ClientOptions,
  exitNotAcknowledged,
  fail,
  parseMinAcksOption,
  storeClientFrom,
  withClientOptions,
} from "./store.ts";

/** Well under the server's batch bounds (10,000 writes, 16 MiB of JSON with base64 values). */
const batchLimits = { writesMax: 1000, bytesMax: 8 * 1024 * 1024 };
/** Above this many changes a TTY gets a progress bar. */
const progressBarChangesMin = 50;

interface LocalFile extends ContentStamp {
  file: string;
}

interface SyncOptions extends ClientOptions {
  dryRun?: boolean;
  delete?: boolean;
  minAcks?: MinAcks;
}

/** Regular files under `dir` with their store paths and hashes; symlinks and special files are refused. */
export async function scanFolder(dir: string, prefix: string): Promise<LocalFile[]> {
  const files: LocalFile[] = [];
  const problems: string[] = [];
  const walk = async (folder: string) => {
    for (const dirent of await readdir(folder, { withFileTypes: true })) {
      const file = join(folder, dirent.name);
      if (dirent.isDirectory()) {
        await walk(file);
        continue;
      }
      if (!dirent.isFile()) {
        problems.push(`${file}: not a regular file (symlinks and special files are not synced)`);
        continue;
      }
      const path = storePathOf(prefix, relative(dir, file).split(sep).join("/"));
      const checked = validateStorePath(path);
      if (!checked.ok) {
        problems.push(`${file}: ${checked.reason}`);
        continue;
      }
      const bytes = await readFile(file);
      files.push({
        file,
        path,
        size: bytes.byteLength,
        sha256: createHash("sha256").update(bytes).digest("hex"),
      });
    }
  };
  if (!(await lstat(dir)).isDirectory()) throw new Error(`${dir} is not a directory`);
  await walk(dir);
  if (problems.length > 0) throw new Error(`cannot sync ${dir}:\n  ${problems.join("\n  ")}`);
  return files;
}

export async function remoteStamps(client: StoreClient, prefix: string): Promise<ContentStamp[]> {
  const stamps: ContentStamp[] = [];
  for await (const entry of client.listAll(listingPrefixOf(prefix), { hashes: true })) {
    stamps.push({ path: entry.path, size: entry.size, sha256: entry.sha256 ?? "" });
  }
  return stamps;
}

/** A progress bar on a terminal, a plain line per batch otherwise. */
function progressReporter(command: Command, total: number): (done: number, bytes: number) => void {
  const tty = process.stderr.isTTY === true && total >= progressBarChangesMin;
  const write = (text: string) => command.configureOutput().writeErr?.(text);
  return (done, bytes) => {
    const mib = (bytes / (1024 * 1024)).toFixed(1);
    if (!tty) return write(`synced ${done}/${total} (${mib} MiB)\n`);
    const width = 30;
    const filled = Math.round((done / total) * width);
    write(`\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total} ${mib} MiB`);
    if (done === total) write("\n");
  };
}

async function applyPlan(command: Command, client: StoreClient, plan: SyncPlan, options: SyncOptions) {
  const byPath = new Map((plan.upload as LocalFile[]).map((f) => [f.path, f]));
  const total = plan.upload.length + plan.remove.length;
  const report = progressReporter(command, total);
  let done = 0;
  let bytes = 0;
  let unacked = 0;
  const send = async (writes: Array<{ path: string; value: Uint8Array | null }>) => {
    const result = await client.batch(writes, options.minAcks);
    if (!result.outcome.acked) unacked += writes.length;
    done += writes.length;
    bytes += writes.reduce((sum, w) => sum + (w.value?.byteLength ?? 0), 0);
    report(done, bytes);
  };
  for (const batch of batchesOf(plan.upload, batchLimits)) {
    await send(
      await Promise.all(
        batch.map(async (s) => ({ path: s.path, value: await readFile(byPath.get(s.path)!.file) })),
      ),
    );
  }
  for (const batch of batchesOf(
    plan.remove.map((path) => ({ path, size: 0 })),
    batchLimits,
  )) {
    await send(batch.map((r) => ({ path: r.path, value: null })));
  }
  return unacked;
}

export function registerSyncCommand(program: Command): void {
  withClientOptions(program.command("sync"))
    .description(
      "mirror a folder into the store under a prefix: upload what changed, optionally delete what vanished",
    )
    .argument("<dir>", "staging folder")
    .argument("<prefix>", 'store prefix the folder maps to, e.g. "certs"')
    .option("--dry-run", "print the plan, change nothing")
    .option("--delete", "delete store entries under the prefix that are no longer in the folder")
    .option(
      "--min-acks <n|all>",
      "peers that must hold each batch (default: the node's, 1)",
      parseMinAcksOption,
    )
    .addHelpText(
      "after",
      "\nExamples:\n  tandem sync ./staging/certs certs --dry-run\n  tandem sync ./staging/certs certs --delete --min-acks all",
    )
    .action(async (dir: string, prefix: string, options: SyncOptions, command: Command) => {
      const out = (text: string) => command.configureOutput().writeOut?.(text);
      try {
        if (prefix !== "" && !validateStorePath(prefix.replace(/\/+$/, "")).ok)
          throw new Error(`invalid prefix ${prefix}`);
        const local = await scanFolder(dir, prefix);
        const client = await storeClientFrom(options);
        const plan = planSync(local, await remoteStamps(client, prefix), {
          deleteMissing: options.delete === true,
        });
        if (options.dryRun) {
          for (const stamp of plan.upload) out(`upload  ${stamp.path} (${stamp.size} bytes)\n`);
          for (const path of plan.remove) out(`delete  ${path}\n`);
        }
        const summary = `${plan.upload.length} to upload, ${plan.remove.length} to delete, ${plan.unchanged.length} unchanged`;
        if (options.dryRun || plan.upload.length + plan.remove.length === 0)
          return out(`${summary}${options.dryRun ? " (dry run)" : ""}\n`);
        const unacked = await applyPlan(command, client, plan, options);
        out(`${summary}: done\n`);
        if (unacked > 0) {
          command
            .configureOutput()
            .writeErr?.(
              `${unacked} change(s) NOT acknowledged by min_acks peers; committed on the node, they spread when peers return\n`,
            );
          process.exitCode = exitNotAcknowledged;
        }
      } catch (error) {
        fail(command, error);
      }
    });
}
