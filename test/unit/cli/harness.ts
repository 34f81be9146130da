// Runs one registered command in-process with captured output and no process.exit.
import { Command, CommanderError } from "commander";

export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function runCli(register: (program: Command) => void, args: string[]): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const program = new Command()
    .name("tandem")
    .exitOverride()
    .configureOutput({
      writeOut: (text) => {
        stdout += text;
      },
      writeErr: (text) => {
        stderr += text;
      },
    });
  register(program);
  try {
    await program.parseAsync(args, { from: "user" });
    return { exitCode: 0, stdout, stderr };
  } catch (error) {
    if (error instanceof CommanderError) return { exitCode: error.exitCode, stdout, stderr };
    throw error;
  }
}
