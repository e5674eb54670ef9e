/* The public display (TV): shows the calls and announces each one, chime then voice.
 *
 * The board is server-rendered; it is re-read from display/state/ on every (re)connect, after
 * a lost event, shortly after any event, and once a minute whatever happens. Announcements
 * come only from ticket_called events and play one after another, so two calls close together
 * are both heard in order; a re-announce (the same line with a higher call_count) repeats.
 * The spoken text is also shown as a caption, for those who cannot hear it: in the header,
 * where it covers no call, and with the number as people read it ("C027", not "C 0 2 7").
 *
 * Between calls the stage shows the tenant's slides, one every `slide_seconds`: once the
 * newest call has had the stage for `stage_seconds` and nothing is being announced. A call
 * takes the stage back at once (the event, before the board is even re-read).
 */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("display-config").textContent);
  const board = document.getElementById("board");
  const caption = document.getElementById("caption");
  const soundButton = document.getElementById("sound-on");
  const startedAt = Date.now();
  const RECENT_SECONDS = 90;
  const pending = [];
  const heard = new Set();
  const announced = [];
  const captions = [];
  let speaking = false;
  let current = null;

  // --- the board -----------------------------------------------------------------------
  let loading = false;
  let again = false;

  async function refresh() {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    try {
      const response = await fetch(config.state, {
        headers: { "HX-Request": "true" },
        cache: "no-store",
      });
      if (response.headers.get("HX-Redirect")) {
        // The pairing was revoked. Reload the page rather than follow the redirect: it
        // leads to the pairing screen with this page (not the bare board) as where to
        // come back to once a new code is typed.
        location.reload();
        return;
      }
      if (response.ok) {
        board.innerHTML = await response.text();
        renderedAt = Date.now();
        catchUp();
        highlight();
        stage();
      }
    } catch (error) {
      /* offline: the socket's reconnect will bring us back here */
    } finally {
      loading = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }
  const refreshSoon = window.Totem.live.debounce(refresh, 250);

  // Calls on the board that no event announced: missed while offline or lost on the way
  // (the sequence gap that triggered this re-read). Announced if recent, oldest first. The
  // first look, at the server-rendered board, only takes note.
  let primed = false;
  function catchUp() {
    const cards = Array.from(board.querySelectorAll(".call[data-line]"));
    const missed = [];
    for (const card of cards) {
      const event = {
        line_id: Number(card.dataset.line),
        call_count: Number(card.dataset.calls),
        number: card.dataset.number,
        service: card.dataset.service,
        room: card.dataset.room,
      };
      const key = event.line_id + ":" + event.call_count;
      if (!primed) heard.add(key);
      else if (!heard.has(key) && Number(card.dataset.age) <= RECENT_SECONDS) {
        missed.push([Number(card.dataset.age), event]);
      }
    }
    primed = true;
    missed.sort((a, b) => b[0] - a[0]);
    for (const [, event] of missed) announce(event);
  }

  function highlight() {
    for (const card of board.querySelectorAll(".call.flash")) card.classList.remove("flash");
    if (!current) return;
    const card = board.querySelector('.call[data-line="' + current.line_id + '"]');
    if (card) card.classList.add("flash");
  }

  // --- announcements -------------------------------------------------------------------
  function spell(number) {
    return String(number).split("").join(" ");
  }

  function phrase(event, number) {
    return config.phrase
      .replace("{number}", number)
      .replace("{service}", event.service || "")
      .replace("{room}", event.room || "")
      .replace(/[,\s]+$/, "");
  }

  function voice() {
    const voices = window.speechSynthesis ? window.speechSynthesis.getVoices() : [];
    const lang = config.lang.toLowerCase();
    return (
      voices.find((v) => v.lang.replace("_", "-").toLowerCase() === lang) ||
      voices.find((v) => v.lang.toLowerCase().startsWith(lang.split("-")[0])) ||
      null
    );
  }

  function speak(text) {
    return new Promise((resolve) => {
      const synth = window.speechSynthesis;
      if (!synth || !window.SpeechSynthesisUtterance) {
        setTimeout(resolve, 1500);
        return;
      }
      const utterance = new SpeechSynthesisUtterance(text);
      utterance.lang = config.lang;
      utterance.rate = 0.9;
      const chosen = voice();
      if (chosen) utterance.voice = chosen;
      let done = false;
      // Some engines never fire onend (no voice installed, a stuck queue): give up in time.
      const guard = setTimeout(() => {
        synth.cancel();
        finish();
      }, 4000 + text.length * 150);
      function finish() {
        if (done) return;
        done = true;
        clearTimeout(guard);
        resolve();
      }
      utterance.onend = finish;
      utterance.onerror = finish;
      synth.speak(utterance);
    });
  }

  function wait(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  function announce(event) {
    const key = event.line_id + ":" + event.call_count;
    if (heard.has(key)) return;
    heard.add(key);
    if (heard.size > 500) heard.delete(heard.values().next().value);
    pending.push({ event, text: phrase(event, spell(event.number)), shown: phrase(event, event.number) });
    // A call interrupts the slides at once; the board's re-read brings its card.
    calledAt = Date.now();
    stage();
    play();
  }

  async function play() {
    if (speaking) return;
    speaking = true;
    while (pending.length) {
      const { event, text, shown } = pending.shift();
      current = event;
      caption.textContent = shown;
      announced.push(text);
      captions.push(shown);
      if (announced.length > 50) announced.shift();
      if (captions.length > 50) captions.shift();
      highlight();
      await window.Totem.sound.chime();
      await speak(text);
      await wait(800);
    }
    speaking = false;
    setTimeout(() => {
      if (!speaking) {
        caption.textContent = "";
        current = null;
        highlight();
        stage();
      }
    }, 6000);
  }

  // --- the stage: the newest call, or the tenant's slides between calls -------------------
  let renderedAt = Date.now();
  let calledAt = 0;
  let slideIndex = 0;
  let slideShownAt = 0;

  function callOnStage() {
    if (speaking || pending.length || current) return true;
    if (Date.now() - calledAt < config.stage_seconds * 1000) return true;
    const card = board.querySelector(".call-stage");
    if (!card) return false;
    const age = Number(card.dataset.age) + (Date.now() - renderedAt) / 1000;
    return age < config.stage_seconds;
  }

  function stage() {
    const slides = Array.from(board.querySelectorAll(".slide"));
    const signage = slides.length > 0 && !callOnStage();
    board.classList.toggle("signage-on", signage);
    if (!signage) {
      slideShownAt = 0;
    } else if (!slideShownAt || Date.now() - slideShownAt >= config.slide_seconds * 1000) {
      slideIndex = slideShownAt ? (slideIndex + 1) % slides.length : slideIndex % slides.length;
      slideShownAt = Date.now();
    }
    slides.forEach((slide, i) => slide.classList.toggle("on", signage && i === slideIndex % slides.length));
    fit();
  }

  // As many rows as fit: a row cut by the bottom of its list is hidden, not half shown.
  function fit() {
    for (const list of board.querySelectorAll("ol.fit")) {
      const rows = Array.from(list.children);
      for (const row of rows) row.hidden = false;
      const bottom = list.getBoundingClientRect().bottom;
      for (const row of rows) row.hidden = row.getBoundingClientRect().bottom > bottom + 1;
    }
  }
  window.addEventListener("resize", fit);

  // --- clock -----------------------------------------------------------------------------
  const clock = document.getElementById("clock");
  const date = document.getElementById("date");
  const time = new Intl.DateTimeFormat(config.lang, {
    timeZone: config.timezone,
    hour: "2-digit",
    minute: "2-digit",
  });
  const day = new Intl.DateTimeFormat(config.lang, {
    timeZone: config.timezone,
    weekday: "long",
    day: "numeric",
    month: "long",
  });
  function tick() {
    const now = new Date();
    clock.textContent = time.format(now);
    date.textContent = day.format(now);
    stage();
  }

  // --- sound needs one tap, unless the kiosk browser allows autoplay ----------------------
  function offerSound() {
    soundButton.hidden = window.Totem.sound.ready();
  }
  function turnSoundOn() {
    window.Totem.sound.unlock().then(offerSound);
    if (window.speechSynthesis) window.speechSynthesis.getVoices();
  }
  document.addEventListener("click", turnSoundOn);
  document.addEventListener("keydown", turnSoundOn);

  // --- live ------------------------------------------------------------------------------
  // Take note of the board as the server rendered it, so the re-read on connect announces a
  // call made in between (switching on never replays the morning, nor swallows a new call).
  catchUp();
  window.Totem.live.connect(config.socket, {
    onEvent(event) {
      if (event.type === "ticket_called") announce(event);
      refreshSoon();
    },
    onResync: refresh,
  });

  tick();
  setInterval(tick, 1000);
  setInterval(refresh, 60000);
  // Up for days: reload once a day when quiet, to pick up new releases and start clean.
  setInterval(() => {
    if (Date.now() - startedAt > 20 * 3600 * 1000 && !speaking && !pending.length) location.reload();
  }, 600000);
  setTimeout(offerSound, 1000);
  if (window.speechSynthesis) window.speechSynthesis.getVoices();

  window.totemDisplay = { announced, captions, refresh };
})();
