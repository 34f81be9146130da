#!/usr/bin/env node
// The `tandem` command. `tandem agent` first re-executes itself with the agent's V8 flags (agent_flags.ts),
// before the rest of the CLI loads; then program.ts runs the command.
import { execAgentWithFlags } from "./agent_flags.ts";

execAgentWithFlags();
const { runCli } = await import("./program.ts");
await runCli(process.argv);
