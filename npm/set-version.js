// Sets one version on every package in a folder made by `scripts/release npm`, and pins the launcher's optional
// dependencies (the platform packages) to exactly that version: a launcher must run the binary of its own release.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const [dir, version] = process.argv.slice(2);
if (!dir || !/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version || "")) {
  console.error("usage: node set-version.js DIR VERSION (a semver such as 0.2.0)");
  process.exit(2);
}
for (const name of fs.readdirSync(dir)) {
  const file = path.join(dir, name, "package.json");
  if (!fs.existsSync(file)) continue;
  const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
  pkg.version = version;
  for (const dep of Object.keys(pkg.optionalDependencies || {})) pkg.optionalDependencies[dep] = version;
  fs.writeFileSync(file, `${JSON.stringify(pkg, null, 2)}\n`);
}
