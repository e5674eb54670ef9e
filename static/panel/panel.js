/* The operator panel: its live socket, its refresh, its sounds.
 *
 * Include htmx, js/sound.js, js/live.js and this file, then:
 *
 *   Totem.panel.live({slug: "demo", equipment: 12});   // or services: [3, 4]
 *
 * It opens /ws/t/<slug>/panel/?equipment=12 (only the services that station runs; without
 * either option, the whole tenant) and, on every event, on every reconnect and on a lost
 * event, fires `queue-changed` on document.body (debounced 150 ms), so partials declared with
 * hx-trigger="queue-changed from:body" re-fetch themselves. It plays Totem.sound.soft() when
 * a ticket enters one of the station's queues, Totem.sound.alert() when a called customer of
 * those services is marked a no-show, and re-dispatches each event as a
 * `totem:event` DOM event (detail = the event) for anything else the panel wants to do.
 */
(function () {
  "use strict";
  const Totem = (window.Totem = window.Totem || {});

  // The panel refreshes itself, but not while a row's extra actions are open (a reason being
  // typed, a service being chosen): a refresh would close them and lose what was typed.
  Totem.panelIdle = function () {
    var live = document.getElementById("panel-live");
    if (!live) return false;
    if (live.querySelector("details[open], .more-slot:not(:empty)")) return false;
    var active = document.activeElement;
    return !(active && live.contains(active) && active.matches("input, select, textarea"));
  };

  // The refresh asks first, here rather than in an hx-trigger filter: filters are evaluated
  // as code, which the Content-Security-Policy forbids.
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt.id === "panel-live" && !Totem.panelIdle()) event.preventDefault();
  });

  // A ticket entered a queue: it was paid/printed (a queue update without a line status while
  // the ticket is in the queue) or sent back to it (its line is waiting again).
  function enteredQueue(event) {
    return (
      event.type === "queue_update" &&
      (event.status === "waiting" || (event.status === undefined && event.ticket_status === "in_queue"))
    );
  }

  function shown(event) {
    var live = document.getElementById("panel-live");
    if (!live || !live.dataset.seqs || typeof event.group_seq !== "number") return false;
    return live.dataset.seqs.split(" ").some(function (pair) {
      var at = pair.lastIndexOf("=");
      return pair.slice(0, at) === event.group && event.group_seq <= parseInt(pair.slice(at + 1), 10);
    });
  }

  function panel(options) {
    const opts = Object.assign(
      { target: document.body, eventName: "queue-changed", sound: true, wait: 150 },
      options
    );
    const query = [];
    if (opts.equipment) query.push("equipment=" + encodeURIComponent(opts.equipment));
    if (opts.services && opts.services.length) query.push("services=" + opts.services.join(","));
    const path =
      "/ws/t/" + encodeURIComponent(opts.slug) + "/panel/" + (query.length ? "?" + query.join("&") : "");
    // Whether events need the panel re-read is decided when the refresh would go, not on
    // receipt: the answer to the operator's own tap (which shows them) may still be on its
    // way when its events arrive, so the check also waits for the panel's requests in flight.
    let pending = [];
    let resync = null;
    let inflight = 0;
    function refresh() {
      if (inflight > 0) return;
      const fresh = pending.filter((event) => !shown(event));
      const detail = resync ? { reason: resync } : fresh.length ? { event: fresh[fresh.length - 1] } : null;
      pending = [];
      resync = null;
      if (!detail) return;
      if (window.htmx) window.htmx.trigger(opts.target, opts.eventName, detail);
      else opts.target.dispatchEvent(new CustomEvent(opts.eventName, { detail, bubbles: true }));
    }
    const changed = Totem.live.debounce(refresh, opts.wait);
    document.addEventListener("htmx:beforeRequest", function (event) {
      if (!event.defaultPrevented) inflight += 1;
    });
    document.addEventListener("htmx:afterRequest", function () {
      inflight = Math.max(inflight - 1, 0);
      if (!inflight && (pending.length || resync)) changed();
    });
    // Several services of one ticket enter together: one blip, not three.
    const blip = Totem.live.debounce(() => Totem.sound && Totem.sound.soft(), 300);
    return Totem.live.connect(path, {
      onEvent(event) {
        // An event the panel's last render already shows (data-seqs: the numbers it read
        // first) needs no second request — the operator's own tap's, above all.
        pending.push(event);
        changed();
        if (opts.sound && enteredQueue(event)) blip();
        // A called customer who never came (the no-show timeout or the last re-call).
        if (opts.sound && event.status === "no_show" && Totem.sound) Totem.sound.alert();
        document.dispatchEvent(new CustomEvent("totem:event", { detail: event }));
      },
      onResync(reason) {
        resync = reason || "resync";
        changed();
      },
    });
  }

  Totem.panel = { live: panel };
})();

