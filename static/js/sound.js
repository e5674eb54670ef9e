/* Totem.sound: the screens' sounds, synthesised with WebAudio (no audio files to ship).
 *
 *   Totem.sound.chime()  the display's ding-dong before each spoken call
 *   Totem.sound.alert()  "your turn" on the customer's phone
 *   Totem.sound.soft()   a quiet blip: a new ticket in the station's queue (operator panel)
 *   Totem.sound.paid()   a rising four-note chime: the kiosk's purchase is paid (seed 000's
 *                        PAYMENT_COMPLETED)
 *   Totem.sound.unlock() call from a tap/click: browsers keep audio muted until a gesture
 *   Totem.sound.ready()  whether audio can play now
 *
 * Each returns a Promise that resolves when the sound has finished (at once when muted), so
 * callers can queue what follows. A TV that must start with sound unattended: launch Chromium
 * with --autoplay-policy=no-user-gesture-required.
 */
(function () {
  "use strict";
  const Totem = (window.Totem = window.Totem || {});
  let context = null;

  function audio() {
    if (!context) {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return null;
      context = new Context();
    }
    return context;
  }

  function wait(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  // notes: [frequency Hz, start s, length s, volume 0..1]
  function play(notes) {
    const ac = audio();
    const total = Math.max(...notes.map(([, start, length]) => start + length));
    if (!ac || ac.state !== "running") return wait(total * 1000);
    const now = ac.currentTime + 0.02;
    for (const [frequency, start, length, volume] of notes) {
      for (const [harmonic, share] of [[1, 1], [2, 0.25], [3, 0.1]]) {
        const oscillator = ac.createOscillator();
        const gain = ac.createGain();
        oscillator.type = "sine";
        oscillator.frequency.value = frequency * harmonic;
        gain.gain.setValueAtTime(0.0001, now + start);
        gain.gain.exponentialRampToValueAtTime(volume * share, now + start + 0.015);
        gain.gain.exponentialRampToValueAtTime(0.0001, now + start + length);
        oscillator.connect(gain).connect(ac.destination);
        oscillator.start(now + start);
        oscillator.stop(now + start + length + 0.05);
      }
    }
    return wait(total * 1000 + 50);
  }

  Totem.sound = {
    ready() {
      const ac = audio();
      return Boolean(ac && ac.state === "running");
    },
    unlock() {
      const ac = audio();
      return ac ? ac.resume() : Promise.resolve();
    },
    chime() {
      return play([
        [659.25, 0, 1.1, 0.5], // E5
        [523.25, 0.55, 1.5, 0.5], // C5
      ]);
    },
    alert() {
      return play([
        [880, 0, 0.25, 0.6],
        [880, 0.3, 0.25, 0.6],
        [1174.66, 0.6, 0.6, 0.6],
      ]);
    },
    soft() {
      return play([[987.77, 0, 0.3, 0.12]]);
    },
    paid() {
      // C major rising to the octave: "done", unlike the call's falling ding-dong.
      return play([
        [523.25, 0, 0.5, 0.35], // C5
        [659.25, 0.12, 0.5, 0.35], // E5
        [783.99, 0.24, 0.6, 0.35], // G5
        [1046.5, 0.36, 1.2, 0.4], // C6
      ]);
    },
  };
})();
