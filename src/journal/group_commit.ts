// Group commit: the calls that arrive within one turn of the event loop share one transaction, so one fsync
// makes all of them durable (an fsync costs about as much for one row as for hundreds). Each caller's
// promise settles with its own result once that transaction committed, or with its error.

export class GroupCommit<Item, Result> {
  private pending: Array<{
    item: Item;
    resolve: (result: Result) => void;
    reject: (error: unknown) => void;
  }> = [];
  private readonly commit: (items: readonly Item[]) => Result[];
  private readonly itemsMax: number;

  /** `commit` runs one transaction for all the items, returning a result per item, in order. */
  constructor(commit: (items: readonly Item[]) => Result[], itemsMax = 1024) {
    this.commit = commit;
    this.itemsMax = itemsMax;
  }

  push(item: Item): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length === 1) setImmediate(() => this.flush());
      else if (this.pending.length >= this.itemsMax) this.flush();
    });
  }

  private flush(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    let results: Result[];
    try {
      results = this.commit(batch.map((p) => p.item));
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    batch.forEach((p, i) => {
      p.resolve(results[i] as Result);
    });
  }
}
