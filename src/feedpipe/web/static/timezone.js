// Fill the hidden time zone field from the browser; without JavaScript the default stays.
(function () {
  var field = document.getElementById("timezone");
  if (!field || field.value) return;
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) field.value = zone;
  } catch (e) { /* keep the configured default */ }
})();
