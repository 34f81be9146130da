// Operators' commands on services: `tandem service move NAME NODE`, `tandem node drain|undrain NODE`. Any
// node takes them and passes them to the leader, which answers once a placement round made them; the
// command returns then (the service itself moves as its drivers stop and start). Exit codes: 0 done, 1
// refused, failed or unreachable.
import type { Command } from "commander";
import {
  type ApiCredentials,
  apiBaseUrl,
  apiCredentialsFrom,
  type CredentialOptions,
  callJson,
  withApiOptions,
} from "../api_client.ts";
import { configPathFrom } from "../config_source.ts";
import { escapeControls } from "../terminal_text.ts";
import { parseNodeIdOption } from "./member.ts";

interface ApiOptions extends CredentialOptions {
  config?: string;
  api?: string;
  json?: boolean;
}

/** The leader may run a placement round first, and a forwarded command waits for it. */
const commandTimeoutMs = 15_000;

async function post(options: ApiOptions, path: string, body: unknown): Promise<void> {
  const base = apiBaseUrl({ ...options, configPath: configPathFrom(options.config) });
  const credentials: ApiCredentials = apiCredentialsFrom(options);
  await callJson(base, path, { method: "POST", body, timeoutMs: commandTimeoutMs, credentials });
}

/** Posts one command; prints `done` (or {"ok":true} with --json), or the error with exit code 1. */
async function run(name: string, options: ApiOptions, path: string, body: unknown, done: string) {
  try {
    await post(options, path, body);
    process.stdout.write(options.json ? `${JSON.stringify({ ok: true })}\n` : `${done}\n`);
  } catch (error) {
    process.stderr.write(`tandem ${name}: ${escapeControls((error as Error).message)}\n`);
    process.exitCode = 1;
  }
}

export function registerServiceControlCommands(program: Command): void {
  const service = program
    .command("service")
    .description("act on one service: move it (tandem services lists them)");
  withApiOptions(
    service
      .command("move")
      .description("move a service to a node now (within its nodes; the node must be up and undrained)")
      .argument("<name>", "the service")
      .argument("<node>", "the node to run it", parseNodeIdOption),
  )
    .addHelpText(
      "after",
      "\nIt stays there (sticky) until that node is lost, drained or a restore window takes it home.\n" +
        "Callers other than a local operator must match one of the service's admins.\n\n" +
        "Example:\n  tandem service move web n2",
    )
    .action((name: string, node: string, options: ApiOptions) =>
      run(
        "service move",
        options,
        `/api/v1/services/${encodeURIComponent(name)}/move`,
        { node },
        `${name}: moving to ${node}`,
      ),
    );

  const nodeCommand = program
    .command("node")
    .description("drain a node (it hands its services on and takes none) or undrain it");
  for (const [verb, description, done] of [
    ["drain", "hand every service on the node to others; it takes none until undrained", "drained"],
    ["undrain", "let the node take services again (nothing moves back by itself)", "undrained"],
  ] as const) {
    withApiOptions(
      nodeCommand.command(verb).description(description).argument("<node>", "the node", parseNodeIdOption),
    )
      .addHelpText("after", `\nExample:\n  tandem node ${verb} n1`)
      .action((node: string, options: ApiOptions) =>
        run(
          `node ${verb}`,
          options,
          `/api/v1/nodes/${encodeURIComponent(node)}/${verb}`,
          {},
          `${node}: ${done}`,
        ),
      );
  }
}
