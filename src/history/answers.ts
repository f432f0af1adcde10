// The flag history's three answers, shared by the API and the admin pages: an environment's state
// at a moment, its net changes between two moments, and one flag's timeline.
import { isoMicro, now } from "../domain/clock";
import { ApiError, notFound } from "../domain/errors";
import { featureJson, netChanges, timelineEntry, type NetChange, type TimelineEntry } from "../domain/flag-state";
import { EVERY } from "../domain/history";
import type { Db } from "../db/client";
import { changesWithin, featuresAt, findEnvironment, subjectsAt, subjectsOfScopes, timelineOf, type TimelineCursor } from "./query";

export type Environment = { id: number; name: string | null };

export const nowMicro = () => isoMicro(now());

/**
 * `{"at", "environment", "features"}` as JSON text: the features arrive as stored JSON (an
 * environment may hold 50,000 overrides), so they are joined, not parsed and written again.
 */
export async function stateJson(db: Db, orgId: number, envRef: string, at: string = nowMicro()): Promise<string> {
  const environment = await findEnvironment(db, orgId, envRef);
  const features = await featuresAt(db, orgId, environment.id, at);
  const listed = features.map(featureJson).filter((f) => f !== null);
  return `{"at":${JSON.stringify(at)},"environment":${JSON.stringify(environment)},"features":[${listed.join(",")}]}`;
}

export async function changesAnswer(
  db: Db,
  orgId: number,
  envRef: string,
  from: string,
  to: string = nowMicro(),
): Promise<{ from: string; to: string; environment: Environment; changes: NetChange[] }> {
  if (from > to) throw new ApiError(400, "invalid_request", "from must not be after to", [{ field: "from", message: `after to (${to})` }]);
  const environment = await findEnvironment(db, orgId, envRef);
  const window = await changesWithin(db, orgId, environment.id, from, to);
  // The states those changes touched: their own, and every state of a scope that a change to all of them reached.
  const own = window.filter((w) => w.subject !== EVERY);
  const scopes = window.filter((w) => w.subject === EVERY).map((w) => [w.featureId, w.scope] as [number, string]);
  const touched = [...own, ...(await subjectsOfScopes(db, orgId, environment.id, scopes))];
  const [before, after] = await Promise.all([subjectsAt(db, orgId, environment.id, from, touched), subjectsAt(db, orgId, environment.id, to, touched)]);
  return { from, to, environment, changes: netChanges(to, before, after, window) };
}

export async function timelineAnswer(
  db: Db,
  orgId: number,
  envRef: string,
  featureId: number,
  pageSize: number,
  after?: TimelineCursor,
): Promise<{ environment: Environment; feature: { id: number; name: string }; results: TimelineEntry[]; next: TimelineCursor | null }> {
  const environment = await findEnvironment(db, orgId, envRef);
  const { changes, next } = await timelineOf(db, orgId, environment.id, featureId, pageSize, after);
  if (!changes.length && !after) throw notFound("flag history of this feature in this environment");
  const name = changes.at(-1)?.change.featureName ?? String(featureId);
  return { environment, feature: { id: featureId, name }, results: changes.map((x) => timelineEntry(x.change, x.previous)), next };
}
