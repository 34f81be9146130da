// A binary min-heap of timed items. Ties in time keep insertion order (a sequence number), so a history
// depends only on the seed, never on heap internals.

interface Slot<T> {
  atUnits: number;
  seq: number;
  item: T;
}

export class EventQueue<T> {
  private readonly slots: Slot<T>[] = [];
  private seqNext = 0;

  get size(): number {
    return this.slots.length;
  }

  push(atUnits: number, item: T): void {
    this.slots.push({ atUnits, seq: this.seqNext++, item });
    this.siftUp(this.slots.length - 1);
  }

  /** Time of the earliest item, or Infinity when empty. */
  peekUnits(): number {
    return this.slots[0]?.atUnits ?? Number.POSITIVE_INFINITY;
  }

  pop(): T | undefined {
    const top = this.slots[0];
    const last = this.slots.pop();
    if (top === undefined || last === undefined) return undefined;
    if (this.slots.length > 0) {
      this.slots[0] = last;
      this.siftDown(0);
    }
    return top.item;
  }

  private before(i: number, j: number): boolean {
    const a = this.slots[i]!;
    const b = this.slots[j]!;
    return a.atUnits < b.atUnits || (a.atUnits === b.atUnits && a.seq < b.seq);
  }

  private swap(i: number, j: number): void {
    const a = this.slots[i]!;
    this.slots[i] = this.slots[j]!;
    this.slots[j] = a;
  }

  private siftUp(index: number): void {
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(index: number): void {
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < this.slots.length && this.before(left, smallest)) smallest = left;
      if (right < this.slots.length && this.before(right, smallest)) smallest = right;
      if (smallest === i) return;
      this.swap(i, smallest);
      i = smallest;
    }
  }
}
