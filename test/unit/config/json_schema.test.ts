import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { configJsonSchema } from "../../../src/config/index.ts";
import { schemaFilePath } from "../../../src/config/json_schema_cli.ts";

test("config schema: schema/tandem.schema.json is up to date (regenerate: npm run schema)", () => {
  const committed: unknown = JSON.parse(readFileSync(schemaFilePath, "utf8"));
  assert.deepEqual(committed, configJsonSchema());
});

test("config schema: strict objects and documented defaults", () => {
  const schema = configJsonSchema() as {
    additionalProperties: boolean;
    required: string[];
    properties: Record<string, { default?: unknown }>;
  };
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(schema.required.sort(), ["listen", "node"]);
  assert.equal(schema.properties.cluster_name?.default, "tandem");
});
