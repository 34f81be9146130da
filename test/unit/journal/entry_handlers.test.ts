import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import type { JournalHandlerConfig } from "../../../src/config/index.ts";
import {
  batchesCappedByConcurrency,
  combineHandlers,
  entryHandler,
  HandlerConflictError,
  handlerFor,
  inProcessHandler,
} from "../../../src/journal/entry_handlers.ts";
import type { JournalEntry } from "../../../src/journal/journal_db.ts";

const entry: JournalEntry = {
  id: "e-1",
  origin: "n2",
  hlc: "1700000000000.0",
  type: "user.create",
  key: "user:ann",
  keySeq: 1,
  data: JSON.stringify({ name: "ann" }),
  files: [],
};

/** What a handler gets of `entry`: its data parsed, no keySeq. */
const handed = {
  id: "e-1",
  origin: "n2",
  hlc: "1700000000000.0",
  type: "user.create",
  key: "user:ann",
  data: { name: "ann" },
  files: [],
};

test('entry handlers: a type\'s own handler, else "*", else none', () => {
  const exec = { kind: "exec" as const, argv: ["true"], timeoutMs: 1000 };
  const hook = { kind: "webhook" as const, url: "http://127.0.0.1:1/", timeoutMs: 1000 };
  assert.equal(handlerFor({ "user.create": exec, "*": hook }, "user.create"), exec);
  assert.equal(handlerFor({ "user.create": exec, "*": hook }, "user.delete"), hook);
  assert.equal(handlerFor({ "user.create": exec }, "user.delete"), null);
});

test("entry handlers: exec gets the entry as JSON on stdin and its id in the environment; the exit code decides", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tandem-handler-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, "got.json");
  const ok = entryHandler({
    kind: "exec",
    argv: ["sh", "-c", `cat > ${out}; echo "$TANDEM_ENTRY_ID" > ${out}.id`],
    timeoutMs: 10_000,
  });
  assert.deepEqual(await ok(entry), { ok: true, detail: "exit code 0" });
  assert.deepEqual(JSON.parse(readFileSync(out, "utf8")), handed);
  assert.equal(readFileSync(`${out}.id`, "utf8").trim(), "e-1");
  const failing = entryHandler({
    kind: "exec",
    argv: ["sh", "-c", "echo no such group >&2; exit 3"],
    timeoutMs: 10_000,
  });
  assert.deepEqual(await failing(entry), { ok: false, detail: "exit code 3: no such group" });
  const missing = entryHandler({ kind: "exec", argv: [join(dir, "nope")], timeoutMs: 10_000 });
  assert.equal((await missing(entry)).ok, false);
});

test("entry handlers: a webhook gets the entry POSTed as JSON; a 2xx answer applies it", async (t) => {
  const received: Array<{ id: string | undefined; body: unknown }> = [];
  let status = 204;
  const url = await webhookServer(t, (request, body) => {
    received.push({ id: request.headers["tandem-entry-id"] as string | undefined, body: JSON.parse(body) });
    return [status, status === 204 ? undefined : "user exists"];
  });
  const hook = entryHandler({ kind: "webhook", url, timeoutMs: 10_000 });
  assert.deepEqual(await hook(entry), { ok: true, detail: "HTTP 204" });
  const [first] = received;
  assert.ok(first);
  assert.equal(first.id, "e-1");
  assert.deepEqual((first.body as { data: unknown }).data, { name: "ann" });
  status = 409;
  assert.deepEqual(await hook(entry), { ok: false, detail: "HTTP 409: user exists" });
  const closed = entryHandler({ kind: "webhook", url: "http://127.0.0.1:1/", timeoutMs: 10_000 });
  assert.match((await closed(entry)).detail, /ECONNREFUSED/);
});

