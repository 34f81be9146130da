// Golden interaction transcripts: every test/sim/scenarios/*.txt is replayed command by command against
// the real election core and its output compared with the file. REWRITE=1 rewrites the files with the
// actual output instead, for review in the diff.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parseCommand } from "./interaction/command.ts";
import { InteractionEnv } from "./interaction/env.ts";
import { handlers } from "./interaction/handlers.ts";
import { formatScript, parseScript } from "./interaction/script.ts";
import { realElection } from "./swarm.ts";

const scenariosDir = join(import.meta.dirname, "scenarios");
const rewrite = process.env.REWRITE === "1";

for (const file of readdirSync(scenariosDir)
  .filter((f) => f.endsWith(".txt"))
  .sort()) {
  test(`sim: interaction: ${file}`, () => {
    const path = join(scenariosDir, file);
    const blocks = parseScript(readFileSync(path, "utf8"));
    assert.ok(
      blocks[0]?.preamble.some((l) => l.startsWith("#")),
      `${file} must open with its claim`,
    );
    const env = new InteractionEnv(realElection);
    const outputs = blocks.map((block) => {
      const command = parseCommand(block.command);
      const handler = handlers[command.name];
      if (handler === undefined) throw new Error(`${file}:${block.line}: unknown command ${command.name}`);
      handler(env, command);
      const out = env.takeOutput();
      return out.length > 0 ? out : ["ok"];
    });
    if (rewrite) {
      writeFileSync(path, formatScript(blocks, outputs));
      return;
    }
    blocks.forEach((block, k) => {
      assert.deepEqual(outputs[k], block.expected, `${file}:${block.line}: ${block.command}`);
    });
  });
}
