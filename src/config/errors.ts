// Configuration problems: every one names the file, the position when known, and the key path.

export interface ConfigProblem {
  /** The file as the operator named it (config file, or a key/PSK/cert file it points to). */
  file: string;
  /** 1-based; null when the problem is about the whole file or a file it points to. */
  line: number | null;
  column: number | null;
  /** Key path in YAML spelling, e.g. `peers[1].address`; "" for the document itself. */
  key: string;
  message: string;
}

/** One or more problems that stop a configuration from being used. Never carries secret values. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[], options?: { cause?: unknown }) {
    super(problems.map(formatProblem).join("\n"), options);
    if (problems.length === 0) throw new Error("ConfigError needs at least one problem");
    this.problems = problems;
  }

  /** One line per problem: `file:line:col: key: message`. */
  format(): string {
    return this.message;
  }
}

export function formatProblem(p: ConfigProblem): string {
  const position = p.line === null ? "" : p.column === null ? `:${p.line}` : `:${p.line}:${p.column}`;
  const key = p.key === "" ? "" : `${p.key}: `;
  return `${p.file}${position}: ${key}${p.message}`;
}

/** `["peers", 1, "address"]` → `peers[1].address`. */
export function keyPathText(path: readonly PropertyKey[]): string {
  let text = "";
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else text += text === "" ? String(segment) : `.${String(segment)}`;
  }
  return text;
}
