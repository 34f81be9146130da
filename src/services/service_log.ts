// What a service printed where it runs, kept on that node for `tandem service logs`: the output of its
// driver commands, its actions and failed health checks, line by line, the last `capacity` lines.
import { type CommandOutcome, SeqRing } from "../shell/index.ts";

export interface ServiceLogLine {
  seq: number;
  /** ISO time. */
  time: string;
  /** What ran: "start", "stop", "action reload", "health". */
  source: string;
  stream: "stdout" | "stderr" | "tandem";
  text: string;
}

export class ServiceLog {
  private readonly lines: SeqRing<ServiceLogLine>;

  constructor(capacity = 500) {
    this.lines = new SeqRing(capacity);
  }

  add(source: string, stream: ServiceLogLine["stream"], text: string): void {
    for (const line of text.split("\n")) {
      if (line === "") continue;
      this.lines.push((seq) => ({ seq, time: new Date().toISOString(), source, stream, text: line }));
    }
  }

  /** A command's output, and how it ended when that was not a clean exit 0. */
  addOutcome(source: string, outcome: CommandOutcome): void {
    this.add(source, "stdout", outcome.stdout);
    this.add(source, "stderr", outcome.stderr);
    if (outcome.error !== null) this.add(source, "tandem", `could not run: ${outcome.error}`);
    else if (outcome.timedOut)
      this.add(source, "tandem", `killed after ${Math.round(outcome.durationMs)} ms`);
    else if (outcome.exitCode !== 0) this.add(source, "tandem", `exit ${outcome.exitCode ?? outcome.signal}`);
  }

  /** Up to `max` lines after `seq`, oldest first, and the seq to ask after next time. */
  after(seq: number, max = 200): { lines: ServiceLogLine[]; next: number } {
    const lines = this.lines.after(seq).items.slice(0, max);
    const next = lines.length === max ? (lines.at(-1)?.seq ?? this.lines.lastSeq) : this.lines.lastSeq;
    return { lines, next };
  }
}
