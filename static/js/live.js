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
 * A socket the server closes with 4401 (REVOKED in tickets/live.py: this browser's access
 * ended, e.g. its device pairing was revoked) is not reopened: the page reloads, and its own
 * HTTP check sends it where it now belongs (a TV to the pairing screen).
 */
(function () {
  "use strict";
  const Totem = (window.Totem = window.Totem || {});
  const PING_EVERY = 20000;
  const SILENCE_LIMIT = 50000;
  const FIRST_DELAY = 1000;
  const MAX_DELAY = 30000;
  const REVOKED = 4401;

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
      fresh.onclose = (event) => {
        if (event.code === REVOKED && fresh === socket) {
          stop();
          location.reload();
          return;
        }
        drop(fresh);
      };
    }

    function stop() {
      stopped = true;
      clearInterval(heartbeat);
      clearTimeout(retryTimer);
      if (socket) socket.close();
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
      close: stop,
      get connected() {
        return Boolean(socket && socket.readyState === WebSocket.OPEN);
      },
    };
  }

  Totem.live = { connect, debounce };
})();
