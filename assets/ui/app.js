// zeroscale portal: progressive enhancement only; every page works without it.
// - Each <time datetime> gets the reader's local time as its tooltip (the text stays UTC).
// - A page marked data-refresh reloads every few seconds while something is changing, unless
//   the reader is typing in a form.
(function () {
  "use strict";
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d.getTime())) {
      el.title = d.toLocaleString() + " (your time) · " + el.textContent;
    }
  });
  var every = Number(document.body.getAttribute("data-refresh"));
  if (every > 0) {
    var touched = false;
    document.addEventListener("input", function () { touched = true; });
    setInterval(function () {
      var active = document.activeElement;
      var typing = active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
      if (!touched && !typing) {
        window.location.reload();
      }
    }, every * 1000);
  }
})();
