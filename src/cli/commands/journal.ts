// `tandem journal ...` (docs/journal.md): keygen writes the cluster's replication key; record, status, dead,
// retry and drop talk to the agent's /api/v1/journal. Exit codes: 0 done, 1 refused, failed or unreachable.
import { readFile, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { Command } from "commander";
import { type ApiCommandOptions, withApiOptions } from "../api_client.ts";
import { callApi, capabilityGuard } from "../capability_command.ts";
import { escapeControls } from "../terminal_text.ts";

type ApiOptions = ApiCommandOptions;

interface RecordOptions extends Omit<ApiOptions, "key"> {
  data?: string;
  /** The ordering key (the client key file is --cert-key here). */
  key?: string;
  certKey?: string;
  file?: string[];
}

const callTimeoutMs = 15_000;

const call = (options: ApiOptions, path: string, method = "GET", body?: unknown) =>
  callApi(options, path, { method, body, timeoutMs: callTimeoutMs });

const guarded = capabilityGuard(
  "journal ",
  "/api/v1/journal",
  "this node runs no journal (its tandem.yml has no journal: section; docs/journal.md)",
);

/** --data: inline JSON, or @file for a file holding it; none: null. */
async function dataOf(text: string | undefined): Promise<unknown> {
  if (text === undefined) return null;
  const source = text.startsWith("@") ? await readFile(text.slice(1), "utf8") : text;
  try {
    return JSON.parse(source);
  } catch {
    throw new Error(`--data is not JSON${text.startsWith("@") ? ` (in ${text.slice(1)})` : ""}`);
  }
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerJournalCommands(program: Command): void {
  const journal = program
    .command("journal")
    .description("record actions on this node and apply them on every other node (docs/journal.md)");

  journal
    .command("keygen")
    .description("write a new replication key (an age X25519 key file, mode 0600) for journal.key_file")
    .option("--out <file>", "where to write it", "journal.key")
    .addHelpText(
      "after",
      "\nCopy the same file to every node (like the cluster CA), then set journal.key_file.\n" +
        "Entries are sealed to it on the way out; `age --decrypt -i FILE` opens one.\n\n" +
        "Example:\n  tandem journal keygen --out /etc/tandem/journal.key",
    )
    .action(async (options: { out: string }, command: Command) => {
      const { JournalKey } = await import("../../journal/index.ts");
      const { key, fileText } = await JournalKey.generate();
      try {
        await writeFile(options.out, fileText, { flag: "wx", mode: 0o600 });
      } catch (cause) {
        const code = (cause as NodeJS.ErrnoException).code;
        if (code === "EEXIST")
          command.error(`tandem journal keygen: ${options.out} already exists; refusing to overwrite it`);
        command.error(`tandem journal keygen: cannot write ${options.out} (${code ?? "error"})`);
      }
      process.stdout.write(`wrote ${options.out} (mode 0600); public key ${key.recipient}\n`);
    });

  withApiOptions(
    journal
      .command("record")
      .description(
        "record an entry on this node: on disk when this returns, then applied on every other node",
      )
      .argument("<type>", "what applies it on the other nodes (journal.handlers), e.g. user.create")
      .option("--data <json>", "the entry's data: JSON, or @FILE to read it from a file (default null)")
      .option("--key <key>", "ordering key: entries with the same key apply in the order recorded here")
      .option(
        "--file <path>",
        "attach a file: its absolute path goes with the entry (blob.offload uploads it; repeatable)",
        collect,
      ),
    "--cert-key",
  )
    .addHelpText(
      "after",
      '\nPrints the entry\'s id.\n\nExamples:\n  tandem journal record user.create --key user:ann --data \'{"name":"ann"}\'\n  tandem journal record settings.set --data @settings.json',
    )
    .action((type: string, options: RecordOptions) =>
      guarded("record", async () => {
        const body = {
          type,
          data: await dataOf(options.data),
          ...(options.key === undefined ? {} : { key: options.key }),
          ...(options.file === undefined ? {} : { files: options.file.map((file) => resolve(file)) }),
        };
        const { key: _orderingKey, certKey, ...rest } = options;
        const api: ApiOptions = { ...rest, ...(certKey === undefined ? {} : { key: certKey }) };
        const answer = (await call(api, "/api/v1/journal", "POST", body)) as { id: string };
        process.stdout.write(options.json ? `${JSON.stringify(answer)}\n` : `${answer.id}\n`);
      }),
    );

  withApiOptions(
    journal.command("status").description("the outbox, the inbox, dead letters and each peer's delivery"),
  ).action((options: ApiOptions) =>
    guarded("status", async () => {
      const status = (await call(options, "/api/v1/journal/status")) as Record<string, unknown>;
      if (options.json) {
        process.stdout.write(`${JSON.stringify(status)}\n`);
        return;
      }
      const applier = status.applier as {
        waiting: number;
        running: number;
        blocked: number;
        refused: number;
      };
      const steps = status.steps as { pending: number; dead: number };
      const lines = [
        `queue            ${String(status.queue)}`,
        `recipient        ${String(status.recipient)} (the replication key's public half: the same on every node)`,
        `steps            ${steps.pending} owed, ${steps.dead} given up`,
        `unshipped        ${String(status.unshipped)}${status.oldestUnshippedAgeMs === null ? "" : ` (oldest ${String(status.oldestUnshippedAgeMs)} ms)`}`,
        `outbox           ${outboxLine(status)}`,
        `inbox            ${String(status.inbox)} (running ${applier.running}, waiting for an earlier entry ${applier.blocked})`,
        `dead letters     ${String(status.deadLetters)}`,
        `refused          ${applier.refused}`,
      ];
      const lastApplied = status.lastAppliedAtMs as Record<string, number>;
      for (const [origin, at] of Object.entries(lastApplied)) {
        lines.push(`last applied     from ${origin} at ${new Date(at).toISOString()}`);
      }
      const peers = ((
        status.transport as {
          peers?: Record<string, { cursor: number; runsJournal: boolean; lastError: string | null }>;
        }
      ).peers ?? {}) as Record<string, { cursor: number; runsJournal: boolean; lastError: string | null }>;
      for (const [peer, p] of Object.entries(peers)) {
        const state = !p.runsJournal
          ? "runs no journal"
          : p.lastError === null
            ? "ok"
            : `retrying: ${p.lastError}`;
        lines.push(`peer ${peer.padEnd(11)} delivered through outbox ${p.cursor}, ${state}`);
      }
      process.stdout.write(`${lines.map((line) => escapeControls(line)).join("\n")}\n`);
    }),
  );

  withApiOptions(
    journal.command("dead").description("list the dead letters: entries given up after their attempts"),
  )
    .addHelpText(
      "after",
      "\nThen: tandem journal retry ID (apply it again) or tandem journal drop ID (give it up).",
    )
    .action((options: ApiOptions) =>
      guarded("dead", async () => {
        const answer = (await call(options, "/api/v1/journal/dead")) as {
          deadLetters: Array<{
            id: string;
            origin: string;
            type: string;
            key: string | null;
            attempts: number;
            reason: string;
            deadAt: string;
          }>;
        };
        if (options.json) {
          process.stdout.write(`${JSON.stringify(answer)}\n`);
          return;
        }
        if (answer.deadLetters.length === 0) {
          process.stdout.write("no dead letters\n");
          return;
        }
        for (const d of answer.deadLetters) {
          const line = `${d.id}  ${d.deadAt}  from ${d.origin}  ${d.type}${d.key === null ? "" : ` key=${d.key}`}  after ${d.attempts} attempts: ${d.reason}`;
          process.stdout.write(`${escapeControls(line)}\n`);
        }
      }),
    );

  withApiOptions(
    journal.command("steps").description("list the post-execution steps given up after their attempts"),
  )
    .addHelpText("after", "\nThen: tandem journal step-retry ID STEP runs one again.")
    .action((options: ApiOptions) =>
      guarded("steps", async () => {
        const answer = (await call(options, "/api/v1/journal/steps")) as {
          deadSteps: Array<{ entryId: string; step: string; attempts: number; reason: string }>;
        };
        if (options.json) {
          process.stdout.write(`${JSON.stringify(answer)}\n`);
          return;
        }
        if (answer.deadSteps.length === 0) process.stdout.write("no given-up steps\n");
        for (const d of answer.deadSteps) {
          process.stdout.write(
            `${escapeControls(`${d.entryId}  ${d.step}  after ${d.attempts} attempts: ${d.reason}`)}\n`,
          );
        }
      }),
    );

  withApiOptions(
    journal
      .command("step-retry")
      .description("run a given-up post-execution step again")
      .argument("<id>", "the entry's id (tandem journal steps)")
      .argument("<step>", "the step's name"),
  ).action((id: string, step: string, options: ApiOptions) =>
    guarded("step-retry", async () => {
      await call(
        options,
        `/api/v1/journal/steps/${encodeURIComponent(id)}/${encodeURIComponent(step)}/retry`,
        "POST",
        {},
      );
      process.stdout.write(options.json ? `${JSON.stringify({ ok: true })}\n` : `${id} ${step}: retrying\n`);
    }),
  );

  for (const [verb, help] of [
    ["retry", "apply a dead letter again (on its own: its ordering key has moved on)"],
    ["drop", "give a dead letter up for good (it is never applied, even if delivered again)"],
  ] as const) {
    withApiOptions(
      journal.command(verb).description(help).argument("<id>", "the entry's id (tandem journal dead)"),
    ).action((id: string, options: ApiOptions) =>
      guarded(verb, async () => {
        await call(options, `/api/v1/journal/dead/${encodeURIComponent(id)}/${verb}`, "POST", {});
        process.stdout.write(
          options.json
            ? `${JSON.stringify({ ok: true })}\n`
            : `${id}: ${verb === "retry" ? "retrying" : "dropped"}\n`,
        );
      }),
    );
  }
}

/** The outbox's kept entries and its pruning, e.g. "entries 412-980 kept; pruned after 7d (411 since start)". */
function outboxLine(status: Record<string, unknown>): string {
  const seqs = status.outboxSeqs as { first: number; last: number } | null;
  const retentionMs = status.outboxRetentionMs as number;
  const kept = seqs === null ? "empty" : `entries ${seqs.first}-${seqs.last} kept`;
  if (retentionMs === 0) return `${kept}; never pruned (outbox_retention 0)`;
  const days = retentionMs / 86_400_000;
  const retention = Number.isInteger(days) ? `${days}d` : `${retentionMs} ms`;
  return `${kept}; pruned after ${retention} once shipped (${String(status.prunedSinceStart)} since start)`;
}
