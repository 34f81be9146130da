// Seeds for the fuzz tests: a fixed default, so the suite is repeatable, and TANDEM_FUZZ_SEED to replay a
// failure or explore new inputs (TANDEM_FUZZ_COUNT runs more cases). A failure names its seed, the case
// and the command that replays it.
import { Prng } from "../../src/core/prng.ts";

export interface FuzzRun {
  rng: Prng;
  seed: string;
  count: number;
}

export function fuzzRun(defaultSeed: string, defaultCount: number): FuzzRun {
  const seed = process.env.TANDEM_FUZZ_SEED || defaultSeed;
  const count = Number(process.env.TANDEM_FUZZ_COUNT) || defaultCount;
  return { rng: new Prng(seed), seed, count };
}

/** Runs one case; a failure is rethrown with the seed, the case and how to replay it. */
export async function fuzzCase<T>(
  run: FuzzRun,
  testFile: string,
  index: number,
  what: () => string,
  body: () => Promise<T> | T,
): Promise<T> {
  try {
    return await body();
  } catch (error) {
    const replay = `TANDEM_FUZZ_SEED=${JSON.stringify(run.seed)} npx node --test ${testFile}`;
    const message = `fuzz seed=${run.seed} case ${index}: ${what()}\nreplay: ${replay}\n${(error as Error).message}`;
    process.stderr.write(`${message}\n`);
    throw new Error(message, { cause: error });
  }
}
