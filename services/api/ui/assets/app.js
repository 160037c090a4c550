// The web UI's only script: the theme switch, and the live job list (new jobs and returns
// appear without a reload, through the API's /events feed).
(function () {
  'use strict';

  var toggle = document.querySelector('[data-theme-toggle]');
  if (toggle) {
    toggle.addEventListener('click', function () {
      var root = document.documentElement;
      var current = root.dataset.theme || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');
      var next = current === 'dark' ? 'light' : 'dark';
      root.dataset.theme = next;
      try {
        localStorage.setItem('jobledger-theme', next);
      } catch (e) {
        /* not kept */
      }
    });
  }

  var table = document.querySelector('table[data-live]');
  if (!table || typeof EventSource === 'undefined') return;
  var body = table.querySelector('tbody');
  var url = table.getAttribute('data-live');
  var timer = null;
  var busy = false;

  function refresh() {
    timer = null;
    if (busy) {
      timer = setTimeout(refresh, 300);
      return;
    }
    busy = true;
    fetch(url, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (r) {
        // A lapsed session redirects to the login page: that is not the table's rows.
        if (!r.ok || r.redirected) {
          feed.close();
          return null;
        }
        return r.text();
      })
      .then(function (rows) {
        if (rows !== null) body.innerHTML = rows;
      })
      .catch(function () {})
      .then(function () {
        busy = false;
      });
  }

  var feed = new EventSource('/events');
  feed.onmessage = function (m) {
    var tag = '';
    try {
      tag = JSON.parse(m.data).tag || '';
    } catch (e) {
      return;
    }
    if (tag.indexOf('salt/job/') === 0 && !timer) timer = setTimeout(refresh, 250);
  };
  document.documentElement.dataset.live = 'on';
})();
