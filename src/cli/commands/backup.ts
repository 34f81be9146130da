// `tandem backup` (a backup of this node's state, taken by its agent while it runs, with a progress bar),
// `tandem backups` (what a target holds) and `tandem restore BACKUP --data-dir DIR` (run with the agent
// stopped, or on a new machine: it reads the target and the key from tandem.yml, not from an agent).
import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import { loadConfig } from "../../config/index.ts";
import { type ApiCommandOptions, withApiOptions } from "../api_client.ts";
import { callApi, capabilityGuard } from "../capability_command.ts";
import { configPathFrom } from "../config_source.ts";
import { ProgressBar } from "../progress_bar.ts";

const answerTimeoutMs = 15_000;
const pollMs = 250;

interface Job {
  id: string;
  target: string;
  state: "running" | "done" | "failed";
  phase: string;
  bytesDone: number;
  bytesTotal: number;
  key: string | null;
  size: number | null;
  error: string | null;
}

interface Listing {
  backups: Array<{ id: string; node: string; key: string; size: number; createdAt: string }>;
}

const guarded = capabilityGuard(
  "",
  "/api/v1/backups",
  "this node has no blob section (blob.backups in tandem.yml; docs/blob.md)",
);

export function registerBackupCommands(program: Command): void {
  withApiOptions(
    program
      .command("backup")
      .description(
        "back up this node's state (store, journal, election state) to a configured target, online",
      )
      .option("--target <name>", "a target of blob.backups.targets (default: the only one)")
      .option("--with-keys", "include key material: the age key and this node's TLS key and certificates"),
  )
    .addHelpText(
      "after",
      "\nThe agent takes a consistent snapshot of every database while it keeps serving, then packs,\n" +
        "compresses, encrypts (age, to the cluster's key) and uploads it. Prints the backup's id.\n\n" +
        "Examples:\n  tandem backup\n  tandem backup --target offsite --with-keys",
    )
    .action((options: ApiCommandOptions & { target?: string; withKeys?: boolean }) =>
      guarded("backup", async () => {
        const call = (path: string, method = "GET", body?: unknown) =>
          callApi(options, path, { method, body, timeoutMs: answerTimeoutMs });
        const body = {
          ...(options.target === undefined ? {} : { target: options.target }),
          withKeys: options.withKeys === true,
        };
        let job = (await call("/api/v1/backups", "POST", body)) as Job;
        const bar = new ProgressBar(options.json ? false : undefined);
        while (job.state === "running") {
          if (!options.json) bar.update(job.phase, job.bytesDone, job.bytesTotal);
          await sleep(pollMs);
          job = (await call(`/api/v1/backups/${encodeURIComponent(job.id)}`)) as Job;
        }
        bar.done();
        if (options.json) process.stdout.write(`${JSON.stringify(job)}\n`);
        if (job.state === "failed") throw new Error(`backup ${job.id} failed: ${job.error}`);
        if (!options.json) {
          process.stderr.write(`backup ${job.id} to ${job.target}: ${job.key} (${job.size} bytes)\n`);
          process.stdout.write(`${job.id}\n`);
        }
      }),
    );

  withApiOptions(
    program
      .command("backups")
      .description("the backups a target holds, of every node, newest first")
      .option("--target <name>", "a target of blob.backups.targets (default: the only one)"),
  ).action((options: ApiCommandOptions & { target?: string }) =>
    guarded("backups", async () => {
      const query = options.target === undefined ? "" : `?target=${encodeURIComponent(options.target)}`;
      const listing = (await callApi(options, `/api/v1/backups${query}`, {
        timeoutMs: answerTimeoutMs,
      })) as Listing;
      if (options.json) return void process.stdout.write(`${JSON.stringify(listing)}\n`);
      for (const b of listing.backups) {
        process.stdout.write(
          `${b.id.padEnd(28)} ${b.node.padEnd(10)} ${String(b.size).padStart(12)} bytes  ${b.createdAt}\n`,
        );
      }
    }),
  );

  program
    .command("restore")
    .description("rebuild a data directory from a backup (with the agent stopped, or on a new machine)")
    .argument("<backup>", "a backup's id (tandem backups), e.g. n3-20261207T030000Z")
    .requiredOption("--data-dir <dir>", "the directory to rebuild: new or empty")
    .option("--target <name>", "a target of blob.backups.targets (default: the only one)")
    .option(
      "--config <file>",
      "tandem.yml: the stores, the targets and the key (default: $TANDEM_CONFIG or ./tandem.yml)",
    )
    .addHelpText(
      "after",
      "\nThe store comes back with a fresh change-log identity, so peers send it everything newer; the\n" +
        "election state (term and vote) is not restored: remove the node on a live member and start it\n" +
        "with --join, as docs/blob.md says. Key material in the backup goes to DIR/keys-from-backup/.\n\n" +
        "Example:\n  tandem restore n3-20261207T030000Z --data-dir /var/lib/tandem",
    )
    .action((backup: string, options: { dataDir: string; target?: string; config?: string }) =>
      guarded("restore", async () => {
        const loaded = loadConfig(configPathFrom(options.config));
        if (!loaded.ok) throw new Error(loaded.error.format());
        const blob = loaded.value.blob;
        if (blob === null)
          throw new Error("the config has no blob section: it names the stores backups are in");
        const targets = blob.backups.targets;
        const target =
          options.target === undefined
            ? targets.length === 1
              ? targets[0]
              : undefined
            : targets.find((t) => t.name === options.target);
        if (target === undefined) {
          throw new Error(
            options.target === undefined
              ? `name a target (--target): ${targets.map((t) => t.name).join(", ") || "none configured"}`
              : `no backup target ${options.target} in blob.backups.targets`,
          );
        }
        const node = /^(.+)-\d{8}T\d{6}Z$/.exec(backup)?.[1];
        if (node === undefined)
          throw new Error(`expected a backup id like n3-20261207T030000Z, got ${backup}`);
        const { BlobStores, backupKey, restoreBackup, RESTORED_KEYS_DIR } = await import(
          "../../blob/index.ts"
        );
        const { readAgeKeyFile } = await import("../../journal/index.ts");
        const key = await readAgeKeyFile(blob.keyFile);
        const stores = new BlobStores(blob.stores);
        const bar = new ProgressBar();
        try {
          const manifest = await restoreBackup({
            store: await stores.get(target.store),
            key: backupKey(target.prefix, node, backup),
            identities: [key.identity],
            dataDir: options.dataDir,
            onProgress: (done, total) => bar.update("restore", done, total),
          });
          bar.done();
          const keys = manifest.files.some((f) => f.name.startsWith("keys/"));
          process.stdout.write(
            `restored ${backup} (node ${manifest.node}, taken ${manifest.createdAt}) into ${options.dataDir}\n` +
              (keys
                ? `key material: ${options.dataDir}/${RESTORED_KEYS_DIR}/ (move it where tandem.yml expects it)\n`
                : "") +
              `next: on a live member, \`tandem member remove ${manifest.node}\`; then start this node with \`tandem agent --join ADDRESS\`\n`,
          );
        } finally {
          bar.done();
          await stores.close();
        }
      }),
    );
}
