import assert from "node:assert/strict";
import { test } from "node:test";
import { DrainLoop, type ReadyCore } from "../../../src/shell/index.ts";

/** A core holding a queue of inputs; each input becomes one Ready. */
class QueueCore implements ReadyCore<string> {
  readonly log: string[] = [];
  private readonly inputs: string[] = [];
  private outstanding: string | null = null;

  feed(input: string): void {
    this.inputs.push(input);
  }
  hasReady(): boolean {
    return this.inputs.length > 0;
  }
  ready(): string {
    assert.equal(this.outstanding, null, "ready() twice without advance()");
    this.outstanding = this.inputs.shift()!;
    return this.outstanding;
  }
  advance(ready: string): void {
    assert.equal(ready, this.outstanding);
    this.outstanding = null;
    this.log.push(`advance ${ready}`);
  }
}

test("drain loop: input fed by an effect is picked up by the running loop, not a nested one", () => {
  const core = new QueueCore();
  const loop: DrainLoop<string> = new DrainLoop(core, (ready) => {
    core.log.push(`effects ${ready}`);
    // A synchronous reply feeds the core and drains again: the nested drain must not run.
    if (ready === "a") {
      core.feed("reply");
      assert.equal(loop.run(), false);
    }
    return () => core.log.push(`after ${ready}`);
  });
  core.feed("a");
  assert.equal(loop.run(), true);
  assert.deepEqual(core.log, [
    "effects a",
    "advance a",
    "after a",
    "effects reply",
    "advance reply",
    "after reply",
  ]);
});

test("drain loop: a core that never settles is reported, and the loop is usable afterwards", () => {
  const core = { hasReady: () => true, ready: () => 1, advance: () => undefined };
  const loop = new DrainLoop(core, () => undefined);
  assert.throws(() => loop.run(), /did not settle/);
  core.hasReady = () => false;
  assert.equal(loop.run(), true);
});
