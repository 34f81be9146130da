import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  CorruptStateError,
  FileHardStateStore,
  HARD_STATE_FILE,
} from "../../../src/cluster/hard_state_store.ts";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tandem-hs-"));
  dirs.push(dir);
  return dir;
}

test("hard state: a new data dir starts at term 0 with no vote", () => {
  assert.deepEqual(new FileHardStateStore(freshDir()).load(), { term: 0, votedFor: null });
});

test("hard state: what is saved is what a new store (a restarted node) loads; no temp file is left", () => {
  const dir = freshDir();
  new FileHardStateStore(dir).save({ term: 7, votedFor: "n2" });
  new FileHardStateStore(dir).save({ term: 8, votedFor: null });
  assert.deepEqual(new FileHardStateStore(dir).load(), { term: 8, votedFor: null });
  assert.deepEqual(readdirSync(dir), [HARD_STATE_FILE]);
});

test("hard state: a corrupt file refuses to start rather than forgetting the term", () => {
  for (const text of ["{", '{"term":-1,"votedFor":null}', '{"term":3}', ""]) {
    const dir = freshDir();
    writeFileSync(join(dir, HARD_STATE_FILE), text);
    assert.throws(() => new FileHardStateStore(dir).load(), CorruptStateError, text);
  }
});
