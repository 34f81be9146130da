// The `tandem` command. Each subcommand lives in src/cli/commands/<name>.ts and registers itself here.
import { Command } from "commander";

const program = new Command();
program
  .name("tandem")
  .description("High-availability daemon for small fleets: secure mesh, failure detection, leader election.")
  .version("0.1.0")
  .showHelpAfterError();

await program.parseAsync(process.argv);
