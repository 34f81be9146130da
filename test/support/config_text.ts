// tandem.yml text parsed as the loader would, for config tests: the config, or its problems as formatted.
import assert from "node:assert/strict";
import { parseConfigText, type TandemConfig } from "../../src/config/index.ts";

/** Parsed as /etc/tandem/tandem.yml (relative paths resolve there); fails the test on any problem. */
export function parsedConfig(text: string): TandemConfig {
  const result = parseConfigText(text, "/etc/tandem/tandem.yml");
  assert.ok(result.ok, result.ok ? "" : result.error.format());
  return result.value;
}

/** The formatted problems of a config that must be refused, for a file named tandem.yml. */
export function configProblems(text: string): string {
  const result = parseConfigText(text, "tandem.yml");
  assert.ok(!result.ok, "expected the config to be refused");
  return result.error.format();
}
