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
  backups: Array<{ id: string; kind: string; node: string; key: string; size: number; createdAt: string }>;
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
      .option("--with-keys", "include key material: the age key and this node's TLS key and certificates")
      .option("--database <name>", "back up this database of provisioning (pg_dump) instead of the node"),
  )
    .addHelpText(
      "after",
      "\nThe agent takes a consistent snapshot of every database while it keeps serving, then packs,\n" +
        "compresses, encrypts (age, to the cluster's key) and uploads it. Prints the backup's id.\n\n" +
        "Examples:\n  tandem backup\n  tandem backup --target offsite --with-keys\n  tandem backup --database shop",
    )
    .action((options: ApiCommandOptions & { target?: string; withKeys?: boolean; database?: string }) =>
      guarded("backup", async () => {
        const call = (path: string, method = "GET", body?: unknown) =>
          callApi(options, path, { method, body, timeoutMs: answerTimeoutMs });
        const body = {
          ...(options.target === undefined ? {} : { target: options.target }),
          withKeys: options.withKeys === true,
          ...(options.database === undefined ? {} : { database: options.database }),
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
          `${b.id.padEnd(32)} ${b.kind.padEnd(9)} ${b.node.padEnd(16)} ${String(b.size).padStart(12)} bytes  ${b.createdAt}\n`,
        );
      }
    }),
  );

  program
    .command("restore")
    .description("rebuild a data directory, or a database, from a backup (no agent needed)")
    .argument("<backup>", "a backup's id (tandem backups), e.g. n3-20261207T030000Z or shop-20261207T030000Z")
    .option("--data-dir <dir>", "a node's backup: the directory to rebuild, new or empty")
    .option("--database <name>", "a database's backup: the new database to restore it into, on the primary")
    .option("--target <name>", "a target of blob.backups.targets (default: the only one)")
    .option(
      "--provision-target <name>",
      "with --database: a target of provision.targets (default: the only one)",
    )
    .option(
      "--config <file>",
      "tandem.yml: the stores, the targets and the key (default: $TANDEM_CONFIG or ./tandem.yml)",
    )
    .addHelpText(
      "after",
      "\nA node's backup: the store comes back with a fresh change-log identity, so peers send it everything\n" +
        "newer; the election state (term and vote) is not restored: remove the node on a live member and\n" +
        "start it with --join, as docs/blob.md says. Key material in the backup goes to DIR/keys-from-backup/.\n" +
        "A database's backup: pg_restore into a new database on the provisioning target's primary.\n\n" +
        "Examples:\n  tandem restore n3-20261207T030000Z --data-dir /var/lib/tandem\n" +
        "  tandem restore shop-20261207T030000Z --database shop_restored",
    )
    .action(
      (
        backup: string,
        options: {
          dataDir?: string;
          database?: string;
          target?: string;
          provisionTarget?: string;
          config?: string;
        },
      ) =>
        guarded("restore", async () => {
          if ((options.dataDir === undefined) === (options.database === undefined)) {
            throw new Error("give --data-dir (a node's backup) or --database (a database's backup)");
          }
          const loaded = loadConfig(configPathFrom(options.config));
          if (!loaded.ok) throw new Error(loaded.error.format());
          const blob = loaded.value.blob;
          if (blob === null)
            throw new Error("the config has no blob section: it names the stores backups are in");
          const target = oneOf(blob.backups.targets, options.target, "--target", "blob.backups.targets");
          const owner = /^(.+)-\d{8}T\d{6}Z$/.exec(backup)?.[1];
          if (owner === undefined)
            throw new Error(`expected a backup id like n3-20261207T030000Z, got ${backup}`);
          const blobModule = await import("../../blob/index.ts");
          const { readAgeKeyFile } = await import("../../journal/index.ts");
          const key = await readAgeKeyFile(blob.keyFile);
          const stores = new blobModule.BlobStores(blob.stores);
          const bar = new ProgressBar();
          try {
            const store = await stores.get(target.store);
            if (options.database !== undefined) {
              const provision = loaded.value.provision;
              if (provision === null)
                throw new Error("the config has no provision section: it names the primary");
              const into = oneOf(
                provision.targets,
                options.provisionTarget,
                "--provision-target",
                "provision.targets",
              );
              const objectKey = blobModule.databaseBackupKey(target.prefix, owner, backup);
              if ((await store.stat(objectKey)) === null)
                throw new Error(`no backup ${objectKey} in ${store.name}`);
              const { restoreInto } = await import("../../provision/index.ts");
              const { readSecretFrom } = await import("../../shell/index.ts");
              const source = into.primary.password;
              const password = source === null ? undefined : await readSecretFrom(source, "password");
              const sealed = await store.get(objectKey);
              const plain = blobModule.ageDecryptStream([key.identity]);
              sealed.on("error", (error) => plain.destroy(error));
              await restoreInto(
                { name: "primary", url: into.primary.url, ...(password === undefined ? {} : { password }) },
                options.database,
                sealed.pipe(plain),
              );
              process.stdout.write(
                `restored ${backup} into the new database ${options.database} on ${into.name}'s primary\n`,
              );
              return;
            }
            const dataDir = options.dataDir as string;
            const manifest = await blobModule.restoreBackup({
              store,
              key: blobModule.backupKey(target.prefix, owner, backup),
              identities: [key.identity],
              dataDir,
              onProgress: (done, total) => bar.update("restore", done, total),
            });
            bar.done();
            const keys = manifest.files.some((f) => f.name.startsWith("keys/"));
            process.stdout.write(
              `restored ${backup} (node ${manifest.node}, taken ${manifest.createdAt}) into ${dataDir}\n` +
                (keys
                  ? `key material: ${dataDir}/${blobModule.RESTORED_KEYS_DIR}/ (move it where tandem.yml expects it)\n`
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

/** The one named, or the only one when none is named. */
function oneOf<T extends { name: string }>(
  all: readonly T[],
  name: string | undefined,
  flag: string,
  where: string,
): T {
  const found =
    name === undefined ? (all.length === 1 ? all[0] : undefined) : all.find((t) => t.name === name);
  if (found === undefined) {
    throw new Error(
      name === undefined
        ? `name one (${flag}): ${all.map((t) => t.name).join(", ") || "none configured"}`
        : `no ${name} in ${where}`,
    );
  }
  return found;
}
