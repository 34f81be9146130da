// The store bench's client inside one agent's network namespace, where that agent's API listens on
// loopback: bench/store_partition.ts spawns one per namespace (NetnsLab.spawn) and sends it one JSON line
// per command on stdin; it answers one JSON line each on stdout. Ops: the agent's status, a batch of
// patterned values written with min_acks=1, a store watch that counts the paths it delivers, the digest of a
// prefix's listing (paths and versions), and whether the listing has that digest.
//
//   node bench/store_partition_driver.ts API_URL
import { createHash } from "node:crypto";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { sseEvents } from "../src/cli/store_client.ts";
import { patternValue } from "./store_workloads.ts";

export type DriverCommand =
  | { op: "status" }
  | { op: "write"; prefix: string; first: number; count: number; valueBytes: number }
  | { op: "watch"; prefix: string }
  | { op: "digest"; prefix: string; limit: number }
  | { op: "identical"; prefix: string; entries: number; digest: string };

export interface DriverRequest {
  id: number;
  command: DriverCommand;
}

export interface DriverReply {
  id: number;
  result?: unknown;
  error?: string;
}

const statusTimeoutMs = 1_000;
const requestTimeoutMs = 30_000;

const apiUrl = process.argv[2];
if (apiUrl === undefined) throw new Error("usage: store_partition_driver.ts API_URL");
/** Paths the watch delivered; the watch may end (an `overflow` when it fell behind), then it gates nothing. */
const arrived = new Set<string>();
let watchOpen = false;

async function status(): Promise<unknown> {
  const response = await fetch(`${apiUrl}/api/v1/status`, { signal: AbortSignal.timeout(statusTimeoutMs) });
  return response.ok ? response.json() : null;
}

async function write(prefix: string, first: number, count: number, valueBytes: number): Promise<number> {
  const writes = Array.from({ length: count }, (_, i) => ({
    path: `${prefix}${first + i}`,
    value: Buffer.from(patternValue(valueBytes, first + i)).toString("base64"),
  }));
  const response = await fetch(`${apiUrl}/api/v1/store`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ writes, minAcks: 1 }),
    signal: AbortSignal.timeout(requestTimeoutMs),
  });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`batch answered ${response.status}: ${body.slice(0, 200)}`);
  return count;
}

/** Resolves once the watch is open; its events are then read in the background. */
async function watch(prefix: string): Promise<void> {
  const url = `${apiUrl}/api/v1/store-watch?prefix=${encodeURIComponent(prefix)}`;
  const response = await fetch(url, { headers: { accept: "text/event-stream" } });
  if (response.status !== 200 || response.body === null) throw new Error(`watch answered ${response.status}`);
  watchOpen = true;
  void readEvents(Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>)).finally(() => {
    watchOpen = false;
  });
}

async function readEvents(body: Readable): Promise<void> {
  for await (const event of sseEvents(body)) {
    if (event.event === "change" && event.data !== undefined) {
      arrived.add((JSON.parse(event.data) as { path: string }).path);
    }
  }
}

/** sha256 of the listing's [path, version] pairs: equal digests mean the same writes (a version names one). */
async function digest(prefix: string, limit: number): Promise<string> {
  const url = `${apiUrl}/api/v1/store?prefix=${encodeURIComponent(prefix)}&limit=${limit}`;
  const response = await fetch(url, { signal: AbortSignal.timeout(requestTimeoutMs) });
  if (response.status !== 200) throw new Error(`listing answered ${response.status}`);
  const page = (await response.json()) as { entries: Array<{ path: string; version: unknown }> };
  const pairs = JSON.stringify(page.entries.map((e) => [e.path, e.version]));
  return createHash("sha256").update(pairs).digest("hex");
}

/** Listing 10,000 entries costs the agent tens of ms: only asked for once the watch says it can match. */
async function identical(prefix: string, entries: number, expected: string): Promise<boolean> {
  if (watchOpen && arrived.size < entries) return false;
  return (await digest(prefix, entries)) === expected;
}

function execute(command: DriverCommand): Promise<unknown> {
  switch (command.op) {
    case "status":
      return status();
    case "write":
      return write(command.prefix, command.first, command.count, command.valueBytes);
    case "watch":
      return watch(command.prefix);
    case "digest":
      return digest(command.prefix, command.limit);
    case "identical":
      return identical(command.prefix, command.entries, command.digest);
  }
}

const reply = (answer: DriverReply) => process.stdout.write(`${JSON.stringify(answer)}\n`);
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const { id, command } = JSON.parse(line) as DriverRequest;
  execute(command).then(
    (result) => reply({ id, result: result ?? null }),
    (error: unknown) => reply({ id, error: String(error) }),
  );
});
lines.on("close", () => process.exit(0));
