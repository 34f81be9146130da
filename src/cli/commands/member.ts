// `tandem member ...`: the cluster's membership (docs/membership.md). Every subcommand but
// force-new-cluster asks a running agent through /api/v1/members; the change is made by the leader and
// the command returns once a quorum holds it. Exit codes: 0 done, 1 refused, failed or unreachable.
import { type Command, InvalidArgumentError, Option } from "commander";
import { loadConfig, nodeIdPattern, parseHostPort } from "../../config/index.ts";
import { apiBaseUrl, apiCredentialsFrom, type CredentialOptions, withApiOptions } from "../api_client.ts";
import { configPathFrom } from "../config_source.ts";
import { describeForcedCluster, forceNewCluster } from "../force_new_cluster.ts";
import { MemberClient, type MemberUpdate } from "../member_client.ts";
import { replaceMember, waitUntilVoting } from "../member_replace.ts";
import { renderMembers } from "../member_table.ts";
import { escapeControls } from "../terminal_text.ts";

interface ApiOptions extends CredentialOptions {
  config?: string;
  api?: string;
  json?: boolean;
}

const waitTimeoutDefault = "120s";
const priorityMax = 1000;

export function parseNodeIdOption(text: string): string {
  if (!nodeIdPattern.test(text)) {
    throw new InvalidArgumentError(
      "expected 1-63 characters of a-z 0-9 . _ - starting with a letter or digit",
    );
  }
  return text;
}

export function parseAddressOption(text: string): string {
  const parsed = parseHostPort(text);
  if (!parsed.ok) throw new InvalidArgumentError(parsed.reason);
  return text;
}

export function parsePriorityOption(text: string): number {
  if (!/^\d{1,4}$/.test(text) || Number(text) > priorityMax) {
    throw new InvalidArgumentError(`an integer from 0 to ${priorityMax}`);
  }
  return Number(text);
}

/** "90s", "2m", "1500ms", or bare seconds. */
export function parseDurationOption(text: string): number {
  const match = /^(\d{1,7})(ms|s|m)?$/.exec(text);
  if (match === null || Number(match[1]) === 0) {
    throw new InvalidArgumentError('a duration such as "120s", "5m" or "1500ms"');
  }
  const scale = { ms: 1, s: 1_000, m: 60_000 }[match[2] ?? "s"] ?? 1_000;
  return Number(match[1]) * scale;
}

function clientFrom(options: ApiOptions): MemberClient {
  const base = apiBaseUrl({ ...options, configPath: configPathFrom(options.config) });
  return new MemberClient(base, apiCredentialsFrom(options));
}

/** Runs an action; any error is printed (escaped: it may echo a server's message) with exit code 1. */
function action<A extends unknown[]>(run: (command: Command, ...args: A) => Promise<void>) {
  return async (...args: [...A, Command]) => {
    const command = args.at(-1) as Command;
    try {
      await run(command, ...(args.slice(0, -1) as A));
    } catch (error) {
      const name = `tandem member ${command.name()}`;
      command.configureOutput().writeErr?.(`${name}: ${escapeLines((error as Error).message)}\n`);
      process.exitCode = 1;
    }
  };
}

function out(command: Command, text: string): void {
  command.configureOutput().writeOut?.(`${escapeLines(text)}\n`);
}

/** Text from a server or a file, escaped line by line so that its own line breaks still print as such. */
function escapeLines(text: string): string {
  return text.split("\n").map(escapeControls).join("\n");
}

/** Prints one committed change. */
function changed(command: Command, options: ApiOptions, what: string, version: number): void {
  out(
    command,
    options.json ? JSON.stringify({ version }) : `${what}: membership v${version}, held by a quorum`,
  );
}

export function registerMemberCommands(program: Command): void {
  const member = program
    .command("member")
    .description("list and change the cluster's membership: add, remove, replace, promote, demote, update")
    .addHelpText(
      "after",
      "\nThe membership is cluster state: tandem.yml's peers only bootstrap a new cluster. Each change goes\n" +
        "through the leader, one at a time, and the command returns once a quorum holds it. See docs/membership.md.",
    );
  registerList(member);
  registerAdd(member);
  registerSimpleChanges(member);
  registerUpdate(member);
  registerReplace(member);
  registerForceNewCluster(member);
}

