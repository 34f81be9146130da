// The installed build (dist/, which `npm install` makes; not rebuilt here, as other tests run it meanwhile)
// loads each journal queue's chunk: a client bundled that cannot run bundled (one reading files beside
// itself through __dirname) fails here at import, as it would fail an operator's agent at start, while the
// tests of the queues run the sources.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const chunks = fileURLToPath(new URL("../../dist/chunks/", import.meta.url));

test("the installed build: every journal queue's chunk loads", { timeout: 120_000 }, () => {
  const queues = readdirSync(chunks).filter((name) => /^(nats|redis|amqp|pubsub)_queue-.*\.js$/.test(name));
  assert.deepEqual(
    queues.map((name) => name.split("_queue-")[0]).sort(),
    ["amqp", "nats", "pubsub", "redis"],
    "one chunk per broker queue",
  );
  for (const name of queues) {
    // A process of its own: what a chunk does at load must not touch this one.
    try {
      execFileSync(
        process.execPath,
        ["--input-type=module", "-e", `await import(${JSON.stringify(chunks + name)});`],
        {
          stdio: "pipe",
          timeout: 60_000,
        },
      );
    } catch (error) {
      // The last line names the error; the rest is the minified line it came from.
      const stderr = String((error as { stderr?: Buffer }).stderr ?? error);
      const reason =
        stderr
          .split("\n")
          .filter((line) => /Error/.test(line))
          .at(-1) ?? stderr.slice(-300);
      assert.fail(`${name} does not load in the installed build: ${reason.slice(0, 400)}`);
    }
  }
});
