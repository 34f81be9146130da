// What applies an entry on this node, by its type: a command (the entry as JSON on its standard input, exit
// code 0 applies it), a webhook (the entry POSTed as JSON to a local application, a 2xx answer applies it;
// with `batchMax`, the entries started together POSTed as one JSON array, the answer shared by all of them),
// or, in an app embedding the agent (src/sdk), a function of the app's own (it returns: applied; it throws:
// failed, its message the detail). The handler gets the entry's id (also in TANDEM_ENTRY_ID) to make
// itself idempotent: an entry runs again if the agent died between the handler's success and its record.
import { createRequire } from "node:module";
import type { JournalHandlerConfig } from "../config/index.ts";
import { commandSucceeded, http, runCommand } from "../shell/index.ts";
import type { JournalEntry } from "./journal_db.ts";

export interface HandlerResult {
  ok: boolean;
  /** For the log, the events and the dead letters: an exit code, a status, an error. */
  detail: string;
}

export type EntryHandler = (entry: JournalEntry) => Promise<HandlerResult>;

/** The entry as an in-process handler gets it: what an exec handler reads on stdin, `data` parsed. */
export interface HandlerEntry {
  id: string;
  origin: string;
  hlc: string;
  type: string;
  key: string | null;
  data: unknown;
  files: string[];
}

/**
 * An embedding app's handler, run on the agent's event loop: resolving (with nothing, or `{ ok: true }`)
 * applies the entry; throwing, rejecting or `{ ok: false, detail }` is a failure (retried, then a dead
 * letter). It must not hold the event loop for long (docs/journal.md, Embedding).
 */
export type InProcessHandler = (
  entry: HandlerEntry,
  // biome-ignore lint/suspicious/noConfusingVoidType: an async function returning nothing is Promise<void>
) => void | HandlerReturn | Promise<void | HandlerReturn>;

/** What an in-process handler may return instead of nothing: a failure without throwing, or a detail. */
export interface HandlerReturn {
  ok: boolean;
  detail?: string;
}

/** A handler of the config, or an embedding app's function: what the applier looks up by type. */
export type HandlerSpec = JournalHandlerConfig | EntryHandler;

export class HandlerConflictError extends Error {
  override readonly name = "HandlerConflictError";
}

/** Answers of a webhook kept for the detail. */
const answerBytesMax = 2048;

function handlerEntry(entry: JournalEntry): HandlerEntry {
  return {
    id: entry.id,
    origin: entry.origin,
    hlc: entry.hlc,
    type: entry.type,
    key: entry.key,
    data: JSON.parse(entry.data),
    files: [...entry.files],
  };
}

/** The JSON a handler receives: the entry, with its data parsed. */
export function handlerPayload(entry: JournalEntry): string {
  return JSON.stringify(handlerEntry(entry));
}

/** The handler for `type`: its own, else "*", else none (the entry goes to the dead letters). */
export function handlerFor<Handler>(
  handlers: Readonly<Record<string, Handler>>,
  type: string,
): Handler | null {
  return handlers[type] ?? handlers["*"] ?? null;
}

/**
 * The config's handlers and an embedding app's in one table. An entry type's own handler comes before
 * "*", whichever side gives either; a type (or "*") given by both is refused: which one applies would be
 * a guess.
 */
export function combineHandlers(
  configured: Readonly<Record<string, JournalHandlerConfig>>,
  inProcess: Readonly<Record<string, InProcessHandler>>,
): Record<string, HandlerSpec> {
  const both = Object.keys(inProcess).filter((type) => Object.hasOwn(configured, type));
  if (both.length > 0) {
    throw new HandlerConflictError(
      `journal handler for ${both.map((t) => JSON.stringify(t)).join(", ")} given both in journal.handlers ` +
        "and in-process: remove one of them",
    );
  }
  const table: Record<string, HandlerSpec> = { ...configured };
  for (const [type, handler] of Object.entries(inProcess)) table[type] = inProcessHandler(handler);
  return table;
}

export function inProcessHandler(handler: InProcessHandler): EntryHandler {
  return async (entry) => {
    try {
      const result = await handler(handlerEntry(entry));
      if (result === undefined) return { ok: true, detail: "returned" };
      const ok = result.ok === true;
      return { ok, detail: result.detail ?? (ok ? "returned ok" : "returned not ok") };
    } catch (error) {
      return { ok: false, detail: error instanceof Error ? error.message : String(error) };
    }
  };
}

