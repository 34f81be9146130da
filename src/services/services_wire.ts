// Messages on the mesh channel "services": every node reports its runners to the leader (once a second and
// at each change), and the leader sends every node the table its placement made (the same way). One-way
// messages: a lost one is replaced by the next. JSON, schema-checked on receipt.
import { z } from "zod";
import { nodeIdPattern, serviceNamePattern } from "../core/types.ts";

export const SERVICES_CHANNEL = "services";
/** Requests to the leader: an operator's move, drain or undrain, made on whichever node was asked. */
export const SERVICES_CONTROL_CHANNEL = "services-control";

const serviceName = z.string().regex(serviceNamePattern);
const nodeId = z.string().regex(nodeIdPattern);
const runnerState = z.enum(["stopped", "starting", "running", "stopping", "failed", "stop-failed"]);
const text = z.string().max(2000);

const runnerReport = z.strictObject({
  state: runnerState,
  fence: z.string().max(40).nullable(),
  sinceMs: z.number(),
  detail: text,
  /** Absent from agents before health checks: healthy. */
  healthy: z.boolean().default(true),
});

const tableEntry = z.strictObject({
  owner: nodeId.nullable(),
  /** The placement code (src/core/placement.ts) and the sentence for operators. */
  code: z.string().max(40),
  reason: text,
  /** What the owner last reported, if it did. */
  report: runnerReport.nullable(),
  /** The restore window it last moved home in: a later leader does not move it home again in it. */
  failbackIn: z.string().max(200).nullable().default(null),
});

export const servicesMessageSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("report"),
    /** Every service this node's config names, with its runner's state. */
    services: z.record(serviceName, runnerReport),
  }),
  z.strictObject({
    kind: z.literal("table"),
    term: z.number().int().min(0),
    services: z.record(serviceName, tableEntry),
    /** Nodes an operator drained: they hand their services on and take none. */
    drained: z.array(nodeId).default([]),
  }),
]);

export const operatorCommandSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("move"), service: serviceName, node: nodeId }),
  z.strictObject({ kind: z.literal("drain"), node: nodeId }),
  z.strictObject({ kind: z.literal("undrain"), node: nodeId }),
]);

export const commandAnswerSchema = z.union([
  z.strictObject({ ok: z.literal(true) }),
  z.strictObject({
    ok: z.literal(false),
    reason: text,
    notFound: z.boolean().optional(),
    /** No leader could take it (none, or leadership moved): nothing was done, a retry is safe. */
    unavailable: z.boolean().optional(),
  }),
]);
export type CommandAnswer = z.infer<typeof commandAnswerSchema>;

/** Calls to where a service runs: one of its actions, or its output lines; answered by the owner. */
export const SERVICES_CALL_CHANNEL = "services-call";

export const serviceCallSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("action"),
    service: serviceName,
    action: serviceName,
    args: z.array(z.string().max(4096)).max(64),
  }),
  z.strictObject({ kind: z.literal("logs"), service: serviceName, after: z.number().int().min(0) }),
]);
export type ServiceCall = z.infer<typeof serviceCallSchema>;

const outputText = z.string().max(8192);
const actionOutcome = z.strictObject({
  fence: z.string().max(40),
  exitCode: z.number().int().nullable(),
  signal: z.string().max(20).nullable(),
  timedOut: z.boolean(),
  error: text.nullable(),
  durationMs: z.number(),
  stdout: outputText,
  stderr: outputText,
});
const logLine = z.strictObject({
  seq: z.number().int(),
  time: z.string().max(40),
  source: z.string().max(80),
  stream: z.enum(["stdout", "stderr", "tandem"]),
  text: outputText,
});

export const serviceCallAnswerSchema = z.union([
  z.strictObject({ ok: z.literal(true), node: nodeId, action: actionOutcome }),
  z.strictObject({
    ok: z.literal(true),
    node: nodeId,
    logs: z.strictObject({ lines: z.array(logLine).max(1000), next: z.number().int() }),
  }),
  z.strictObject({
    ok: z.literal(false),
    reason: text,
    /** The service no longer runs where the call went; `owner` is where that node's table says it does. */
    moved: z.strictObject({ owner: nodeId.nullable() }).optional(),
    notFound: z.boolean().optional(),
    unavailable: z.boolean().optional(),
  }),
]);
export type ServiceCallAnswer = z.infer<typeof serviceCallAnswerSchema>;
export type OperatorCommand = z.infer<typeof operatorCommandSchema>;
export type ServicesMessage = z.infer<typeof servicesMessageSchema>;
export type ServiceTableEntry = z.infer<typeof tableEntry>;
export type WireRunnerReport = z.infer<typeof runnerReport>;
