/* Totem.live: one reconnecting WebSocket client for every screen.
 *
 *   const live = Totem.live.connect("/ws/t/demo/display/", {
 *     onEvent(event) {},    // every event: {type, seq, group, group_seq, number, service, …}
 *     onResync(reason) {},  // re-read your state over HTTP: "connect" (every (re)connect,
 *                           // after the hello) or "gap" (an event was lost or came late)
 *     onStatus(status) {},  // "connecting" | "open" | "closed"; also set on body[data-live]
 *   });
 *   live.close();
 *
 * It reconnects with exponential backoff and jitter (1 s doubling to 30 s) and at once when
 * the network or the tab comes back; it pings every 20 s and drops a socket silent for 50 s
 * (a TV's Wi-Fi can leave a dead connection open for hours). The server greets each socket
 * with {type: "hello", seqs: {group: n}}; every event carries its group's next number, so a
 * jump means something was lost and the screen re-reads its state. The database is the truth.
 *
 * Operator panel hook — include htmx, totem/sound.js and totem/live.js, then:
 *
 *   Totem.live.panel({slug: "demo", equipment: 12});   // or services: [3, 4]
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
  const PING_EVERY = 20000;
  const SILENCE_LIMIT = 50000;
  const FIRST_DELAY = 1000;
  const MAX_DELAY = 30000;

  function socketUrl(path) {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  }

  function debounce(fn, ms) {
    let timer = null;
    return function (...args) {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  function connect(path, options) {
    const opts = Object.assign({ onEvent() {}, onResync() {}, onStatus() {} }, options);
    let socket = null;
    let attempts = 0;
    let retryTimer = null;
    let lastHeard = 0;
    let stopped = false;
    let seqs = {};

    function safely(fn, ...args) {
      try {
        fn(...args);
      } catch (error) {
        console.error(error);
      }
    }

    function status(value) {
      document.body.dataset.live = value;
      safely(opts.onStatus, value);
    }

    function open() {
      clearTimeout(retryTimer);
      if (stopped || socket) return;
      status("connecting");
      let fresh;
      try {
        fresh = new WebSocket(socketUrl(path));
      } catch (error) {
        retry();
        return;
      }
      socket = fresh;
      lastHeard = Date.now();
      fresh.onmessage = (message) => {
        lastHeard = Date.now();
        handle(message.data);
      };
      fresh.onclose = () => drop(fresh);
    }

    // Forget a socket (closed, or silent too long) and plan the next attempt.
    function drop(which) {
      if (which !== socket) return;
      socket = null;
      which.onmessage = which.onclose = null;
      try {
        which.close();
      } catch (error) {
        /* already closed */
      }
      status("closed");
      retry();
    }

    function retry() {
      if (stopped) return;
      clearTimeout(retryTimer);
      const delay = Math.min(MAX_DELAY, FIRST_DELAY * 2 ** attempts) * (0.5 + Math.random() / 2);
      attempts += 1;
      retryTimer = setTimeout(open, delay);
    }

    function now() {
      // Back at once, not after the backoff: the network or the screen has just returned.
      if (stopped || socket) return;
      attempts = 0;
      open();
    }

    function handle(text) {
      let data;
      try {
        data = JSON.parse(text);
      } catch (error) {
        return;
      }
      if (data.type === "pong") return;
      if (data.type === "hello") {
        attempts = 0;
        seqs = Object.assign({}, data.seqs || {});
        status("open");
        safely(opts.onResync, "connect");
        return;
      }
      let gap = false;
      if (data.group && typeof data.group_seq === "number") {
        const last = seqs[data.group];
        gap = last !== undefined && data.group_seq !== last + 1;
        // A much smaller number means the counters were reset (Redis emptied): start over.
        if (last === undefined || data.group_seq > last || data.group_seq < last - 1000) {
          seqs[data.group] = data.group_seq;
        }
      }
      safely(opts.onEvent, data);
      if (gap) safely(opts.onResync, "gap");
    }

    const heartbeat = setInterval(() => {
      if (!socket || socket.readyState !== WebSocket.OPEN) return;
      if (Date.now() - lastHeard > SILENCE_LIMIT) {
        drop(socket);
        return;
      }
      socket.send('{"type": "ping"}');
    }, PING_EVERY);
    window.addEventListener("online", now);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") now();
    });

    open();
    return {
      close() {
        stopped = true;
        clearInterval(heartbeat);
        clearTimeout(retryTimer);
        if (socket) socket.close();
      },
      get connected() {
        return Boolean(socket && socket.readyState === WebSocket.OPEN);
      },
    };
  }

  // A ticket entered a queue: it was paid/printed (a queue update without a line status while
  // the ticket is in the queue) or sent back to it (its line is waiting again).
  function enteredQueue(event) {
    return (
      event.type === "queue_update" &&
      (event.status === "waiting" || (event.status === undefined && event.ticket_status === "in_queue"))
    );
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
    const changed = debounce((detail) => {
      if (window.htmx) window.htmx.trigger(opts.target, opts.eventName, detail);
      else opts.target.dispatchEvent(new CustomEvent(opts.eventName, { detail, bubbles: true }));
    }, opts.wait);
    // Several services of one ticket enter together: one blip, not three.
    const blip = debounce(() => Totem.sound && Totem.sound.soft(), 300);
    return connect(path, {
      onEvent(event) {
        changed({ event });
        if (opts.sound && enteredQueue(event)) blip();
        // A called customer who never came (the no-show timeout or the last re-call).
        if (opts.sound && event.status === "no_show" && Totem.sound) Totem.sound.alert();
        document.dispatchEvent(new CustomEvent("totem:event", { detail: event }));
      },
      onResync(reason) {
        changed({ reason });
      },
    });
  }

  Totem.live = { connect, panel, debounce };
})();
