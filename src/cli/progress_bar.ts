// Progress of a long operation on standard error: a bar redrawn in place on a terminal, or a line per
// phase (and every 10 %) when it is a file or a pipe, so logs stay readable.

const WIDTH = 30;

export class ProgressBar {
  private readonly tty: boolean;
  private lastLine = "";
  private lastDecile = -1;
  private lastPhase = "";

  constructor(tty = process.stderr.isTTY === true) {
    this.tty = tty;
  }

  update(phase: string, done: number, total: number): void {
    const fraction = total > 0 ? Math.min(1, done / total) : 0;
    const text = `${phase.padEnd(8)} ${mib(done)} / ${mib(total)} MiB`;
    if (this.tty) {
      const filled = Math.round(fraction * WIDTH);
      const line = `\r[${"#".repeat(filled)}${".".repeat(WIDTH - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}% ${text}`;
      if (line !== this.lastLine) process.stderr.write(line);
      this.lastLine = line;
      return;
    }
    const decile = Math.floor(fraction * 10);
    if (phase === this.lastPhase && decile === this.lastDecile) return;
    this.lastPhase = phase;
    this.lastDecile = decile;
    process.stderr.write(`${String(decile * 10).padStart(3)}% ${text}\n`);
  }

  /** Ends the bar's line on a terminal. */
  done(): void {
    if (this.tty && this.lastLine !== "") process.stderr.write("\n");
    this.lastLine = "";
  }
}

function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}
