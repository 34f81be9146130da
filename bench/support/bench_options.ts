// Command-line options shared by bench/failover.ts and bench/idle.ts.
import { parseArgs } from "node:util";
import { defaultResultsDir } from "./result_file.ts";

export interface BenchOptions {
  /** A short smoke run: few samples, not for quoting. */
  quick: boolean;
  resultsDir: string;
}

export function parseBenchOptions(argv = process.argv.slice(2)): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      "results-dir": { type: "string", default: defaultResultsDir },
    },
  });
  return { quick: values.quick, resultsDir: values["results-dir"] };
}
