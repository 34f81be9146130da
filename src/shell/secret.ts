// A secret (a broker password, an S3 key) from its file or its environment variable, as the config names
// it: never inline in tandem.yml, and never in a message (errors say where it was looked for, not what).
import { readFile } from "node:fs/promises";

/** The secret, trimmed from its file or as the variable holds it; undefined when neither is named. */
export async function readSecret(
  file: string | null,
  env: string | null,
  label: string,
): Promise<string | undefined> {
  if (file !== null) {
    try {
      return (await readFile(file, "utf8")).trim();
    } catch (error) {
      throw new Error(`${label}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? "error"}`);
    }
  }
  if (env === null) return undefined;
  const value = process.env[env];
  if (value === undefined) throw new Error(`${label}: $${env} is not set`);
  return value;
}

/** Where the config says a secret is: a file (absolute) or an environment variable. */
export type SecretFrom = { file: string } | { env: string };

/** The secret from where the config says it is; an error (naming `label`) when it is not there. */
export async function readSecretFrom(source: SecretFrom, label: string): Promise<string> {
  const value = await readSecret(
    "file" in source ? source.file : null,
    "env" in source ? source.env : null,
    label,
  );
  if (value === undefined) throw new Error(`${label}: not set`);
  return value;
}
