// `tandem events [-f]`: what happened on a node (leader changes, placement decisions, driver runs, health
// verdicts, drains), from GET /api/v1/events; with -f it keeps printing as they happen.
import type { Command } from "commander";
import {
  apiBaseUrl,
  apiCredentialsFrom,
  type CredentialOptions,
  openApiStream,
  withApiOptions,
} from "../api_client.ts";
import { configPathFrom } from "../config_source.ts";
import { sseEvents } from "../store_client.ts";
import { escapeControls } from "../terminal_text.ts";

interface EventsOptions extends CredentialOptions {
  config?: string;
  api?: string;
  json?: boolean;
  follow?: boolean;
}

const hiddenFields = new Set(["id", "seq", "time", "kind"]);

/** One event as a line: `2026-12-07T02:00:00.000Z placement service=web from=n1 to=n2 ...`. */
export function renderEvent(event: Record<string, unknown>): string {
  const fields = Object.entries(event)
    .filter(([key]) => !hiddenFields.has(key))
    .map(([key, value]) => {
      const text = typeof value === "string" && !/[\s"=]/.test(value) ? value : JSON.stringify(value);
      return `${key}=${text}`;
    });
  return escapeControls([String(event.time), String(event.kind).padEnd(9), ...fields].join(" "));
}

export function registerEventsCommand(program: Command): void {
  const command = program
    .command("events")
    .description("what happened on a node: leader changes, placement decisions, driver runs, health, drains")
    .option("-f, --follow", "keep printing new events as they happen (Ctrl-C stops)");
  withApiOptions(command)
    .addHelpText(
      "after",
      "\nA node keeps its last 1,000 events in memory; each node has its own (the leader's show every\n" +
        "placement, every node shows its own driver runs).\n\nExamples:\n  tandem events\n  tandem events -f --json",
    )
    .action(async (options: EventsOptions) => {
      try {
        const base = apiBaseUrl({ ...options, configPath: configPathFrom(options.config) });
        const path = options.follow ? "/api/v1/events" : "/api/v1/events?follow=false";
        const stream = await openApiStream(base, path, {
          timeoutMs: 5_000,
          credentials: apiCredentialsFrom(options),
        });
        for await (const event of sseEvents(stream)) {
          if (event.data === undefined) continue;
          const parsed = JSON.parse(event.data) as Record<string, unknown>;
          if (event.event === "lost") {
            process.stderr.write(
              "tandem events: some events were dropped before these (the node keeps 1,000)\n",
            );
            continue;
          }
          process.stdout.write(`${options.json ? JSON.stringify(parsed) : renderEvent(parsed)}\n`);
        }
      } catch (error) {
        process.stderr.write(`tandem events: ${escapeControls((error as Error).message)}\n`);
        process.exitCode = 1;
      }
    });
}
