/* "Live Code" (sphinx-thebe, launched from the book theme's launch menu) with a clear answer
 * offline: before Thebe is loaded (from this site: _static/vendor/thebe/) and asked for a
 * Binder kernel, check that the Binder server answers. If the browser is offline, or the
 * server does not answer within CHECK_MS, or Thebe reports a failure, or it has not even
 * loaded after LOAD_MS, say so where the button's progress text goes, instead of a spinner
 * that never ends. Added by _ext/widgets.py on pages that have Live Code.
 */
(function () {
  'use strict';
  var CHECK_MS = 8000;
  var LOAD_MS = 20000;
  var WAIT_MS = 90000;

  function binderUrl() {
    var cfg = document.querySelector('script[type="text/x-thebe-config"]');
    var m = cfg && /binderUrl\s*:\s*["']([^"']+)["']/.exec(cfg.textContent);
    return (m ? m[1] : 'https://mybinder.org').replace(/\/$/, '');
  }

  function button() {
    var b = document.querySelector('.thebe-launch-button');
    if (!b) {
      var title = document.querySelector('section h1');
      if (!title) return null;
      title.insertAdjacentHTML('afterend', "<button class='thebe-launch-button'></button>");
      b = document.querySelector('.thebe-launch-button');
    }
    return b;
  }

  function say(text, failed) {
    var b = button();
    if (!b) return;
    var box = document.querySelector('.kexue-livecode-message');
    if (!box) {
      box = document.createElement('p');
      box.className = 'kexue-livecode-message';
      box.setAttribute('role', 'status');
      b.insertAdjacentElement('afterend', box);
    }
    box.textContent = text;
    box.classList.toggle('kexue-livecode-failed', !!failed);
    if (failed) b.remove();
  }

  function offline(server) {
    say('Live Code runs this page\u2019s code on a Binder server (' + server + '), which ' +
        'this browser cannot reach: it needs an internet connection. Everything else on ' +
        'the page works without one, the interactive figures included. Online, the Binder ' +
        'and Colab buttons open the chapter as a notebook.', true);
  }

  // Thebe would fetch MathJax 2 from cdnjs to typeset LaTeX outputs; the page has
  // MathJax 3 already, so Thebe gets no MathJax URL (a second config block is merged).
  function noCdnMathJax() {
    if (document.querySelector('script[data-kexue-thebe]')) return;
    var s = document.createElement('script');
    s.type = 'text/x-thebe-config';
    s.setAttribute('data-kexue-thebe', '1');
    s.textContent = '{ mathjaxUrl: "" }';
    document.body.appendChild(s);
  }

  function start(original) {
    var server = binderUrl();
    if (window.navigator && navigator.onLine === false) { offline(server); return; }
    say('Checking the connection to ' + server + '\u2026', false);
    var ctrl = window.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () { if (ctrl) ctrl.abort(); }, CHECK_MS);
    fetch(server + '/health', { mode: 'no-cors', cache: 'no-store',
                                signal: ctrl ? ctrl.signal : undefined })
      .then(function () {
        clearTimeout(timer);
        say('Starting a kernel on ' + server + ' (this can take a few minutes)\u2026', false);
        noCdnMathJax();
        original();
        var waiting = setTimeout(function () {
          say('Still waiting for ' + server + ' after ' + WAIT_MS / 1000 + ' s. Binder can ' +
              'take several minutes to start; if nothing changes, it may be unreachable ' +
              'from here.', false);
        }, WAIT_MS);
        var b = document.querySelector('.thebe-launch-button');
        if (b && /CDN/.test(b.textContent)) b.textContent = 'Loading Thebe\u2026';
        var loaded = setTimeout(function () {
          if (typeof window.thebelab === 'undefined') {
            say('Live Code could not load Thebe from this site. Reload the page to try ' +
                'again.', true);
          }
        }, LOAD_MS);
        (function hook(tries) {
          if (window.thebelab && window.thebelab.on) {
            clearTimeout(loaded);
            window.thebelab.on('status', function (evt, data) {
              var s = data && data.status;
              if (s === 'failed' || s === 'server-unreachable') {
                clearTimeout(waiting);
                offline(server);
              } else if (s === 'ready') {
                clearTimeout(waiting);
                say('Live Code is ready: each cell has a Run button.');
              }
            });
          } else if (tries > 0) {
            setTimeout(function () { hook(tries - 1); }, 200);
          }
        })(LOAD_MS / 200);
      })
      .catch(function () { clearTimeout(timer); offline(server); });
  }

  function install() {
    var original = window.initThebeSBT || window.initThebe;
    if (!original || original.kexue) return;
    var wrapped = function () { start(original); };
    wrapped.kexue = true;
    window.initThebeSBT = wrapped;
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', install);
  else install();
  window.addEventListener('load', install);
})();
