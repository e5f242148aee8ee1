#!/usr/bin/env node
// The `wsdeploy` command of the npm package: runs the binary of this platform's package (an optional dependency,
// installed by npm only where its `os` and `cpu` match), as esbuild and biome do. No install script, no download.
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");

const PLATFORMS = {
  "linux x64": "@wsdeploy/linux-x64",
  "linux arm64": "@wsdeploy/linux-arm64",
  "darwin x64": "@wsdeploy/darwin-x64",
  "darwin arm64": "@wsdeploy/darwin-arm64",
};

function fail(message) {
  process.stderr.write(`wsdeploy: ${message}\n`);
  process.exit(1);
}

function binaryPath() {
  // An explicit binary wins (a locally built one, or a platform npm has no package for).
  if (process.env.WSDEPLOY_BINARY) return process.env.WSDEPLOY_BINARY;
  const key = `${process.platform} ${process.arch}`;
  const pkg = PLATFORMS[key];
  if (!pkg) {
    fail(
      `no prebuilt binary for ${key}. Install wsdeploy with cargo instead (\`cargo install --locked wsdeploy\`), ` +
        `or point WSDEPLOY_BINARY at a wsdeploy binary.`,
    );
  }
  let bin;
  try {
    bin = require.resolve(`${pkg}/bin/wsdeploy`);
  } catch {
    fail(
      `the package ${pkg}, which holds the binary for this machine, is not installed. It is an optional ` +
        `dependency of wsdeploy: reinstall without --omit=optional / --no-optional (and, with a lockfile made on ` +
        `another platform, run \`npm install\` again so that it picks this one).`,
    );
  }
  // npm keeps the executable bit of a packed file, but a copy through another tool may not.
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    fs.chmodSync(bin, 0o755);
  }
  return bin;
}

const child = spawn(binaryPath(), process.argv.slice(2), { stdio: "inherit" });
// A process manager or CI stops the launcher, not wsdeploy: hand the signal on, so that `wsdeploy dev` closes its
// sockets and stops the app it started.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => child.kill(signal));
}
// `npx` does not pass SIGTERM on through its shell: when whatever started this launcher is gone (it was re-parented),
// stop wsdeploy as if it had been signalled, rather than leave it running with nobody to stop it.
const parent = process.ppid;
const watch = setInterval(() => {
  if (process.ppid !== parent) child.kill("SIGTERM");
}, 500);
watch.unref();
child.on("error", (err) => fail(`cannot run ${child.spawnfile}: ${err.message}`));
child.on("exit", (code, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code ?? 1);
});
