// What applies an entry on this node, by its type: a command (the entry as JSON on its standard input, exit
// code 0 applies it) or a webhook (the entry POSTed as JSON to a local application, a 2xx answer applies
// it). The handler gets the entry's id (also in TANDEM_ENTRY_ID) to make itself idempotent: an entry runs
// again if the agent died between the handler's success and its record.
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

/** Answers of a webhook kept for the detail. */
const answerBytesMax = 2048;

/** The JSON a handler receives: the entry, with its data parsed. */
export function handlerPayload(entry: JournalEntry): string {
  return JSON.stringify({
    id: entry.id,
    origin: entry.origin,
    hlc: entry.hlc,
    type: entry.type,
    key: entry.key,
    data: JSON.parse(entry.data),
    files: entry.files,
  });
}

/** The handler for `type`: its own, else "*", else none (the entry goes to the dead letters). */
export function handlerFor(
  handlers: Readonly<Record<string, JournalHandlerConfig>>,
  type: string,
): JournalHandlerConfig | null {
  return handlers[type] ?? handlers["*"] ?? null;
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
  const url = new URL(config.url);
  const transport =
    url.protocol === "https:" ? (createRequire(import.meta.url)("node:https") as typeof http) : http;
  return (entry) =>
    new Promise((resolve) => {
      const body = handlerPayload(entry);
      const request = transport.request(
        url,
        {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
            "tandem-entry-id": entry.id,
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
