import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import { DataDirLock, DataDirLockedError } from "../../../src/cli/data_dir_lock.ts";

const root = mkdtempSync(join(tmpdir(), "tandem-lock-"));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => mkdtempSync(join(root, `d${dirs++}-`));

const lockModule = new URL("../../../src/cli/data_dir_lock.ts", import.meta.url).href;

/** Another process that takes the lock on `dir` and holds it until killed, collecting garbage once taken. */
async function holdInChild(dir: string): Promise<ChildProcess> {
  const script =
    `const { DataDirLock } = await import(${JSON.stringify(lockModule)});` +
    `new DataDirLock(${JSON.stringify(dir)}).acquire(); gc(); console.log("held"); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["--expose-gc", "--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [line] = (await once(child.stdout!, "data")) as [Buffer];
  assert.equal(line.toString().trim(), "held");
  return child;
}

async function sigkill(child: ChildProcess): Promise<void> {
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
}

test("data dir lock: a second process is refused while the first holds the lock, and told its pid", async (t) => {
  const dir = freshDir();
  const child = await holdInChild(dir);
  t.after(() => child.kill("SIGKILL"));
  assert.throws(
    () => new DataDirLock(dir).acquire(),
    (error: Error) =>
      error instanceof DataDirLockedError &&
      error.message.includes(`another agent (pid ${child.pid}) holds this data directory`),
  );
  // The refusal read the holder's pid from the file; the holder still holds.
  assert.throws(() => new DataDirLock(dir).acquire(), DataDirLockedError);
});

test("data dir lock: a holder killed with SIGKILL leaves a lock the next agent takes at once", async () => {
  const dir = freshDir();
  const child = await holdInChild(dir);
  await sigkill(child);
  const lock = new DataDirLock(dir);
  lock.acquire();
  lock.release();
});

test("data dir lock: a second lock in the same process is refused without disturbing the first", async (t) => {
  const dir = freshDir();
  const first = new DataDirLock(dir);
  first.acquire();
  t.after(() => first.release());
  assert.throws(() => new DataDirLock(dir).acquire(), /this process .* already runs an agent/);
  assert.throws(() => new DataDirLock(`${dir}/.`).acquire(), DataDirLockedError);
  // Still held against other processes: a child cannot take it.
  const script = `const { DataDirLock } = await import(${JSON.stringify(lockModule)});
    try { new DataDirLock(${JSON.stringify(dir)}).acquire(); console.log("taken"); } catch (e) { console.log(e.name); }`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [line] = (await once(child.stdout!, "data")) as [Buffer];
  assert.equal(line.toString().trim(), "DataDirLockedError");
});

test("data dir lock: a leftover pid file naming a live process (a reused pid) does not block", () => {
  for (const pid of [1, process.pid]) {
    const dir = freshDir();
    const lock = new DataDirLock(dir);
    writeFileSync(lock.path, String(pid));
    lock.acquire();
    lock.release();
  }
});

test("data dir lock: a lock database left by a dead agent whose pid is now reused does not block", () => {
  const dir = freshDir();
  const lock = new DataDirLock(dir);
  const leftover = new Database(lock.path);
  leftover.pragma("user_version = 1");
  leftover.close();
  lock.acquire();
  lock.release();
});

test("data dir lock: release lets the lock be taken again and keeps the file", () => {
  const dir = freshDir();
  const lock = new DataDirLock(dir);
  lock.acquire();
  lock.release();
  assert.equal(existsSync(lock.path), true);
  const again = new DataDirLock(dir);
  again.acquire();
  again.release();
});

test("data dir lock: a data directory that does not exist yet is created, private to the agent", () => {
  const dir = join(freshDir(), "data");
  const lock = new DataDirLock(dir);
  lock.acquire();
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  lock.release();
});
