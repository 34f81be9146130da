// The `provision:` section of tandem.yml (docs/provision.md): targets, each a primary and its replicas, that
// the cluster's leader keeps complete (every database created, its schema copied, replication running
// under a follower role). Passwords come from files or environment variables, never from the URLs here.
import { resolve } from "node:path";
import { z } from "zod";
import type { SecretSource } from "./blob_schema.ts";
import { duration, parseDurationMs } from "./services_schema.ts";
import type { FieldProblem } from "./tandem_config.ts";

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "expected an environment variable name" });
const name = z.string().regex(/^[a-z0-9][a-z0-9_]{0,30}$/, {
  error: "expected a-z 0-9 _, up to 31, starting with a letter or digit",
});

const server = z.strictObject({
  url: z
    .string()
    .regex(/^postgres(ql)?:\/\/[^:@/]+@[^@/]+(\/[^/?]*)?(\?.*)?$/, {
      error:
        "expected postgres://USER@HOST:PORT[/DATABASE] (no password here: password_file or password_env)",
    })
    .describe("Where to connect, as which user (a superuser, or one allowed to create databases and roles)"),
  password_file: z.string().min(1).optional(),
  password_env: envName.optional(),
});

const target = z.strictObject({
  engine: z.literal("postgres").default("postgres"),
  primary: server.describe("The primary: the source of every database"),
  replicas: z
    .array(server.extend({ name: name.describe("How status and slot names call this replica") }))
    .min(1)
    .describe("The servers kept complete"),
  mode: z
    .enum(["async", "sync", "auto"])
    .default("async")
    .describe(
      "sync: the primary waits for the replicas (synchronous_standby_names); auto: as the primary has it",
    ),
  interval: duration.default("10s").describe("How often the leader runs a pass"),
  include: z
    .array(z.string().min(1))
    .default(["*"])
    .describe("Database name patterns (* and ?) to replicate"),
  exclude: z.array(z.string().min(1)).default([]).describe("Database name patterns never replicated"),
  follower: z
    .strictObject({
      role: z
        .string()
        .regex(/^[a-z_][a-z0-9_]{0,62}$/)
        .default("tandem_follower"),
      password_file: z.string().min(1).optional(),
      password_env: envName.optional(),
    })
    .describe("The least-privilege role subscriptions connect as (created on the primary)"),
});

export const provisionSchema = z.strictObject({
  targets: z
    .record(name, target)
    .refine((targets) => Object.keys(targets).length > 0, { error: "name at least one target" }),
});

export type ProvisionFile = z.output<typeof provisionSchema>;

export interface ProvisionServerConfig {
  url: string;
  password: SecretSource | null;
}

export interface ProvisionTargetConfig {
  name: string;
  engine: "postgres";
  primary: ProvisionServerConfig;
  replicas: Array<ProvisionServerConfig & { name: string }>;
  mode: "async" | "sync" | "auto";
  intervalMs: number;
  include: string[];
  exclude: string[];
  follower: { role: string; password: SecretSource };
}

export interface ProvisionConfig {
  targets: ProvisionTargetConfig[];
}

export function resolveProvision(
  p: ProvisionFile,
  baseDir: string,
  problems: FieldProblem[],
): ProvisionConfig {
  const targets = Object.entries(p.targets).map(([targetName, t]) => {
    const at = (...path: PropertyKey[]) => ["provision", "targets", targetName, ...path];
    const secret = (
      s: { password_file?: string | undefined; password_env?: string | undefined },
      path: PropertyKey[],
      required: boolean,
    ): SecretSource | null => {
      if (s.password_file !== undefined && s.password_env !== undefined) {
        problems.push({
          path: [...path, "password_env"],
          message: "give password_file or password_env, not both",
        });
      }
      if (s.password_file !== undefined) return { file: resolve(baseDir, s.password_file) };
      if (s.password_env !== undefined) return { env: s.password_env };
      if (required)
        problems.push({
          path: [...path, "password_file"],
          message: "required: the follower's password (password_file or password_env)",
        });
      return null;
    };
    const names = new Set<string>();
    t.replicas.forEach((r, index) => {
      if (names.has(r.name))
        problems.push({ path: at("replicas", index, "name"), message: `two replicas named ${r.name}` });
      names.add(r.name);
    });
    return {
      name: targetName,
      engine: t.engine,
      primary: { url: t.primary.url, password: secret(t.primary, at("primary"), false) },
      replicas: t.replicas.map((r, index) => ({
        name: r.name,
        url: r.url,
        password: secret(r, at("replicas", index), false),
      })),
      mode: t.mode,
      intervalMs: parseDurationMs(t.interval),
      include: t.include,
      exclude: t.exclude,
      follower: { role: t.follower.role, password: secret(t.follower, at("follower"), true) ?? { env: "" } },
    };
  });
  return { targets };
}
