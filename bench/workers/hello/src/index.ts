// Baseline: a bare Hono hello world, answering every path and method without reading the body.
import { Hono } from "hono";

const app = new Hono();
app.all("*", (c) => c.text("Hello Hono!"));

export default app;
