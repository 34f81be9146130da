// Child process for test/integration/materialiser_crash.test.ts: materialises the deterministic change
// stream (materialise_stream.ts) into DIR from where the manifest says it stopped, up to UNTIL_SEQ, in
// small batches. The parent kill -9s it at random moments. Prints one JSON line when open and when done.
import { pino } from "pino";
import { Materialiser } from "../../src/store/materialiser.ts";
import { changeAt } from "./materialise_stream.ts";

const [dir, untilSeqText] = process.argv.slice(2);
const untilSeq = Number(untilSeqText);
if (!dir || !Number.isInteger(untilSeq)) {
  process.stderr.write("usage: materialise_child.ts DIR UNTIL_SEQ\n");
  process.exit(2);
}

const materialiser = await Materialiser.open({ dir, logger: pino({ level: "warn" }, process.stderr) });
process.stdout.write(`${JSON.stringify({ opened: materialiser.lastAppliedSeq })}\n`);
let seq = materialiser.lastAppliedSeq;
while (seq < untilSeq) {
  const batch = [];
  for (let i = 1 + (seq % 3); i > 0 && seq < untilSeq; i--) batch.push(changeAt(++seq));
  await materialiser.apply(batch);
}
await materialiser.close();
process.stdout.write(`${JSON.stringify({ done: materialiser.lastAppliedSeq })}\n`);
