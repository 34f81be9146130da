// The `blob:` section of tandem.yml (docs/blob.md): named object stores (a directory, S3, SFTP), the age
// keys objects are encrypted to, and the journal's offload of attached files. Secrets (S3 keys, the SFTP
// private key) come from files or environment variables, never from this file. Absent: no blob stores.
import { dirname, isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { cronPattern, timeZone } from "./services_schema.ts";
import type { FieldProblem } from "./tandem_config.ts";

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "expected an environment variable name" });
const storeName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, {
  error: "expected a-z 0-9 _ -, up to 64, starting with a letter or digit",
});

const recipient = z.string().regex(/^age1[0-9a-z]+$/, { error: "expected an age public key (age1...)" });
const storeRecipients = z
  .array(recipient)
  .default([])
  .describe("Objects in this store are also encrypted to these (an offsite store's own recovery key)");

const localStore = z
  .strictObject({
    type: z.literal("local"),
    path: z.string().min(1).describe("The directory; relative to the config file's folder"),
    recipients: storeRecipients,
  })
  .describe("A directory on this node (a mounted disk or NAS)");

const s3Store = z
  .strictObject({
    type: z.literal("s3"),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { error: "expected an S3 bucket name" }),
    region: z.string().min(1).default("us-east-1"),
    endpoint: z
      .url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" })
      .optional()
      .describe("An S3-compatible endpoint (MinIO, Ceph, ...); default AWS"),
    path_style: z.boolean().default(false).describe("Bucket in the path, not the host name (most non-AWS)"),
    prefix: z
      .string()
      .regex(/^([A-Za-z0-9_-][A-Za-z0-9._-]*\/)*$/, { error: "expected folder names each ending in /" })
      .default("")
      .describe("Where in the bucket, e.g. tandem/"),
    access_key_id_file: z.string().min(1).optional(),
    access_key_id_env: envName.optional(),
    secret_access_key_file: z.string().min(1).optional(),
    secret_access_key_env: envName.optional(),
    recipients: storeRecipients,
  })
  .describe("An S3 bucket (multipart uploads for large objects)");

const sftpStore = z
  .strictObject({
    type: z.literal("sftp"),
    host: z.string().min(1),
    port: z.int().min(1).max(65_535).default(22),
    username: z.string().min(1),
    private_key_file: z.string().min(1).describe("The client's private key (OpenSSH format), unencrypted"),
    host_key: z
      .string()
      .regex(/^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,2}$/, {
        error:
          "expected the server's public key as `ssh-keyscan -t ed25519 HOST` prints it, without the host",
      })
      .describe("The server's host key, pinned: any other key is refused"),
    path: z.string().min(1).describe("The remote directory objects go under (created if missing)"),
    recipients: storeRecipients,
  })
  .describe("An SFTP server (OpenSSH); key authentication, host key pinned");

const keep = z
  .strictObject({
    last: z.int().min(0).max(10_000).default(7).describe("The newest N"),
    daily: z.int().min(0).max(10_000).default(7).describe("The newest of each of the last N days (UTC)"),
    weekly: z.int().min(0).max(10_000).default(4).describe("The newest of each of the last N ISO weeks"),
  })
  .refine((k) => k.last + k.daily + k.weekly > 0, { error: "keep at least one backup" });

const backups = z.strictObject({
  targets: z
    .record(
      storeName,
      z.strictObject({
        store: storeName.describe("The blob store backups go to"),
        prefix: z
          .string()
          .regex(/^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/, {
            error: "expected folder names joined by /",
          })
          .default("backups")
          .describe("The folder in the store; each node's backups go under PREFIX/NODE/"),
      }),
    )
    .describe("Where backups may go, by name: an API call or a schedule names one of these, never a path"),
  schedules: z
    .array(
      z.strictObject({
        target: storeName,
        cron: cronPattern.describe('When: a cron pattern, e.g. "0 3 * * *" (03:00 daily)'),
        timezone: timeZone.default("UTC").describe("IANA time zone of the cron pattern"),
        keep: keep.default({ last: 7, daily: 7, weekly: 4 }).describe("Which of this node's backups to keep"),
        with_keys: z.boolean().default(false).describe("Include key material (the age key, TLS keys)"),
        databases: z
          .array(z.string().min(1))
          .min(1)
          .optional()
          .describe(
            "Back up these databases of provisioning (patterns with * and ?) instead of the node's state",
          ),
      }),
    )
    .default([]),
});

