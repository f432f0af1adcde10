import { describe, expect, it } from "vitest";
import { call, countRows, createOrganisation, recorded } from "./helpers";

const seedEvent = {
  type: "FLAG_STATE_UPDATED",
  occurred_at: "2021-06-18T07:50:26.595298Z",
  author: { id: 3, email: "user@domain.com", first_name: "Kyle", last_name: "Johnson" },
  project: { id: 12, name: "Flagsmith Website" },
  environment: { id: 23, name: "Development" },
  feature: { id: 7168, name: "butter_bar", type: "CONFIG", default_enabled: false, initial_value: null },
  previous_state: { enabled: false, feature_state_value: "a" },
  new_state: { enabled: true, feature_state_value: "b" },
};

describe("POST /api/v1/events", () => {
  it("accepts an event with 202 and records one audit entry with Flagsmith's log", async () => {
    const { auth } = await createOrganisation();
    const res = await call("/api/v1/events", { method: "POST", headers: auth, json: seedEvent });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { event_id: string; status: string };
    expect(body).toEqual({ event_id: expect.stringMatching(/^evt_[0-9a-z]{26}$/), status: "accepted" });
    const status = await recorded(auth, body.event_id);
    const entry = await (await call(`/api/v1/audit/${status.audit_entry_id}/`, { headers: auth })).json();
    expect(entry).toMatchObject({
      log: "Flag state updated for feature: butter_bar",
      related_object_type: "FEATURE_STATE",
      created_date: "2021-06-18T07:50:26.595298Z",
      change_type: "UPDATE",
      change_details: [
        { field: "enabled", old: false, new: true },
        { field: "feature_state_value", old: "a", new: "b" },
      ],
    });
    expect(await countRows("audit_entries", "type = ?", "FLAG_STATE_UPDATED")).toBe(1);
  });
});