/**
 * The batching webhooks (by entry type) whose `batch` exceeds `concurrency`: a POST carries the entries
 * started together, at most `concurrency` of them, so these never fill (worth a warning at start).
 */
export function batchesCappedByConcurrency(
  handlers: Readonly<Record<string, JournalHandlerConfig>>,
  concurrency: number,
): string[] {
  return Object.entries(handlers)
    .filter(([, handler]) => handler.kind === "webhook" && (handler.batchMax ?? 1) > concurrency)
    .map(([type]) => type);
}

export function entryHandler(config: JournalHandlerConfig): EntryHandler {
  return config.kind === "exec" ? execHandler(config) : webhookHandler(config);
}

function execHandler(config: Extract<JournalHandlerConfig, { kind: "exec" }>): EntryHandler {
  return async (entry) => {
    const outcome = await runCommand(config.argv, {
      env: {
        TANDEM_ENTRY_ID: entry.id,
        TANDEM_ENTRY_TYPE: entry.type,
        TANDEM_ENTRY_ORIGIN: entry.origin,
      },
      timeoutMs: config.timeoutMs,
      stdin: handlerPayload(entry),
    });
    if (commandSucceeded(outcome)) return { ok: true, detail: "exit code 0" };
    const why =
      outcome.error ??
      (outcome.timedOut
        ? `timed out after ${config.timeoutMs} ms`
        : `exit code ${outcome.exitCode ?? outcome.signal}`);
    return { ok: false, detail: outcome.stderr === "" ? why : `${why}: ${outcome.stderr.slice(-500)}` };
  };
}

function webhookHandler(config: Extract<JournalHandlerConfig, { kind: "webhook" }>): EntryHandler {
  const post = webhookPost(config);
  if ((config.batchMax ?? 1) <= 1) {
    return (entry) => post(handlerPayload(entry), { "tandem-entry-id": entry.id });
  }
  return batchedWebhook(post, config.batchMax ?? 1);
}

/**
 * A webhook taking up to `batchMax` entries in one POST: the calls made in one turn of the event loop (the
 * applier starts every due entry in one turn, at most one per ordering key) go together as a JSON array
 * in the order made, and share the answer: a 2xx applies all of them, anything else fails all of them
 * (each then retried on its own, perhaps in another batch).
 */
function batchedWebhook(
  post: (body: string, headers: Record<string, string>) => Promise<HandlerResult>,
  batchMax: number,
): EntryHandler {
  let pending: Array<{ entry: JournalEntry; resolve: (result: HandlerResult) => void }> = [];
  const flush = () => {
    const batch = pending.slice(0, batchMax);
    pending = pending.slice(batchMax);
    if (pending.length > 0) setImmediate(flush);
    const body = `[${batch.map((p) => handlerPayload(p.entry)).join(",")}]`;
    void post(body, { "tandem-entry-count": String(batch.length) }).then((result) => {
      for (const p of batch) p.resolve(result);
    });
  };
  return (entry) =>
    new Promise((resolve) => {
      pending.push({ entry, resolve });
      if (pending.length === 1) setImmediate(flush);
    });
}

/** POSTs a JSON body to the webhook: a 2xx answer is success; the answer's start is the detail. */
function webhookPost(
  config: Extract<JournalHandlerConfig, { kind: "webhook" }>,
): (body: string, headers: Record<string, string>) => Promise<HandlerResult> {
  const url = new URL(config.url);
  const transport =
    url.protocol === "https:" ? (createRequire(import.meta.url)("node:https") as typeof http) : http;
  return (body, headers) =>
    new Promise((resolve) => {
      const request = transport.request(
        url,
        {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
            ...headers,
          },
          timeout: config.timeoutMs,
        },
        (response) => {
          const chunks: Buffer[] = [];
          let kept = 0;
          response.on("data", (chunk: Buffer) => {
            if (kept < answerBytesMax) chunks.push(chunk);
            kept += chunk.length;
          });
          response.on("end", () => {
            const status = response.statusCode ?? 0;
            const answer = Buffer.concat(chunks).toString("utf8").slice(0, answerBytesMax).trim();
            const detail = answer === "" ? `HTTP ${status}` : `HTTP ${status}: ${answer}`;
            resolve({ ok: status >= 200 && status < 300, detail });
          });
          response.on("error", (error) => resolve({ ok: false, detail: error.message }));
        },
      );
      request.on("timeout", () => request.destroy(new Error(`no answer within ${config.timeoutMs} ms`)));
      request.on("error", (error) => resolve({ ok: false, detail: error.message }));
      request.end(body);
    });
}
