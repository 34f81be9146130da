import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { pino } from "pino";
import { type HookConfig, HookRunner } from "../../../src/store/hook_runner.ts";
import type { MaterialiseTimers } from "../../../src/store/materialise_timers.ts";
import { Materialiser } from "../../../src/store/materialiser.ts";
import type { StoreChange } from "../../../src/store/types.ts";

const debounceMs = 500;
const timeoutMs = 30_000;

/** Timers that fire only when the test says so: debounce windows and timeouts without sleeping. */
class ManualTimers implements MaterialiseTimers {
  private readonly pending = new Map<number, { callback: () => void; delayMs: number }>();
  private nextId = 1;

  setTimeout(callback: () => void, delayMs: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { callback, delayMs });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  count(delayMs: number): number {
    return [...this.pending.values()].filter((p) => p.delayMs === delayMs).length;
  }

  /** Fires every pending timer with this delay; returns how many fired. */
  fire(delayMs: number): number {
    const due = [...this.pending].filter(([, p]) => p.delayMs === delayMs);
    for (const [id, { callback }] of due) {
      this.pending.delete(id);
      callback();
    }
    return due.length;
  }
}

interface LogLine {
  level: number;
  msg: string;
  exitCode?: number | null;
  signal?: string | null;
  timedOut?: boolean;
  stderr?: string;
  error?: string | null;
}

function memoryLogger(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = { write: (line: string) => lines.push(JSON.parse(line) as LogLine) };
  return { logger: pino({ level: "info" }, stream), lines };
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "tandem-hooks-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A hook command that appends its argv and two env variables as one JSON line to `record`. */
function recordingCommand(record: string, ...args: string[]): string[] {
  const script = `require("node:fs").appendFileSync(${JSON.stringify(record)}, JSON.stringify({argv: process.argv.slice(1), dir: process.env.TANDEM_DIR, prefix: process.env.TANDEM_HOOK_PREFIX}) + "\\n")`;
  return [process.execPath, "-e", script, "--", ...args];
}

async function recordedRuns(
  record: string,
): Promise<Array<{ argv: string[]; dir?: string; prefix?: string }>> {
  if (!existsSync(record)) return [];
  return (await readFile(record, "utf8"))
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line));
}

function runner(
  config: Partial<HookConfig> & { command: string[] },
  timers: ManualTimers,
  logger = pino({ level: "silent" }),
) {
  return new HookRunner(
    { prefix: "certs/", debounceMs, timeoutMs, ...config },
    { logger, timers, env: { TANDEM_HOOK_PREFIX: "certs/" } },
  );
}

test("hooks: many triggers in one window make one run, with argv passed as given", async (t) => {
  const dir = await tempDir(t);
  const record = join(dir, "runs");
  const timers = new ManualTimers();
  const hook = runner({ command: recordingCommand(record, "reload", "two words", "$HOME;rm -rf /") }, timers);
  for (let i = 0; i < 50; i++) hook.trigger();
  assert.equal(timers.count(debounceMs), 1, "one window");
  assert.equal(timers.fire(debounceMs), 1);
  await hook.settled();
  const runs = await recordedRuns(record);
  assert.equal(runs.length, 1);
  assert.deepEqual(runs[0]?.argv, ["reload", "two words", "$HOME;rm -rf /"], "no shell: nothing expanded");
  assert.equal(runs[0]?.prefix, "certs/");
  assert.equal(timers.count(debounceMs), 0, "no run owed");
  assert.equal(timers.count(timeoutMs), 0, "the timeout is cleared when the run ends");
});

test("hooks: a trigger during a run waits for it, then opens a new window", async (t) => {
  const dir = await tempDir(t);
  const record = join(dir, "runs");
  const timers = new ManualTimers();
  const hook = runner({ command: recordingCommand(record) }, timers);
  hook.trigger();
  timers.fire(debounceMs);
  hook.trigger();
  hook.trigger();
  assert.equal(timers.count(debounceMs), 0, "no second run scheduled while one runs");
  await hook.settled();
  assert.equal(timers.count(debounceMs), 1, "the trigger during the run is owed one run");
  timers.fire(debounceMs);
  await hook.settled();
  assert.equal((await recordedRuns(record)).length, 2);
});

test("hooks: exit code and stderr are logged", async () => {
  const timers = new ManualTimers();
  const { logger, lines } = memoryLogger();
  const script = 'process.stderr.write("cannot reload: bad config\\n"); process.exit(3)';
  const hook = runner({ command: [process.execPath, "-e", script] }, timers, logger);
  hook.trigger();
  timers.fire(debounceMs);
  await hook.settled();
  const line = lines.find((l) => l.msg === "hook failed");
  assert.ok(line, JSON.stringify(lines));
  assert.equal(line.exitCode, 3);
  assert.equal(line.stderr, "cannot reload: bad config");
  assert.equal(line.timedOut, false);
});