function registerList(member: Command): void {
  const command = member
    .command("list")
    .description(
      "the membership: every node with its address, role, priority, vote, link and announced version",
    );
  withApiOptions(command)
    .addHelpText(
      "after",
      "\nExamples:\n  tandem member list\n  tandem member list --api http://127.0.0.1:7411 --json",
    )
    .action(
      action(async (command, options: ApiOptions) => {
        const doc = await clientFrom(options).list();
        command
          .configureOutput()
          .writeOut?.(options.json ? `${JSON.stringify(doc, null, 2)}\n` : renderMembers(doc));
      }),
    );
}

interface NewNodeOptions extends ApiOptions {
  address: string;
  witness?: boolean;
  priority?: number;
  timeout?: number;
}

/** --address, --witness, --priority and --timeout: the new node of `add` and `replace`. */
function withNewNodeOptions(command: Command, timeoutWhat: string): Command {
  return command
    .requiredOption(
      "--address <host:port>",
      "where the other nodes dial the new node (its advertise address)",
      parseAddressOption,
    )
    .option("--witness", "the new node is a witness: it votes, never leads")
    .option("--priority <n>", "0-1000, higher leads when healthy (default 100)", parsePriorityOption)
    .option("--timeout <duration>", `${timeoutWhat} (default ${waitTimeoutDefault})`, parseDurationOption);
}

function newNodeOf(id: string, options: NewNodeOptions) {
  const role: "member" | "witness" = options.witness ? "witness" : "member";
  return { id, address: options.address, role, priority: options.priority ?? 100 };
}

function timeoutOf(options: NewNodeOptions): number {
  return options.timeout ?? parseDurationOption(waitTimeoutDefault);
}

function registerAdd(member: Command): void {
  const command = member
    .command("add")
    .description("add a node as a learner; the leader makes it a voter once it has caught up")
    .argument("<id>", "the new node's id (its certificate's CN)", parseNodeIdOption)
    .option("--learner", "keep it a learner (no vote) until `tandem member promote`")
    .option("--wait", "after the add, wait until the node votes (start it meanwhile), printing progress");
  withApiOptions(withNewNodeOptions(command, "with --wait: how long to wait"))
    .addHelpText(
      "after",
      "\nWithout --wait the command returns once the cluster holds the add; the node votes after you start it\n" +
        "(with --join, or a config listing the members: alone in its file it would bootstrap a cluster of its\n" +
        "own) and it has caught up. A new node can also add itself: start it with `tandem agent --join ADDRESS`.\n\n" +
        "Examples:\n  tandem member add n4 --address 10.0.0.4:7400\n" +
        "  tandem member add n4 --address 10.0.0.4:7400 --wait --timeout 5m\n" +
        "  tandem member add w1 --address 10.0.0.9:7400 --witness",
    )
    .action(
      action(async (command, id: string, options: NewNodeOptions & { learner?: boolean; wait?: boolean }) => {
        if (options.wait && options.learner)
          throw new Error("--wait waits for a vote, which a --learner never gets");
        const client = clientFrom(options);
        const version = await client.add({ ...newNodeOf(id, options), learner: options.learner === true });
        changed(command, options, `added ${id} at ${options.address} as a learner`, version);
        if (options.wait) {
          await waitUntilVoting(client, id, {
            timeoutMs: timeoutOf(options),
            report: (line) => out(command, line),
          });
          out(command, `${id} votes`);
        } else if (!options.json && !options.learner) {
          out(command, `start ${id}'s agent: it votes once it has caught up (tandem member list shows it)`);
        }
      }),
    );
}

function registerSimpleChanges(member: Command): void {
  const changes = [
    {
      name: "remove",
      description: "remove a node from the membership (it stops voting and leading)",
      done: "removed",
      examples: "  tandem member remove n3\n  tandem member remove n3 --force    # n3 and others are down",
    },
    {
      name: "promote",
      description: "make a learner a voter",
      done: "promoted",
      examples: "  tandem member promote n4",
    },
    {
      name: "demote",
      description: "make a voter a learner (it keeps hearing the leader, but neither votes nor leads)",
      done: "demoted",
      examples: "  tandem member demote n2",
    },
  ] as const;
  for (const c of changes) {
    const command = member
      .command(c.name)
      .description(c.description)
      .argument("<id>", "the node's id", parseNodeIdOption)
      .option("--force", "even if fewer healthy voters than a quorum would remain (the cluster may stall)");
    withApiOptions(command)
      .addHelpText("after", `\nExamples:\n${c.examples}`)
      .action(
        action(async (command, id: string, options: ApiOptions & { force?: boolean }) => {
          const version = await clientFrom(options)[c.name](id, options.force === true);
          changed(command, options, `${c.done} ${id}`, version);
        }),
      );
  }
}

