// A measured figure checked against its target; benches record these, bench/run.ts tabulates them.

export const Comparison = { AtMost: "<=", Below: "<", AtLeast: ">=" } as const;
export type Comparison = (typeof Comparison)[keyof typeof Comparison];

export interface TargetCheck {
  metric: string;
  unit: string;
  comparison: Comparison;
  target: number;
  /** null when nothing could be measured (e.g. no leader was ever elected), which fails the check. */
  measured: number | null;
  pass: boolean;
}

export function checkTarget(
  metric: string,
  unit: string,
  comparison: Comparison,
  target: number,
  measured: number | null,
): TargetCheck {
  const pass =
    measured !== null &&
    Number.isFinite(measured) &&
    (comparison === Comparison.AtMost
      ? measured <= target
      : comparison === Comparison.Below
        ? measured < target
        : measured >= target);
  return { metric, unit, comparison, target, measured, pass };
}

function formatAmount(value: number, unit: string): string {
  const digits = Number.isInteger(value) || Math.abs(value) >= 100 ? 0 : 2;
  return `${value.toFixed(digits)} ${unit}`;
}

/** Cells for a table row: metric, target, measured, verdict. */
export function targetRow(check: TargetCheck): string[] {
  return [
    check.metric,
    `${check.comparison} ${formatAmount(check.target, check.unit)}`,
    check.measured === null ? "n/a" : formatAmount(check.measured, check.unit),
    check.pass ? "pass" : "FAIL",
  ];
}

export const targetHeader = ["metric", "target", "measured", "result"] as const;
