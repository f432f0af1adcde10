// Bundle size: what `wrangler deploy --dry-run --outdir` would upload, raw and gzipped, for
// flaghook (the run's snapshot) and the two baseline Workers.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { progress, round } from "./lib/stats.mjs";
import { workerConfig } from "./lib/snapshot.mjs";
import { wranglerSync } from "./lib/wrangler.mjs";

const WORKERS = ["flaghook", "hello", "d1-insert"];

export async function bundleBench() {
  const out = {};
  for (const name of WORKERS) {
    const config = workerConfig(name);
    const dir = mkdtempSync(join(tmpdir(), `flaghook-bench-bundle-${name}-`));
    try {
      const meta = join(dir, "meta.json");
      const log = wranglerSync(["deploy", "--dry-run", "--outdir", dir, "--metafile", meta, "--config", config]);
      const files = readdirSync(dir, { recursive: true }).filter((f) => /\.(m?js|wasm)$/.test(f) && statSync(join(dir, f)).isFile());
      let raw = 0;
      let gzip = 0;
      for (const f of files) {
        const bytes = readFileSync(join(dir, f));
        raw += bytes.length;
        gzip += gzipSync(bytes).length;
      }
      const reported = /Total Upload: ([\d.]+ KiB) \/ gzip: ([\d.]+ KiB)/.exec(log);
      out[name] = {
        kib: round(raw / 1024, 1),
        gzip_kib: round(gzip / 1024, 1),
        wrangler_reports: reported ? `${reported[1]} / gzip ${reported[2]}` : null,
        largest_parts_kib: largestParts(meta),
      };
      progress(`bundle: ${name}: ${out[name].kib} KiB, ${out[name].gzip_kib} KiB gzipped`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}

/** KiB of bundled output per npm package (or "flaghook src/"), largest first, from esbuild's metafile. */
function largestParts(metaPath) {
  const meta = JSON.parse(readFileSync(metaPath, "utf8"));
  const parts = new Map();
  for (const output of Object.values(meta.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs ?? {})) {
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
      const part = m ? m[1] : /(^|\/)src\//.test(input) ? "src/" : input.split("/").slice(0, 2).join("/");
      parts.set(part, (parts.get(part) ?? 0) + bytesInOutput);
    }
  }
  return Object.fromEntries([...parts].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, v]) => [k, round(v / 1024, 1)]));
}
