// A plan job's page: poll its status every 2 s; once the plan is made, open it (no inline script: CSP).
(function () {
  "use strict";
  var box = document.getElementById("plan-job");
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
        var bar = document.getElementById("job-progress");
        bar.value = job.percent;
        bar.textContent = job.percent + "%";
        show("job-percent", job.percent + "%");
        show("job-status", job.status_text);
        show("job-stage", job.stage);
        if (job.message) { show("job-message", job.message); }
        if (job.done) {
          box.dataset.done = "true";
          var note = document.getElementById("job-poll-note");
          if (note) { note.hidden = true; }
          if (job.plan_url) {
            var link = document.getElementById("job-plan");
            link.href = job.plan_url;
            document.getElementById("job-outcome").hidden = false;
            window.location.assign(job.plan_url);
          }
        } else {
          setTimeout(poll, 2000);
        }
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
