// Starting the console: sign in when the node asks for it, then the header (user, this node's
// role) and the views, one shown at a time after the URL's `#/view`.
"use strict";

(function (HQ) {
  const { $, el, session, call, poll } = HQ;
  const VIEWS = ["query", "schema", "cluster", "metrics"];
  let current = null;

  function route() {
    const want = (location.hash.match(/^#\/(\w+)/) || [])[1];
    const name = VIEWS.includes(want) ? want : "query";
    if (name === current) return;
    if (current) {
      HQ.views[current].hide();
      $("view-" + current).hidden = true;
    }
    current = name;
    $("view-" + name).hidden = false;
    document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === name));
    document.title = name[0].toUpperCase() + name.slice(1) + " · hiqlite console";
    HQ.views[name].show();
  }

  /** Show this node's id, role and term in the header. */
  function setBadge(s) {
    const b = $("node-badge");
    b.replaceChildren("node " + s.id + " · ",
      el("span", { class: "role role-" + String(s.state).toLowerCase() }, s.state), " · term " + s.term);
    b.hidden = false;
  }

  /** The header's badge, every few seconds (the cluster view refreshes it more often). */
  async function badge() {
    try {
      setBadge(await call("GET", "/status"));
    } catch (_) {
      $("node-badge").hidden = true;
    }
  }
  HQ.setBadge = setBadge;

  function start(me) {
    session.me = me;
    $("nav").hidden = false;
    if (me.auth) {
      $("user-name").textContent = me.user;
      $("user-ro").hidden = session.can("execute");
      $("user-ro").title = "This user may read but not write; the node refuses writes.";
      $("user-box").hidden = false;
      $("logout").addEventListener("click", () => {
        session.clear();
        location.hash = "";
        location.reload();
      });
    }
    if (session.can("status")) poll(badge, 3000, () => true);
    window.addEventListener("hashchange", route);
    route();
  }

  async function boot() {
    let me;
    try {
      me = await HQ.login.current();
    } catch (e) {
      $("view-login").hidden = false;
      $("login-error").textContent = "Cannot reach the node: " + e.message;
      $("login-error").hidden = false;
      return;
    }
    while (me.auth && !me.user) me = await HQ.login.ask(me.node);
    start(me);
  }

  boot();
})(window.HQ);
