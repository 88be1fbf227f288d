// 職員コンソール: the queue and delivery states update without a reload (polling JSON), and confirmations.
(function () {
  "use strict";
  var body = document.body;
  var pollMs = Math.max(2, parseFloat(body.dataset.pollSeconds || "10")) * 1000;
  var csrf = body.dataset.csrf || "";

  function toLogin() {
    var next = encodeURIComponent(location.pathname + location.search);
    location.href = "/login?next=" + next + "&expired=1";  // the same URL as the server's redirect
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (r.status === 401) { toLogin(); throw new Error("logged out"); }
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    });
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function badge(cls, text) { return el("span", { "class": "badge " + cls }, [text]); }

  function queueRow(r, view) {
    var tds = [];
    tds.push(el("td", {}, [el("a", { href: r.url }, ["#" + r.id])]));
    tds.push(el("td", {}, [r.urgent ? badge("urgent", "🚨 " + r.priority) : r.priority]));
    var kind = el("td", {}, []);
    if (r.kind === "complaint") { kind.appendChild(badge("complaint", r.kind_label)); kind.appendChild(document.createTextNode(" ")); }
    kind.appendChild(badge("status-" + r.status, r.status_label));
    tds.push(kind);
    tds.push(el("td", {}, [r.channel]));
    tds.push(el("td", {}, [r.topic]));
    tds.push(el("td", {}, [r.lang]));
    tds.push(el("td", {}, [
      el("span", { "class": "wait" }, [r.waited]), el("br"),
      el("small", {}, [r.office_waited + "／" + r.target + " ", el("span", { "class": "sla" }, [r.sla_label])])
    ]));
    tds.push(el("td", {}, [r.assignee_label]));
    tds.push(el("td", {}, [r.created]));
    var act = el("td", {}, []);
    if (r.can_claim) {
      var form = el("form", { method: "post", action: "/cases/" + r.id + "/claim", "class": "inline" }, [
        el("input", { type: "hidden", name: "csrf_token", value: csrf }),
        el("input", { type: "hidden", name: "next", value: "/cases" + (view !== "all" ? "?view=" + view : "") }),
        el("button", { type: "submit" }, ["担当する"])
      ]);
      act.appendChild(form);
    }
    tds.push(act);
    var cls = (r.urgent ? "urgent " : "") + "sla-" + r.sla;
    return el("tr", { "class": cls, "data-case-id": String(r.id) }, tds);
  }

  function pollQueue() {
    var table = document.getElementById("queue");
    if (!table) { return; }
    var view = table.dataset.view || "all";
    var tbody = table.tBodies[0];
    var updated = document.getElementById("updated");
    function tick() {
      getJSON("/cases/queue.json?view=" + encodeURIComponent(view)).then(function (data) {
        var seen = {};
        Array.prototype.forEach.call(tbody.querySelectorAll("tr[data-case-id]"), function (tr) { seen[tr.dataset.caseId] = true; });
        var rows = data.rows || [];
        var fresh = document.createDocumentFragment();
        rows.forEach(function (r) {
          var tr = queueRow(r, view);
          if (!seen[String(r.id)] && Object.keys(seen).length) { tr.classList.add("fresh"); }
          fresh.appendChild(tr);
        });
        if (!rows.length) {
          fresh.appendChild(el("tr", { "class": "empty" }, [el("td", { colspan: "10" }, ["該当するケースはありません。"])]));
        }
        tbody.replaceChildren(fresh);
        if (updated) { updated.textContent = " 自動更新：" + new Date().toLocaleTimeString("ja-JP"); }
      }).catch(function () { /* try again at the next tick */ });
    }
    setInterval(tick, pollMs);
  }

  function pollDeliveries() {
    var head = document.querySelector(".case-head[data-case-id]");
    if (!head || !document.querySelector("[data-message-id]")) { return; }
    var url = "/cases/" + head.dataset.caseId + "/deliveries.json";
    function tick() {
      getJSON(url).then(function (data) {
        (data.messages || []).forEach(function (m) {
          var node = document.querySelector('[data-message-id="' + m.id + '"]');
          if (node && m.delivery) {
            node.textContent = m.label;
            node.className = "delivery delivery-" + m.delivery;
          }
        });
      }).catch(function () {});
    }
    setInterval(tick, Math.min(pollMs, 3000));
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var button = ev.submitter;
    var question = (button && button.dataset.confirm) || form.dataset.confirm;
    if (question && !window.confirm(question)) { ev.preventDefault(); }
  });

  pollQueue();
  pollDeliveries();
})();
