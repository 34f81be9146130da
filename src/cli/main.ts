#!/usr/bin/env node
// The `tandem` command. Each subcommand lives in src/cli/commands/<name>.ts and registers itself here.
import { Command } from "commander";
import { registerAgentCommand } from "./commands/agent.ts";
import { registerDevCommand } from "./commands/dev.ts";
import { registerStatusCommand } from "./commands/status.ts";
import { VERSION } from "./version.ts";

const program = new Command();
program
  .name("tandem")
  .description("High-availability daemon for small fleets: secure mesh, failure detection, leader election.")
  .version(VERSION)
  .showHelpAfterError();

registerAgentCommand(program);
registerStatusCommand(program);
registerDevCommand(program);

await program.parseAsync(process.argv);
