// The benchmarks' one output format: rows of [measure, result, target], aligned.
export function printRows(rows) {
  const width = Math.max('measure'.length, ...rows.map((r) => r[0].length));
  console.log(`${'measure'.padEnd(width)}  ${'result'.padStart(10)}  target`);
  for (const [what, value, target = '-'] of rows) console.log(`${what.padEnd(width)}  ${value.padStart(10)}  ${target}`);
}
