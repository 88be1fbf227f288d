// 職員コンソール: live updates (server-sent events from /cases/events, polling the JSON views as the
// fallback), the urgent-case alarm (title badge, sound, desktop notification), the session-ended banner,
// and confirmations.
(function () {
  "use strict";
  var body = document.body;
  var pollMs = Math.max(2, parseFloat(body.dataset.pollSeconds || "10")) * 1000;
  var csrf = body.dataset.csrf || "";
  var baseTitle = document.title;
  var ended = false;

  // ----- the session ended: say so loudly, stop updating
  function sessionEnded() {
    if (ended) { return; }
    ended = true;
    var banner = document.getElementById("session-ended");
    if (banner) {
      var link = banner.querySelector("a");
      if (link) { link.href = "/login?next=" + encodeURIComponent(location.pathname + location.search) + "&expired=1"; }
      banner.hidden = false;
    }
    document.title = "【ログアウト】" + baseTitle;
    if (source) { source.close(); }
    Array.prototype.forEach.call(document.querySelectorAll("#updated"), function (n) { n.textContent = " 自動更新は止まっています"; });
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (r.status === 401) { sessionEnded(); throw new Error("logged out"); }
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

  // ----- the queue
  var table = document.getElementById("queue");
  var view = table ? (table.dataset.view || "all") : null;
  var filters = table ? (table.dataset.filters || "") : "";
  if (table && table.dataset.static) { table = null; }  // search results stay as searched; the alarm still runs

  // the same markup as _queue_row.html
  function queueRow(r) {
    var tds = [];
    var num = el("td", { "data-label": "受付番号" }, [el("a", { href: r.url }, ["#" + r.id])]);
    if (r.new_message) {
      num.appendChild(document.createTextNode(" "));
      num.appendChild(el("span", { "class": "badge new", title: "前回開いたあとに保護者から新しいメッセージがあります" }, ["新着"]));
    }
    tds.push(num);
    var prio = el("td", { "data-label": "優先度" }, [r.urgent ? badge("urgent", "🚨 " + r.priority) : r.priority]);
    if (r.urgent && r.crisis) { prio.appendChild(document.createTextNode(" ")); prio.appendChild(el("span", { "class": "crisis" }, [r.crisis])); }
    tds.push(prio);
    var kind = el("td", { "data-label": "種別・状態" }, []);
    if (r.kind !== "consultation") { kind.appendChild(badge("complaint", r.kind_label)); kind.appendChild(document.createTextNode(" ")); }
    kind.appendChild(badge("status-" + r.status, r.status_label));
    [[r.failed, "undelivered", "未達"], [r.export_request, "export", "記録開示の依頼"],
     [r.withdrawn, "withdrawn", "同意取り消し"], [r.booked, "booked", "予約あり"]].forEach(function (b) {
      if (b[0]) { kind.appendChild(document.createTextNode(" ")); kind.appendChild(badge(b[1], b[2])); }
    });
    tds.push(kind);
    tds.push(el("td", { "data-label": "経路" }, [r.channel, el("br"), el("small", {}, [r.lang])]));
    tds.push(el("td", { "data-label": "分野" }, [r.topic]));
    var preview = r.preview ? r.preview : el("span", { "class": "muted" }, [r.preview_hidden ? "（同意がないため表示しません）" : "—"]);
    tds.push(el("td", { "data-label": "最新のメッセージ", "class": "preview" }, [preview]));
    tds.push(el("td", { "data-label": "待ち時間" }, [
      el("span", { "class": "wait" }, [r.waited]), el("br"),
      el("small", {}, [r.office_waited + "／" + r.target + " ", el("span", { "class": "sla" }, [r.sla_label])])
    ]));
    tds.push(el("td", { "data-label": "担当" }, [r.assignee_label]));
    tds.push(el("td", { "data-label": "受付日時" }, [r.created]));
    var act = el("td", { "class": "act" }, []);
    if (r.can_claim) {
      act.appendChild(el("form", { method: "post", action: "/cases/" + r.id + "/claim", "class": "inline" }, [
        el("input", { type: "hidden", name: "csrf_token", value: csrf }),
        el("input", { type: "hidden", name: "next", value: "/cases" + (view !== "all" ? "?view=" + view : "") }),
        el("button", { type: "submit", "class": "primary", "aria-label": "受付番号 " + r.id + " を担当する" }, ["担当する"])
      ]));
    }
    tds.push(act);
    var cls = (r.urgent ? "urgent " : "") + (r.flagged ? "flagged " : "") + "sla-" + r.sla;
    return el("tr", { "class": cls, "data-case-id": String(r.id) }, tds);
  }

  function showQueue(data) {
    if (!table) { return; }
    var tbody = table.tBodies[0];
    var seen = {};
    Array.prototype.forEach.call(tbody.querySelectorAll("tr[data-case-id]"), function (tr) { seen[tr.dataset.caseId] = true; });
    var rows = data.rows || [];
    var fresh = document.createDocumentFragment();
    rows.forEach(function (r) {
      var tr = queueRow(r);
      if (!seen[String(r.id)] && Object.keys(seen).length) { tr.classList.add("fresh"); }
      fresh.appendChild(tr);
    });
    if (!rows.length) {
      fresh.appendChild(el("tr", { "class": "empty" }, [el("td", { colspan: "10" }, ["該当するケースはありません。"])]));
    }
    tbody.replaceChildren(fresh);
    var updated = document.getElementById("updated");
    if (updated) { updated.textContent = " 自動更新：" + new Date().toLocaleTimeString("ja-JP"); }
  }

  // ----- the case page
  var head = document.querySelector(".case-head[data-case-id]");
  var caseId = head ? head.dataset.caseId : null;

  function showCase(data) {
    var list = document.getElementById("transcript-list");
    if (list && typeof data.transcript === "string" && list.outerHTML !== data.transcript) {
      var holder = document.createElement("div");
      holder.innerHTML = data.transcript;  // rendered by our own autoescaping template
      var fresh = holder.firstElementChild;
      if (fresh) {
        var grew = Number(fresh.dataset.count || 0) > Number(list.dataset.count || 0);
        list.replaceWith(fresh);
        if (grew) { fresh.lastElementChild.classList.add("fresh"); }
      }
    }
    var wait = document.getElementById("case-wait");
    if (wait && typeof data.wait === "string") { wait.innerHTML = data.wait; }
  }

  // ----- urgent cases nobody has claimed: every open console raises them until someone claims
  var soundButton = document.getElementById("sound-toggle");
  var notifyButton = document.getElementById("notify-permission");
  var alarm = document.getElementById("urgent-alarm");
  var knownUrgent = null;  // ids already announced on this page (null: nothing received yet)

  function soundOn() { return localStorage.getItem("kc.sound") !== "off"; }
  function showSound() {
    if (!soundButton) { return; }
    soundButton.textContent = soundOn() ? "🔔 通知音：オン" : "🔕 通知音：オフ";
    soundButton.setAttribute("aria-pressed", soundOn() ? "true" : "false");
  }
  if (soundButton) {
    soundButton.addEventListener("click", function () {
      localStorage.setItem("kc.sound", soundOn() ? "off" : "on");
      showSound();
    });
    showSound();
  }

  var audio = null;
  function beep() {
    if (!soundOn()) { return; }
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) { return; }
      audio = audio || new Ctx();
      [0, 0.35, 0.7].forEach(function (at) {
        var osc = audio.createOscillator();
        var gain = audio.createGain();
        osc.frequency.value = 880;
        gain.gain.value = 0.2;
        osc.connect(gain); gain.connect(audio.destination);
        osc.start(audio.currentTime + at); osc.stop(audio.currentTime + at + 0.2);
      });
    } catch (e) { /* no audio device: the badge and the banner still show */ }
  }

  function canNotify() { return "Notification" in window; }
  function showNotifyButton() {
    if (notifyButton) { notifyButton.hidden = !(canNotify() && Notification.permission === "default"); }
  }
  function notify(id) {
    if (!canNotify()) { return; }
    var send = function () {
      // no message text in a desktop notification: other people may see the screen
      var n = new Notification("緊急のケース（受付番号 " + id + "）", { body: "未担当の緊急ケースが届きました。", tag: "kc-urgent-" + id });
      n.onclick = function () { window.focus(); location.href = "/cases/" + id; };
    };
    if (Notification.permission === "granted") { send(); return; }
    if (Notification.permission === "default") {
      Promise.resolve(Notification.requestPermission()).then(function (p) {
        showNotifyButton();
        if (p === "granted") { send(); }
      });
    }
  }
  if (notifyButton) {
    notifyButton.addEventListener("click", function () {
      Promise.resolve(Notification.requestPermission()).then(showNotifyButton);
    });
    showNotifyButton();
  }

  function showUrgent(data) {
    var ids = data.ids || [];
    document.title = (ids.length ? "(🚨" + ids.length + ") " : "") + (ended ? "【ログアウト】" : "") + baseTitle;
    if (alarm) {
      alarm.replaceChildren();
      if (ids.length) {
        alarm.appendChild(document.createTextNode("🚨 未担当の緊急ケースがあります："));
        ids.forEach(function (id) { alarm.appendChild(el("a", { href: "/cases/" + id }, ["受付番号 " + id])); });
      }
      alarm.hidden = !ids.length;
    }
    var arrived = ids.filter(function (id) { return knownUrgent !== null && knownUrgent.indexOf(id) < 0; });
    knownUrgent = ids.slice();
    if (arrived.length) {
      beep();
      arrived.forEach(notify);
    }
  }

  // ----- the stream, and polling when there is none
  var source = null;
  var polling = false;

  function poll() {
    if (polling) { return; }
    polling = true;
    function tick() {
      if (ended) { return; }
      if (table) { getJSON("/cases/queue.json?view=" + encodeURIComponent(view) + (filters ? "&" + filters : "")).then(showQueue).catch(function () {}); }
      getJSON("/cases/queue.json?view=all").then(function (data) {
        showUrgent({ ids: (data.rows || []).filter(function (r) { return r.flagged; }).map(function (r) { return r.id; }) });
      }).catch(function () {});
      if (caseId) {
        getJSON("/cases/" + caseId + "/deliveries.json").then(function (data) {
          (data.messages || []).forEach(function (m) {
            var node = document.querySelector('[data-message-id="' + m.id + '"]');
            if (node && m.delivery) { node.textContent = m.label; node.className = "delivery delivery-" + m.delivery; }
          });
        }).catch(function () {});
      }
    }
    tick();
    setInterval(tick, pollMs);
  }

  function stream() {
    if (!body.dataset.live) { return; }
    if (!window.EventSource) { poll(); return; }
    var query = [];
    if (table) { query.push("view=" + encodeURIComponent(view)); if (filters) { query.push(filters); } }
    if (caseId) { query.push("case=" + encodeURIComponent(caseId)); }
    source = new EventSource("/cases/events" + (query.length ? "?" + query.join("&") : ""));
    source.onopen = function () { body.dataset.stream = "open"; };
    source.addEventListener("queue", function (ev) { showQueue(JSON.parse(ev.data)); });
    source.addEventListener("urgent", function (ev) { showUrgent(JSON.parse(ev.data)); });
    source.addEventListener("case", function (ev) { showCase(JSON.parse(ev.data)); });
    source.addEventListener("session", function (ev) {
      var data = JSON.parse(ev.data);
      source.close();
      if (data.ended) { sessionEnded(); } else { location.reload(); }
    });
    source.onerror = function () {
      if (source.readyState !== EventSource.CLOSED || ended) { return; }  // reconnecting by itself
      // refused: find out whether the session ended; otherwise keep the page current by polling
      getJSON("/cases/queue.json?view=all").then(poll).catch(function () { if (!ended) { poll(); } });
    };
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var button = ev.submitter;
    var question = (button && button.dataset.confirm) || form.dataset.confirm;
    if (question && !window.confirm(question)) { ev.preventDefault(); }
  });

  // ----- the reply box: 定型文 by a click or by "/" and a few letters; Ctrl+Enter sends
  var replyBox = document.getElementById("reply-text");
  if (replyBox) {
    var items = Array.prototype.slice.call(document.querySelectorAll(".canned-item")).map(function (b) {
      return { title: b.textContent, text: b.dataset.text || "" };
    });
    var menu = document.getElementById("canned-menu");
    var slashAt = -1;
    var choice = 0;
    var insert = function (text, from, to) {
      var value = replyBox.value;
      replyBox.value = value.slice(0, from) + text + value.slice(to);
      var at = from + text.length;
      replyBox.focus();
      replyBox.setSelectionRange(at, at);
    };
    var closeMenu = function () { slashAt = -1; if (menu) { menu.hidden = true; menu.replaceChildren(); } };
    var matches = function () {
      var typed = replyBox.value.slice(slashAt + 1, replyBox.selectionStart);
      return items.filter(function (it) { return it.title.indexOf(typed) >= 0 || it.text.indexOf(typed) >= 0; });
    };
    var pick = function (it) { insert(it.text, slashAt, replyBox.selectionStart); closeMenu(); };
    var showMenu = function () {
      var found = matches();
      if (!menu || !found.length) { if (menu) { menu.hidden = true; } return; }
      choice = Math.min(choice, found.length - 1);
      menu.replaceChildren();
      found.forEach(function (it, i) {
        var li = el("li", { role: "option", "aria-selected": i === choice ? "true" : "false" }, [it.title]);
        li.addEventListener("mousedown", function (ev) { ev.preventDefault(); pick(it); });
        menu.appendChild(li);
      });
      menu.hidden = false;
    };
    Array.prototype.forEach.call(document.querySelectorAll(".canned-item"), function (b) {
      b.addEventListener("click", function () {
        insert(b.dataset.text || "", replyBox.selectionStart, replyBox.selectionEnd);
      });
    });
    replyBox.addEventListener("input", function () {
      var at = replyBox.selectionStart;
      var value = replyBox.value;
      if (slashAt < 0 && items.length && value.charAt(at - 1) === "/" && (at === 1 || /\s/.test(value.charAt(at - 2)))) {
        slashAt = at - 1; choice = 0;
      }
      if (slashAt >= 0) {
        if (at <= slashAt || value.charAt(slashAt) !== "/" || /\s/.test(value.slice(slashAt + 1, at))) { closeMenu(); return; }
        showMenu();
      }
    });
    replyBox.addEventListener("keydown", function (ev) {
      if ((ev.ctrlKey || ev.metaKey) && ev.key === "Enter") {
        ev.preventDefault();
        if (replyBox.form.requestSubmit) { replyBox.form.requestSubmit(); } else { replyBox.form.submit(); }
        return;
      }
      if (slashAt < 0 || !menu || menu.hidden) { return; }
      var found = matches();
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        choice = (choice + (ev.key === "ArrowDown" ? 1 : found.length - 1)) % found.length;
        showMenu();
      } else if ((ev.key === "Enter" || ev.key === "Tab") && found.length) {
        ev.preventDefault();
        pick(found[choice]);
      } else if (ev.key === "Escape") {
        ev.preventDefault();
        closeMenu();
      }
    });
    replyBox.addEventListener("blur", function () { setTimeout(closeMenu, 150); });
  }

  // ----- the case's records as tabs (without script every record shows, one below the other)
  var tablist = document.querySelector(".record-tabs [role=tablist]");
  if (tablist) {
    var tabs = Array.prototype.slice.call(tablist.querySelectorAll("[role=tab]"));
    var select = function (tab, focus) {
      tabs.forEach(function (t) {
        var on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        t.tabIndex = on ? 0 : -1;
        var panel = document.getElementById(t.getAttribute("aria-controls"));
        if (panel) { panel.hidden = !on; }
      });
      if (focus) { tab.focus(); }
    };
    var wanted = tabs.filter(function (t) { return t.getAttribute("href") === location.hash; })[0];
    select(wanted || tabs[0], false);
    if (wanted) { wanted.scrollIntoView({ block: "nearest" }); }
    tabs.forEach(function (t, i) {
      t.addEventListener("click", function (ev) { ev.preventDefault(); select(t, true); history.replaceState(null, "", t.getAttribute("href")); });
      t.addEventListener("keydown", function (ev) {
        var step = ev.key === "ArrowRight" ? 1 : ev.key === "ArrowLeft" ? -1 : 0;
        if (step) { ev.preventDefault(); select(tabs[(i + step + tabs.length) % tabs.length], true); }
      });
    });
  }

  stream();
})();
