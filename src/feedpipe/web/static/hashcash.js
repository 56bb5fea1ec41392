// [web] subscribe_proof_of_work: before the form is sent, find a nonce such that
// SHA-256("<challenge>:<nonce>") starts with data-bits zero bits (web/hashcash.py checks it).
// Plain JavaScript SHA-256: crypto.subtle exists only on https pages.
(function () {
  var K = [];
  (function () {
    var n = 2, found = 0;
    while (found < 64) {
      var prime = true;
      for (var d = 2; d * d <= n; d++) if (n % d === 0) { prime = false; break; }
      if (prime) { K[found++] = (Math.pow(n, 1 / 3) % 1) * 4294967296 | 0; }
      n++;
    }
  })();
  var H0 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
            0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

  function sha256(ascii) {  // -> the first 32-bit word is enough to count up to 24 zero bits
    var bytes = ascii.length, words = [], i;
    for (i = 0; i < bytes; i++) words[i >> 2] |= ascii.charCodeAt(i) << (24 - (i % 4) * 8);
    words[bytes >> 2] |= 0x80 << (24 - (bytes % 4) * 8);
    var total = ((bytes + 8) >> 6) * 16 + 16;
    for (i = (bytes >> 2) + 1; i < total; i++) words[i] = words[i] | 0;
    words[total - 1] = bytes * 8;
    var h = H0.slice(), w = [];
    for (var block = 0; block < total; block += 16) {
      var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
      for (i = 0; i < 64; i++) {
        if (i < 16) w[i] = words[block + i] | 0;
        else {
          var x = w[i - 15], y = w[i - 2];
          var s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
          var s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
          w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
        }
        var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        var t1 = (k + S1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
        var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        var t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0;
      h[3] = (h[3] + d) | 0; h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0;
      h[6] = (h[6] + g) | 0; h[7] = (h[7] + k) | 0;
    }
    return h[0] >>> 0;
  }

  function solve(challenge, bits) {
    var limit = Math.pow(2, 32 - bits);
    for (var nonce = 0; ; nonce++) {
      if (sha256(challenge + ":" + nonce) < limit) return String(nonce);
    }
  }

  var field = document.getElementById("pow_challenge");
  var answer = document.getElementById("pow_nonce");
  if (!field || !answer) return;
  field.form.addEventListener("submit", function () {
    if (!answer.value) answer.value = solve(field.value, parseInt(field.dataset.bits, 10));
  });
})();
