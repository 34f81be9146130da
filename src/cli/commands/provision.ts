// `tandem provision status` (each target's last pass: per database and replica its state and lag, drift,
// orphans, preconditions; the same on every node), `tandem provision prune --yes` (drop the orphans on the
// replicas) and `tandem provision rotate-password` (apply the follower's new password): docs/provision.md.
import type { Command } from "commander";
import { type ApiCommandOptions, withApiOptions } from "../api_client.ts";
import { callApi, capabilityGuard } from "../capability_command.ts";
import { escapeControls } from "../terminal_text.ts";

const answerTimeoutMs = 120_000;

interface Status {
  target: string;
  passed: boolean;
  leader?: string;
  term?: number;
  passEndedAt?: string;
  error?: string | null;
  preconditions?: Array<{ server: string; problem: string; fix: string }>;
  databases?: Array<{
    database: string;
    replica: string;
    state: string;
    lagBytes: number | null;
    lagSeconds: number | null;
    drift: Array<{ table: string; difference: string }>;
    lastError: string | null;
  }>;
  orphans?: Array<{ replica: string; database: string }>;
  synchronousStandbyNames?: string | null;
}

const guarded = capabilityGuard(
  "provision ",
  "/api/v1/provision",
  "this node has no provision: section (docs/provision.md)",
);

const call = (options: ApiCommandOptions, path: string, method = "GET", body?: unknown) =>
  callApi(options, path, { method, body, timeoutMs: answerTimeoutMs });

function printStatus(s: Status): void {
  if (!s.passed) {
    process.stdout.write(`${s.target}: no pass yet (the leader runs one every interval)\n`);
    return;
  }
  process.stdout.write(
    `${s.target}: last pass ${s.passEndedAt} by ${s.leader} (term ${s.term})${s.error ? `, stopped: ${s.error}` : ""}\n`,
  );
  if (s.synchronousStandbyNames) {
    process.stdout.write(`  the primary waits for: ${escapeControls(s.synchronousStandbyNames)}\n`);
  }
  for (const p of s.preconditions ?? [])
    process.stdout.write(`  ! ${p.server}: ${p.problem}\n    fix: ${p.fix}\n`);
  for (const d of s.databases ?? []) {
    const lag =
      d.lagBytes === null
        ? ""
        : `  lag ${d.lagBytes} B${d.lagSeconds === null ? "" : `, ${d.lagSeconds.toFixed(1)} s`}`;
    process.stdout.write(`  ${d.replica.padEnd(12)} ${d.database.padEnd(24)} ${d.state.padEnd(9)}${lag}\n`);
    if (d.lastError) process.stdout.write(`    error: ${escapeControls(d.lastError)}\n`);
    for (const x of d.drift)
      process.stdout.write(`    drift: ${escapeControls(x.table)}: ${escapeControls(x.difference)}\n`);
  }
  for (const o of s.orphans ?? []) {
    process.stdout.write(
      `  ${o.replica.padEnd(12)} ${o.database.padEnd(24)} orphaned (dropped on the primary; tandem provision prune --yes)\n`,
    );
  }
}

export function registerProvisionCommands(program: Command): void {
  const provision = program
    .command("provision")
    .description("keep database replicas complete, run by the leader (docs/provision.md)");

  withApiOptions(
    provision
      .command("status")
      .description("each target's last pass: state and lag per database and replica"),
  ).action((options: ApiCommandOptions) =>
    guarded("status", async () => {
      const answer = (await call(options, "/api/v1/provision")) as { targets: Status[] };
      if (options.json) return void process.stdout.write(`${JSON.stringify(answer)}\n`);
      for (const target of answer.targets) printStatus(target);
    }),
  );

  withApiOptions(
    provision
      .command("prune")
      .description("drop the databases orphaned on the replicas (dropped on the primary): for good")
      .argument("<target>", "a target of provision.targets")
      .option("--yes", "yes, drop them"),
  ).action((target: string, options: ApiCommandOptions & { yes?: boolean }) =>
    guarded("prune", async () => {
      if (options.yes !== true)
        throw new Error("dropping databases is for good: add --yes (tandem provision status lists them)");
      const answer = (await call(options, `/api/v1/provision/${target}/prune`, "POST", { yes: true })) as {
        dropped: Array<{ replica: string; database: string }>;
      };
      if (options.json) return void process.stdout.write(`${JSON.stringify(answer)}\n`);
      for (const d of answer.dropped) process.stdout.write(`dropped ${d.database} on ${d.replica}\n`);
      if (answer.dropped.length === 0) process.stdout.write("no orphans\n");
    }),
  );

  withApiOptions(
    provision
      .command("release")
      .description("stop replicating a database (its subscriptions and slots dropped; the copies stay)")
      .argument("<target>", "a target of provision.targets")
      .argument("<database>", "the database"),
  )
    .addHelpText(
      "after",
      "\nThe primary refuses to drop a database while a replication slot holds it: release it first, then\n" +
        "DROP DATABASE on the primary; the copies on the replicas are then orphans (tandem provision prune).",
    )
    .action((target: string, database: string, options: ApiCommandOptions) =>
      guarded("release", async () => {
        await call(options, `/api/v1/provision/${target}/release`, "POST", { database });
        process.stdout.write(`${database} is no longer replicated; the primary may drop it now\n`);
      }),
    );

  withApiOptions(
    provision
      .command("rotate-password")
      .description(
        "apply the follower role's new password (from its password_file or password_env) everywhere",
      )
      .argument("<target>", "a target of provision.targets"),
  )
    .addHelpText(
      "after",
      "\nWrite the new password into the follower's password_file on every node (or set its variable),\nthen run this on any node: the leader sets it on the primary and in every subscription.",
    )
    .action((target: string, options: ApiCommandOptions) =>
      guarded("rotate-password", async () => {
        await call(options, `/api/v1/provision/${target}/rotate-password`, "POST");
        process.stdout.write(`the follower's password of ${target} is now the configured one\n`);
      }),
    );
}
