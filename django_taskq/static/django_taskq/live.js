/*
 * django_taskq live pages: refresh the part of the page marked
 * data-taskq-refresh="<seconds>" from data-taskq-url, the same admin view
 * with ?format=json, whose "html" is that part rendered again on the server.
 * No library, no build step. Paused by its button and while the tab is hidden.
 */
(function () {
  "use strict";
  var region = document.getElementById("taskq-live");
  if (!region || !region.dataset.taskqRefresh) {
    return;
  }
  var every = Number(region.dataset.taskqRefresh) * 1000;
  var status = document.getElementById("taskq-refresh-status");
  var toggle = document.getElementById("taskq-refresh-toggle");
  var paused = false;
  var busy = false;

  // The words come translated from the page (data-* of the status line).
  function word(name, fallback) {
    return (status && status.dataset[name]) || fallback;
  }

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  function refresh() {
    if (paused || busy || document.hidden) {
      return;
    }
    busy = true;
    fetch(region.dataset.taskqUrl, {
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (response) {
        // A 503 still carries the page part that names the Redis problem.
        return response.json().then(function (data) {
          if (typeof data.html !== "string") {
            throw new Error("HTTP " + response.status);
          }
          if (paused) {
            return; // paused while the request was under way: leave the page alone
          }
          region.innerHTML = data.html;
          var said = data.error ? word("redisDown", "Redis unavailable; updated") : word("updated", "Updated");
          say(said + " " + new Date().toLocaleTimeString());
        });
      })
      .catch(function (error) {
        say(word("failed", "Refresh failed; retrying.") + " (" + error.message + ")");
      })
      .finally(function () {
        busy = false;
      });
  }

  if (toggle) {
    toggle.addEventListener("click", function () {
      paused = !paused;
      toggle.textContent = paused ? toggle.dataset.resume : toggle.dataset.pause;
      say(paused ? word("paused", "Paused.") : word("resumed", "Resumed."));
      if (!paused) {
        refresh();
      }
    });
  }
  window.setInterval(refresh, every);
})();
