// bench/results/<name>.json: one envelope for every bench (what, when, where, verdicts), raw data inside.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Machine } from "./machine.ts";
import type { TargetCheck } from "./target.ts";

export const defaultResultsDir = fileURLToPath(new URL("../results", import.meta.url));

export interface BenchResult<Data = unknown> {
  bench: string;
  /** ISO time the result was written. */
  date: string;
  /** A --quick smoke run: too few samples to quote. */
  quick: boolean;
  machine: Machine;
  targets: TargetCheck[];
  data: Data;
}

export function resultPath(dir: string, bench: string): string {
  return join(dir, `${bench}.json`);
}

/** Writes through a temporary file and a rename, so a reader never sees half a result. */
export function writeResult(dir: string, result: BenchResult): string {
  mkdirSync(dir, { recursive: true });
  const path = resultPath(dir, result.bench);
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(result, null, 2)}\n`);
  renameSync(temporary, path);
  return path;
}

export function readResultJson(path: string): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch {
    return null;
  }
}