function registerUpdate(member: Command): void {
  const command = member
    .command("update")
    .description("change a node's address, priority or role")
    .argument("<id>", "the node's id", parseNodeIdOption)
    .option("--address <host:port>", "its new address (then restart it there)", parseAddressOption)
    .option("--priority <n>", "0-1000, higher leads when healthy", parsePriorityOption)
    .addOption(new Option("--role <role>", "its new role").choices(["member", "witness"]));
  withApiOptions(command)
    .addHelpText(
      "after",
      "\nExamples:\n  tandem member update n2 --address 10.0.1.2:7400\n  tandem member update n1 --priority 200",
    )
    .action(
      action(async (command, id: string, options: ApiOptions & MemberUpdate) => {
        const { address, priority, role } = options;
        if (address === undefined && priority === undefined && role === undefined) {
          throw new Error("name at least one of --address, --priority, --role");
        }
        const version = await clientFrom(options).update(id, {
          ...(address === undefined ? {} : { address }),
          ...(priority === undefined ? {} : { priority }),
          ...(role === undefined ? {} : { role }),
        });
        changed(command, options, `updated ${id}`, version);
      }),
    );
}

function registerReplace(member: Command): void {
  const command = member
    .command("replace")
    .description("replace a node by a new one: add NEW, wait until it votes, remove OLD")
    .argument("<old>", "the node to retire (may be dead)", parseNodeIdOption)
    .argument("<new>", "the new node's id (its certificate's CN)", parseNodeIdOption)
    .option("--force", "remove OLD even if fewer healthy voters than a quorum would remain");
  withApiOptions(withNewNodeOptions(command, "how long to wait for NEW to vote"))
    .addHelpText(
      "after",
      "\nEach step is committed before the next. Start NEW's agent (with its certificate from the cluster CA)\n" +
        "with `tandem agent --join ADDRESS` (any member's mesh address) while the command waits.\n" +
        "After a failure the command says which step failed and what state the cluster is in; run it again\n" +
        "to continue.\n\nExample:\n  tandem member replace n3 n4 --address 10.0.0.4:7400",
    )
    .action(
      action(async (command, oldId: string, newId: string, options: NewNodeOptions & { force?: boolean }) => {
        const { address, role, priority } = newNodeOf(newId, options);
        const version = await replaceMember(clientFrom(options), {
          oldId,
          newId,
          address,
          role,
          priority,
          force: options.force === true,
          timeoutMs: timeoutOf(options),
          report: (line) => out(command, options.json ? JSON.stringify({ progress: line }) : line),
        });
        if (options.json) out(command, JSON.stringify({ version }));
      }),
    );
}

function registerForceNewCluster(member: Command): void {
  member
    .command("force-new-cluster")
    .description("OFFLINE, after losing a majority for good: make this stopped node a cluster of one")
    .option("-c, --config <file>", "this node's config (default: $TANDEM_CONFIG or ./tandem.yml)")
    .option("--yes", "really rewrite the election state (without it, only shows what it would do)")
    .addHelpText(
      "after",
      "\nRun it on ONE survivor whose agent is stopped, when the voters that are gone can never come back.\n" +
        "It rewrites election-state.json in data_dir so that this node holds a membership of itself alone,\n" +
        "with a higher term and version than any the old cluster held; then start it and add the others back.\n" +
        "If old voters that form a majority of the old membership still run, this can make two leaders:\n" +
        "stop them first. See docs/membership.md.\n\n" +
        "Example:\n  tandem member force-new-cluster --config /etc/tandem/tandem.yml --yes",
    )
    .action(
      action(async (command, options: { config?: string; yes?: boolean }) => {
        const path = configPathFrom(options.config);
        const loaded = loadConfig(path);
        if (!loaded.ok) throw new Error(loaded.error.format());
        const report = forceNewCluster(loaded.value, { write: options.yes === true });
        command.configureOutput().writeOut?.(escapeLines(describeForcedCluster(report, path)));
        if (report.written) return;
        throw new Error(
          "refused without --yes: this discards the old cluster's membership and is unsafe while a majority of its " +
            "voters still runs. Stop every other node first, then run it again with --yes",
        );
      }),
    );
}
