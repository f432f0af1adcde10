// Delivery health in the admin pages: a webhook's badge, and on its page the window's figures with a
// chart of deliveries and failed attempts per hour. The chart is inline SVG drawn here (no script, no
// external asset, nothing the page's CSP does not already allow); its labels are HTML text around it,
// so they keep their size on a phone while the bars stretch to the width there is.
import type { HealthWindow, WebhookHealth } from "../domain/health";
import type { WebhookStats } from "../health/stats";
import { Time } from "./layout";

const HEALTH_LABEL: Record<WebhookHealth, { kind: string; text: string }> = {
  healthy: { kind: "ok", text: "healthy" },
  failing: { kind: "bad", text: "failing" },
  disabled: { kind: "off", text: "disabled" },
};

export function HealthBadge({ health }: { health: WebhookHealth }) {
  const { kind, text } = HEALTH_LABEL[health];
  return (
    <span class={`badge ${kind}`} data-health={health}>
      {text}
    </span>
  );
}

/** The chart's top: 2, 4 or 10 times a power of ten, at least `n`, so that its half is a whole number too. */
export function niceCeiling(n: number): number {
  if (n <= 2) return 2;
  const power = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 4, 10]) if (step * power >= n && (step * power) % 2 === 0) return step * power;
  return 10 * power;
}

const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const count = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString("en")} ${n === 1 ? one : many}`;

/**
 * The x axis: a label where each day (7 days) or each sixth hour (24 hours) starts, UTC, laid on a
 * CSS grid of one column per hour (classes n24 / n168 and span1..span24 in styles.ts).
 */
function axisLabels(hours: WebhookStats["by_hour"], window: HealthWindow) {
  const labels: { span: number; text: string }[] = [];
  hours.forEach((h, i) => {
    const d = new Date(h.hour);
    const starts = window === "7d" ? d.getUTCHours() === 0 : d.getUTCHours() % 6 === 0;
    if (i === 0 || starts) labels.push({ span: 0, text: starts ? (window === "7d" ? `${WEEKDAYS[d.getUTCDay()]} ${d.getUTCDate()}` : `${String(d.getUTCHours()).padStart(2, "0")}:00`) : "" });
    labels[labels.length - 1].span++;
  });
  // A label with too few hours to hold its text on a phone stays blank (its tick remains).
  const room = window === "7d" ? 18 : 3;
  return labels.map((l) => (l.span < room ? { ...l, text: "" } : l));
}

export function HourlyChart({ stats }: { stats: WebhookStats }) {
  const hours = stats.by_hour;
  const n = hours.length;
  const top = niceCeiling(Math.max(...hours.map((h) => h.succeeded + h.attempts_failed)));
  const y = (v: number) => (v / top) * 100;
  const delivered = hours.reduce((a, h) => a + h.succeeded, 0);
  const failedAttempts = hours.reduce((a, h) => a + h.attempts_failed, 0);
  const span = stats.window === "7d" ? "7 days" : "24 hours";
  const summary = `Deliveries per hour over the last ${span} (UTC): ${count(delivered, "delivery", "deliveries")} delivered, ${count(failedAttempts, "failed attempt")}.`;
  return (
    <figure class="chart" data-chart={stats.window}>
      <div class="chart-y small muted" aria-hidden="true">
        <span>{top.toLocaleString("en")}</span>
        <span>{(top / 2).toLocaleString("en")}</span>
        <span>0</span>
      </div>
      <svg class="chart-bars" viewBox={`0 0 ${n} 100`} preserveAspectRatio="none" role="img" aria-label={summary} xmlns="http://www.w3.org/2000/svg">
        <line class="grid" x1="0" x2={n} y1="50" y2="50" vector-effect="non-scaling-stroke" />
        <line class="axis" x1="0" x2={n} y1="100" y2="100" vector-effect="non-scaling-stroke" />
        {hours.map((h, i) => {
          const ok = y(h.succeeded);
          const bad = y(h.attempts_failed);
          return (
            <g data-hour={h.hour}>
              <title>{`${h.hour.slice(0, 13).replace("T", " ")}:00 UTC: ${h.succeeded} delivered, ${h.attempts_failed} failed attempts`}</title>
              {ok > 0 && <rect class="ok" x={i + 0.12} width="0.76" y={100 - ok} height={ok} />}
              {bad > 0 && <rect class="bad" x={i + 0.12} width="0.76" y={100 - ok - bad} height={bad} />}
            </g>
          );
        })}
      </svg>
      <div class={`chart-x small muted n${n}`} aria-hidden="true">
        {axisLabels(hours, stats.window).map((l) => (
          <span class={`span${Math.min(l.span, 24)}`}>{l.text}</span>
        ))}
      </div>
      <figcaption class="small">
        <span class="key ok" aria-hidden="true"></span> delivered <span class="key bad" aria-hidden="true"></span> failed attempts · {summary}
      </figcaption>
    </figure>
  );
}

const percent = (rate: number | null) => (rate === null ? "—" : `${(rate * 100).toFixed(rate === 1 ? 0 : 1)}%`);

/** A webhook's health on its page: the window's figures, the chart, and a switch between windows. */
export function HealthPanel({ stats, base }: { stats: WebhookStats; base: string }) {
  const windows: [HealthWindow, string][] = [
    ["24h", "Last 24 hours"],
    ["7d", "Last 7 days"],
  ];
  return (
    <section class="card" aria-labelledby="health-title" data-stats-window={stats.window}>
      <div class="hook-head">
        <h2 id="health-title" class="flush-top">
          Health <HealthBadge health={stats.health} />
        </h2>
        <nav class="tabs small" aria-label="Window">
          {windows.map(([w, label]) => (
            <a href={`${base}?window=${w}`} aria-current={w === stats.window ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
      </div>
      <dl class="facts stats">
        <dt>Success rate</dt>
        <dd data-stat="success_rate">
          {percent(stats.success_rate)} <span class="muted small">of {count(stats.succeeded + stats.failed, "finished delivery", "finished deliveries")}</span>
        </dd>
        <dt>Deliveries</dt>
        <dd data-stat="deliveries">
          {stats.succeeded.toLocaleString("en")} delivered · {stats.failed.toLocaleString("en")} failed · {stats.pending.toLocaleString("en")} pending
        </dd>
        <dt>Attempts</dt>
        <dd data-stat="attempts">
          {stats.attempts.toLocaleString("en")} · {stats.attempts_failed.toLocaleString("en")} failed
          {stats.attempts_refused > 0 && ` (${stats.attempts_refused.toLocaleString("en")} refused by the URL policy)`}
        </dd>
        <dt>Duration</dt>
        <dd data-stat="duration">{stats.p50_ms === null ? "—" : `p50 ${stats.p50_ms} ms · p95 ${stats.p95_ms} ms`}</dd>
        <dt>Oldest pending</dt>
        <dd data-stat="oldest_pending">{stats.oldest_pending_at ? <Time iso={stats.oldest_pending_at} /> : <span class="muted">nothing pending</span>}</dd>
        <dt>Last success</dt>
        <dd data-stat="last_success">
          <Time iso={stats.last_success_at} />
        </dd>
        <dt>Last failure</dt>
        <dd data-stat="last_failure">
          <Time iso={stats.last_failure_at} />
          {stats.last_failure && <div class="small break">{stats.last_failure}</div>}
        </dd>
      </dl>
      <HourlyChart stats={stats} />
    </section>
  );
}