export const blobSchema = z.strictObject({
  stores: z
    .record(storeName, z.discriminatedUnion("type", [localStore, s3Store, sftpStore]))
    .refine((stores) => Object.keys(stores).length > 0, { error: "name at least one store" })
    .describe("Object stores by name"),
  key_file: z
    .string()
    .min(1)
    .optional()
    .describe("The age key objects are encrypted to and read with; default journal.key_file"),
  recipients: z
    .array(recipient)
    .default([])
    .describe("More public keys every object is also encrypted to (an offline recovery key)"),
  offload: z
    .strictObject({
      store: storeName.describe("The store attached files go to"),
      dirs: z
        .array(z.string().min(1))
        .min(1)
        .describe("Attached files are offloaded only from under these folders (and deleted there after)"),
      types: z.array(z.string().min(1)).optional().describe("Only entries of these types; default every one"),
      keep_local: z.boolean().default(false).describe("Keep the local file after the upload is verified"),
    })
    .optional()
    .describe("Upload the files journal entries carry, once shipped; absent: off"),
  backups: backups.optional().describe("Backups of this node's state (docs/blob.md); absent: none"),
  records_prefix: z
    .string()
    .regex(/^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/)
    .default("tandem/blobs")
    .describe("Where in the replicated store each offloaded file's location is recorded"),
});

export type BlobFile = z.output<typeof blobSchema>;

/** A secret's source: a file (absolute) or an environment variable. */
export type SecretSource = { file: string } | { env: string };

export type BlobStoreConfig = (
  | { type: "local"; name: string; path: string }
  | {
      type: "s3";
      name: string;
      bucket: string;
      region: string;
      endpoint: string | null;
      pathStyle: boolean;
      prefix: string;
      accessKeyId: SecretSource;
      secretAccessKey: SecretSource;
    }
  | {
      type: "sftp";
      name: string;
      host: string;
      port: number;
      username: string;
      privateKeyFile: string;
      hostKey: string;
      path: string;
    }
) & {
  /** Also encrypted to these, in this store. */
  recipients: string[];
};

export interface BackupTargetConfig {
  name: string;
  store: string;
  prefix: string;
}

export interface BackupScheduleConfig {
  target: string;
  cron: string;
  timezone: string;
  keep: { last: number; daily: number; weekly: number };
  withKeys: boolean;
  /** Database patterns: a schedule of provisioning's database backups; null: this node's state. */
  databases: string[] | null;
}

export interface BlobConfig {
  stores: BlobStoreConfig[];
  backups: { targets: BackupTargetConfig[]; schedules: BackupScheduleConfig[] };
  /** Absolute: the files a backup with keys holds (the age key, this node's TLS key, certificate and CA). */
  keyMaterial: string[];
  /** Absolute: the age identity file. */
  keyFile: string;
  recipients: string[];
  offload: { store: string; dirs: string[]; types: string[] | null; keepLocal: boolean } | null;
  recordsPrefix: string;
}