// "Close" in a row's extra actions empties the slot; the panel's refresh then resumes.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-close-more]");
  if (!button) return;
  var slot = button.closest(".more-slot");
  if (slot) slot.innerHTML = "";
});

// The operator panel listens to its station's queues over the WebSocket (js/live.js);
// each event triggers queue-changed on body and the panel re-reads itself. Polling stays as
// the fallback when the socket is down.
document.addEventListener("DOMContentLoaded", function () {
  var config = document.getElementById("panel-config");
  if (!config || !window.Totem || !window.Totem.live) return;
  window.Totem.panel.live({ slug: config.dataset.slug, equipment: config.dataset.equipment });
});

// Browsers keep audio muted until a gesture: the operator's first tap allows the panel's blip.
document.addEventListener(
  "click",
  function () {
    if (window.Totem && window.Totem.sound) window.Totem.sound.unlock();
  },
  { once: true }
);

// Each action's outcome ("C012 chamado…", a refusal, who was skipped and why) arrives as the
// HX-Trigger event panel:announce; written into the lasting aria-live region, it is read
// aloud. Emptied first, so the same message twice is read twice.
document.addEventListener("panel:announce", function (event) {
  var region = document.getElementById("panel-announce");
  if (!region || !event.detail) return;
  region.textContent = "";
  window.setTimeout(function () {
    region.textContent = event.detail.message;
  }, 50);
});

// Session and cool-down timers (js/timer.js count them down to server times).
// A session's time is up: one alert and the row marked; for a hard maximum (cryotherapy) the
// banner shows and the alert repeats every INSIST_MS until the operator completes the line
// (the row, and with it the timer, then leaves the panel). A cool-down that ran out refreshes
// the panel: the station is free.
(function () {
  "use strict";
  var INSIST_MS = 10000;
  var alerted = new Set();

  function sound() {
    if (window.Totem && window.Totem.sound) window.Totem.sound.alert();
  }

  function showHard(timer) {
    var row = timer.closest("li");
    var banner = row && row.querySelector(".hard-alert");
    if (banner) banner.hidden = false;
    if (row) row.classList.add("row-over");
  }

  document.addEventListener("timer:over", function (event) {
    var timer = event.target;
    if (timer.dataset.kind === "cooling") {
      if (window.htmx) window.htmx.trigger(document.body, "queue-changed", {});
      return;
    }
    if (timer.dataset.kind !== "session") return;
    var row = timer.closest("li");
    if (row) row.classList.add("row-over");
    if (timer.dataset.hard === "true") showHard(timer);
    // Once per line, though the panel re-renders the timer on each refresh.
    if (alerted.has(timer.dataset.line)) return;
    alerted.add(timer.dataset.line);
    sound();
  });

  // Insisting: rendered over by the server (after a reload) or reached here, the same.
  window.setInterval(function () {
    var over = document.querySelectorAll('.timer-over[data-kind="session"][data-hard="true"]');
    over.forEach(showHard);
    if (over.length) sound();
  }, INSIST_MS);
})();
