import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { DataDirLock, DataDirLockedError } from "../../../src/cli/data_dir_lock.ts";

const dir = mkdtempSync(join(tmpdir(), "tandem-lock-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("data dir lock: a second agent on the same data dir is refused while the first lives", () => {
  const first = new DataDirLock(dir);
  first.acquire();
  writeFileSync(first.path, String(process.ppid)); // a live process that is not us
  assert.throws(() => new DataDirLock(dir).acquire(), DataDirLockedError);
  first.release();
  assert.equal(existsSync(first.path), false);
});

test("data dir lock: a lock left by a dead process is taken over", () => {
  const dead = spawnSync(process.execPath, ["-e", "process.pid"]).pid;
  const lock = new DataDirLock(dir);
  writeFileSync(lock.path, String(dead));
  lock.acquire();
  lock.release();
  assert.equal(existsSync(lock.path), false);
});