/** The blob section checked across fields; `journalKeyFile` is journal.key_file (absolute) if any. */
export function resolveBlob(
  b: BlobFile,
  baseDir: string,
  journalKeyFile: string | null,
  securityFiles: readonly string[],
  problems: FieldProblem[],
): BlobConfig {
  const stores = Object.entries(b.stores).map(([name, s]) => resolveStore(name, s, baseDir, problems));
  const keyFile = b.key_file === undefined ? journalKeyFile : resolve(baseDir, b.key_file);
  if (keyFile === null) {
    problems.push({
      path: ["blob", "key_file"],
      message: "required without a journal section (its key_file)",
    });
  }
  let offload: BlobConfig["offload"] = null;
  if (b.offload !== undefined) {
    if (journalKeyFile === null) {
      problems.push({
        path: ["blob", "offload"],
        message: "offloads journal entries' files: needs a journal section",
        keyOfLast: true,
      });
    }
    if (!(b.offload.store in b.stores)) {
      problems.push({
        path: ["blob", "offload", "store"],
        message: `no store named ${b.offload.store} in blob.stores`,
      });
    }
    b.offload.dirs.forEach((dir, index) => {
      if (!isAbsolute(dir) || resolve(dir) === dirname(resolve(dir))) {
        problems.push({
          path: ["blob", "offload", "dirs", index],
          message: "expected an absolute folder, not the root",
        });
      }
    });
    offload = {
      store: b.offload.store,
      dirs: b.offload.dirs.map((dir) => resolve(dir)),
      types: b.offload.types ?? null,
      keepLocal: b.offload.keep_local,
    };
  }
  return {
    stores,
    backups: resolveBackups(b, problems),
    keyMaterial: [...new Set([...(keyFile === null ? [] : [keyFile]), ...securityFiles])],
    keyFile: keyFile ?? "",
    recipients: b.recipients,
    offload,
    recordsPrefix: b.records_prefix,
  };
}

function resolveBackups(b: BlobFile, problems: FieldProblem[]): BlobConfig["backups"] {
  const targets = Object.entries(b.backups?.targets ?? {}).map(([name, t]) => {
    if (!(t.store in b.stores)) {
      problems.push({
        path: ["blob", "backups", "targets", name, "store"],
        message: `no store named ${t.store} in blob.stores`,
      });
    }
    return { name, store: t.store, prefix: t.prefix };
  });
  const schedules = (b.backups?.schedules ?? []).map((s, index) => {
    if (!targets.some((t) => t.name === s.target)) {
      problems.push({
        path: ["blob", "backups", "schedules", index, "target"],
        message: `no target named ${s.target} in blob.backups.targets`,
      });
    }
    return {
      target: s.target,
      cron: s.cron,
      timezone: s.timezone,
      keep: s.keep,
      withKeys: s.with_keys,
      databases: s.databases ?? null,
    };
  });
  return { targets, schedules };
}

function resolveStore(
  name: string,
  s: BlobFile["stores"][string],
  baseDir: string,
  problems: FieldProblem[],
): BlobStoreConfig {
  if (s.type === "local")
    return { type: "local", name, path: resolve(baseDir, s.path), recipients: s.recipients };
  if (s.type === "sftp") {
    return {
      type: "sftp",
      name,
      host: s.host,
      port: s.port,
      username: s.username,
      privateKeyFile: resolve(baseDir, s.private_key_file),
      hostKey: s.host_key,
      path: s.path,
      recipients: s.recipients,
    };
  }
  const secret = (file: string | undefined, env: string | undefined, field: string): SecretSource => {
    if ((file === undefined) === (env === undefined)) {
      problems.push({
        path: ["blob", "stores", name, `${field}_file`],
        message: `give ${field}_file or ${field}_env (one of them)`,
      });
    }
    return file !== undefined ? { file: resolve(baseDir, file) } : { env: env ?? "" };
  };
  return {
    type: "s3",
    name,
    bucket: s.bucket,
    region: s.region,
    endpoint: s.endpoint ?? null,
    pathStyle: s.path_style,
    prefix: s.prefix,
    accessKeyId: secret(s.access_key_id_file, s.access_key_id_env, "access_key_id"),
    secretAccessKey: secret(s.secret_access_key_file, s.secret_access_key_env, "secret_access_key"),
    recipients: s.recipients,
  };
}
