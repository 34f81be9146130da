// Fuzz of the store API as the agent serves it: the real router, store routes and loopback listener over a
// Replicator on SQLite (with one peer on the in-memory mesh). Random methods, targets (control characters,
// unicode, dot segments, percent-encoding, raw bytes, over-long URLs), queries, headers and bodies, sent as
// raw bytes. Every answer must be a 2xx or a typed JSON error below 500, the server must keep serving, and
// a refused request must change nothing. Seeded: a failure prints the seed and how to replay it.
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import { test } from "node:test";
import { pino } from "pino";
import { createApiRouter, startLocalApi } from "../../../src/api/index.ts";
import { storeRoutes } from "../../../src/api/store_routes.ts";
import type { Prng } from "../../../src/core/prng.ts";
import { validateStorePath } from "../../../src/core/store_path.ts";
import { Replicator } from "../../../src/store/replicator.ts";
import { SqliteLocalStore } from "../../../src/store/sqlite_store.ts";
import { fuzzCase, fuzzRun } from "../../support/fuzz.ts";
import { MemoryNetwork } from "../../support/memory_mesh.ts";

const testFile = "test/unit/api/store_fuzz.test.ts";
const valueBytesMax = 1024;
/** An answer takes milliseconds; this only turns a hang into a failure that names its seed. */
const answerDeadlineMs = 30_000;

