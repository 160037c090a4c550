// Before the page is drawn: the theme the user chose (kept in localStorage), else the system's.
(function () {
  try {
    var t = localStorage.getItem('jobledger-theme');
    if (t === 'dark' || t === 'light') document.documentElement.dataset.theme = t;
  } catch (e) {
    /* storage refused: the system's theme */
  }
})();
