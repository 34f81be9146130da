import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { pino } from "pino";
import type { StoreEntry } from "../../../src/core/store_types.ts";
import { ManifestError, manifestFileName } from "../../../src/store/materialise_manifest.ts";
import { MaterialiseError, Materialiser, type MaterialiserOptions } from "../../../src/store/materialiser.ts";
import type { StoreChange } from "../../../src/store/types.ts";

const silent = pino({ level: "silent" });
const text = (s: string) => new TextEncoder().encode(s);

let wallMs = 1_700_000_000_000;
function entry(path: string, value: string | null): StoreEntry {
  return {
    path,
    value: value === null ? new Uint8Array() : text(value),
    version: { wallMs: wallMs++, counter: 0, nodeId: "n1" },
    deleted: value === null,
  };
}

/** Changes numbered from `firstSeq`: [path, value] with null = delete. */
function changes(firstSeq: number, ...items: [string, string | null][]): StoreChange[] {
  return items.map(([path, value], i) => ({ seq: firstSeq + i, entry: entry(path, value) }));
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "tandem-materialiser-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function openIn(
  t: TestContext,
  options: Partial<MaterialiserOptions> & { dir: string },
): Promise<Materialiser> {
  const materialiser = await Materialiser.open({ logger: silent, ...options });
  t.after(() => materialiser.close());
  return materialiser;
}

/** Every file under `root` (relative, sorted), symlinks and the manifest included. */
async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
    .sort();
}

async function readManifest(
  dir: string,
): Promise<{ lastAppliedSeq: number; paths: string[]; dirs: string[] }> {
  return JSON.parse(await readFile(join(dir, manifestFileName), "utf8"));
}

test("materialiser: writes files and the directories they need", async (t) => {
  const dir = await tempDir(t);
  const materialiser = await openIn(t, { dir });
  const firstWallMs = wallMs;
  const result = await materialiser.apply(changes(1, ["certs/web/a.pem", "A"], ["top", "T"]));
  assert.deepEqual(result.written.sort(), ["certs/web/a.pem", "top"]);
  assert.equal(await readFile(join(dir, "certs/web/a.pem"), "utf8"), "A");
  assert.equal(await readFile(join(dir, "top"), "utf8"), "T");
  assert.deepEqual(await listFiles(dir), [manifestFileName, "certs/web/a.pem", "top"]);
  assert.equal(materialiser.lastAppliedSeq, 2);
  await materialiser.close();
  const manifest = await readManifest(dir);
  assert.deepEqual(manifest, {
    format: 2,
    lastAppliedSeq: 2,
    paths: ["certs/web/a.pem", "top"],
    versions: [`${firstWallMs}.0.n1`, `${firstWallMs + 1}.0.n1`],
    dirs: ["certs", "certs/web"],
    ownership: { fileMode: 0o644, uid: null, gid: null },
    storeId: null,
  });
});

test("materialiser: names are saved before they exist; a lagging saved seq only replays what is on disk", async (t) => {
  const dir = await tempDir(t);
  const crashed = await Materialiser.open({ dir, logger: silent });
  const history = changes(1, ["a/f", "1"], ["g", "2"], ["a/f", "3"], ["g", "4"]);
  await crashed.apply(history.slice(0, 2));
  await crashed.apply(history.slice(2));
  const saved = await readManifest(dir);
  assert.deepEqual(saved.paths, ["a/f", "g"], "new names saved before the files exist");
  assert.ok(saved.lastAppliedSeq < 4, `the seq alone is saved lazily (${saved.lastAppliedSeq})`);
  // No close(): as after kill -9. The restart replays from the saved seq, as changesSince would.
  const restarted = await openIn(t, { dir });
  assert.equal(restarted.lastAppliedSeq, saved.lastAppliedSeq);
  const replay = await restarted.apply(history.filter((c) => c.seq > saved.lastAppliedSeq));
  assert.deepEqual([replay.written, replay.removed], [[], []], "already on disk: nothing rewritten, no hook");
  assert.equal(await readFile(join(dir, "a/f"), "utf8"), "3");
  assert.equal(await readFile(join(dir, "g"), "utf8"), "4");
});

test("materialiser: overwrites replace the whole file and leave no temp file", async (t) => {
  const dir = await tempDir(t);
  const materialiser = await openIn(t, { dir });
  await materialiser.apply(changes(1, ["a/f", "a long first value"]));
  const result = await materialiser.apply(changes(2, ["a/f", "short"]));
  assert.deepEqual(result.written, ["a/f"]);
  assert.equal(await readFile(join(dir, "a/f"), "utf8"), "short");
  assert.deepEqual(await listFiles(dir), [manifestFileName, "a/f"]);
});

