// The exec driver: a service's start, stop and status are commands (argv, no shell), each with a timeout,
// their output logged, and TANDEM_SERVICE, TANDEM_NODE and TANDEM_TERM (the fencing token) in their
// environment so a script can stamp what it does with the grant it acted under.
import type { Logger } from "pino";
import type { ExecDriverConfig } from "../config/index.ts";
import { type CommandOutcome, commandSucceeded, runCommand } from "../shell/index.ts";

/** Who acts, and under which grant: what every driver command is told. */
export interface DriverContext {
  service: string;
  node: string;
  /** The grant's fencing token, "term.seq". */
  fence: string;
  /** Where a command's output goes for `tandem service logs`, besides the agent's log. */
  output?: (step: string, outcome: CommandOutcome) => void;
}

export type DriverStatus = "running" | "stopped" | "unknown";

export interface Driver {
  readonly kind: string;
  start(context: DriverContext): Promise<boolean>;
  stop(context: DriverContext): Promise<boolean>;
  /** "unknown" when the driver has no way to tell. */
  status(context: DriverContext): Promise<DriverStatus>;
}

export function driverEnv(context: DriverContext): Record<string, string> {
  return { TANDEM_SERVICE: context.service, TANDEM_NODE: context.node, TANDEM_TERM: context.fence };
}

export class ExecDriver implements Driver {
  readonly kind = "exec";
  private readonly config: ExecDriverConfig;
  private readonly logger: Logger;

  constructor(config: ExecDriverConfig, logger: Logger) {
    this.config = config;
    this.logger = logger;
  }

  async start(context: DriverContext): Promise<boolean> {
    return commandSucceeded(await this.run("start", this.config.start, context));
  }

  async stop(context: DriverContext): Promise<boolean> {
    return commandSucceeded(await this.run("stop", this.config.stop, context));
  }

  async status(context: DriverContext): Promise<DriverStatus> {
    if (this.config.status === null) return "unknown";
    const outcome = await this.run("status", this.config.status, context, "debug");
    return commandSucceeded(outcome) ? "running" : "stopped";
  }

  private async run(
    step: string,
    argv: readonly string[],
    context: DriverContext,
    successLevel: "info" | "debug" = "info",
  ): Promise<CommandOutcome> {
    const outcome = await runCommand(argv, { env: driverEnv(context), timeoutMs: this.config.timeoutMs });
    context.output?.(step, outcome);
    const fields = { step, fence: context.fence, ...outcome };
    if (commandSucceeded(outcome)) this.logger[successLevel](fields, `${step} ran`);
    else this.logger.warn(fields, outcome.timedOut ? `${step} timed out` : `${step} failed`);
    return outcome;
  }
}
