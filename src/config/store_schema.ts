// The `store:` section of tandem.yml: replication, limits, and where (if anywhere) the store is
// materialised as plain files. Field rules here; the cross-field rules are in tandem_config.ts.
import { z } from "zod";

const octalMode = z
  .string()
  .regex(/^0?[0-7]{3}$/, { error: 'expected an octal file mode as a string, e.g. "0644"' });

export const hookSchema = z.strictObject({
  prefix: z.string().default("").describe('Run when a path under this prefix changed; "" = any'),
  command: z
    .array(z.string().min(1))
    .min(1)
    .describe("argv, run without a shell, e.g. [systemctl, reload, nginx]"),
  debounce_ms: z
    .int()
    .min(0)
    .max(600_000)
    .default(500)
    .describe("Changes within this window run the hook once"),
  timeout_ms: z.int().min(1).max(3_600_000).default(30_000).describe("The hook is killed after this long"),
});

export const materialiseSchema = z.strictObject({
  dir: z
    .string()
    .min(1)
    .describe("Directory the store is written under; relative to the config file's folder"),
  prefix: z.string().default("").describe('Only paths under this prefix are written; "" = all'),
  file_mode: octalMode.default("0644"),
  dir_mode: octalMode.default("0755"),
  uid: z.int().min(0).optional().describe("chown files to this numeric user id"),
  gid: z.int().min(0).optional().describe("chown files to this numeric group id"),
  hooks: z.array(hookSchema).default([]),
});

export const storeSchema = z.strictObject({
  read_only: z.boolean().default(false).describe("Serve and materialise the store, refuse writes"),
  min_acks: z
    .union([z.int().min(0), z.literal("all")])
    .optional()
    .describe(
      "Peers that must hold a write durably before it is acknowledged (per request overridable); default 1, or 0 without peers",
    ),
  write_timeout_ms: z.int().min(1).max(600_000).default(2_000),
  anti_entropy_interval_ms: z
    .int()
    .min(10)
    .max(3_600_000)
    .default(5_000)
    .describe(
      "Periodic repair (pull from one peer per interval, in turn); a link coming up starts a round at once, so this only bounds how long a lost apply waits",
    ),
  tombstone_horizon_ms: z
    .int()
    .min(60_000)
    .default(7 * 24 * 3_600_000)
    .describe("Deletes are remembered this long, so a node away for less catches up on them"),
  value_bytes_max: z
    .int()
    .min(1)
    .max(64 * 1024 * 1024)
    .default(4 * 1024 * 1024),
  materialise: materialiseSchema.optional(),
});

export type StoreFile = z.output<typeof storeSchema>;

export const storeDefaults: StoreFile = storeSchema.parse({});
