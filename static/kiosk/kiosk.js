// The kiosk's small glue: inactivity timeout, on-screen keyboards, one submit per tap, bigger
// text, the ticket screen's chime, the offline banner. The server renders every screen and
// keeps every state; nothing here is needed for a purchase to be correct, only for it to be
// pleasant on a touch screen.
//
// A tap swaps the next screen in (hx-boost on body, one request): what belongs to a screen is
// set up again by `screen()`, run at load and after every whole-screen swap, which also fires
// "kiosk:screen" for the screens' own scripts (payment.js). Listeners on document stay.
(function () {
  "use strict";

  var body = document.body;

  // --- inactivity: warn with a visible countdown, then leave (the server decides what an
  // abandoned screen cancels). Only touches and keys count as activity, never the polling.
  // A form holding typed personal data ([data-personal]: name, CPF, phone) gets the shorter
  // timing the server sets for it, so nothing personal waits on the screen for the next person.
  var idleSeconds = 0;
  var warningSeconds = 0;
  var personalForm = null;
  var dialog = null;
  var idleForm = null;
  var idleTimer = null;
  var tickTimer = null;

  function leave() {
    if (idleForm && !idleForm.dataset.sent) {
      idleForm.dataset.sent = "1";
      idleForm.submit();
    }
  }

  function hideWarning() {
    if (tickTimer) clearInterval(tickTimer);
    tickTimer = null;
    if (dialog) dialog.hidden = true;
  }

  function showWarning() {
    if (!dialog || warningSeconds <= 0) return leave();
    var left = warningSeconds;
    var counter = dialog.querySelector("[data-countdown]");
    counter.textContent = left;
    dialog.hidden = false;
    dialog.querySelector("[data-idle-continue]").focus();
    tickTimer = setInterval(function () {
      left -= 1;
      counter.textContent = Math.max(left, 0);
      if (left <= 0) {
        clearInterval(tickTimer);
        leave();
      }
    }, 1000);
  }

  function holdsPersonalData() {
    if (!personalForm || !body.dataset.personalIdleSeconds) return false;
    return Array.prototype.some.call(personalForm.querySelectorAll("input[type=text]"), function (input) {
      return input.value.trim() !== "";
    });
  }

  function restartIdle() {
    if (idleSeconds <= 0) return;
    hideWarning();
    if (idleTimer) clearTimeout(idleTimer);
    var wait = idleSeconds;
    warningSeconds = parseInt(body.dataset.warningSeconds || "0", 10);
    if (holdsPersonalData()) {
      wait = parseInt(body.dataset.personalIdleSeconds, 10);
      warningSeconds = parseInt(body.dataset.personalWarningSeconds || "0", 10);
    }
    idleTimer = setTimeout(showWarning, wait * 1000);
  }

  ["pointerdown", "keydown", "input", "scroll"].forEach(function (name) {
    document.addEventListener(name, function () {
      // A touch while the warning shows is "I'm still here" too.
      restartIdle();
    }, { passive: true, capture: true });
  });

  function setupIdle() {
    idleSeconds = parseInt(body.dataset.idleSeconds || "0", 10);
    warningSeconds = parseInt(body.dataset.warningSeconds || "0", 10);
    personalForm = document.querySelector("form[data-personal]");
    dialog = document.getElementById("idle-dialog");
    idleForm = document.getElementById("idle-form");
    hideWarning();
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = null;
    restartIdle();
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-idle-continue]")) restartIdle();
  });

  // --- one submit per tap: a second tap on a form already sent does nothing. The server is
  // the real guard (one idempotency key per purchase); this spares it the work.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-once")) return;
    if (form.dataset.sent) {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "1";
  }, true);
  // Coming back through the history cache: the form may be used again.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) window.location.reload();
  });

  // --- bigger text, kept for this customer only (the welcome screen resets it).
  var sizeButton = null;
  function applySize(large) {
    document.documentElement.classList.toggle("text-large", large);
    if (sizeButton) sizeButton.setAttribute("aria-pressed", large ? "true" : "false");
  }
  function setupSize() {
    sizeButton = document.querySelector("[data-text-size]");
    try {
      if (body.classList.contains("welcome")) sessionStorage.removeItem("kioskTextLarge");
      applySize(sessionStorage.getItem("kioskTextLarge") === "1");
    } catch (e) { /* storage off: the button still works for this page */ }
  }
  document.addEventListener("click", function (event) {
    if (!event.target.closest("[data-text-size]")) return;
    var large = !document.documentElement.classList.contains("text-large");
    applySize(large);
    try { sessionStorage.setItem("kioskTextLarge", large ? "1" : "0"); } catch (e) { /* ignore */ }
  });

  // --- a sound the server asks for (body[data-sound]): the ticket screen's chime when the
  // purchase is paid. The taps that led here let this page play it: Chromium carries them
  // across the kiosk's same-site navigations. js/sound.js runs before DOMContentLoaded.
  function playSound() {
    var sound = window.Totem && window.Totem.sound;
    if (body.dataset.sound && sound && typeof sound[body.dataset.sound] === "function") {
      sound[body.dataset.sound]();
    }
  }

  // --- offline banner for htmx requests (polling, toggles).
  var offline = document.getElementById("offline");
  document.addEventListener("htmx:sendError", function () { if (offline) offline.hidden = false; });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (offline && event.detail.successful) offline.hidden = true;
  });

  // --- a question before an action that cannot be undone (*Cancelar compra*): the button
  // names its dialog (data-confirm); the dialog's own form sends the confirmed POST. Without
  // script the button posts anyway and the server asks the same question as a page.
  var asking = null;
  var askedBy = null;
  function closeQuestion() {
    if (!asking) return;
    asking.hidden = true;
    asking = null;
    if (askedBy && document.body.contains(askedBy)) askedBy.focus();
  }
  // Listened to as the click goes down (capture), so it comes before htmx's on the element.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button) {
      var question = document.getElementById(button.dataset.confirm);
      if (!question) return;
      event.preventDefault();
      asking = question;
      askedBy = button;
      question.hidden = false;
      question.querySelector("[data-dialog-close]").focus(); // the safe answer
      return;
    }
    if (asking && event.target.closest("[data-dialog-close]")) {
      // Stopped here, before the link's own htmx listener: closing the question asks the
      // server nothing (a boosted reload of the screen would be a wasted request, and its
      // pushed URL would cancel a form being sent meanwhile).
      event.preventDefault();
      event.stopPropagation();
      closeQuestion();
    }
  }, true);
  document.addEventListener("keydown", function (event) {
    if (!asking) return;
    if (event.key === "Escape") return closeQuestion();
    if (event.key !== "Tab") return;
    // Focus stays inside the open question.
    var stops = asking.querySelectorAll("a[href], button:not([disabled])");
    var first = stops[0], last = stops[stops.length - 1];
    if (event.shiftKey && document.activeElement === first) { event.preventDefault(); last.focus(); }
    else if (!event.shiftKey && document.activeElement === last) { event.preventDefault(); first.focus(); }
  });

  // --- a whole screen swapped in (hx-boost): the body's own attributes (idle timings, the
  // sound, the screen's class) come from the new screen too, then its parts are set up.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target !== body || !event.detail.serverResponse) return;
    var next = new DOMParser().parseFromString(event.detail.serverResponse, "text/html").body;
    Array.prototype.slice.call(body.attributes).forEach(function (attribute) {
      if (attribute.name.indexOf("data-") === 0 && attribute.name !== "data-live") {
        body.removeAttribute(attribute.name);
      }
    });
    Array.prototype.forEach.call(next.attributes, function (attribute) {
      if (attribute.name === "class" || attribute.name.indexOf("data-") === 0) {
        body.setAttribute(attribute.name, attribute.value);
      }
    });
  });
  // A new screen starts at its top (htmx's own scroll on boost is off in base.html: it came
  // after this and undid the keyboard keeping its field in sight).
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target !== body) return;
    window.scrollTo(0, 0);
    screen();
  });

  function screen() {
    setupIdle();
    setupSize();
    setupKeyboard();
    document.dispatchEvent(new CustomEvent("kiosk:screen"));
  }

  // --- on-screen keyboards. Letters for names, a keypad for CPF, phone and codes, with the
  // punctuation put in as the digits are typed.
  var LETTERS = [
    "QWERTYUIOP".split(""),
    "ASDFGHJKLÇ".split(""),
    "ZXCVBNM".split(""),
    "ÁÉÍÓÚÂÊÔÃÕ".split(""),
  ];
  var DIGITS = [["1", "2", "3"], ["4", "5", "6"], ["7", "8", "9"]];

  function setupKeyboard() {
  var keyboard = document.getElementById("keyboard");
  if (!keyboard) return;
  var target = null;
  var labels = keyboard.dataset;

  function onlyDigits(value) { return (value || "").replace(/\D/g, ""); }
  var masks = {
    cpf: function (d) {
      d = d.slice(0, 11);
      if (d.length > 9) return d.slice(0, 3) + "." + d.slice(3, 6) + "." + d.slice(6, 9) + "-" + d.slice(9);
      if (d.length > 6) return d.slice(0, 3) + "." + d.slice(3, 6) + "." + d.slice(6);
      if (d.length > 3) return d.slice(0, 3) + "." + d.slice(3);
      return d;
    },
    phone: function (d) {
      d = d.slice(0, 11);
      if (d.length > 10) return "(" + d.slice(0, 2) + ") " + d.slice(2, 7) + "-" + d.slice(7);
      if (d.length > 6) return "(" + d.slice(0, 2) + ") " + d.slice(2, 6) + "-" + d.slice(6);
      if (d.length > 2) return "(" + d.slice(0, 2) + ") " + d.slice(2);
      if (d.length) return "(" + d;
      return d;
    },
    digits: function (d) { return d.slice(0, 12); },
  };

  function kind(input) { return input.dataset.keyboard || input.dataset.keypad || "letters"; }

  function key(label, value, extra) {
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    button.dataset.key = value;
    if (extra) button.className = extra;
    return button;
  }

  function row(keys) {
    var line = document.createElement("div");
    line.className = "keys";
    keys.forEach(function (k) { line.appendChild(k); });
    return line;
  }

  function build(type) {
    keyboard.innerHTML = "";
    keyboard.className = "keyboard " + (type === "letters" ? "letters" : "digits");
    if (type === "letters") {
      LETTERS.forEach(function (letters) {
        keyboard.appendChild(row(letters.map(function (l) { return key(l, l); })));
      });
      keyboard.appendChild(row([
        key(labels.labelClear, "clear", "action"),
        key(labels.labelSpace, " ", "wide"),
        key("⌫ " + labels.labelBackspace, "backspace", "action"),
        key(labels.labelDone, "done", "action"),
      ]));
    } else {
      DIGITS.forEach(function (digits) {
        keyboard.appendChild(row(digits.map(function (d) { return key(d, d); })));
      });
      keyboard.appendChild(row([
        key(labels.labelClear, "clear", "action"),
        key("0", "0"),
        key("⌫ " + labels.labelBackspace, "backspace", "action"),
      ]));
      keyboard.appendChild(row([key(labels.labelDone, "done", "action wide")]));
    }
  }

  function setValue(value) {
    var type = kind(target);
    if (masks[type]) value = masks[type](onlyDigits(value));
    var max = parseInt(target.getAttribute("maxlength") || "0", 10);
    if (max && value.length > max) value = value.slice(0, max);
    target.value = value;
    target.dispatchEvent(new Event("input", { bubbles: true }));
  }

  // The keyboard and the action bar stick to the bottom of the screen: on a short screen
  // (1280×800) they would cover the field in use, so the page moves it into the space above.
  function keepInSight(input) {
    var limit = keyboard.getBoundingClientRect().top;
    var box = input.getBoundingClientRect();
    if (box.bottom > limit) window.scrollBy(0, box.bottom - limit + 16);
    else if (box.top < 0) window.scrollBy(0, box.top - 16);
  }

  function open(input) {
    if (target) target.classList.remove("typing");
    target = input;
    target.classList.add("typing");
    build(kind(input));
    keyboard.hidden = false;
    keepInSight(input);
  }

  function close() {
    if (target) target.classList.remove("typing");
    target = null;
    keyboard.hidden = true;
  }

  document.querySelectorAll("input[data-keyboard], input[data-keypad]").forEach(function (input) {
    input.addEventListener("focus", function () { open(input); });
    input.addEventListener("click", function () { open(input); });
  });

  // pointerdown + preventDefault: the field keeps its focus (and the caret) while keys are hit.
  keyboard.addEventListener("pointerdown", function (event) {
    if (event.target.closest("button[data-key]")) event.preventDefault();
  });
  keyboard.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-key]");
    if (!button || !target) return;
    var value = button.dataset.key;
    if (value === "done") return close();
    if (value === "clear") return setValue("");
    if (value === "backspace") {
      var current = target.value;
      if (kind(target) !== "letters") current = onlyDigits(current).slice(0, -1);
      else current = current.slice(0, -1);
      return setValue(current);
    }
    if (kind(target) === "letters") {
      var text = target.value;
      // Names read naturally: a capital after a space, lower case otherwise.
      var lower = text.length > 0 && text.slice(-1) !== " ";
      setValue(text + (lower ? value.toLowerCase() : value));
    } else {
      setValue(onlyDigits(target.value) + value);
    }
  });

  // A field with an error opens its keyboard at once; else the first empty one, unless the
  // page has something to read first (the health form's questions): then a tap opens it.
  var first = document.querySelector(".has-error input[data-keyboard], .has-error input[data-keypad]")
    || (document.querySelector("[data-keyboard-on-tap]") ? null
      : document.querySelector("input[data-keyboard], input[data-keypad]"));
  // A field tapped while the screen was being swapped in already has the focus, and focusing
  // it again fires nothing: its keyboard opens here.
  var active = document.activeElement;
  if (active && active.matches && active.matches("input[data-keyboard], input[data-keypad]")) open(active);
  else if (first) first.focus();
  }

  screen();
  // The purchase's chime: on a page load once every script has run (js/sound.js first), on a
  // swap as soon as the screen is in.
  document.addEventListener("DOMContentLoaded", playSound);
  document.addEventListener("kiosk:screen", playSound);
})();