test("hooks: a success is logged at info with exit code 0", async () => {
  const timers = new ManualTimers();
  const { logger, lines } = memoryLogger();
  const hook = runner({ command: [process.execPath, "-e", ""] }, timers, logger);
  hook.trigger();
  timers.fire(debounceMs);
  await hook.settled();
  assert.deepEqual(
    lines.map((l) => [l.msg, l.level, l.exitCode]),
    [["hook ran", 30, 0]],
  );
});

test("hooks: a run past its timeout is killed and logged", async () => {
  const timers = new ManualTimers();
  const { logger, lines } = memoryLogger();
  const hook = runner({ command: [process.execPath, "-e", "setInterval(() => {}, 1000)"] }, timers, logger);
  hook.trigger();
  timers.fire(debounceMs);
  assert.equal(timers.count(timeoutMs), 1);
  timers.fire(timeoutMs);
  await hook.settled();
  const line = lines.find((l) => l.msg === "hook timed out");
  assert.ok(line, JSON.stringify(lines));
  assert.equal(line.signal, "SIGKILL");
  assert.equal(line.timedOut, true);
});

test("hooks: a missing program is logged, not thrown", async () => {
  const timers = new ManualTimers();
  const { logger, lines } = memoryLogger();
  const hook = runner({ command: ["/nonexistent/tandem-hook-program"] }, timers, logger);
  hook.trigger();
  timers.fire(debounceMs);
  await hook.settled();
  assert.equal(lines.length, 1);
  assert.equal(lines[0]?.msg, "hook failed");
  assert.match(lines[0]?.error ?? "", /ENOENT/);
});

test("hooks: close runs what is owed and accepts no more triggers", async (t) => {
  const dir = await tempDir(t);
  const record = join(dir, "runs");
  const timers = new ManualTimers();
  const hook = runner({ command: recordingCommand(record) }, timers);
  hook.trigger();
  await hook.close();
  assert.equal((await recordedRuns(record)).length, 1);
  hook.trigger();
  assert.equal(timers.count(debounceMs), 0);
});

test("hooks: refuses an empty command or a bad timeout", () => {
  const timers = new ManualTimers();
  assert.throws(() => runner({ command: [] }, timers), RangeError);
  assert.throws(() => runner({ command: ["x"], timeoutMs: 0 }, timers), RangeError);
  assert.throws(() => runner({ command: ["x"], debounceMs: -1 }, timers), RangeError);
});

let seq = 0;
function change(path: string, value: string | null): StoreChange {
  seq++;
  const bytes = value === null ? new Uint8Array() : new TextEncoder().encode(value);
  return {
    seq,
    entry: {
      path,
      value: bytes,
      version: { wallMs: seq, counter: 0, nodeId: "n1" },
      deleted: value === null,
    },
  };
}

test("hooks: the materialiser triggers only hooks whose prefix changed, once per window", async (t) => {
  const dir = await tempDir(t);
  const records = { certs: join(dir, "certs-runs"), apt: join(dir, "apt-runs") };
  const timers = new ManualTimers();
  const materialiser = await Materialiser.open({
    dir: join(dir, "tree"),
    logger: pino({ level: "silent" }),
    timers,
    hooks: [
      { prefix: "certs/", command: recordingCommand(records.certs, "nginx"), debounceMs, timeoutMs },
      { prefix: "apt", command: recordingCommand(records.apt, "apt"), debounceMs, timeoutMs },
    ],
  });
  t.after(() => materialiser.close());
  for (let i = 0; i < 20; i++) await materialiser.apply([change(`certs/host-${i}.pem`, `cert ${i}`)]);
  await materialiser.apply([change("other/file", "x")]);
  assert.equal(timers.count(debounceMs), 1, "only the certs hook, one window for twenty batches");
  await materialiser.apply([change("certs/host-0.pem", "cert 0")]);
  timers.fire(debounceMs);
  await materialiser.close();
  const runs = await recordedRuns(records.certs);
  assert.equal(runs.length, 1);
  assert.deepEqual(runs[0], { argv: ["nginx"], dir: join(dir, "tree"), prefix: "certs/" });
  assert.deepEqual(await recordedRuns(records.apt), []);
});

test("hooks: an unchanged value does not trigger; a delete does", async (t) => {
  const dir = await tempDir(t);
  const timers = new ManualTimers();
  const materialiser = await Materialiser.open({
    dir,
    logger: pino({ level: "silent" }),
    timers,
    hooks: [{ prefix: "", command: ["true"], debounceMs, timeoutMs }],
  });
  t.after(() => materialiser.close());
  await materialiser.apply([change("a", "1")]);
  assert.equal(timers.fire(debounceMs), 1);
  // The hook runs now; a change while it runs would be owed to after it (no window): let it end first.
  // Its timeout timer is pending exactly while it runs. A loaded machine may take a while to run `true`.
  for (const deadline = Date.now() + 30_000; timers.count(timeoutMs) > 0; ) {
    assert.ok(Date.now() < deadline, "the hook never ended");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await materialiser.apply([change("a", "1")]);
  assert.equal(timers.count(debounceMs), 0, "same content: nothing changed on disk");
  await materialiser.apply([change("a", null)]);
  assert.equal(timers.count(debounceMs), 1);
});