interface Answer {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

/** One request, bytes exactly as given, on its own connection; the answer read until the server closes. */
function exchange(port: number, request: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${answerDeadlineMs} ms`));
    }, answerDeadlineMs);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    // The server may answer and close before it has read the whole body (413): the answer still counts.
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      const bytes = Buffer.concat(chunks);
      const end = bytes.indexOf("\r\n\r\n");
      if (end === -1) return reject(new Error(`no HTTP answer: ${JSON.stringify(bytes.toString("latin1"))}`));
      const [statusLine = "", ...lines] = bytes.subarray(0, end).toString("latin1").split("\r\n");
      const headers = new Map<string, string>();
      for (const line of lines) {
        const colon = line.indexOf(":");
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      const length = Number(headers.get("content-length") ?? Number.NaN);
      const rest = bytes.subarray(end + 4);
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine)?.[1] ?? 0),
        headers,
        body: Number.isFinite(length) ? rest.subarray(0, length) : rest,
      });
    });
    // No half-close: Node's server drops a request still in progress when its client ends the socket.
    socket.write(request);
  });
}

// --- generators ------------------------------------------------------------------------------------

const pathPieces = [
  ..."abz09-_ .",
  "..",
  "/",
  "/",
  "é",
  "日本",
  "😀",
  "\u0000",
  "\n",
  "\r",
  "\t",
  "\u001b",
  "\u007f",
  "\u0085",
  "\u009b",
  "\u00a0",
  "\u202e",
  "\u2066",
  "\u2028",
  "\u200d",
  "\\",
  "%",
  "?",
  "#",
  "+",
  "\ud800",
];

/** A store path as a client might mean it: often valid, often not. */
function randomPath(rng: Prng): string {
  if (rng.chance(0.03)) return `${"s/".repeat(rng.intBetween(10, 40))}x`;
  if (rng.chance(0.03)) return "y".repeat(rng.intBetween(250, 1100));
  const parts: string[] = [];
  const length = rng.intBetween(0, 8);
  for (let i = 0; i < length; i++)
    parts.push(rng.chance(0.75) ? rng.pick(["a", "b", "cfg/", "x.pem"]) : rng.pick(pathPieces));
  return parts.join("");
}

/** Percent-encodes a path for a URL: "/" mostly kept as the separator; a lone surrogate as its raw UTF-8. */
function encodePath(rng: Prng, path: string): string {
  return path
    .split("/")
    .map((segment) => {
      try {
        return encodeURIComponent(segment);
      } catch {
        return segment
          .replace(/[\ud800-\udfff]/g, "%ED%A0%80")
          .replace(/[^\ud800-\udfff]/g, (c) => encodeURIComponent(c));
      }
    })
    .join(rng.chance(0.05) ? "%2F" : "/");
}

function randomQuery(rng: Prng): string {
  const params: string[] = [];
  const candidates: Array<() => string> = [
    () => `min_acks=${rng.pick(["0", "1", "2", "all", "ALL", "-1", "x", "1.5", "99999", ""])}`,
    () => `raw=${rng.pick(["1", "0", "yes"])}`,
    () => `prefix=${encodePath(rng, randomPath(rng))}${rng.chance(0.3) ? "/" : ""}`,
    () => `limit=${rng.pick(["0", "1", "3", "10000", "10001", "abc", "1e3"])}`,
    () => `after=${encodePath(rng, randomPath(rng))}`,
    () => `values=${rng.pick(["1", "0"])}`,
    () => `hashes=1`,
    () => `${rng.pick(["x", "min_acks", "%00", "a%ZZ"])}=${rng.pick(["1", "%", "%E2%80%AE"])}`,
  ];
  const count = rng.intBetween(0, 3);
  for (let i = 0; i < count; i++) params.push(rng.pick(candidates)());
  return params.length === 0 ? "" : `?${params.join("&")}`;
}

function randomTarget(rng: Prng): string {
  const roll = rng.next();
  if (roll < 0.02) return `/api/v1/store/${"a/".repeat(rng.intBetween(9_000, 12_000))}a`; // over 16 KiB
  const path = randomPath(rng);
  // Raw: the path's characters unencoded in the request line (control bytes, spaces, UTF-8).
  const encoded = rng.chance(0.08) ? path : encodePath(rng, path);
  if (roll < 0.6) return `/api/v1/store/${encoded}${randomQuery(rng)}`;
  if (roll < 0.78) return `/api/v1/store${randomQuery(rng)}`;
  // An invalid from_seq: a watch that starts would stream until closed.
  if (roll < 0.82) return `/api/v1/store-watch?from_seq=x${rng.chance(0.5) ? `&prefix=${encoded}` : ""}`;
  if (roll < 0.86) return rng.pick(["/healthz", "/api/v1/status", "/api/internal/store", "/api/v1/store/"]);
  if (roll < 0.9) return `/api/v1/store/a/${rng.pick(["..", ".", "%2e%2e", "%2E"])}/${encoded}`;
  return `/${encoded}${randomQuery(rng)}`;
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

function randomBytes(rng: Prng, max: number): Buffer {
  const bytes = Buffer.alloc(rng.intBetween(0, max));
  for (let i = 0; i < bytes.length; i++) bytes[i] = rng.intBetween(0, 255);
  return bytes;
}

function randomValue(rng: Prng): unknown {
  return rng.pick<() => unknown>([
    () => b64(randomBytes(rng, 16)),
    () => null,
    () => b64(randomBytes(rng, valueBytesMax + 1 + rng.intBetween(0, 3))),
    () => "QUJ",
    () => "@@@@",
    () => 7,
    () => ({ a: 1 }),
    () => "",
  ])();
}

function randomBody(rng: Prng, method: string): Buffer {
  const roll = rng.next();
  if (roll < 0.25) return randomBytes(rng, 48);
  if (roll < 0.35) return Buffer.alloc(valueBytesMax + rng.intBetween(-2, 2), 0x61);
  if (roll < 0.5 && method === "PUT") {
    const body: Record<string, unknown> = { value: randomValue(rng) };
    if (rng.chance(0.1)) body.extra = 1;
    return Buffer.from(JSON.stringify(body));
  }
  if (roll < 0.9) {
    const writes = Array.from({ length: rng.intBetween(0, 4) }, () => {
      const write: Record<string, unknown> = { path: randomPath(rng), value: randomValue(rng) };
      if (rng.chance(0.05)) write.mode = "0777";
      if (rng.chance(0.05)) delete write.value;
      return write;
    });
    const body: Record<string, unknown> = { writes };
    if (rng.chance(0.3)) body.minAcks = rng.pick([0, 1, 2, "all", -1, 1.5, "most", 1000]);
    if (rng.chance(0.05)) body.admin = true;
    const text = JSON.stringify(rng.chance(0.05) ? [body] : body);
    return Buffer.from(rng.chance(0.05) ? text.slice(0, rng.intBetween(0, text.length)) : text);
  }
  return Buffer.alloc(0);
}

const contentTypes = [
  null,
  "application/json",
  "application/json; charset=utf-8",
  "application/octet-stream",
  "text/plain",
  "multipart/form-data; boundary=x",
  "\u0001garbage",
];

interface FuzzRequest {
  method: string;
  target: string;
  headers: Array<[string, string]>;
  body: Buffer;
  chunked: boolean;
}

function randomRequest(rng: Prng): FuzzRequest {
  const method = rng.chance(0.1)
    ? rng.pick(["HEAD", "PATCH", "OPTIONS", "FOO", "get"])
    : rng.pick(["GET", "GET", "PUT", "PUT", "PUT", "DELETE", "POST", "POST"]);
  const headers: Array<[string, string]> = [];
  const contentType = rng.pick(contentTypes);
  if (contentType !== null) headers.push(["Content-Type", contentType]);
  if (rng.chance(0.05))
    headers.push(["Authorization", rng.pick(["Bearer tdm_nope", "Basic YTpi", "Bearer", "Bearer a b"])]);
  if (rng.chance(0.05)) headers.push(["Last-Event-ID", rng.pick(["n1:1", "n2:x", "", "\u00ff"])]);
  if (rng.chance(0.05))
    headers.push([
      rng.pick(["X-Junk", "X-\u00e9", "Bad Header", "X"]),
      rng.pick(["1", "\u0007", "a".repeat(100)]),
    ]);
  if (rng.chance(0.02)) headers.push(["X-Big", "h".repeat(rng.intBetween(17_000, 20_000))]);
  const body =
    ["PUT", "POST", "PATCH"].includes(method) || rng.chance(0.1) ? randomBody(rng, method) : Buffer.alloc(0);
  return { method, target: randomTarget(rng), headers, body, chunked: body.length > 0 && rng.chance(0.15) };
}

function encodeRequest(request: FuzzRequest): Buffer {
  const lines = [`${request.method} ${request.target} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close"];
  for (const [name, value] of request.headers) lines.push(`${name}: ${value}`);
  let body = request.body;
  if (request.chunked) {
    lines.push("Transfer-Encoding: chunked");
    body = Buffer.concat([
      Buffer.from(`${body.length.toString(16)}\r\n`),
      body,
      Buffer.from("\r\n0\r\n\r\n"),
    ]);
  } else if (body.length > 0 || ["PUT", "POST"].includes(request.method)) {
    lines.push(`Content-Length: ${body.length}`);
  }
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "utf8"), body]);
}

