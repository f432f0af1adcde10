// Browser tests: real headless Chromium (from @sparticuz/chromium, installed by `npm install`)
// driving the Worker under `wrangler dev`, in plain Node (not the Workers pool).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/browser/**/*.test.ts"],
    globalSetup: ["./test/browser/setup.ts"],
    pool: "forks",
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 240_000,
  },
});
