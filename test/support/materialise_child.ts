// Child process for test/integration/materialiser_crash.test.ts: materialises the deterministic change
// stream (materialise_stream.ts) into DIR from where the manifest says it stopped, up to UNTIL_SEQ, in
// small batches ("apply", the default), or with one resync to the stream's state at UNTIL_SEQ given as
// stamps, values read only for the files that must be written ("resync"). The parent kill -9s it at
// random moments. Prints one JSON line when open, before each batch (the last seq it holds: what the
// store would hold after a crash now) and when done.
import { pino } from "pino";
import { versionKey } from "../../src/store/materialise_manifest.ts";
import { Materialiser, type ResyncStamp } from "../../src/store/materialiser.ts";
import { changeAt, expectedFiles } from "./materialise_stream.ts";

const [dir, untilSeqText, mode = "apply"] = process.argv.slice(2);
const untilSeq = Number(untilSeqText);
if (!dir || !Number.isInteger(untilSeq) || (mode !== "apply" && mode !== "resync")) {
  process.stderr.write("usage: materialise_child.ts DIR UNTIL_SEQ [apply|resync]\n");
  process.exit(2);
}

const materialiser = await Materialiser.open({ dir, logger: pino({ level: "warn" }, process.stderr) });
process.stdout.write(`${JSON.stringify({ opened: materialiser.lastAppliedSeq })}\n`);
if (mode === "resync") {
  const latest = expectedFiles(untilSeq);
  const stamps: ResyncStamp[] = [...latest].map(([path, seq]) => ({
    path,
    versionKey: versionKey(changeAt(seq).entry.version),
    deleted: false,
  }));
  await materialiser.resync(stamps, {
    seq: untilSeq,
    entriesAt: (paths) => paths.map((path) => changeAt(latest.get(path)!).entry),
  });
} else {
  let seq = materialiser.lastAppliedSeq;
  while (seq < untilSeq) {
    const batch = [];
    for (let i = 1 + (seq % 3); i > 0 && seq < untilSeq; i--) batch.push(changeAt(++seq));
    process.stdout.write(`${JSON.stringify({ applying: seq })}\n`);
    await materialiser.apply(batch);
  }
}
await materialiser.close();
process.stdout.write(`${JSON.stringify({ done: materialiser.lastAppliedSeq })}\n`);
