/* The offline player of kexue_helpers.widgets.explorable (written by _ext/widgets.py).
 *
 * Each .kexue-explorable holds the default frame (<img>) and a JSON block: the controls
 * (values, labels, default position), the URL of every frame in row-major order of the
 * controls (the last control fastest) and the default frame's number. This script builds a
 * slider over the value list for each numeric control and a dropdown for each string
 * control, each with a readout, and shows the frame of the current setting. The frames
 * other than the default are fetched when the reader first points at, touches or focuses
 * the widget (or moves a control), so a page's first load carries only the default frame.
 * No dependencies; works offline.
 */
(function () {
  'use strict';

  function frameIndex(controls, positions) {
    var idx = 0;
    for (var i = 0; i < controls.length; i++) {
      idx = idx * controls[i].values.length + positions[i];
    }
    return idx;
  }

  function setup(root) {
    if (root.dataset.ready) return;
    var spec = JSON.parse(root.querySelector('script.kexue-explorable-data').textContent);
    var img = root.querySelector('img.kexue-explorable-frame');
    var box = root.querySelector('.kexue-explorable-controls');
    var positions = spec.controls.map(function (c) { return c.default; });
    var alt = img.getAttribute('alt') || '';
    var cache = {};  // frame number -> decoded Image

    var ready = {};   // frame number -> promise that it is fetched and decoded

    function load(k) {
      if (!cache[k]) {
        var im = new Image();
        im.decoding = 'async';
        im.src = spec.frames[k];
        cache[k] = im;
      }
      if (!ready[k]) {
        var im2 = cache[k];
        ready[k] = im2.decode ? im2.decode().catch(function () {}) : Promise.resolve();
      }
      return cache[k];
    }

    function prefetch() {
      root.removeEventListener('pointerenter', prefetch);
      root.removeEventListener('touchstart', prefetch);
      root.removeEventListener('focusin', prefetch);
      var all = [];
      for (var k = 0; k < spec.frames.length; k++) { load(k); all.push(ready[k]); }
      root.dataset.prefetched = 'started';
      Promise.all(all).then(function () { root.dataset.prefetched = 'done'; });
    }
    root.addEventListener('pointerenter', prefetch);
    root.addEventListener('touchstart', prefetch, { passive: true });
    root.addEventListener('focusin', prefetch);
    cache[spec.default] = img;

    function show() {
      var k = frameIndex(spec.controls, positions);
      load(k);  // already fetched and decoded after the first hover: shown at once
      if (img.getAttribute('src') !== spec.frames[k]) img.setAttribute('src', spec.frames[k]);
      // the alt text describes the default setting; say which one is shown now
      img.setAttribute('alt', k === spec.default ? alt : alt + ' (The figure now shows ' +
        spec.controls.map(function (c, i) { return c.label + ' = ' + c.labels[positions[i]]; })
          .join(', ') + '.)');
      root.dataset.frame = String(k);
    }

    spec.controls.forEach(function (c, i) {
      var row = document.createElement('div');
      row.className = 'kexue-explorable-control';
      var id = 'kx-' + spec.key + '-' + c.name;
      var label = document.createElement('label');
      label.htmlFor = id;
      label.textContent = c.label;
      var out = document.createElement('output');
      out.htmlFor = id;
      out.textContent = c.labels[c.default];
      var input;
      if (c.kind === 'number') {
        input = document.createElement('input');
        input.type = 'range';
        input.min = '0';
        input.max = String(c.values.length - 1);
        input.step = '1';
        // the attribute too: a range input left without one starts at its midpoint
        input.setAttribute('value', String(c.default));
        input.value = String(c.default);
        input.setAttribute('aria-valuetext', c.labels[c.default]);
      } else {
        input = document.createElement('select');
        c.labels.forEach(function (text, j) {
          var o = document.createElement('option');
          o.value = String(j);
          o.textContent = text;
          input.appendChild(o);
        });
        input.value = String(c.default);
      }
      input.id = id;
      input.name = id;  // not the bare control name: the theme fills every input named "q"
      input.dataset.control = c.name;
      function onChange() {
        var j = parseInt(input.value, 10);
        positions[i] = j;
        out.textContent = c.labels[j];
        if (c.kind === 'number') input.setAttribute('aria-valuetext', c.labels[j]);
        show();
      }
      input.addEventListener('input', onChange);
      input.addEventListener('change', onChange);
      row.appendChild(label);
      row.appendChild(input);
      if (c.kind === 'number') row.appendChild(out);
      box.appendChild(row);
      input.value = String(c.default);  // once in the page, where the browser keeps it
    });
    root.dataset.frame = String(spec.default);
    root.dataset.ready = '1';
  }

  function init() {
    var roots = document.querySelectorAll('.kexue-explorable');
    for (var i = 0; i < roots.length; i++) {
      try { setup(roots[i]); } catch (e) { console.warn('explorable', e); }
    }
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
