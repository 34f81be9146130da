// Writes schema/tandem.schema.json (run by `npm run schema`); a unit test fails when it is out of date.
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { configJsonSchemaText } from "./json_schema.ts";

export const schemaFilePath = resolve(import.meta.dirname, "../../schema/tandem.schema.json");

if (import.meta.main) {
  writeFileSync(schemaFilePath, configJsonSchemaText());
  process.stdout.write(`wrote ${schemaFilePath}\n`);
}
