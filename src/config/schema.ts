// The shape of tandem.yml, as written (snake_case). Field-level rules live here so that the JSON Schema
// shows them; rules across fields are in tandem_config.ts. Strict objects: an unknown key is an error.
import { z } from "zod";
import { nodeIdPattern } from "../core/types.ts";
import { hostPortPattern, parseHostPort } from "./address.ts";
import { blobSchema } from "./blob_schema.ts";
import { journalSchema } from "./journal_schema.ts";
import { provisionSchema } from "./provision_schema.ts";
import { regexSource } from "./regex_source.ts";
import { serviceSchema } from "./services_schema.ts";
import { storeDefaults, storeSchema } from "./store_schema.ts";
import { TimingsPreset } from "./timings.ts";

export { nodeIdPattern };

const envNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;
const durationMsMax = 600_000;
const prioritiesMax = 1000;

export const NodeRole = { Member: "member", Witness: "witness" } as const;
export type NodeRole = (typeof NodeRole)[keyof typeof NodeRole];

export const LogLevel = {
  Trace: "trace",
  Debug: "debug",
  Info: "info",
  Warn: "warn",
  Error: "error",
} as const;
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];

const nodeId = z.string().regex(nodeIdPattern, {
  error: "expected 1-63 characters of a-z 0-9 . _ - starting with a letter or digit",
});

const address = z
  .string()
  .superRefine((text, ctx) => {
    const parsed = parseHostPort(text);
    if (!parsed.ok) ctx.addIssue({ code: "custom", message: parsed.reason });
  })
  .meta({ pattern: hostPortPattern });

const role = z.enum([NodeRole.Member, NodeRole.Witness]);
const priority = z.int().min(0).max(prioritiesMax);
const filePath = z.string().min(1);

const durationMs = z.int().min(1).max(durationMsMax);

export const peerSchema = z
  .strictObject({
    id: nodeId,
    address: address.describe("host:port this node dials"),
    role: role.default("member"),
    priority: priority.default(100),
  })
  .describe("Another node of the cluster");

const mtlsSchema = z.strictObject({
  mode: z.literal("mtls"),
  ca_file: filePath.optional().describe("Cluster CA certificate; default tls/ca.pem"),
  cert_file: filePath.optional().describe("This node's certificate, CN = node id; default tls/<id>.pem"),
  key_file: filePath.optional().describe("This node's private key; default tls/<id>-key.pem"),
});

const pskSchema = z.strictObject({
  mode: z.literal("psk"),
  psk_file: filePath.optional().describe("File holding the shared key as hex (>= 32 bytes)"),
  psk_env: z
    .string()
    .regex(envNamePattern, { error: "expected an environment variable name" })
    .optional()
    .describe("Environment variable holding the shared key as hex (>= 32 bytes)"),
});

export const timingsSchema = z.strictObject({
  preset: z
    .enum([TimingsPreset.Lan, TimingsPreset.Fast, TimingsPreset.Wan, TimingsPreset.Local])
    .default("lan"),
  tick_ms: z.int().min(1).max(1000).optional(),
  heartbeat_interval_ms: durationMs.optional(),
  suspect_after_missed: z.int().min(1).max(100).optional(),
  down_after_ms: durationMs.optional(),
  election_timeout_ms: durationMs.optional(),
  leader_heartbeat_ms: durationMs.optional(),
  lease_ms: durationMs.optional(),
});

export const aclRuleSchema = z.strictObject({
  path: regexSource.describe("Regular expression tested against the request path"),
  cn: regexSource.describe(
    "Regular expression tested against the client's certificate CN, PSK identity or token:<token name>",
  ),
});

export const configFileSchema = z
  .strictObject({
    cluster_name: z
      .string()
      .regex(nodeIdPattern, {
        error: "expected 1-63 characters of a-z 0-9 . _ - starting with a letter or digit",
      })
      .default("tandem")
      .describe("Peers with another cluster name are refused"),
    node: z.strictObject({
      id: nodeId.describe("This node's stable id; also its certificate CN and PSK identity"),
      role: role.default("member").describe("member: may lead and run services; witness: votes only"),
      priority: priority.default(100).describe("Higher leads when healthy"),
    }),
    listen: address.describe("Mesh and TLS API: host:port to bind"),
    advertise: address.optional().describe("host:port peers dial; required when listen binds 0.0.0.0 or ::"),
    api: z
      .strictObject({
        listen: address
          .nullable()
          .default("127.0.0.1:7401")
          .describe("Plain-HTTP API, loopback only; null disables"),
        tokens_file: filePath
          .optional()
          .describe(
            "API bearer tokens (SHA-256 only), made by `tandem token create`; re-read when it changes",
          ),
        inflight_max: z
          .int()
          .min(1)
          .max(100_000)
          .default(256)
          .describe("API requests served at once, both listeners together; beyond: HTTP 429"),
      })
      .default({ listen: "127.0.0.1:7401", inflight_max: 256 }),
    data_dir: filePath.default("data").describe("State directory; relative to the config file's folder"),
    peers: z.array(peerSchema).default([]).describe("Every other node of the cluster"),
    security: z
      .discriminatedUnion("mode", [mtlsSchema, pskSchema])
      .default({ mode: "mtls" })
      .describe("How links and TLS API clients authenticate"),
    acl: z
      .array(aclRuleSchema)
      .optional()
      .describe(
        "TLS API rules, first match wins; default: /api/internal/ for peers, the rest for any client",
      ),
    timings: timingsSchema.default({ preset: "lan" }),
    store: storeSchema.default(storeDefaults).describe("The replicated store"),
    services: z
      .array(serviceSchema)
      .default([])
      .describe("Services that run on exactly one node and fail over (docs/services.md)"),
    journal: journalSchema
      .optional()
      .describe("Record actions on any node and apply them on every other (docs/journal.md); absent: off"),
    blob: blobSchema
      .optional()
      .describe("Encrypted object stores, offload of journal files and backups (docs/blob.md); absent: off"),
    provision: provisionSchema
      .optional()
      .describe("Keep database replicas complete, run by the leader (docs/provision.md); absent: off"),
    log: z
      .strictObject({
        level: z
          .enum([LogLevel.Trace, LogLevel.Debug, LogLevel.Info, LogLevel.Warn, LogLevel.Error])
          .default("info"),
      })
      .default({ level: "info" }),
  })
  .meta({ title: "tandem.yml", description: "Tandem node configuration" });

export type ConfigFile = z.output<typeof configFileSchema>;