test("materialiser: an unchanged value is not rewritten", async (t) => {
  const dir = await tempDir(t);
  const materialiser = await openIn(t, { dir });
  await materialiser.apply(changes(1, ["f", "same"]));
  const inode = (await stat(join(dir, "f"))).ino;
  const result = await materialiser.apply(changes(2, ["f", "same"]));
  assert.deepEqual(result.written, []);
  assert.equal((await stat(join(dir, "f"))).ino, inode, "a rename would give a new inode");
});

test("materialiser: deletes remove the file and the empty directories it created, nothing else", async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, "kept"));
  const materialiser = await openIn(t, { dir });
  await materialiser.apply(changes(1, ["x/y/z/f", "1"], ["x/g", "2"], ["kept/h", "3"]));
  const result = await materialiser.apply(changes(4, ["x/y/z/f", null], ["kept/h", null]));
  assert.deepEqual(result.removed.sort(), ["kept/h", "x/y/z/f"]);
  assert.equal(existsSync(join(dir, "x/y")), false, "x/y/z and x/y were created by the materialiser");
  assert.equal(existsSync(join(dir, "x/g")), true, "x still holds a file");
  assert.equal(existsSync(join(dir, "kept")), true, "kept existed before: not the materialiser's to remove");
  assert.deepEqual((await readManifest(dir)).dirs, ["x"]);
  await materialiser.apply(changes(6, ["x/g", null]));
  assert.deepEqual(await readdir(dir), ["kept", manifestFileName].sort());
});

test("materialiser: modes are applied explicitly, whatever the umask", async (t) => {
  const dir = await tempDir(t);
  const previousUmask = process.umask(0o077);
  t.after(() => process.umask(previousUmask));
  const materialiser = await openIn(t, { dir, fileMode: 0o640, dirMode: 0o751 });
  await materialiser.apply(changes(1, ["d/f", "x"]));
  assert.equal((await stat(join(dir, "d/f"))).mode & 0o7777, 0o640);
  assert.equal((await stat(join(dir, "d"))).mode & 0o7777, 0o751);
  process.umask(0o000);
  const loose = await openIn(t, { dir: join(dir, "second"), fileMode: 0o600, dirMode: 0o700 });
  await loose.apply(changes(1, ["e/f", "x"]));
  assert.equal((await stat(join(dir, "second/e/f"))).mode & 0o7777, 0o600);
  assert.equal((await stat(join(dir, "second/e"))).mode & 0o7777, 0o700);
});

test("materialiser: a mode change in config rewrites files on resync", async (t) => {
  const dir = await tempDir(t);
  const first = await Materialiser.open({ dir, logger: silent, fileMode: 0o644 });
  await first.apply(changes(1, ["f", "x"]));
  await first.close();
  const second = await openIn(t, { dir, fileMode: 0o600 });
  const result = await second.resync([entry("f", "x")]);
  assert.deepEqual(result.written, ["f"]);
  assert.equal((await stat(join(dir, "f"))).mode & 0o7777, 0o600);
});

test("materialiser: owner and group are set when given", async (t) => {
  const dir = await tempDir(t);
  const root = process.getuid?.() === 0;
  const uid = root ? 4321 : process.getuid!();
  const gid = root ? 8765 : process.getgid!();
  const materialiser = await openIn(t, { dir, uid, gid });
  await materialiser.apply(changes(1, ["o/f", "x"]));
  for (const path of ["o/f", "o"]) {
    const stats = await stat(join(dir, path));
    assert.deepEqual([stats.uid, stats.gid], [uid, gid], path);
  }
});

test("materialiser: only paths under the prefix are written", async (t) => {
  const dir = await tempDir(t);
  const materialiser = await openIn(t, { dir, prefix: "certs" });
  await materialiser.apply(changes(1, ["certs", "c"], ["certs/a", "a"], ["certsX/b", "b"], ["other/c", "c"]));
  assert.deepEqual(await listFiles(dir), [manifestFileName, "certs/a"].sort());
  assert.equal(materialiser.lastAppliedSeq, 4, "skipped changes still advance the seq");
  const slashed = await openIn(t, { dir: join(dir, "slashed"), prefix: "certs/" });
  await slashed.apply(changes(1, ["certs/a", "a"], ["certsX/b", "b"]));
  assert.deepEqual(await listFiles(join(dir, "slashed")), [manifestFileName, "certs/a"].sort());
});

