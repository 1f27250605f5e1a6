// A background job's page (a sector model's fit, a plan): poll the job's status every 2 s until
// it ends (no inline script: CSP). One script for every job page: the page's section has class
// "job", its data-status-url and data-done, and elements with the ids job-progress, job-percent,
// job-status, job-stage, job-message, job-poll-note; a fit's outcome (job-outcome + job-report)
// or a plan's link (job-plan, then opened) shown once the job says so.
(function () {
  "use strict";
  var box = document.querySelector("section.job[data-status-url]");
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
        if (job.outcome) {  // a fit: its candidate version and report
          var outcome = document.getElementById("job-outcome");
          outcome.firstChild.textContent = job.outcome + " ";
          outcome.hidden = false;
          var report = document.getElementById("job-report");
          report.href = job.report_url;
          report.hidden = false;
        }
        if (job.done) {
          box.dataset.done = "true";
          var note = document.getElementById("job-poll-note");
          if (note) { note.hidden = true; }
          if (job.plan_url) {  // a plan: open it
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
