// Which backups a schedule keeps, as restic's `forget --keep-last N --keep-daily D --keep-weekly W` does:
// the N newest; the newest of each of the D most recent days that have one; the newest of each of the W
// most recent ISO weeks that have one (days and weeks in UTC). Everything else may go. Pure.

export interface RetentionPolicy {
  last: number;
  daily: number;
  weekly: number;
}

export interface BackupStamp {
  id: string;
  createdMs: number;
}

/** The ids to keep; a backup kept by any rule is kept. */
export function backupsToKeep(backups: readonly BackupStamp[], policy: RetentionPolicy): Set<string> {
  const newestFirst = [...backups].sort((a, b) => b.createdMs - a.createdMs || (a.id < b.id ? 1 : -1));
  const keep = new Set(newestFirst.slice(0, policy.last).map((b) => b.id));
  keepNewestPerPeriod(newestFirst, policy.daily, dayOf, keep);
  keepNewestPerPeriod(newestFirst, policy.weekly, isoWeekOf, keep);
  return keep;
}

function keepNewestPerPeriod(
  newestFirst: readonly BackupStamp[],
  periods: number,
  periodOf: (ms: number) => string,
  keep: Set<string>,
): void {
  const seen = new Set<string>();
  for (const backup of newestFirst) {
    if (seen.size >= periods) return;
    const period = periodOf(backup.createdMs);
    if (seen.has(period)) continue;
    seen.add(period);
    keep.add(backup.id);
  }
}

function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** ISO 8601 week: weeks start on Monday; week 1 holds the year's first Thursday. */
function isoWeekOf(ms: number): string {
  const date = new Date(ms);
  const day = (date.getUTCDay() + 6) % 7; // Monday 0 ... Sunday 6
  const thursday = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() - day + 3);
  const year = new Date(thursday).getUTCFullYear();
  const week = 1 + Math.floor((thursday - Date.UTC(year, 0, 1)) / (7 * 86_400_000));
  return `${year}-W${week}`;
}
