// Bundles the dashboard into dist/: the charting library (uPlot, from npm) and our code in one script, its
// stylesheet and ours in one stylesheet, and index.html. No CDN at run time: everything is served by `sluice api`.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const uplotDir = dirname(require.resolve("uplot/package.json"));
const dist = join(here, "dist");
mkdirSync(dist, { recursive: true });
const read = (p) => readFileSync(p, "utf8");
writeFileSync(join(dist, "app.js"),
  "/* uPlot (MIT) */\n" + read(join(uplotDir, "dist", "uPlot.iife.min.js")) + "\n;\n" + read(join(here, "src", "app.js")));
writeFileSync(join(dist, "app.css"), read(join(uplotDir, "dist", "uPlot.min.css")) + "\n" + read(join(here, "src", "app.css")));
writeFileSync(join(dist, "index.html"), read(join(here, "src", "index.html")));
console.log("built", dist);
