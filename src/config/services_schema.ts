// The `services:` section of tandem.yml: what runs on exactly one node, where it prefers to run, when it
// moves, how it is started and checked. Field rules here; rules across fields in tandem_config.ts.
import { Cron } from "croner";
import { z } from "zod";
import { nodeIdPattern, serviceNamePattern } from "../core/types.ts";
import { dnsDriverSchema } from "./dns_driver_schema.ts";
import { regexSource } from "./regex_source.ts";
import { vipDriverSchema } from "./vip_driver_schema.ts";

const nodeId = z.string().regex(nodeIdPattern, { error: "expected a node id" });
const argv = z
  .array(z.string().min(1))
  .min(1)
  .describe("argv, run without a shell, e.g. [systemctl, start, nginx]");

/** "90s", "15m", "2h" or "500ms"; a bare number is milliseconds. */
export const durationPattern = /^(\d+)(ms|s|m|h)$/;
const unitMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;

export function parseDurationMs(value: string | number): number {
  if (typeof value === "number") return value;
  const match = durationPattern.exec(value);
  if (match === null) throw new RangeError(`not a duration: ${value}`);
  return Number(match[1]) * unitMs[match[2] as keyof typeof unitMs];
}

export const duration = z
  .union([z.int().min(1), z.string().regex(durationPattern, { error: 'expected e.g. "90s", "15m" or "2h"' })])
  .describe('a duration: "90s", "15m", "2h", or milliseconds');

export const timeZone = z.string().superRefine((zone, ctx) => {
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
  } catch {
    ctx.addIssue({
      code: "custom",
      message: `unknown time zone "${zone}" (an IANA name, e.g. Europe/Berlin)`,
    });
  }
});

export const cronPattern = z
  .string()
  .min(1)
  .superRefine((pattern, ctx) => {
    try {
      new Cron(pattern, { paused: true });
    } catch (cause) {
      ctx.addIssue({ code: "custom", message: `not a cron pattern (${(cause as Error).message})` });
    }
  });

export const restoreWindowSchema = z
  .strictObject({
    cron: cronPattern.describe('When the window opens: a cron pattern, e.g. "0 2 * * *" (02:00 daily)'),
    length: duration.describe("How long it stays open"),
    timezone: timeZone.default("UTC").describe("IANA time zone of the cron pattern"),
  })
  .describe("While open, a preferred node that is back and healthy takes the service back, once per window");

const execDriverSchema = z
  .strictObject({
    type: z.literal("exec"),
    start: argv.describe("Starts the service; exit 0 means started"),
    stop: argv.describe("Stops the service; exit 0 means stopped"),
    status: argv.optional().describe("Exit 0: running here; anything else: not running"),
    timeout_ms: z
      .int()
      .min(1)
      .max(3_600_000)
      .default(30_000)
      .describe("Each command is killed after this long"),
  })
  .describe("Runs commands: start, stop, status");

export const driverSchema = z.discriminatedUnion("type", [
  execDriverSchema,
  vipDriverSchema,
  dnsDriverSchema,
]);

const healthUrl = z
  .url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" })
  .describe("GET this URL: a 2xx answer within timeout_ms is healthy");

export const healthSchema = z
  .strictObject({
    exec: argv.optional().describe("Run this: exit 0 within timeout_ms is healthy"),
    http: healthUrl.optional(),
    interval_ms: z.int().min(100).max(3_600_000).default(2_000).describe("How often it runs on the owner"),
    timeout_ms: z.int().min(1).max(600_000).default(1_000).describe("A check that takes longer failed"),
    failures: z
      .int()
      .min(1)
      .max(100)
      .default(3)
      .describe("Failures in a row before the service counts as unhealthy there and moves"),
  })
  .refine((h) => (h.exec === undefined) !== (h.http === undefined), {
    error: "give exactly one of exec or http",
  })
  .describe("Checks the service where it runs; a failing owner loses it like a dead one");

export const serviceSchema = z
  .strictObject({
    name: z.string().regex(serviceNamePattern, {
      error: "expected 1-63 characters of a-z 0-9 _ - starting with a letter or digit",
    }),
    description: z.string().max(500).default(""),
    nodes: z.array(nodeId).min(1).optional().describe("Nodes that may run it; default every member"),
    prefer: z.array(nodeId).default([]).describe("Home nodes, most preferred first"),
    failover: z
      .boolean()
      .default(true)
      .describe("false: when its owner is lost it stays down, and is reported"),
    failover_after_ms: z
      .int()
      .min(1)
      .max(3_600_000)
      .default(3_000)
      .describe("How long its owner may be unreachable before it moves; at least timings.down_after_ms"),
    restore_window: restoreWindowSchema.optional().describe("Absent: failback only by hand"),
    stop_must_succeed: z
      .boolean()
      .default(false)
      .describe("true: a failed stop keeps it from starting anywhere until a retried stop succeeds"),
    drivers: z.array(driverSchema).min(1).describe("Started in order, stopped in reverse"),
    health: healthSchema.optional().describe("Absent: a running service counts as healthy"),
    actions: z
      .record(
        z.string().regex(serviceNamePattern, { error: "expected 1-63 characters of a-z 0-9 _ -" }),
        z.strictObject({
          run: argv.describe("Run on the owner; the caller's arguments are appended"),
          timeout_ms: z.int().min(1).max(3_600_000).default(30_000).describe("Killed after this long"),
        }),
      )
      .default({})
      .describe("Named commands an admin may run where the service runs (tandem service action)"),
    admins: z
      .array(regexSource)
      .default([])
      .describe(
        "Identities (regular expressions, as the ACL's cn) that may move the service or run its actions; local operators always may",
      ),
  })
  .describe("A service that runs on exactly one node");

export type ServiceFile = z.output<typeof serviceSchema>;
