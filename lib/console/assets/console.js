/**
 * The console's entry point: the three views (Query, Cluster, Status) as
 * tabs bound to the URL hash, the header showing this node, its Raft state,
 * the leader and the version (refreshed every HEADER_REFRESH_MS), and the
 * sign-in dialog that api.js opens when the node answers 401 (-auth on).
 */

import {
  currentUser,
  onCredentialsChange,
  requestJson,
  setCredentialPrompt,
  signIn,
  signOut,
} from "./api.js";
import { initCluster } from "./cluster.js";
import { byId } from "./dom.js";
import { initQuery } from "./query.js";
import { initStatus } from "./status.js";

const HEADER_REFRESH_MS = 5000;
const VIEWS = ["query", "cluster", "status"];

let current = "";
const cluster = initCluster({ isVisible: () => current === "cluster", onStore: showNode });
const status = initStatus();
initQuery();
initSignIn();

function route() {
  const wanted = location.hash.slice(1);
  const view = VIEWS.includes(wanted) ? wanted : "query";
  if (view === current) return;
  current = view;
  for (const v of VIEWS) {
    byId(`view-${v}`).hidden = v !== view;
    const tab = byId(`tab-${v}`);
    tab.setAttribute("aria-selected", String(v === view));
    tab.classList.toggle("active", v === view);
  }
  if (view === "cluster") cluster.show();
  if (view === "status") status.show();
  if (view === "query") byId("sql").focus();
}

/** Header: node id, state badge, leader, version. */
function showNode(store, version) {
  const state = store?.raft?.state ?? (store?.open === false ? "Starting" : "Unknown");
  const pill = byId("node-state");
  pill.textContent = state;
  pill.className = `pill state-${state.toLowerCase()}`;
  byId("node-id").textContent = store?.node_id ?? "—";
  byId("leader-id").textContent = store?.leader?.node_id || "none";
  if (version) byId("version").textContent = version;
}

async function refreshHeader() {
  // A background tab does not poll; the next refresh after it is shown catches up.
  if (document.hidden) {
    setTimeout(refreshHeader, HEADER_REFRESH_MS);
    return;
  }
  try {
    const { body, reply } = await requestJson("/status?key=store", {
      interactive: false,
      timeoutMs: 5000,
    });
    showNode(body, reply.headers.get("X-RQLITE-VERSION") ?? "");
  } catch (err) {
    const pill = byId("node-state");
    pill.textContent = err.status === 401 ? "Sign-in needed" : "Unreachable";
    pill.className = "pill state-down";
  } finally {
    setTimeout(refreshHeader, HEADER_REFRESH_MS);
  }
}

function initSignIn() {
  const dialog = byId("login");
  const form = byId("login-form");
  const who = byId("who");
  const showUser = () => {
    const user = currentUser();
    who.hidden = user === "";
    byId("who-name").textContent = user;
  };
  setCredentialPrompt(() =>
    new Promise((resolve) => {
      form.reset();
      byId("login-error").textContent = currentUser()
        ? `Signed in as "${currentUser()}", which may not do this. Sign in as another user.`
        : "This node requires a username and password.";
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.showModal();
    })
  );
  form.addEventListener("submit", (e) => {
    if (e.submitter?.value !== "ok") return;
    const data = new FormData(form);
    signIn(String(data.get("username") ?? ""), String(data.get("password") ?? ""));
  });
  byId("sign-out").addEventListener("click", () => signOut());
  onCredentialsChange(showUser);
  showUser();
}

addEventListener("hashchange", route);
route();
refreshHeader();
