import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfigText } from "../../../src/config/index.ts";

const minimal = "node: { id: n1 }\nlisten: 127.0.0.1:7400\n";

function parsedApi(text: string) {
  const result = parseConfigText(text, "/etc/tandem/tandem.yml");
  assert.ok(result.ok, result.ok ? "" : result.error.format());
  return result.value.api;
}

test("config: api.tokens_file is optional and resolved against the config's folder", () => {
  assert.equal(parsedApi(minimal).tokensFile, null);
  assert.equal(
    parsedApi(`${minimal}api: { tokens_file: secrets/tokens.yml }\n`).tokensFile,
    "/etc/tandem/secrets/tokens.yml",
  );
  const both = parsedApi(`${minimal}api: { listen: null, tokens_file: /var/lib/tandem/tokens.yml }\n`);
  assert.deepEqual(both, { listen: null, tokensFile: "/var/lib/tandem/tokens.yml", inflightMax: 256 });
});

test("config: api.tokens_file must be a non-empty path, and api keys stay strict", () => {
  const empty = parseConfigText(`${minimal}api: { tokens_file: "" }\n`, "/etc/tandem/tandem.yml");
  assert.ok(!empty.ok);
  assert.match(empty.error.format(), /tokens_file/);
  const unknown = parseConfigText(`${minimal}api: { tokens: x }\n`, "/etc/tandem/tandem.yml");
  assert.ok(!unknown.ok);
});
