// Decode a Classroom workflow's runner results as classroom-resources/autograding-grading-reporter
// does (the facts of its source, in our own code): for each name in the `runners` input, the
// environment variable <NAME.trim().toUpperCase()>_RESULTS, Buffer.from(…, "base64") as UTF-8,
// JSON.parse. Then both of its numbers: the console table (per runner, passed tests / tests ×
// max_score) and the points it records for Classroom (sum of every test's score, and of
// max_score, over runners whose max_score is set).
// usage: node .ci/classroom-reporter.cjs EXPECTED_POINTS EXPECTED_MAX < {"runners": "...", "env": {...}}
const input = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const [expected, expectedMax] = process.argv.slice(2).map(Number);
let table = 0, tableMax = 0, points = 0, maxPoints = 0, passed = 0, tests = 0;
for (const runner of input.runners.split(",")) {
  const encoded = input.env[`${runner.trim().toUpperCase()}_RESULTS`];
  const results = JSON.parse(Buffer.from(encoded, "base64").toString("utf-8"));  // throws as the reporter would
  const max = results.max_score || 0;
  const ok = results.tests.reduce((n, t) => (t.status === "pass" ? n + 1 : n), 0);
  table += (ok / results.tests.length) * max;
  tableMax += max;
  passed += ok;
  tests += results.tests.length;
  if (results.max_score) {
    maxPoints += results.max_score;
    for (const t of results.tests) points += t.score;
  }
}
console.log(`reporter table: ${table}/${tableMax}; Classroom points: ${points}/${maxPoints}; tests passed ${passed}/${tests}`);
const fine = table === points && points === expected && maxPoints === expectedMax && tableMax === expectedMax;
if (!fine) console.log(`expected ${expected}/${expectedMax} in both`);
process.exit(fine ? 0 : 1);
