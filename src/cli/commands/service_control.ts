// Operators' commands on services: `tandem service move NAME NODE`, `tandem node drain|undrain NODE`. Any
// node takes them and passes them to the leader, which answers once a placement round made them; the
// command returns then (the service itself moves as its drivers stop and start). Exit codes: 0 done, 1
// refused, failed or unreachable. `tandem service action` and `logs` are answered where the service runs,
// whichever node is asked; an action exits with the action's own exit code.
import type { Command } from "commander";
import {
  type ApiCommandOptions,
  type ApiCredentials,
  apiBaseUrl,
  apiCredentialsFrom,
  callJson,
  getJson,
  withApiOptions,
} from "../api_client.ts";
import { configPathFrom } from "../config_source.ts";
import { escapeControls } from "../terminal_text.ts";
import { parseNodeIdOption } from "./member.ts";

type ApiOptions = ApiCommandOptions;

/** The leader may run a placement round first, and a forwarded command waits for it. */
const commandTimeoutMs = 15_000;
/** An action runs up to its own timeout (an hour at most) on the owner. */
const actionTimeoutMs = 3_700_000;

interface ActionOutcome {
  exitCode: number | null;
  timedOut: boolean;
  error: string | null;
  durationMs: number;
  stdout: string;
  stderr: string;
}

interface LogsPage {
  lines: Array<{ time: string; source: string; stream: string; text: string }>;
  next: number;
}

/** A command's output from another machine: control bytes escaped, line breaks kept. */
function escapeOutput(text: string): string {
  return text
    .split("\n")
    .map((line) => escapeControls(line))
    .join("\n");
}

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
    .description("act on one service: move it, run its actions, read its logs (tandem services lists them)");
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

  withApiOptions(
    service
      .command("action")
      .description("run one of a service's actions where it runs, with extra arguments appended")
      .argument("<name>", "the service")
      .argument("<action>", "the action, as named under the service's actions")
      .argument("[args...]", "appended to the action's command (after -- if they start with -)"),
  )
    .addHelpText(
      "after",
      "\nIts output is printed, and its exit code is this command's.\n\nExample:\n  tandem service action web reload\n  tandem service action db vacuum -- --full",
    )
    .action(async (name: string, action: string, args: string[], options: ApiOptions) => {
      try {
        const base = apiBaseUrl({ ...options, configPath: configPathFrom(options.config) });
        const path = `/api/v1/services/${encodeURIComponent(name)}/actions/${encodeURIComponent(action)}`;
        const answer = (await callJson(base, path, {
          method: "POST",
          body: { args },
          timeoutMs: actionTimeoutMs,
          credentials: apiCredentialsFrom(options),
        })) as { node: string; action: ActionOutcome };
        if (options.json) {
          process.stdout.write(`${JSON.stringify(answer)}\n`);
          return;
        }
        const outcome = answer.action;
        process.stdout.write(escapeOutput(outcome.stdout));
        process.stderr.write(escapeOutput(outcome.stderr));
        if (outcome.error !== null || outcome.timedOut) {
          const why = outcome.error ?? `killed after ${Math.round(outcome.durationMs)} ms`;
          process.stderr.write(`tandem service action: on ${answer.node}: ${escapeControls(why)}\n`);
        }
        process.exitCode = outcome.exitCode ?? 1;
      } catch (error) {
        process.stderr.write(`tandem service action: ${escapeControls((error as Error).message)}\n`);
        process.exitCode = 1;
      }
    });

  withApiOptions(
    service
      .command("logs")
      .description("what a service's commands printed where it runs: drivers, actions, failed health checks")
      .argument("<name>", "the service")
      .option("-f, --follow", "keep printing new lines (asks again every second; Ctrl-C stops)"),
  )
    .addHelpText(
      "after",
      "\nThe node running it keeps its last 500 lines.\n\nExample:\n  tandem service logs web -f",
    )
    .action(async (name: string, options: ApiOptions & { follow?: boolean }) => {
      try {
        const base = apiBaseUrl({ ...options, configPath: configPathFrom(options.config) });
        const credentials = apiCredentialsFrom(options);
        let after = 0;
        for (;;) {
          const path = `/api/v1/services/${encodeURIComponent(name)}/logs?after=${after}`;
          const answer = (await getJson(base, path, 5_000, credentials)) as { node: string; logs: LogsPage };
          for (const line of answer.logs.lines) {
            const text = options.json
              ? JSON.stringify({ node: answer.node, ...line })
              : `${line.time} ${answer.node} ${line.source} ${line.stream === "tandem" ? "*" : line.stream === "stderr" ? "!" : " "} ${line.text}`;
            process.stdout.write(`${escapeControls(text)}\n`);
          }
          // Another owner's lines are numbered afresh.
          after = answer.logs.next < after ? 0 : answer.logs.next;
          if (!options.follow) return;
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
      } catch (error) {
        process.stderr.write(`tandem service logs: ${escapeControls((error as Error).message)}\n`);
        process.exitCode = 1;
      }
    });

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
