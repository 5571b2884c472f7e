// Signing in: asks the node who the stored credentials name (`/console/api/whoami`); without
// auth on the node nobody signs in; otherwise the form checks a user and password against the
// node and keeps them for this tab.
"use strict";

(function (HQ) {
  const { $, session, call } = HQ;

  /**
   * Who we are with the credentials kept for this tab: the whoami answer, whose `user` is null
   * when the node wants someone to sign in (`auth` true). Stale credentials are dropped.
   */
  async function current() {
    try {
      return await call("GET", "/console/api/whoami");
    } catch (e) {
      if (e.status !== 401) throw e;
      session.clear();
      return call("GET", "/console/api/whoami");
    }
  }

  /** Show the form; resolves with the whoami answer once a user signed in. */
  function ask(nodeId) {
    return new Promise((resolve) => {
      const form = $("login-form");
      const err = $("login-error");
      $("login-node").textContent = nodeId ? "to hiqlite node " + nodeId : "to this hiqlite node";
      err.hidden = true;
      $("view-login").hidden = false;
      $("login-user").focus();
      form.onsubmit = async (ev) => {
        ev.preventDefault();
        err.hidden = true;
        const btn = $("login-submit");
        btn.disabled = true;
        const user = $("login-user").value.trim();
        const pass = $("login-pass").value;
        session.set(user, pass);
        try {
          const me = await call("GET", "/console/api/whoami");
          if (!me.user) throw new HQ.ApiError(401, "invalid username or password");
          $("login-pass").value = "";
          $("view-login").hidden = true;
          form.onsubmit = null;
          resolve(me);
        } catch (e) {
          session.clear();
          err.textContent = e.status === 401 ? "Wrong user name or password." : e.message;
          err.hidden = false;
          $("login-pass").select();
        } finally {
          btn.disabled = false;
        }
      };
    });
  }

  HQ.login = { current, ask };
})(window.HQ);