test("materialiser: a foreign file in the directory survives deletes and resyncs", async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, "sub"));
  await writeFile(join(dir, "foreign.conf"), "operator's");
  await writeFile(join(dir, "sub/foreign"), "operator's");
  const materialiser = await openIn(t, { dir });
  await materialiser.apply(changes(1, ["sub/ours", "1"]));
  const deleted = await materialiser.apply(changes(2, ["foreign.conf", null], ["sub/foreign", null]));
  assert.deepEqual(deleted.removed, [], "never written by the materialiser: not deleted");
  const result = await materialiser.resync([]);
  assert.deepEqual(result.removed, ["sub/ours"]);
  assert.deepEqual(await listFiles(dir), [manifestFileName, "foreign.conf", "sub/foreign"].sort());
  assert.equal(await readFile(join(dir, "foreign.conf"), "utf8"), "operator's");
});

test("materialiser: resync writes what differs, removes what the store lacks, records the seq", async (t) => {
  const dir = await tempDir(t);
  const first = await Materialiser.open({ dir, logger: silent });
  await first.apply(changes(1, ["keep", "k"], ["stale", "old"], ["gone/x", "g"]));
  await first.close();
  await writeFile(join(dir, "keep"), "edited by hand");
  const second = await openIn(t, { dir });
  assert.equal(second.lastAppliedSeq, 3);
  const result = await second.resync(
    [entry("keep", "k"), entry("stale", "new"), entry("tomb", null), entry("fresh/y", "f")],
    {
      seq: 40,
    },
  );
  assert.deepEqual(result.written.sort(), ["fresh/y", "keep", "stale"]);
  assert.deepEqual(result.removed, ["gone/x"]);
  assert.deepEqual(await listFiles(dir), [manifestFileName, "fresh/y", "keep", "stale"].sort());
  assert.equal(await readFile(join(dir, "keep"), "utf8"), "k");
  assert.equal(second.lastAppliedSeq, 40);
  await second.close();
  assert.equal((await readManifest(dir)).lastAppliedSeq, 40, "saved lazily, at the latest at close");
});

test("materialiser: resync takes an async iterable in many batches", async (t) => {
  const dir = await tempDir(t);
  const materialiser = await openIn(t, { dir });
  async function* entries(): AsyncGenerator<StoreEntry> {
    for (let i = 0; i < 600; i++) yield entry(`many/${i % 7}/f${i}`, `value ${i}`);
  }
  const result = await materialiser.resync(entries(), { seq: 600 });
  assert.equal(result.written.length, 600);
  assert.equal(await readFile(join(dir, "many/3/f598"), "utf8"), "value 598");
  assert.equal((await readManifest(dir)).paths.length, 600);
});

test("materialiser: applies run one at a time in seq order; the latest change per path wins", async (t) => {
  const dir = await tempDir(t);
  const materialiser = await openIn(t, { dir });
  const pending = [
    materialiser.apply(changes(1, ["p", "1"], ["q", "1"])),
    materialiser.apply(changes(3, ["p", "2"])),
    materialiser.apply(changes(4, ["q", null], ["p", "3"])),
  ];
  await Promise.all(pending);
  assert.equal(await readFile(join(dir, "p"), "utf8"), "3");
  assert.equal(existsSync(join(dir, "q")), false);
  assert.equal(materialiser.lastAppliedSeq, 5);
  const replay = await materialiser.apply(changes(2, ["p", "stale replay"]));
  assert.deepEqual(replay.written, [], "seq <= lastAppliedSeq is skipped");
  assert.equal(await readFile(join(dir, "p"), "utf8"), "3");
});

test("materialiser: symlinks in parents are not followed, for writes or deletes", async (t) => {
  const dir = await tempDir(t);
  const outside = await tempDir(t);
  await writeFile(join(outside, "victim"), "outside");
  await symlink(outside, join(dir, "link"));
  await symlink(join(outside, "victim"), join(dir, "filelink"));
  const materialiser = await openIn(t, { dir });
  const result = await materialiser.apply(
    changes(1, ["link/victim", "pwned"], ["link/new", "x"], ["filelink", "pwned"]),
  );
  assert.deepEqual(result.written, []);
  assert.deepEqual(result.refused.map((r) => r.path).sort(), ["filelink", "link/new", "link/victim"]);
  assert.match(
    result.refused.find((r) => r.path === "link/new")!.reason,
    /parent "link" is not a plain directory/,
  );
  assert.deepEqual(await readdir(outside), ["victim"]);
  assert.equal(await readFile(join(outside, "victim"), "utf8"), "outside");

  // An owned directory swapped for a symlink later: the delete does not reach through it.
  await materialiser.apply(changes(4, ["sub/victim", "ours"]));
  await rm(join(dir, "sub"), { recursive: true });
  await symlink(outside, join(dir, "sub"));
  const deleted = await materialiser.apply(changes(5, ["sub/victim", null]));
  assert.deepEqual(deleted.removed, []);
  assert.equal(deleted.refused[0]?.path, "sub/victim");
  assert.equal(await readFile(join(outside, "victim"), "utf8"), "outside");
  assert.ok((await lstat(join(dir, "sub"))).isSymbolicLink());
});

