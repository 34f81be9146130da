// `tandem dev`: run a local cluster on loopback (what `npm start` runs).
import type { ChildProcess } from "node:child_process";
import { type Command, InvalidArgumentError } from "commander";
import { getJson } from "../api_client.ts";
import { type DevNode, pipeLogs, prepareDevCluster, spawnAgent } from "../dev_cluster.ts";

function integerIn(min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return parsed;
  };
}

async function waitForLeader(
  nodes: DevNode[],
  timeoutMs: number,
): Promise<{ leaderId: string; term: number } | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const node of nodes) {
      const status = (await getJson(node.apiUrl, "/api/v1/status", 500).catch(() => null)) as {
        leaderId: string | null;
        term: number;
      } | null;
      if (status?.leaderId) return { leaderId: status.leaderId, term: status.term };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
}

export function registerDevCommand(program: Command): void {
  program
    .command("dev")
    .description("run a local cluster of agents on 127.0.0.1 with the built-in defaults (Ctrl-C stops it)")
    .option("-n, --nodes <count>", "number of nodes, 1 to 9", integerIn(1, 9), 3)
    .option("--dir <folder>", "where configs, certificates and data live", ".tandem-dev")
    .option(
      "--base-port <port>",
      "node i listens on base+10(i-1) (mesh) and +1 (API)",
      integerIn(1024, 65000),
      7410,
    )
    .option("--security <mode>", "mtls (a dev CA is created) or psk", "mtls")
    .option("--witness", "make the last node a witness (votes, never leads)", false)
    .option("--quiet", "do not print the agents' logs", false)
    .addHelpText(
      "after",
      "\nExamples:\n  tandem dev                      # 3 nodes: APIs on :7411 :7421 :7431\n" +
        "  tandem dev --nodes 2 --witness  # a pair plus a witness would be --nodes 3 --witness\n" +
        "  tandem status --api http://127.0.0.1:7411",
    )
    .action(
      async (options: {
        nodes: number;
        dir: string;
        basePort: number;
        security: string;
        witness: boolean;
        quiet: boolean;
      }) => {
        if (options.security !== "mtls" && options.security !== "psk") {
          process.stderr.write(`tandem dev: --security must be mtls or psk, got ${options.security}\n`);
          process.exitCode = 1;
          return;
        }
        const nodes = await prepareDevCluster({ ...options, security: options.security });
        const children = new Map<string, ChildProcess>();
        let stopping = false;
        for (const node of nodes) {
          const child = spawnAgent(node.configPath);
          children.set(node.id, child);
          if (!options.quiet) pipeLogs(child, node.id, (line) => process.stdout.write(`${line}\n`));
          child.on("exit", (code, signal) => {
            children.delete(node.id);
            if (!stopping)
              process.stdout.write(`tandem dev: ${node.id} exited (${signal ?? `code ${code}`})\n`);
            if (stopping && children.size === 0) process.exit(0);
          });
        }
        const stop = () => {
          if (stopping) {
            for (const child of children.values()) if (child.pid) process.kill(child.pid, "SIGKILL");
            process.exit(1);
          }
          stopping = true;
          process.stdout.write("tandem dev: stopping agents (Ctrl-C again to force)\n");
          for (const child of children.values()) if (child.pid) process.kill(child.pid, "SIGTERM");
          if (children.size === 0) process.exit(0);
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
        // The agents run in their own process groups; never leave one behind, whatever ends this process.
        process.on("exit", () => {
          for (const child of children.values()) if (child.pid) process.kill(child.pid, "SIGKILL");
        });

        const leader = await waitForLeader(nodes, 10_000);
        const lines = [
          "",
          `Tandem dev cluster: ${nodes.length} node(s), ${options.security}, files in ${options.dir}`,
          ...nodes.map(
            (n) =>
              `  ${n.id}  API ${n.apiUrl}   status: ${n.apiUrl}/api/v1/status   mesh 127.0.0.1:${n.meshPort}`,
          ),
          leader ? `Leader: ${leader.leaderId} (term ${leader.term})` : "No leader yet: see the logs above.",
          `Try: npm run tandem -- status --api ${nodes[0]?.apiUrl}     Ctrl-C stops the cluster.`,
          "",
        ];
        process.stdout.write(`${lines.join("\n")}\n`);
      },
    );
}
