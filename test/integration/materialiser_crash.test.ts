// kill -9 during materialisation: after every kill each visible file is absent or a whole value that was
// written (never partial), the manifest is intact JSON, and a restart resumes from lastAppliedSeq and
// converges to exactly the stream's final state (leftover temp files swept, foreign files untouched), by
// applying the changes since, or by a resync that trusts the versions the manifest recorded (a version
// recorded before its file was in place would leave a stale file behind).
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Prng } from "../../src/core/prng.ts";
import { isTempName } from "../../src/store/materialise_fs.ts";
import { manifestFileName } from "../../src/store/materialise_manifest.ts";
import { collectLines } from "../support/child_lines.ts";
import { expectedFiles, seqOfValue, valueAt } from "../support/materialise_stream.ts";

const childScript = join(import.meta.dirname, "../support/materialise_child.ts");
const killCount = 20;
/** Most kills land after open (mid-batch); every fourth at any moment from spawn (during open and its sweep). */
const killDelayMsMax = 300;
const spawnKillDelayMsMax = 600;
const foreign = { "foreign.txt": "operator's file", "dir0/operator.conf": "operator's file in a shared dir" };

function startChild(
  dir: string,
  untilSeq: number,
  mode: "apply" | "resync" = "apply",
): { child: ChildProcess; lines: string[] } {
  const child = spawn(process.execPath, [childScript, dir, String(untilSeq), mode], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  collectLines(child, lines);
  return { child, lines };
}

/** Resolves when the child has printed a line (its "opened" line), or exited. */
async function firstLine(child: ChildProcess, lines: string[]): Promise<void> {
  while (lines.length === 0 && child.exitCode === null && child.signalCode === null) {
    await Promise.race([once(child.stdout!, "data"), once(child, "exit")]);
  }
}

/** Every regular file under dir, relative, split into temp leftovers and visible files. */
async function scan(dir: string): Promise<{ visible: string[]; temps: string[] }> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
  return {
    visible: files.filter((f) => !isTempName(f.split("/").pop()!)).sort(),
    temps: files.filter((f) => isTempName(f.split("/").pop()!)),
  };
}

/** Checks every visible file is a foreign one or a complete stream value; returns the manifest's seq. */
async function assertNothingPartial(dir: string, context: string): Promise<number> {
  const { visible } = await scan(dir);
  for (const path of visible) {
    if (path === manifestFileName || path in foreign) continue;
    const content = await readFile(join(dir, path));
    const seq = seqOfValue(path, content);
    assert.ok(seq !== null, `${context}: ${path} has no valid header (${content.length} bytes)`);
    assert.ok(
      Buffer.from(valueAt(seq)).equals(content),
      `${context}: ${path} is not the whole value of seq ${seq}`,
    );
  }
  for (const [path, text] of Object.entries(foreign))
    assert.equal(await readFile(join(dir, path), "utf8"), text);
  const manifest = JSON.parse(
    await readFile(join(dir, manifestFileName), "utf8").catch(() => '{"lastAppliedSeq":0}'),
  );
  return manifest.lastAppliedSeq as number;
}

test(
  "materialiser crash: kill -9 at random moments never exposes a partial file; restart converges",
  {
    timeout: 180_000,
  },
  (t) => killsThenRestart(t, "apply"),
);

test(
  "materialiser crash: after kill -9 at random moments a resync trusting recorded versions converges",
  {
    timeout: 180_000,
  },
  (t) => killsThenRestart(t, "resync"),
);

async function killsThenRestart(t: TestContext, mode: "apply" | "resync"): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "tandem-materialise-crash-"));
  const children = new Set<ChildProcess>();
  t.after(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });
  await mkdir(join(dir, "dir0"));
  for (const [path, text] of Object.entries(foreign)) await writeFile(join(dir, path), text);

  const rng = new Prng(`materialiser-crash/${mode}`);
  const startedMs = performance.now();
  let killedWithTemps = 0;
  let seqAfterKills = 0;
  for (let kill = 0; kill < killCount; kill++) {
    const { child, lines } = startChild(dir, 1_000_000);
    children.add(child);
    if (kill % 4 === 3) {
      await sleep(rng.intBetween(0, spawnKillDelayMsMax));
    } else {
      await firstLine(child, lines);
      await sleep(rng.intBetween(0, killDelayMsMax));
    }
    const exited = once(child, "exit");
    const closed = once(child, "close");
    child.kill("SIGKILL");
    const [code, signal] = await exited;
    children.delete(child);
    assert.equal(
      signal,
      "SIGKILL",
      `kill ${kill}: the child must still be running when killed (exit code ${code})`,
    );
    if ((await scan(dir)).temps.length > 0) killedWithTemps++;
    let seq = await assertNothingPartial(dir, `after kill ${kill}`);
    assert.ok(seq >= seqAfterKills, `kill ${kill}: lastAppliedSeq went back from ${seqAfterKills} to ${seq}`);
    if (mode === "resync") {
      // What the store would hold: every change the child was given, the interrupted batch included (its
      // files may be written while the saved versions still name older ones, never the reverse).
      await closed;
      const given = lines.map((line) => JSON.parse(line).applying ?? 0);
      seq = Math.max(seq, ...given);
      await runToEnd(startChild(dir, seq, "resync"), children, seq);
      await assertConverged(dir, seq);
    }
    seqAfterKills = seq;
  }
  const killPhaseMs = performance.now() - startedMs;
  assert.ok(seqAfterKills > 0, "the children made progress between kills");

  // Resume to a fixed end: the final state must be exactly the stream's state at that seq.
  const untilSeq = seqAfterKills + 60;
  const resumedFrom = await runToEnd(startChild(dir, untilSeq, mode), children, untilSeq);
  assert.equal(resumedFrom, seqAfterKills, "the restart resumed from the persisted lastAppliedSeq");
  await assertConverged(dir, untilSeq);
  t.diagnostic(
    `${killCount} kills in ${Math.round(killPhaseMs)} ms, ${killedWithTemps} left temp files; ` +
      `resumed at seq ${resumedFrom}, converged at ${untilSeq}`,
  );
}

/** Waits for a child that must finish; returns the seq it opened at. */
async function runToEnd(
  { child, lines }: { child: ChildProcess; lines: string[] },
  children: Set<ChildProcess>,
  untilSeq: number,
): Promise<number> {
  children.add(child);
  const [code] = await once(child, "exit");
  children.delete(child);
  assert.equal(code, 0, lines.join("\n"));
  assert.deepEqual(JSON.parse(lines.at(-1) ?? "{}"), { done: untilSeq });
  return JSON.parse(lines[0] ?? "{}").opened as number;
}

/** The directory holds exactly the stream's state at `untilSeq`, the foreign files and the manifest. */
async function assertConverged(dir: string, untilSeq: number): Promise<void> {
  await assertNothingPartial(dir, `at seq ${untilSeq}`);
  const expected = expectedFiles(untilSeq);
  const { visible, temps } = await scan(dir);
  assert.deepEqual(temps, [], "leftover temp files are swept before the first batch");
  assert.deepEqual(visible, [...expected.keys(), manifestFileName, ...Object.keys(foreign)].sort());
  for (const [path, seq] of expected) {
    const held = seqOfValue(path, await readFile(join(dir, path)));
    assert.equal(held, seq, `${path} holds the value of seq ${seq} at seq ${untilSeq}`);
  }
}
