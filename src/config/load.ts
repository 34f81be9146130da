// Reading tandem.yml: YAML with positions → schema → cross-field rules → TandemConfig.
// Every problem found is reported at once, each with file, line, column and key path.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { ConfigError, type ConfigProblem, keyPathText } from "./errors.ts";
import { positionOf } from "./positions.ts";
import { err, ok, type Result } from "./result.ts";
import { configFileSchema } from "./schema.ts";
import { type TandemConfig, toTandemConfig } from "./tandem_config.ts";

export const configPathDefault = "tandem.yml";
export const configPathEnv = "TANDEM_CONFIG";

/** `--config` wins, then $TANDEM_CONFIG, then ./tandem.yml. */
export function resolveConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env[configPathEnv] ?? configPathDefault;
}

export function loadConfig(path: string): Result<TandemConfig, ConfigError> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code ?? "unreadable";
    const problem = {
      file: path,
      line: null,
      column: null,
      key: "",
      message: `cannot read the file (${reason})`,
    };
    return err(new ConfigError([problem], { cause }));
  }
  return parseConfigText(text, path);
}

/** `fileName` names the file in messages; relative paths in the config resolve against its folder. */
export function parseConfigText(text: string, fileName: string): Result<TandemConfig, ConfigError> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return err(
      new ConfigError(
        doc.errors.map((e) => ({
          file: fileName,
          line: e.linePos?.[0].line ?? null,
          column: e.linePos?.[0].col ?? null,
          key: "",
          message: `YAML: ${firstLine(e.message)}`,
        })),
      ),
    );
  }
  const at = (
    path: readonly PropertyKey[],
    key: string,
    message: string,
    keyOfLast = false,
  ): ConfigProblem => {
    const { line, column } = positionOf(doc, lineCounter, path, keyOfLast);
    return { file: fileName, line, column, key, message };
  };
  const parsed = configFileSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    const present = (path: readonly PropertyKey[]) => path.length > 0 && doc.hasIn(path as unknown[]);
    const problems = parsed.error.issues.flatMap((issue) => issueProblems(issue, at, present));
    return err(new ConfigError(sortedByPosition(problems)));
  }
  const normalised = toTandemConfig(parsed.data, resolve(fileName));
  if (!normalised.ok) {
    const problems = normalised.problems.map((p) => at(p.path, keyPathText(p.path), p.message, p.keyOfLast));
    return err(new ConfigError(sortedByPosition(problems)));
  }
  return ok(normalised.config);
}

/** Keys of earlier versions, refused with where they went (an unknown key would leave the reader guessing). */
const movedKeys: Partial<Record<string, string>> = {
  // The limit always covered the whole API, not only the store's routes.
  "store.inflight_max": "api.inflight_max",
};

type ProblemAt = (
  path: readonly PropertyKey[],
  key: string,
  message: string,
  keyOfLast?: boolean,
) => ConfigProblem;

function issueProblems(
  issue: z.core.$ZodIssue,
  at: ProblemAt,
  present: (path: readonly PropertyKey[]) => boolean,
): ConfigProblem[] {
  const path = issue.path;
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((name) => {
      const keyPath = [...path, name];
      const key = keyPathText(keyPath);
      const movedTo = movedKeys[key];
      return at(keyPath, key, movedTo === undefined ? "unknown key" : `moved to ${movedTo}`, true);
    });
  }
  if (path.length === 0) return [at(path, "", "the file must be a mapping of keys (see `tandem init`)")];
  return [at(path, keyPathText(path), issueMessage(issue, present(path)))];
}

function issueMessage(issue: z.core.$ZodIssue, present: boolean): string {
  switch (issue.code) {
    case "invalid_type":
      return present ? `expected ${issue.expected}` : `required (${issue.expected})`;
    case "too_big":
      return `must be <= ${String(issue.maximum)}`;
    case "too_small":
      return issue.origin === "string" ? "must not be empty" : `must be >= ${String(issue.minimum)}`;
    case "invalid_value":
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "invalid_union":
      return "options" in issue && Array.isArray(issue.options)
        ? `expected one of ${issue.options.map((v) => JSON.stringify(v)).join(", ")}`
        : issue.message;
    default:
      return issue.message;
  }
}

/** Reading order; problems without a position (whole file) first. Stable for equal positions. */
function sortedByPosition(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.toSorted((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

/** The yaml library appends the position and a source excerpt; we print the position ourselves. */
function firstLine(text: string): string {
  return (text.split("\n")[0] ?? text).replace(/ at line \d+, column \d+:?$/, "");
}
