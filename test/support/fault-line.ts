// The one line each fault scenario prints (test/faults.e2e.spec.ts, test/cluster.e2e.spec.ts):
// what was done, the jobs acknowledged, and the returns expected, found, lost and duplicated.

export interface Tally {
  expected: number;
  found: number;
  lost: number;
  duplicated: number;
}

export function reportFault(name: string, seed: number | undefined, what: string, acknowledged: number, refused: number, t: Tally): void {
  process.stdout.write(
    `fault ${name}: ${seed === undefined ? '' : `seed ${seed}, `}${what}, jobs acknowledged ${acknowledged} (refused ${refused}), ` +
      `returns expected ${t.expected}, found ${t.found}, lost ${t.lost}, duplicated ${t.duplicated}\n`,
  );
}
