// `tandem agent`: run this node. Two-stage shutdown: the first SIGINT/SIGTERM hands leadership off and
// closes everything; a second signal, or the deadline passing, forces the exit.
import type { Command } from "commander";
import { loadConfig } from "../../config/index.ts";
import { agentLogger, startAgent } from "../agent.ts";
import { hasAgentFlags } from "../agent_flags.ts";
import { configPathFrom } from "../config_source.ts";

const SHUTDOWN_DEADLINE_MS = 5_000;

export function registerAgentCommand(program: Command): void {
  program
    .command("agent")
    .description("run the Tandem agent on this node (mesh, failure detection, leader election, API)")
    .option("-c, --config <file>", "config file (default: $TANDEM_CONFIG or ./tandem.yml)")
    .option(
      "--join <host:port>",
      "join a running cluster through the member at this mesh address instead of bootstrapping a new one " +
        "(this node's certificate must come from the cluster's CA); see docs/membership.md",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  tandem agent --config /etc/tandem/tandem.yml\n  TANDEM_CONFIG=./n1.yml tandem agent\n" +
        "  tandem agent --config n4.yml --join 10.0.0.1:7400   # add this node to a running cluster\n\n" +
        "The peers in the config bootstrap a brand-new cluster only; afterwards the cluster's membership\n" +
        "rules (tandem member list). A node that joins catches up as a learner, then votes.\n\n" +
        "Logs are JSON lines on stdout. SIGINT/SIGTERM stops gracefully (a leader hands off first);\n" +
        `a second signal, or ${SHUTDOWN_DEADLINE_MS / 1000} s passing, forces the exit.`,
    )
    .action(async (options: { config?: string; join?: string }) => {
      const path = configPathFrom(options.config);
      const loaded = loadConfig(path);
      if (!loaded.ok) {
        process.stderr.write(`${loaded.error.format()}\n`);
        process.exitCode = 1;
        return;
      }
      const logger = agentLogger(loaded.value);
      if (!hasAgentFlags()) {
        logger.debug(
          { execArgv: process.execArgv },
          "running without the agent's V8 flags: this Node lacks process.execve (22.15 and later have it)",
        );
      }
      let agent: Awaited<ReturnType<typeof startAgent>>;
      try {
        agent = await startAgent(
          loaded.value,
          logger,
          options.join === undefined ? {} : { join: options.join },
        );
      } catch (error) {
        logger.fatal({ err: error }, "agent failed to start");
        process.stderr.write(`tandem agent: ${(error as Error).message}\n`);
        process.exit(1);
      }
      let stopping = false;
      const onSignal = (signal: NodeJS.Signals) => {
        if (stopping) {
          logger.warn({ signal }, "second signal: forcing exit");
          process.exit(1);
        }
        stopping = true;
        logger.info({ signal }, "shutting down");
        const deadline = setTimeout(() => {
          logger.error("shutdown deadline passed: forcing exit");
          process.exit(1);
        }, SHUTDOWN_DEADLINE_MS);
        deadline.unref();
        agent.stop().then(
          () => process.exit(0),
          (error: unknown) => {
            logger.error({ err: error }, "shutdown failed");
            process.exit(1);
          },
        );
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
    });
}
