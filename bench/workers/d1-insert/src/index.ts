// Baseline: parse the posted JSON and insert it as one D1 row, answering 202 with the row id.
import { Hono } from "hono";

const app = new Hono<{ Bindings: { DB: D1Database } }>();

app.post("*", async (c) => {
  const event = await c.req.json();
  const row = await c.env.DB.prepare("insert into events (body, received_at) values (?, ?) returning id")
    .bind(JSON.stringify(event), Date.now())
    .first<{ id: number }>();
  return c.json({ event_id: row?.id, status: "accepted" }, 202);
});
app.get("*", (c) => c.text("ok"));

export default app;