test("entry handlers: in-process: returning applies; throwing, rejecting or ok: false fails with its detail", async () => {
  const seen: unknown[] = [];
  const returns = inProcessHandler((e) => {
    seen.push(e);
  });
  assert.deepEqual(await returns(entry), { ok: true, detail: "returned" });
  assert.deepEqual(seen, [handed]);
  const throws = inProcessHandler(() => {
    throw new Error("users table is locked");
  });
  assert.deepEqual(await throws(entry), { ok: false, detail: "users table is locked" });
  const rejects = inProcessHandler(async () => {
    await Promise.resolve();
    throw new Error("no such group");
  });
  assert.deepEqual(await rejects(entry), { ok: false, detail: "no such group" });
  const refuses = inProcessHandler(async () => ({ ok: false, detail: "quota reached" }));
  assert.deepEqual(await refuses(entry), { ok: false, detail: "quota reached" });
  const answers = inProcessHandler(() => ({ ok: true, detail: "created" }));
  assert.deepEqual(await answers(entry), { ok: true, detail: "created" });
});

test('entry handlers: config and in-process combine, a type\'s own before "*"; a type given both ways is refused', () => {
  const exec = { kind: "exec" as const, argv: ["true"], timeoutMs: 1000 };
  const own = () => undefined;
  const table = combineHandlers({ "*": exec, "user.delete": exec }, { "user.create": own });
  assert.equal(typeof handlerFor(table, "user.create"), "function", "in-process own type before config *");
  assert.equal(handlerFor(table, "user.delete"), exec);
  assert.equal(handlerFor(table, "user.rename"), exec);
  const reversed = combineHandlers({ "user.delete": exec }, { "*": own });
  assert.equal(handlerFor(reversed, "user.delete"), exec, "config own type before in-process *");
  assert.equal(typeof handlerFor(reversed, "user.rename"), "function");
  assert.throws(
    () => combineHandlers({ "user.create": exec, "*": exec }, { "user.create": own, "*": own }),
    (error: unknown) =>
      error instanceof HandlerConflictError &&
      /"user.create", "\*" given both in journal.handlers/.test(error.message),
  );
});

test("entry handlers: a batching webhook POSTs the entries started together as one array, and shares its answer", async (t) => {
  const received: Array<{ count: string | undefined; ids: string[] }> = [];
  let status = 204;
  const url = await webhookServer(t, (request, body) => {
    const entries = JSON.parse(body) as Array<{ id: string; data: unknown }>;
    received.push({
      count: request.headers["tandem-entry-count"] as string | undefined,
      ids: entries.map((e) => e.id),
    });
    return [status, status === 204 ? undefined : "down"];
  });
  const hook = entryHandler({ kind: "webhook", url, timeoutMs: 10_000, batchMax: 2 });
  const entries = ["a", "b", "c"].map((id) => ({ ...entry, id, key: `user:${id}` }));
  const results = await Promise.all(entries.map((e) => hook(e)));
  assert.deepEqual(
    results.map((r) => r.ok),
    [true, true, true],
  );
  assert.deepEqual(received, [
    { count: "2", ids: ["a", "b"] },
    { count: "1", ids: ["c"] },
  ]);
  status = 500;
  const failed = await Promise.all(entries.slice(0, 2).map((e) => hook(e)));
  assert.deepEqual(failed, [
    { ok: false, detail: "HTTP 500: down" },
    { ok: false, detail: "HTTP 500: down" },
  ]);
  assert.deepEqual(received.at(-1), { count: "2", ids: ["a", "b"] });
});

/** A local HTTP server for webhook handlers, answering each request with what `answer` returns; its URL. */
async function webhookServer(
  t: TestContext,
  answer: (request: IncomingMessage, body: string) => [number, string | undefined],
): Promise<string> {
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      const [status, text] = answer(request, body);
      response.writeHead(status).end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
}

test("entry handlers: a batching webhook whose batch exceeds the concurrency is named (its batches never fill)", () => {
  const handlers: Record<string, JournalHandlerConfig> = {
    "user.create": { kind: "webhook", url: "http://127.0.0.1:1/hook", timeoutMs: 1000, batchMax: 64 },
    "user.delete": { kind: "webhook", url: "http://127.0.0.1:1/hook", timeoutMs: 1000, batchMax: 4 },
    "*": { kind: "exec", argv: ["true"], timeoutMs: 1000 },
  };
  assert.deepEqual(batchesCappedByConcurrency(handlers, 4), ["user.create"]);
  assert.deepEqual(batchesCappedByConcurrency(handlers, 64), []);
});
