// The last `capacity` items of a stream, each numbered in order from 1 (its seq), for readers that resume
// after the last seq they got: the agent's event log and a service's output lines.
export class SeqRing<T extends { seq: number }> {
  private readonly capacity: number;
  private readonly items: T[] = [];
  private last = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** The seq of the newest item; 0 before any. */
  get lastSeq(): number {
    return this.last;
  }

  /** Keeps the item `make` builds with the next seq, dropping the oldest past capacity. */
  push(make: (seq: number) => T): void {
    this.last += 1;
    this.items.push(make(this.last));
    if (this.items.length > this.capacity) this.items.shift();
  }

  /** Items after `seq` still kept, oldest first; `lost` when some after it are gone already. */
  after(seq: number): { items: T[]; lost: boolean } {
    const oldest = this.items[0]?.seq ?? this.last + 1;
    return { items: this.items.filter((item) => item.seq > seq), lost: seq + 1 < oldest };
  }
}
