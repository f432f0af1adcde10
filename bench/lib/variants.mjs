// flaghook's own wrangler.toml, rewritten into a temp dir for the ingest breakdown: the same
// Worker and bindings, optionally without its queue consumers and cron (accept path only).
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./wrangler.mjs";

export function flaghookConfig({ consumers }) {
  const lines = [];
  let skipping = false;
  for (const line of readFileSync(join(ROOT, "wrangler.toml"), "utf8").split("\n")) {
    if (line.startsWith("[")) skipping = !consumers && (line.startsWith("[[queues.consumers]]") || line.startsWith("[triggers]"));
    if (skipping) continue;
    lines.push(
      line
        .replace(/^main\s*=\s*"(.*)"/, (_, p) => `main = "${join(ROOT, p)}"`)
        .replace(/^migrations_dir\s*=\s*"(.*)"/, (_, p) => `migrations_dir = "${join(ROOT, p)}"`),
    );
  }
  const path = join(mkdtempSync(join(tmpdir(), "flaghook-bench-config-")), "wrangler.toml");
  writeFileSync(path, lines.join("\n"));
  return path;
}