test("materialiser: reserved names and invalid paths are refused", async (t) => {
  const dir = await tempDir(t);
  const materialiser = await openIn(t, { dir });
  const result = await materialiser.apply(
    changes(
      1,
      [manifestFileName, "{}"],
      ["a/.b.tandem-tmp-0123456789abcdef", "x"],
      ["../escape", "x"],
      ["ok", "fine"],
    ),
  );
  assert.deepEqual(result.written, ["ok"]);
  assert.deepEqual(
    result.refused.map((r) => r.reason.split(" (")[0]),
    ["reserved name", "reserved name", 'invalid store path: segment 1 is ".."'],
  );
  assert.equal(existsSync(join(dir, "../escape")), false);
  assert.equal(materialiser.lastAppliedSeq, 4);
});

test("materialiser: a file and a directory at the same name are refused without wedging", async (t) => {
  const dir = await tempDir(t);
  const materialiser = await openIn(t, { dir });
  await materialiser.apply(changes(1, ["a", "file"]));
  const below = await materialiser.apply(changes(2, ["a/b", "x"]));
  assert.match(below.refused[0]?.reason ?? "", /parent "a" is not a plain directory/);
  const same = await materialiser.apply(changes(3, ["c", "file"], ["c/d", "x"]));
  assert.deepEqual(same.written, ["c/d"]);
  assert.match(same.refused[0]?.reason ?? "", /needs a directory here/);
  const swap = await materialiser.apply(changes(5, ["a", null], ["a/b", "now fine"]));
  assert.deepEqual([swap.removed, swap.written], [["a"], ["a/b"]], "deletes go first in a batch");
  assert.equal(await readFile(join(dir, "a/b"), "utf8"), "now fine");
});

test("materialiser: leftover temp files are swept before the first batch, other files kept", async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, "deep/er"), { recursive: true });
  const leftovers = [".f.tandem-tmp-0123456789abcdef", "deep/er/.g.tandem-tmp-fedcba9876543210"];
  const kept = [".f.tandem-tmp-notrandom", "deep/.tandem-tmp-0123456789abcdef", "deep/er/g"];
  for (const name of [...leftovers, ...kept]) await writeFile(join(dir, name), "x");
  const materialiser = await openIn(t, { dir });
  await materialiser.apply([]);
  assert.deepEqual(await listFiles(dir), kept.sort());
});

test("materialiser: a corrupt manifest stops open with a ManifestError", async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, manifestFileName), "{ not json");
  await assert.rejects(Materialiser.open({ dir, logger: silent }), ManifestError);
  await writeFile(
    join(dir, manifestFileName),
    JSON.stringify({ format: 1, lastAppliedSeq: 0, paths: ["../x"], dirs: [] }),
  );
  await assert.rejects(Materialiser.open({ dir, logger: silent }), /malformed/);
});

test("materialiser: after an I/O failure apply refuses until a resync succeeds", async (t) => {
  const base = await tempDir(t);
  // dir + path longer than PATH_MAX (4096): every file-system call on it fails with ENAMETOOLONG.
  const dir = join(base, ...Array.from({ length: 14 }, (_, i) => `${i}`.padEnd(250, "d")));
  const materialiser = await openIn(t, { dir });
  const tooLong = Array.from({ length: 4 }, (_, i) => `${i}`.padEnd(250, "p")).join("/");
  await assert.rejects(materialiser.apply(changes(1, [tooLong, "x"])), (error: unknown) => {
    assert.ok(error instanceof MaterialiseError);
    assert.match(String((error.cause as Error).message), /ENAMETOOLONG/);
    return true;
  });
  assert.equal(materialiser.lastAppliedSeq, 0, "the failed batch is not recorded as applied");
  await assert.rejects(materialiser.apply(changes(2, ["fine", "x"])), /resync\(\) first/);
  await materialiser.resync([entry("fine", "x")], { seq: 2 });
  const result = await materialiser.apply(changes(3, ["later", "y"]));
  assert.deepEqual(result.written, ["later"]);
});

test("materialiser: refuses impossible options", async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(Materialiser.open({ dir, logger: silent, fileMode: 0o10000 }), RangeError);
  await assert.rejects(Materialiser.open({ dir, logger: silent, prefix: "../x" }), RangeError);
  await assert.rejects(Materialiser.open({ dir, logger: silent, uid: -1 }), RangeError);
  await writeFile(join(dir, "file"), "");
  await assert.rejects(Materialiser.open({ dir: join(dir, "file"), logger: silent }));
});
