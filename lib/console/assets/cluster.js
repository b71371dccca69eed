/**
 * The Cluster view: the members as this node sees them (GET /nodes with
 * non-voters, rqlite's ver=2 list: reachability, leader, version, response
 * time) and this node's Raft state and indexes (GET /status?key=store),
 * refreshed every REFRESH_MS while the view is open and "Live" is on.
 * Refreshes never overlap: the next starts after the previous ended.
 */

import { ApiError, requestJson } from "./api.js";
import { ago, byId, h, replace } from "./dom.js";
import { formatSeconds } from "./format.js";

/** Time between refreshes. */
export const REFRESH_MS = 3000;
/** Bound on one /nodes call (unreachable members are waited for up to this). */
const NODES_TIMEOUT = "2s";

/**
 * Wires up the Cluster view.
 * @param {{isVisible: () => boolean, onStore: (store: any, version: string) => void}} hooks
 */
export function initCluster(hooks) {
  const live = byId("cluster-live");
  const updated = byId("cluster-updated");
  let lastOk = 0;
  let timer = 0;
  let busy = false;

  async function refresh() {
    if (busy) return;
    busy = true;
    clearTimeout(timer);
    try {
      const [nodes, status] = await Promise.allSettled([
        requestJson(`/nodes?nonvoters&ver=2&timeout=${NODES_TIMEOUT}`, {
          interactive: false,
          timeoutMs: 5000,
        }),
        requestJson("/status?key=store", { interactive: false, timeoutMs: 5000 }),
      ]);
      const store = status.status === "fulfilled" ? status.value.body : undefined;
      if (status.status === "fulfilled") {
        hooks.onStore(store, status.value.reply.headers.get("X-RQLITE-VERSION") ?? "");
      }
      if (nodes.status === "fulfilled") renderNodes(nodes.value.body.nodes ?? [], store);
      if (store) renderRaft(store);
      const failure = [nodes, status].find((r) => r.status === "rejected");
      showError(failure ? failure.reason : undefined);
      if (!failure) lastOk = Date.now();
    } finally {
      busy = false;
      updated.textContent = lastOk ? `updated ${ago(lastOk)}` : "";
      if (live.checked && hooks.isVisible()) timer = setTimeout(refresh, REFRESH_MS);
    }
  }

  live.addEventListener("change", () => {
    if (live.checked) refresh();
    else clearTimeout(timer);
  });
  byId("cluster-refresh").addEventListener("click", refresh);
  return {
    /** Called when the view is shown. */
    show: refresh,
  };
}

function showError(err) {
  const box = byId("cluster-error");
  box.hidden = err === undefined;
  if (err === undefined) return;
  const message = err instanceof ApiError || err instanceof Error ? err.message : String(err);
  replace(box, h("strong", {}, "Cannot refresh: "), message);
}

/** Node table: leader first is not needed, rqlite sorts by id; the leader gets a badge. */
function renderNodes(nodes, store) {
  const self = store?.node_id;
  const rows = nodes.map((n) =>
    h(
      "tr",
      { class: n.reachable ? "" : "unreachable", "data-node-id": n.id },
      h(
        "td",
        { "data-label": "Node" },
        h("span", { class: "node-id" }, n.id),
        n.id === self ? h("span", { class: "tag" }, "this node") : null,
      ),
      h("td", { "data-label": "Role" }, roleBadge(n)),
      h(
        "td",
        { "data-label": "Reachable" },
        h("span", { class: `dot ${n.reachable ? "ok" : "bad"}` }),
        n.reachable ? "yes" : "no",
        n.error ? h("div", { class: "node-error", title: n.error }, n.error) : null,
      ),
      h(
        "td",
        { "data-label": "API" },
        n.api_addr
          ? h(
            "a",
            { href: `${n.api_addr}/console/`, title: "Open this node's console" },
            n.api_addr,
          )
          : h("span", { class: "muted" }, "—"),
      ),
      h("td", { "data-label": "Raft address" }, h("code", {}, n.addr ?? "")),
      h("td", { "data-label": "Version" }, n.version || h("span", { class: "muted" }, "—")),
      h(
        "td",
        { "data-label": "Response", class: "num" },
        n.reachable ? formatSeconds(n.time) : "—",
      ),
    )
  );
  replace(
    byId("nodes-body"),
    rows.length
      ? rows
      : h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No members known yet")),
  );
  const leader = nodes.find((n) => n.leader);
  byId("cluster-summary").textContent = `${nodes.length} node${nodes.length === 1 ? "" : "s"}` +
    ` · ${nodes.filter((n) => n.reachable).length} reachable` +
    ` · leader ${leader ? leader.id : "none"}`;
}

function roleBadge(n) {
  if (n.leader) return h("span", { class: "badge leader" }, "Leader");
  if (!n.voter) return h("span", { class: "badge nonvoter" }, "Non-voter");
  return h("span", { class: "badge follower" }, "Follower");
}

/** Stat tiles for this node's Raft state. */
function renderRaft(store) {
  const raft = store.raft ?? {};
  const tiles = [
    ["State", raft.state ?? (store.open === false ? "not open" : "—")],
    ["Term", raft.term],
    ["Commit index", raft.commit_index],
    ["Applied index", raft.applied_index],
    ["Last log index", raft.last_log_index],
    ["Last snapshot index", raft.last_snapshot_index],
    ["FSM index", store.fsm_index],
    ["DB applied index", store.db_applied_index],
    ["Peers", raft.num_peers],
    ["Pending proposals", raft.pending_proposals],
  ];
  replace(
    byId("raft-stats"),
    tiles.filter(([, v]) => v !== undefined).map(([label, value]) =>
      h(
        "div",
        { class: "stat" },
        h("div", { class: "stat-label" }, label),
        h("div", { class: "stat-value" }, String(value)),
      )
    ),
  );
}
