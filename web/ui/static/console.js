// Live updates: follow the console's event feed and refresh the page's [data-live]
// sections in place (fetching the same page), without a reload. Reading works without it.
(function () {
  "use strict";
  var url = document.body.getAttribute("data-feed");
  if (!url || !window.EventSource || !window.fetch) return;
  var status = document.getElementById("live");
  var pending = null;
  var busy = false;

  function refresh() {
    pending = null;
    if (busy) { schedule(); return; }
    busy = true;
    fetch(location.href, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (section) {
          if (section.contains(document.activeElement)) return; // never under the user's cursor
          var next = fresh.getElementById(section.id);
          if (next && next.innerHTML !== section.innerHTML) section.innerHTML = next.innerHTML;
        });
        document.body.setAttribute("data-refreshed", String(Date.now()));
        if (status) status.textContent = "updated " + new Date().toLocaleTimeString();
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }

  function schedule() { if (!pending) pending = setTimeout(refresh, 250); }

  var feed = new EventSource(url);
  feed.addEventListener("change", schedule);
  feed.onopen = function () { if (status) status.textContent = "live"; };
  feed.onerror = function () { if (status) status.textContent = "reconnecting…"; };
  window.addEventListener("pagehide", function () { feed.close(); });
})();
