// Bundles of the client, with esbuild:
//   node scripts/bundle.mjs console          write the web console's copy (internal/console/static/signal-client.js)
//   node scripts/bundle.mjs console --stdout print it (the test compares it with the committed file)
//   node scripts/bundle.mjs sizes            minified + gzip sizes of the core and of /react (bench/README.md)
import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const consoleFile = join(root, "../../internal/console/static/signal-client.js");
const banner = "// @signal-notify/client for the web console, built from clients/js by `make console-bundle`.\n// DO NOT EDIT: make test fails when it differs from what the sources build.";

async function bundle(entry, { minify = false, external = [] } = {}) {
  const r = await build({
    absWorkingDir: root, // the path comments in the output do not depend on where it runs
    entryPoints: [join(root, entry)],
    bundle: true,
    format: "esm",
    target: "es2020",
    platform: "browser",
    minify,
    external,
    legalComments: "none",
    write: false,
    banner: minify ? {} : { js: banner },
    logLevel: "error",
  });
  return r.outputFiles[0].contents;
}

const [mode, flag] = process.argv.slice(2);
if (mode === "console") {
  const code = await bundle("src/index.ts");
  if (flag === "--stdout") process.stdout.write(code);
  else writeFileSync(consoleFile, code);
} else if (mode === "sizes") {
  const rows = [];
  for (const [name, entry, external] of [["@signal-notify/client", "src/index.ts", []], ["@signal-notify/client/react (react left out; it imports only the core's types)", "src/react.ts", ["react"]]]) {
    const min = await bundle(entry, { minify: true, external });
    rows.push({ bundle: name, minified: min.length, gzip: gzipSync(min, { level: 9 }).length });
  }
  console.log(JSON.stringify(rows));
} else {
  console.error("usage: bundle.mjs console [--stdout] | sizes");
  process.exit(2);
}