function describe(request: FuzzRequest): string {
  const target =
    request.target.length > 200
      ? `${request.target.slice(0, 200)}...(${request.target.length})`
      : request.target;
  return JSON.stringify({ ...request, target, body: request.body.subarray(0, 200).toString("latin1") });
}

/** What the single-entry route will act on, if the path rules accept the URL tail; null otherwise. */
function entryPathOf(target: string): string | null {
  const match = /^\/api\/v1\/store\/([^?#]*)/.exec(target);
  if (match === null) return null;
  try {
    const checked = validateStorePath(decodeURIComponent(match[1] ?? ""));
    return checked.ok ? checked.path : null;
  } catch {
    return null;
  }
}

// --- the test --------------------------------------------------------------------------------------

test("store api fuzz: random requests get a 2xx or a typed JSON error, and refused ones change nothing", async (t) => {
  const run = fuzzRun("store-api-fuzz-1", 400);
  const logger = pino({ level: process.env.DEBUG_FUZZ ? "debug" : "silent" });
  const network = new MemoryNetwork();
  const ids = ["n1", "n2"];
  const nodes = ids.map((id) => {
    const store = SqliteLocalStore.open({ path: ":memory:", nodeId: id, valueBytesMax });
    const replicator = new Replicator({
      selfId: id,
      peers: ids.filter((p) => p !== id),
      readOnly: false,
      store,
      mesh: network.join(id),
      logger,
      writeTimeoutMs: 10_000,
      antiEntropyIntervalMs: 1_000,
      valueBytesMax,
    });
    return { store, replicator };
  });
  const [n1] = nodes;
  assert.ok(n1);
  const router = createApiRouter({
    nodeId: "n1",
    status: () => ({ node: "n1" }),
    acl: [],
    logger,
    routes: storeRoutes(n1.replicator, { nodeId: "n1", logger, valueBytesMax, minAcksDefault: 1 }),
  });
  const server = await startLocalApi("127.0.0.1", 0, router);
  for (const node of nodes) node.replicator.start();
  network.connectAll();
  t.after(async () => {
    for (const node of nodes) node.replicator.stop();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    network.close();
    for (const node of nodes) node.store.close();
  });
  const { port } = server.address() as AddressInfo;

  const statuses = new Map<number, number>();
  for (let index = 0; index < run.count; index++) {
    const request = randomRequest(run.rng);
    await fuzzCase(
      run,
      testFile,
      index,
      () => describe(request),
      async () => {
        const seqBefore = n1.store.lastSeq();
        const answer = await exchange(port, encodeRequest(request));
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        assert.ok(
          answer.status >= 200 && answer.status < 500,
          `status ${answer.status}: ${answer.body.toString()}`,
        );
        const changed = n1.store.lastSeq() !== seqBefore;
        if (answer.status >= 400) {
          assert.match(answer.headers.get("content-type") ?? "", /^application\/json/);
          if (request.method !== "HEAD") {
            const body = JSON.parse(answer.body.toString("utf8")) as {
              error: { code: unknown; message: unknown };
            };
            assert.deepEqual(Object.keys(body), ["error"]);
            assert.equal(typeof body.error.code, "string");
            assert.equal(typeof body.error.message, "string");
          }
          assert.equal(changed, false, "a refused request changed the store");
          return;
        }
        const write = ["PUT", "DELETE", "POST"].includes(request.method);
        assert.equal(
          changed,
          write,
          write ? "an accepted write committed nothing" : "a read changed the store",
        );
        if (request.method === "PUT" || request.method === "DELETE") {
          const path = entryPathOf(request.target);
          assert.ok(path !== null, "a single-entry write was accepted on a path the rules refuse");
          const entry = n1.store.get(path);
          assert.equal(entry?.deleted, request.method === "DELETE");
        }
      },
    );
  }
  // Still serving after everything above.
  const health = await exchange(
    port,
    Buffer.from("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
  );
  assert.equal(health.status, 200);
  // Both outcomes exercised, and the parser-level refusals too.
  const count = (predicate: (status: number) => boolean) =>
    [...statuses].filter(([status]) => predicate(status)).reduce((sum, [, n]) => sum + n, 0);
  assert.ok(count((s) => s < 300) > run.count / 20, `accepted: ${JSON.stringify([...statuses])}`);
  assert.ok(count((s) => s >= 400) > run.count / 4, `refused: ${JSON.stringify([...statuses])}`);
  if (run.count >= 400) assert.ok(statuses.has(431), `a 431 among ${JSON.stringify([...statuses])}`);
});
