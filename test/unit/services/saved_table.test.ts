import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { pino } from "pino";
import { SavedTable } from "../../../src/services/saved_table.ts";

const logger = pino({ level: "silent" });
const entry = (owner: string | null) => ({
  owner,
  code: "running",
  reason: "",
  report: null,
  failbackIn: null,
});

test("saved table: owners and drains survive a restart; written only when they change; a bad file is ignored", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tandem-saved-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "services.json");
  const first = new SavedTable(dir, logger);
  assert.deepEqual([first.services(), first.drained()], [{}, []]);
  first.save({ term: 3, services: { web: entry("n2"), db: entry(null) }, drained: ["n1"] });
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const written = statSync(path).mtimeMs;
  // Only reports changed: not rewritten.
  first.save({
    term: 3,
    services: { web: { ...entry("n2"), code: "placed" }, db: entry(null) },
    drained: ["n1"],
  });
  assert.equal(statSync(path).mtimeMs, written);

  const restarted = new SavedTable(dir, logger);
  assert.deepEqual(restarted.drained(), ["n1"]);
  assert.deepEqual(
    Object.entries(restarted.services()).map(([name, e]) => [name, e.owner, e.code]),
    [
      ["web", "n2", "saved"],
      ["db", null, "saved"],
    ],
  );
  writeFileSync(path, "{not json");
  assert.deepEqual(new SavedTable(dir, logger).drained(), []);
  assert.equal(readFileSync(path, "utf8"), "{not json", "left for the operator to look at");
});
