// The JSON Schema of tandem.yml, for editors (yaml-language-server) and for documentation. It describes the
// file as written, so defaults appear and nothing is required that the loader fills in.
import { z } from "zod";
import { configFileSchema } from "./schema.ts";

export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configFileSchema, { io: "input", target: "draft-2020-12" });
}

/** Exactly what schema/tandem.schema.json holds. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
