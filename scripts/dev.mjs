// `npm run dev`: local D1 migrated, local queues, http://127.0.0.1:8787 (PORT to change), offline, no account.
import { spawnSync, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";

const env = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" };
const port = process.env.PORT ?? "8787";

/** Listens on the port for a moment: the port number it got (0 asks the system for a free one), or null if taken. */
function probe(wanted) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(null));
    server.listen(Number(wanted), "127.0.0.1", () => {
      const { port: got } = server.address();
      server.close(() => resolve(got));
    });
  });
}

if ((await probe(port)) === null) {
  console.error(`Port ${port} is in use (another npm run dev?). Start this one elsewhere: PORT=${Number(port) + 1} npm run dev`);
  process.exit(1);
}
// wrangler probes 9229 for its inspector, and two dev servers started together both take it (one then
// fails). A port the system hands out is free and not handed to both; INSPECTOR_PORT chooses one.
const inspectorPort = process.env.INSPECTOR_PORT || String(await probe(0));

if (!existsSync(".dev.vars")) {
  writeFileSync(
    ".dev.vars",
    [
      "ADMIN_TOKEN=dev-admin-token",
      `SECRETS_KEY=${randomBytes(32).toString("base64")}`,
      "ALLOW_PRIVATE_WEBHOOK_URLS=true",
      "",
    ].join("\n"),
  );
}
// The audit log's checkpoint signing key (base64 of an Ed25519 seed), added to an older .dev.vars too.
if (!/^AUDIT_SIGNING_KEY=/m.test(readFileSync(".dev.vars", "utf8"))) {
  const current = readFileSync(".dev.vars", "utf8");
  writeFileSync(".dev.vars", `${current}${current.endsWith("\n") || !current ? "" : "\n"}AUDIT_SIGNING_KEY=${randomBytes(32).toString("base64")}\n`);
}
const vars = Object.fromEntries(
  readFileSync(".dev.vars", "utf8")
    .split("\n")
    .filter((l) => l.includes("="))
    .map((l) => [l.slice(0, l.indexOf("=")).trim(), l.slice(l.indexOf("=") + 1).trim()]),
);

const migrate = spawnSync("npx", ["wrangler", "d1", "migrations", "apply", "flaghook", "--local"], { stdio: "inherit", env });
if (migrate.status !== 0) process.exit(migrate.status ?? 1);

console.log(`\nflaghook on http://127.0.0.1:${port}`);
console.log(`  admin token: ${vars.ADMIN_TOKEN ?? "(set ADMIN_TOKEN in .dev.vars)"}`);
console.log(`  admin pages: http://127.0.0.1:${port}/ui   API docs: http://127.0.0.1:${port}/docs`);
console.log(`  debugger (inspector): 127.0.0.1:${inspectorPort}\n`);

const dev = spawn(
  "npx",
  ["wrangler", "dev", "--ip", "127.0.0.1", "--port", port, "--inspector-port", inspectorPort, "--test-scheduled", ...process.argv.slice(2)],
  { stdio: "inherit", env },
);
const stop = (signal) => dev.kill(signal);
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
dev.on("exit", (code) => process.exit(code ?? 0));
