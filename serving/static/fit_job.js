// The fit job page: poll the job's status every 2 s until it ends (no inline script: CSP).
(function () {
  "use strict";
  var box = document.getElementById("fit-job");
  if (!box || box.dataset.done === "true") { return; }
  var url = box.dataset.statusUrl;
  function show(id, text) {
    var el = document.getElementById(id);
    if (el) { el.textContent = text; el.hidden = !text; }
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (job) {
        document.getElementById("fit-progress").value = job.percent;
        document.getElementById("fit-progress").textContent = job.percent + "%";
        show("fit-percent", job.percent + "%");
        show("fit-status", job.status_text);
        show("fit-stage", job.stage);
        if (job.message) { show("fit-message", job.message); }
        if (job.outcome) {
          var outcome = document.getElementById("fit-outcome");
          outcome.firstChild.textContent = job.outcome + " ";
          outcome.hidden = false;
          var link = document.getElementById("fit-report");
          link.href = job.report_url;
          link.hidden = false;
        }
        if (job.done) {
          box.dataset.done = "true";
          var note = document.getElementById("fit-poll-note");
          if (note) { note.hidden = true; }
        } else {
          setTimeout(poll, 2000);
        }
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
