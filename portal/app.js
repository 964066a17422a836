/* The clinic portal: plain JavaScript, no framework, no build step, no third-party code.
 *
 * - All text comes from i18n.js (Russian and English); the language switch re-renders in place.
 * - The access and refresh tokens live in sessionStorage (gone when the tab closes; survives the
 *   round trip to Stripe's onboarding page), never in localStorage. A 401 `token_expired` is
 *   answered by one /auth/refresh (shared by concurrent calls: refresh tokens rotate, and a reused
 *   one ends the session) and the call is retried once.
 * - Errors are the API's problem+json: each `errors[].field` is shown next to the control whose
 *   data-field names it (or its nearest named parent), the `title` above the form.
 * - Money is typed in major units and converted to integer minor units from the decimal string,
 *   never through floating point.
 */
(function () {
  'use strict';

  var I18N = window.PORTAL_I18N;
  // Pages that live in files of their own (portal/payments.js, dashboard.js, feedback.js) add their texts
  // to window.PORTAL_PAGE_I18N ({ru: {...}, en: {...}}) and a factory to window.PORTAL_PAGES; see "pages".
  (window.PORTAL_PAGE_I18N || []).forEach(function (extra) {
    ['ru', 'en'].forEach(function (l) { Object.keys(extra[l] || {}).forEach(function (k) { I18N[l][k] = extra[l][k]; }); });
  });
  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var $$ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };

  var API = ($('meta[name="api-base"]').getAttribute('content') || '').replace(/\/$/, '');
  var CONSENT_VERSION = $('meta[name="consent-version"]').getAttribute('content');
  var WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
  // ISO 4217 minor-unit exponents (as chalicelib/core/money.py).
  var MINOR = {
    RUB: 2, KZT: 2, BYN: 2, UZS: 2, AMD: 2, GEL: 2, AZN: 2, KGS: 2, EUR: 2, USD: 2, GBP: 2, CHF: 2, TRY: 2,
    AED: 2, CNY: 2, INR: 2, JPY: 0, KRW: 0, VND: 0, CLP: 0, KWD: 3, BHD: 3, OMR: 3, JOD: 3, TND: 3
  };
  var SCREENS = ['signin', 'signup', 'enrol', 'clinic', 'branches', 'services', 'doctors', 'policies', 'payouts'];
  var PUBLIC = ['signin', 'signup'];

  // ------------------------------------------------------------------ language

  var lang = (function () {
    var saved = null;
    try { saved = localStorage.getItem('portal.lang'); } catch (e) { /* storage disabled */ }
    if (saved === 'ru' || saved === 'en') return saved;
    var prefs = navigator.languages || [navigator.language || 'ru'];
    for (var i = 0; i < prefs.length; i++) {
      var base = String(prefs[i]).toLowerCase().split('-')[0];
      if (base === 'ru' || base === 'en') return base;
    }
    return 'ru';
  })();

  function t(key, vars) {
    var s = I18N[lang][key];
    if (s === undefined) s = I18N.en[key];
    if (s === undefined) return key;
    if (vars) s = s.replace(/\{(\w+)\}/g, function (m, k) { return vars[k] !== undefined ? String(vars[k]) : m; });
    return s;
  }

  function has(key) { return I18N[lang][key] !== undefined; }

  function locale() { return lang === 'ru' ? 'ru-RU' : 'en-GB'; }

  function applyI18n(root) {
    document.documentElement.lang = lang;
    $$('[data-i18n]', root).forEach(function (el) { el.textContent = t(el.getAttribute('data-i18n')); });
    $$('[data-i18n-attr]', root).forEach(function (el) {
      el.getAttribute('data-i18n-attr').split(';').forEach(function (pair) {
        var bits = pair.split(':');
        el.setAttribute(bits[0], t(bits[1]));
      });
    });
    $$('[data-lang]').forEach(function (b) { b.setAttribute('aria-pressed', String(b.getAttribute('data-lang') === lang)); });
  }

  function setLanguage(next) {
    if (next === lang) return;
    lang = next;
    try { localStorage.setItem('portal.lang', lang); } catch (e) { /* storage disabled */ }
    applyI18n();
    renderStatus();
    renderHeader();
    if (current && screens[current] && screens[current].render) screens[current].render();
    setTitle();
  }

  // ------------------------------------------------------------------ status line (aria-live)

  var lastStatus = null;

  function announce(key, vars, kind) {
    lastStatus = key ? { key: key, vars: vars, kind: kind || 'ok' } : null;
    renderStatus();
  }

  function renderStatus() {
    var box = $('#status');
    box.className = 'status' + (lastStatus ? ' ' + lastStatus.kind : '');
    box.textContent = lastStatus ? t(lastStatus.key, lastStatus.vars) : '';
  }

  // ------------------------------------------------------------------ session (sessionStorage only)

  var session = {
    get: function () {
      try { return JSON.parse(sessionStorage.getItem('portal.session') || 'null'); } catch (e) { return null; }
    },
    set: function (pair) {
      sessionStorage.setItem('portal.session', JSON.stringify({
        access_token: pair.access_token, refresh_token: pair.refresh_token
      }));
    },
    clear: function () {
      sessionStorage.removeItem('portal.session');
      sessionStorage.removeItem('portal.clinic');
    }
  };

  var state = { me: null, clinics: null, clinicId: sessionStorage.getItem('portal.clinic'), enrolling: false };
  var cache = {};

  // ------------------------------------------------------------------ the API

  function ApiError(status, problem, retryAfter) {
    this.status = status;
    this.problem = problem || {};
    this.retryAfter = retryAfter;
  }

  function clientError(field, key, vars) {
    return new ApiError(0, {
      title: t('err.check'), errors: [{ field: field, code: 'client', message: t(key, vars) }]
    });
  }

  var refreshing = null;

  function refreshTokens() {
    if (!refreshing) {
      var s = session.get();
      refreshing = api('POST', '/auth/refresh', { refresh_token: s ? s.refresh_token : '' }, { auth: false })
        .then(function (pair) { session.set(pair); })
        .catch(function (err) { endSession('session.ended'); throw err; })
        .finally(function () { refreshing = null; });
    }
    return refreshing;
  }

  function api(method, path, body, opts) {
    opts = opts || {};
    var auth = opts.auth !== false;
    var headers = { 'Accept': (opts.accept || 'application/json') + ', application/problem+json', 'Accept-Language': lang };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    var s = session.get();
    if (auth && s) headers.Authorization = 'Bearer ' + s.access_token;
    return fetch(API + path, {
      method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit', cache: 'no-store'
    }).catch(function () {
      throw new ApiError(0, { title: t('err.network') });
    }).then(function (resp) {
      if (resp.ok && opts.raw) {  // a file (CSV): its bytes as sent (a BOM included) and the name the server gave
        return resp.blob().then(function (blob) {
          var m = /filename="([^"]+)"/.exec(resp.headers.get('Content-Disposition') || '');
          return { blob: blob, filename: m ? m[1] : 'download' };
        });
      }
      return resp.text().then(function (text) {
        var data = null;
        if (text) { try { data = JSON.parse(text); } catch (e) { data = null; } }
        if (resp.ok) return data;
        var problem = (data && typeof data === 'object') ? data : { title: t('err.http', { status: resp.status }) };
        if (resp.status === 401 && auth) {
          if (problem.code === 'token_expired' && opts.retry !== false && s) {
            return refreshTokens().then(function () {
              return api(method, path, body, Object.assign({}, opts, { auth: true, retry: false }));
            });
          }
          endSession('session.ended');
        }
        var ra = resp.headers.get('Retry-After') || problem.retry_after;
        throw new ApiError(resp.status, problem, ra ? parseInt(ra, 10) : null);
      });
    });
  }

  var C = function (path) { return '/clinics/' + encodeURIComponent(state.clinicId) + (path || ''); };

  // Every item of a paginated list (a list a rule or a lookup needs whole, e.g. the clinic's doctors by id),
  // following next_cursor to the end; at most `cap` pages.
  function allPages(path, cap) {
    var items = [];
    function page(cursor, left) {
      var sep = path.indexOf('?') < 0 ? '?' : '&';
      return api('GET', path + (cursor ? sep + 'cursor=' + encodeURIComponent(cursor) : '')).then(function (r) {
        items = items.concat(r.items || []);
        return r.next_cursor && left > 1 ? page(r.next_cursor, left - 1) : items;
      });
    }
    return page(null, cap || 50);
  }

  // The clinic's doctors by id (every page), and a doctor's name for pages that get only ids (analytics,
  // feedback, payments). A doctor who has left the clinic is no longer listed: said so, never a bare id.
  function clinicDoctors() {
    return allPages(C('/doctors?limit=100')).then(function (list) {
      var by = {};
      list.forEach(function (d) { by[d.doctor_id] = d; });
      return by;
    });
  }

  function doctorLabel(by, id) {
    if (!id) return '';
    return by && by[id] ? doctorName(by[id]) : t('doctors.former', { id: String(id).slice(-6) });
  }

  // A file from the API saved by the browser (the Authorization header rules out a plain link).
  function download(path, accept) {
    return api('GET', path, undefined, { raw: true, accept: accept }).then(function (file) {
      var url = URL.createObjectURL(file.blob);
      var a = el('a', { href: url, download: file.filename, class: 'visually-hidden' });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
      return file;
    });
  }

  // ------------------------------------------------------------------ money: decimal strings to minor units

  function parseMoney(raw, currency, field) {
    var exp = MINOR[currency];
    var s = String(raw).trim().replace(/[\s\u00a0\u202f']/g, '');
    var m = /^(\d+)(?:[.,](\d+))?$/.exec(s);
    if (!m) throw clientError(field, 'money.format');
    var frac = m[2] || '';
    if (frac.length > exp) throw clientError(field, exp === 0 ? 'money.whole' : 'money.precision', { n: exp });
    var minor = BigInt(m[1] + frac.padEnd(exp, '0'));  // integer arithmetic only
    if (minor > BigInt('1000000000000')) throw clientError(field, 'money.large');
    return Number(minor);  // exact: below 2^53
  }

  function formatMoney(money) {
    if (!money) return '';
    var exp = MINOR[money.currency] !== undefined ? MINOR[money.currency] : 2;
    var digits = String(Math.abs(money.amount)).padStart(exp + 1, '0');
    var whole = digits.slice(0, digits.length - exp);
    var frac = exp ? digits.slice(digits.length - exp) : '';
    var grouped = new Intl.NumberFormat(locale()).format(BigInt(whole));
    return (money.amount < 0 ? '−' : '') + grouped + (frac ? (lang === 'ru' ? ',' : '.') + frac : '') +
      '\u00a0' + money.currency;
  }

  function majorText(money) {  // minor units back to what a person types, e.g. 650050 -> "6500.50"
    var exp = MINOR[money.currency];
    var digits = String(money.amount).padStart(exp + 1, '0');
    return exp ? digits.slice(0, digits.length - exp) + '.' + digits.slice(digits.length - exp) : digits;
  }

  function intOrRaw(value) {  // the server validates; only whole numbers are converted here
    var v = String(value).trim();
    if (v === '') return undefined;
    return /^-?\d+$/.test(v) ? parseInt(v, 10) : v;
  }

  // ------------------------------------------------------------------ small rendering helpers

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else if (k === 'class') node.className = attrs[k];
      else if (attrs[k] !== undefined && attrs[k] !== null && attrs[k] !== false) node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      if (c !== null && c !== undefined) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return node;
  }

  function table(captionKey, headKeys, rows, emptyKey) {
    if (!rows.length) return el('p', { class: 'muted', text: t(emptyKey) });
    var thead = el('thead', {}, [el('tr', {}, headKeys.map(function (k) { return el('th', { scope: 'col', text: t(k) }); }))]);
    var tbody = el('tbody', {}, rows.map(function (cells) {
      return el('tr', {}, cells.map(function (c) {
        return el('td', {}, [c instanceof Node ? c : String(c === undefined || c === null ? '' : c)]);
      }));
    }));
    return el('div', { class: 'table-wrap' }, [el('table', {}, [el('caption', { text: t(captionKey) }), thead, tbody])]);
  }

  function fill(container, node) {
    container.textContent = '';
    container.appendChild(node);
  }

  function text(obj) {  // a bilingual {ru, en}
    if (!obj) return '';
    return obj[lang] || obj.ru || obj.en || '';
  }

  function dateTime(value) {
    if (value === undefined || value === null) return '';
    var d = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
    if (isNaN(d.getTime())) return String(value);
    return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'short' }).format(d);
  }

  function zonedTime(value, zone) {  // a moment in a clinic's zone, the zone said ("4 Dec 2026, 18:30 CET")
    if (!zone) return dateTime(value);
    try {
      return new Intl.DateTimeFormat(locale(), { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit',
        minute: '2-digit', timeZone: zone, timeZoneName: 'short' }).format(new Date(value));
    } catch (e) {
      return dateTime(value);
    }
  }

  function zoneNow(zone) {
    try {
      return new Intl.DateTimeFormat(locale(), { timeZone: zone, hour: '2-digit', minute: '2-digit', timeZoneName: 'shortOffset' })
        .format(new Date());
    } catch (e) {
      return '';
    }
  }

  function dayName(day, style) { return t('day.' + day + (style === 'short' ? '.short' : '')); }

  function hm(value) {  // "09:00:00" (how branch hours come back) or "09:00" -> "09:00"
    return String(value || '').slice(0, 5);
  }

  function hoursSummary(hours) {
    var parts = [];
    WEEKDAYS.forEach(function (d) {
      var spans = (hours && hours[d]) || [];
      if (spans.length) parts.push(dayName(d, 'short') + ' ' + spans.map(function (s) { return hm(s.start) + '–' + hm(s.end); }).join(', '));
    });
    return parts.length ? parts.join('; ') : t('branches.no_hours');
  }

  function doctorName(d) {
    if (d.first_name || d.last_name) return [d.first_name, d.last_name].filter(Boolean).join(' ');
    return t('doctors.unnamed', { id: String(d.doctor_id).slice(-6) });
  }

  // ------------------------------------------------------------------ forms and their errors

  var uid = 0;

  function controlOf(node) {
    return node.matches('input, select, textarea') ? node : ($('input, select, textarea', node) || node);
  }

  function fieldTarget(form, path) {
    var p = path || '';
    while (p) {
      var found = null;
      $$('[data-field]', form).some(function (n) {
        if (n.getAttribute('data-field') === p) { found = n; return true; }
        return false;
      });
      if (found) return found;
      var m = /(\[\d+\]|\.[^.[]+)$/.exec(p);
      if (!m) break;
      p = p.slice(0, p.length - m[0].length);
    }
    return null;
  }

  function errorSlot(target) {
    var box = target.matches('fieldset, .field') ? target : (target.closest('.field') || target.closest('fieldset') || target.parentNode);
    var slot = null;
    Array.prototype.forEach.call(box.children, function (c) { if (c.classList.contains('field-error')) slot = c; });
    if (!slot) {
      slot = el('p', { class: 'field-error', id: 'ferr-' + (++uid) });
      box.appendChild(slot);
    }
    return slot;
  }

  function describe(control, id, add) {
    var ids = (control.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean)
      .filter(function (x) { return x !== id; });
    if (add) ids.push(id);
    if (ids.length) control.setAttribute('aria-describedby', ids.join(' '));
    else control.removeAttribute('aria-describedby');
  }

  function clearErrors(form) {
    $$('.field-error', form).forEach(function (slot) {
      $$('[aria-describedby~="' + slot.id + '"]', form).forEach(function (c) { describe(c, slot.id, false); });
      slot.remove();
    });
    $$('[aria-invalid]', form).forEach(function (c) { c.removeAttribute('aria-invalid'); });
    var box = $('.form-error', form);
    if (box) { box.hidden = true; box.textContent = ''; }
  }

  function fieldMessage(e) {
    if (e.code === 'client') return e.message;
    if (lang === 'ru' && has('verr.' + e.code)) return t('verr.' + e.code);
    return e.message;
  }

  function problemTitle(problem) {
    if (problem.code && has('problem.' + problem.code)) return t('problem.' + problem.code);
    return problem.title || t('err.unexpected');
  }

  function showError(form, err) {
    if (!(err instanceof ApiError)) {
      if (window.console) console.error(err);  // eslint-disable-line no-console
      err = new ApiError(0, { title: t('err.unexpected') });
    }
    var problem = err.problem;
    var first = null;
    var unplaced = [];
    (problem.errors || []).forEach(function (e) {
      var target = fieldTarget(form, e.field);
      var msg = fieldMessage(e);
      if (!target) { unplaced.push(e.field && e.field !== 'body' ? e.field + ': ' + msg : msg); return; }
      var slot = errorSlot(target);
      slot.textContent = slot.textContent ? slot.textContent + ' ' + msg : msg;
      var control = controlOf(target);
      control.setAttribute('aria-invalid', 'true');
      describe(control, slot.id, true);
      if (!first) first = control;
    });
    var lines = [problemTitle(problem)];
    if (problem.detail) lines.push(problem.detail);
    if (err.status === 429 && err.retryAfter) lines.push(t('err.retry', { s: err.retryAfter }));
    lines = lines.concat(unplaced);
    var box = $('.form-error', form);
    if (box) {
      box.textContent = '';
      lines.forEach(function (l, i) { box.appendChild(i ? el('span', { class: 'more', text: l }) : el('strong', { text: l })); });
      box.hidden = false;
      if (!box.hasAttribute('tabindex')) box.setAttribute('tabindex', '-1');
    }
    (first || box || form).focus();
  }

  function bindForm(form, handler) {
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      if (form.getAttribute('aria-busy') === 'true') return;
      clearErrors(form);
      form.setAttribute('aria-busy', 'true');
      var btn = $('button[type="submit"]', form);
      if (btn) btn.setAttribute('aria-disabled', 'true');
      Promise.resolve().then(function () { return handler(form); })
        .catch(function (err) { showError(form, err); })
        .finally(function () {
          form.removeAttribute('aria-busy');
          if (btn) btn.removeAttribute('aria-disabled');
        });
    });
  }

  function val(id) { var n = document.getElementById(id); return n ? n.value.trim() : ''; }

  function setOptions(select, items, keep) {
    var previous = keep ? select.value : null;
    select.textContent = '';
    items.forEach(function (it) { select.appendChild(el('option', { value: it.value, text: it.label })); });
    if (previous && items.some(function (it) { return it.value === previous; })) select.value = previous;
  }

  // ------------------------------------------------------------------ header, nav, screens

  var current = null;

  function renderHeader() {
    var signedIn = !!session.get();
    var who = $('#who');
    if (signedIn && state.me) {
      who.textContent = state.me.first_name + ' ' + state.me.last_name + ' · ' + t('role.' + state.me.role);
      who.hidden = false;
    } else {
      who.hidden = true;
    }
    $('#signout').hidden = !signedIn;
    var ready = signedIn && state.me && state.me.second_factor === 'totp' && !state.enrolling;
    $('#nav').hidden = !ready;
    $$('#nav [data-needs-clinic]').forEach(function (li) { li.hidden = !state.clinicId; });
    $$('#nav a').forEach(function (a) {
      if (a.getAttribute('data-route') === current) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    });
  }

  function setTitle() {
    var h = current ? $('[data-screen="' + current + '"] h1') : null;
    document.title = (h ? h.textContent + ' — ' : '') + t('app.title');
  }

  function show(name, focus) {
    $('#loading').hidden = true;
    $$('[data-screen]').forEach(function (s) { s.hidden = s.getAttribute('data-screen') !== name; });
    var changed = current !== name;
    current = name;
    renderHeader();
    setTitle();
    if (changed && focus) {
      var h = $('[data-screen="' + name + '"] h1');
      if (h) h.focus();
    }
  }

  function go(name) {
    if (location.hash === '#' + name) route();
    else location.hash = '#' + name;
  }

  function loadMe() {
    return api('GET', '/me').then(function (me) {
      state.me = me;
      if (me.role !== 'clinic_admin') {
        var err = new ApiError(403, { title: t('err.admins_only') });
        api('POST', '/auth/logout', {}).catch(function () {});
        session.clear();
        state.me = null;
        throw err;
      }
      if (me.second_factor !== 'totp') return me;
      return api('GET', '/me/clinics').then(function (list) {
        state.clinics = list.items;
        var ids = list.items.map(function (c) { return c.clinic_id; });
        if (!state.clinicId || ids.indexOf(state.clinicId) < 0) setClinic(ids.length ? ids[ids.length - 1] : null);
        return me;
      });
    });
  }

  function setClinic(id) {
    state.clinicId = id;
    cache = {};
    if (id) sessionStorage.setItem('portal.clinic', id);
    else sessionStorage.removeItem('portal.clinic');
  }

  function endSession(key) {
    var had = !!session.get();
    session.clear();
    state = { me: null, clinics: null, clinicId: null, enrolling: false };
    cache = {};
    if (had) {
      announce(key, null, 'warn');
      go('signin');
    }
  }

  var routing = Promise.resolve();
  var firstRoute = true;

  function route() {
    routing = routing.then(doRoute, doRoute);
    return routing;
  }

  function doRoute() {
    var name = location.hash.replace(/^#/, '');
    var flash = null;
    var opts = {};
    if (name === 'payouts-return') { name = 'payouts'; flash = ['payouts.returned', 'ok']; }
    if (name === 'payouts-refresh') { name = 'payouts'; flash = ['payouts.expired', 'warn']; }
    if (name === 'clinic-new') { name = 'clinic'; opts.newClinic = true; }
    if (name && SCREENS.indexOf(name) < 0) return Promise.resolve();  // an in-page anchor such as #main
    var signedIn = !!session.get();
    var ready = signedIn && !state.me ? loadMe() : Promise.resolve(state.me);
    return ready.catch(function (err) {
      if (session.get()) throw err;
      return null;
    }).then(function () {
      signedIn = !!session.get();
      if (!signedIn) {
        if (PUBLIC.indexOf(name) < 0) name = 'signin';
      } else if (state.me.second_factor !== 'totp' || state.enrolling) {
        name = 'enrol';
      } else if (!name || PUBLIC.indexOf(name) >= 0 || name === 'enrol') {
        name = 'clinic';
      } else if (!state.clinicId && name !== 'clinic') {
        name = 'clinic';
      }
      if (location.hash !== '#' + name && !(opts.newClinic && name === 'clinic')) {
        history.replaceState(null, '', '#' + name);
      }
      show(name, !firstRoute);
      firstRoute = false;
      if (flash) announce(flash[0], null, flash[1]);
      var screen = screens[name];
      return screen && screen.load ? screen.load(opts) : null;
    }).catch(function (err) {
      var box = $('[data-screen="' + (current || 'signin') + '"] .form-error');
      var form = box ? box.closest('form') : null;
      if (form) showError(form, err);
      else announce('err.unexpected', null, 'error');
    });
  }

  // ------------------------------------------------------------------ screens

  var screens = {};

  // ---- sign in
  var login = { challenge: null };

  screens.signin = {
    load: function () {
      $('#form-login').hidden = !!login.challenge;
      $('#form-login-code').hidden = !login.challenge;
    },
    render: function () {
      if (login.challenge) {
        $('#login-code-label').textContent = t(login.challenge.second_factor === 'totp' ? 'signin.code.totp' : 'signin.code.sms');
      }
    }
  };

  bindForm($('#form-login'), function () {
    return api('POST', '/auth/login', { phone: val('login-phone'), password: $('#login-password').value }, { auth: false })
      .then(function (ch) {
        login.challenge = ch;
        screens.signin.load();
        screens.signin.render();
        $('#login-code').value = '';
        $('#login-code').focus();
        announce(ch.second_factor === 'totp' ? 'signin.code.totp.prompt' : 'signin.code.sms.prompt', null, 'ok');
      });
  });

  bindForm($('#form-login-code'), function () {
    return api('POST', '/auth/login/verify', {
      challenge_id: login.challenge.challenge_id, code: val('login-code'), device: { name: 'Clinic portal (web)' }
    }, { auth: false }).then(function (pair) {
      session.set(pair);
      login.challenge = null;
      $('#login-password').value = '';
      state.me = null;
      return loadMe();
    }).then(function () {
      screens.signin.load();
      announce('signin.done', null, 'ok');
      go(state.me.second_factor === 'totp' ? 'clinic' : 'enrol');
    });
  });

  $('#login-restart').addEventListener('click', function () {
    login.challenge = null;
    clearErrors($('#form-login-code'));
    screens.signin.load();
    $('#login-phone').focus();
  });

  // ---- sign up
  var signup = { challenge: null };

  screens.signup = {
    load: function () {
      $('#form-signup').hidden = !!signup.challenge;
      $('#form-signup-code').hidden = !signup.challenge;
    }
  };

  bindForm($('#form-signup'), function () {
    return api('POST', '/auth/signup', {
      phone: val('su-phone'), password: $('#su-password').value, first_name: val('su-first'),
      last_name: val('su-last'), birth_date: val('su-birth'),
      consent: { version: CONSENT_VERSION, accepted: $('#su-consent').checked },
      language: lang, role: 'clinic_admin'
    }, { auth: false }).then(function (ch) {
      signup.challenge = ch;
      screens.signup.load();
      $('#su-code').focus();
      announce('signup.code.sent', null, 'ok');
    });
  });

  bindForm($('#form-signup-code'), function () {
    return api('POST', '/auth/signup/verify', {
      challenge_id: signup.challenge.challenge_id, code: val('su-code'), device: { name: 'Clinic portal (web)' }
    }, { auth: false }).then(function (pair) {
      session.set(pair);
      signup.challenge = null;
      $('#su-password').value = '';
      state.me = null;
      state.enrolling = true;
      enrol.step = 1;
      announce('signup.done', null, 'ok');
      go('enrol');
    });
  });

  $('#su-resend').addEventListener('click', function () {
    var form = $('#form-signup-code');
    clearErrors(form);
    api('POST', '/auth/challenges/' + encodeURIComponent(signup.challenge.challenge_id) + '/resend', {}, { auth: false })
      .then(function () { announce('code.resent', null, 'ok'); })
      .catch(function (err) { showError(form, err); });
  });

  // ---- authenticator enrolment
  var enrol = { step: 1, challenge: null };

  screens.enrol = {
    load: function () {
      state.enrolling = true;
      renderHeader();
      $('#form-stepup-start').hidden = !!enrol.challenge || enrol.step > 1;
      $('#form-stepup-code').hidden = !enrol.challenge || enrol.step > 1;
      $('#enrol-step2').hidden = enrol.step !== 2;
      $('#enrol-step3').hidden = enrol.step !== 3;
      $('#enrol-step1').classList.toggle('done', enrol.step > 1);
    }
  };

  bindForm($('#form-stepup-start'), function () {
    return api('POST', '/me/step-up', {}).then(function (ch) {
      enrol.challenge = ch;
      screens.enrol.load();
      $('#su2-code').focus();
      announce(ch.second_factor === 'totp' ? 'signin.code.totp.prompt' : 'enrol.sent', null, 'ok');
    });
  });

  bindForm($('#form-stepup-code'), function () {
    return api('POST', '/me/step-up/verify', { challenge_id: enrol.challenge.challenge_id, code: val('su2-code') })
      .then(function () { return api('POST', '/me/totp', {}); })
      .then(function (t0) {
        enrol.step = 2;
        enrol.challenge = null;
        $('#totp-secret').textContent = t0.secret.replace(/(.{4})/g, '$1 ').trim();
        $('#totp-secret').setAttribute('data-secret', t0.secret);
        var link = $('#totp-uri');
        if (/^otpauth:\/\//.test(t0.otpauth_uri)) link.setAttribute('href', t0.otpauth_uri);
        link.setAttribute('data-uri', t0.otpauth_uri);
        screens.enrol.load();
        $('#totp-code').focus();
        announce('enrol.scan', null, 'ok');
      });
  });

  bindForm($('#form-totp-confirm'), function () {
    return api('POST', '/me/totp/confirm', { code: val('totp-code') }).then(function (res) {
      enrol.step = 3;
      var list = $('#recovery-codes');
      list.textContent = '';
      res.recovery_codes.forEach(function (c) { list.appendChild(el('li', {}, [el('code', { text: c })])); });
      $('#totp-secret').textContent = '';
      screens.enrol.load();
      $('#codes-saved').focus();
      announce('enrol.done', null, 'ok');
    });
  });

  $('#codes-saved').addEventListener('change', function () { $('#enrol-done').disabled = !this.checked; });
  $('#enrol-done').addEventListener('click', function () {
    enrol.step = 1;
    state.enrolling = false;
    state.me = null;
    $('#recovery-codes').textContent = '';
    $('#codes-saved').checked = false;
    $('#enrol-done').disabled = true;
    go('clinic');
  });

  // ---- clinic: registration, overview and verification
  screens.clinic = {
    load: function (opts) {
      var registering = (opts && opts.newClinic) || !state.clinicId;
      cache.registering = registering;
      if (registering) {
        screens.clinic.render();
        return null;
      }
      return Promise.all([api('GET', C()), api('GET', C('/branches')), api('GET', C('/services')),
        api('GET', C('/doctors'))]).then(function (r) {
        cache.clinic = r[0];
        cache.branches = r[1].items;
        cache.services = r[2].items;
        cache.doctors = r[3].items;
        screens.clinic.render();
      });
    },
    render: function () {
      var registering = cache.registering;
      $('#form-clinic').hidden = !registering;
      $('#clinic-view').hidden = registering;
      var switcher = $('#clinic-switch');
      var clinics = state.clinics || [];
      switcher.hidden = registering || clinics.length < 2;
      setOptions($('#clinic-select'), clinics.map(function (c) { return { value: c.clinic_id, label: text(c.display_name) }; }));
      if (state.clinicId) $('#clinic-select').value = state.clinicId;
      if (registering || !cache.clinic) return;
      var c = cache.clinic;
      var facts = $('#clinic-facts');
      facts.textContent = '';
      [['f.display_name', text(c.display_name)], ['f.legal_name', c.legal_name], ['f.tax_id', c.tax_id],
        ['f.country', t('country.' + c.country)], ['f.currency', c.currency]].forEach(function (pair) {
        facts.appendChild(el('dt', { text: t(pair[0]) }));
        facts.appendChild(el('dd', { text: pair[1] }));
      });
      var badge = $('#clinic-status');
      badge.textContent = t('status.' + c.status);
      badge.className = 'badge s-' + c.status;
      $('#clinic-status-text').textContent = t('status.' + c.status + '.text');
      var rej = $('#clinic-rejection');
      rej.hidden = c.status !== 'rejected' || !c.rejection_reason;
      rej.textContent = c.rejection_reason ? t('verify.reason', { reason: c.rejection_reason }) : '';
      var payouts = c.payouts || {};
      var checks = [
        [cache.branches.length > 0, 'verify.check.branch', { n: cache.branches.length }, true],
        [cache.services.length > 0, 'verify.check.services', { n: cache.services.length }, false],
        [cache.doctors.length > 0, 'verify.check.doctors', { n: cache.doctors.length }, false],
        [!!payouts.charges_enabled, 'verify.check.payouts', null, false]
      ];
      var list = $('#verify-checklist');
      list.textContent = '';
      checks.forEach(function (ch) {
        list.appendChild(el('li', { class: ch[0] ? 'yes' : 'no' }, [
          el('span', { class: 'mark', 'aria-hidden': 'true', text: ch[0] ? '✓' : '○' }),
          el('span', { class: 'visually-hidden', text: t(ch[0] ? 'check.done' : 'check.todo') + ': ' }),
          t(ch[1], ch[2]) + (ch[3] ? ' ' + t('verify.required') : '')
        ]));
      });
      $('#form-submit').hidden = ['draft', 'rejected'].indexOf(c.status) < 0;
      $('#form-activate').hidden = c.status !== 'verified';
    }
  };

  $('#clinic-select').addEventListener('change', function () {
    setClinic(this.value);
    renderHeader();
    screens.clinic.load({});
  });

  bindForm($('#form-clinic'), function () {
    var contacts = { public: [] };
    [['phone', 'c-phone'], ['email', 'c-email'], ['website', 'c-web']].forEach(function (p) {
      var v = val(p[1]);
      if (v) contacts[p[0]] = v;
    });
    $$('#form-clinic input[name="public"]:checked').forEach(function (cb) {
      if (contacts[cb.value]) contacts.public.push(cb.value);
    });
    return api('POST', '/clinics', {
      legal_name: val('c-legal'), display_name: { ru: val('c-name-ru'), en: val('c-name-en') },
      tax_id: val('c-tax'), country: val('c-country'), currency: val('c-currency'), contacts: contacts
    }).then(function (clinic) {
      state.clinics = (state.clinics || []).concat([{ clinic_id: clinic.clinic_id, display_name: clinic.display_name,
        status: clinic.status, legal_name: clinic.legal_name }]);
      setClinic(clinic.clinic_id);
      $('#form-clinic').reset();
      announce('clinic.created', { name: text(clinic.display_name) }, 'ok');
      go('branches');
    });
  });

  bindForm($('#form-submit'), function () {
    return api('POST', C('/submit'), {}).then(function (clinic) {
      cache.clinic = clinic;
      screens.clinic.render();
      announce('verify.submitted', null, 'ok');
    });
  });

  bindForm($('#form-activate'), function () {
    return api('POST', C('/activate'), {}).then(function (clinic) {
      cache.clinic = clinic;
      screens.clinic.render();
      announce('verify.activated', null, 'ok');
    });
  });

  // ---- branches and resources
  function buildHours() {
    var box = $('#b-hours');
    WEEKDAYS.forEach(function (d, i) {
      var open = i < 5;
      box.appendChild(el('div', { class: 'day', 'data-field': 'opening_hours.' + d }, [
        el('input', { type: 'checkbox', id: 'h-' + d, checked: open ? 'checked' : null }),
        el('label', { for: 'h-' + d, class: 'dayname', 'data-i18n': 'day.' + d }),
        el('label', { for: 'h-' + d + '-start', class: 'visually-hidden', 'data-i18n': 'hours.opens.' + d }),
        el('input', { type: 'time', id: 'h-' + d + '-start', value: '09:00' }),
        el('span', { 'aria-hidden': 'true', text: '–' }),
        el('label', { for: 'h-' + d + '-end', class: 'visually-hidden', 'data-i18n': 'hours.closes.' + d }),
        el('input', { type: 'time', id: 'h-' + d + '-end', value: open ? '18:00' : '15:00' })
      ]));
    });
  }

  function buildZones() {
    var zones = [];
    try { zones = Intl.supportedValuesOf('timeZone'); } catch (e) { zones = []; }
    ['Europe/Kaliningrad', 'Europe/Moscow', 'Europe/Samara', 'Asia/Yekaterinburg', 'Asia/Omsk', 'Asia/Novosibirsk',
      'Asia/Krasnoyarsk', 'Asia/Irkutsk', 'Asia/Yakutsk', 'Asia/Vladivostok', 'Asia/Sakhalin', 'Asia/Magadan',
      'Asia/Kamchatka', 'Asia/Almaty', 'Asia/Tashkent', 'Europe/Minsk', 'Asia/Yerevan', 'Asia/Tbilisi', 'Asia/Baku',
      'Asia/Bishkek'].forEach(function (z) { if (zones.indexOf(z) < 0) zones.push(z); });
    var list = $('#zones');
    zones.forEach(function (z) { list.appendChild(el('option', { value: z })); });
  }

  function zoneHint() {
    var z = val('b-zone');
    var now = z ? zoneNow(z) : '';
    $('#b-zone-now').textContent = now ? t('f.time_zone.now', { time: now }) : '';
  }

  screens.branches = {
    load: function () {
      return Promise.all([api('GET', C('/branches')), api('GET', C('/resources'))]).then(function (r) {
        cache.branches = r[0].items;
        cache.resources = r[1].items;
        screens.branches.render();
      });
    },
    render: function () {
      var branches = cache.branches || [];
      var names = {};
      branches.forEach(function (b) { names[b.branch_id] = text(b.name); });
      fill($('#branch-list'), table('branches.caption', ['f.name', 'f.city', 'f.address', 'f.time_zone', 'f.opening_hours'],
        branches.map(function (b) {
          return [text(b.name), b.city, b.address, b.time_zone + (zoneNow(b.time_zone) ? ' (' + zoneNow(b.time_zone) + ')' : ''),
            hoursSummary(b.opening_hours)];
        }), 'branches.empty'));
      fill($('#resource-list'), table('resources.caption', ['f.resource_name', 'f.kind', 'f.branch', 'f.capacity'],
        (cache.resources || []).map(function (r) { return [r.name, r.kind, names[r.branch_id] || '', r.capacity]; }),
        'resources.empty'));
      setOptions($('#r-branch'), branches.map(function (b) { return { value: b.branch_id, label: text(b.name) + ', ' + b.city }; }), true);
      $('#form-resource').hidden = !branches.length;
      zoneHint();
    }
  };

  $('#b-zone').addEventListener('input', zoneHint);

  bindForm($('#form-branch'), function () {
    var hours = {};
    WEEKDAYS.forEach(function (d) {
      if ($('#h-' + d).checked) hours[d] = [{ start: val('h-' + d + '-start'), end: val('h-' + d + '-end') }];
    });
    var body = {
      name: { ru: val('b-name-ru'), en: val('b-name-en') }, city: val('b-city'), address: val('b-address'),
      time_zone: val('b-zone'), opening_hours: hours
    };
    if (val('b-phone')) body.phone = val('b-phone');
    return api('POST', C('/branches'), body).then(function (b) {
      ['b-name-ru', 'b-name-en', 'b-address', 'b-phone'].forEach(function (id) { $('#' + id).value = ''; });
      announce('branches.added', { name: text(b.name), zone: b.time_zone }, 'ok');
      return screens.branches.load();
    });
  });

  bindForm($('#form-resource'), function () {
    var bid = val('r-branch');
    return api('POST', C('/branches/' + encodeURIComponent(bid) + '/resources'), {
      kind: val('r-kind'), name: val('r-name'), capacity: intOrRaw(val('r-capacity'))
    }).then(function (r) {
      $('#r-name').value = '';
      announce('resources.added', { name: r.name }, 'ok');
      return screens.branches.load();
    });
  });

  // ---- services
  function currency() { return (cache.clinic && cache.clinic.currency) || 'RUB'; }

  function renderCurrency() {
    $$('.currency-code').forEach(function (n) { n.textContent = currency(); });
    var exp = MINOR[currency()];
    $('#s-price-hint').textContent = t(exp ? 'f.price.hint' : 'f.price.hint.whole', { cur: currency(), n: exp });
  }

  function prepaymentText(p, cur) {
    if (!p || p.kind === 'none') return t('prepay.none');
    if (p.kind === 'percent') return p.percent + '%';
    return formatMoney(p.amount || { amount: 0, currency: cur });
  }

  screens.services = {
    load: function () {
      return Promise.all([api('GET', C()), api('GET', C('/services')), api('GET', C('/resources'))]).then(function (r) {
        cache.clinic = r[0];
        cache.services = r[1].items;
        cache.resources = r[2].items;
        screens.services.render();
      });
    },
    render: function () {
      renderCurrency();
      fill($('#service-list'), table('services.caption',
        ['f.name', 'f.duration.short', 'f.price', 'f.modality', 'f.prepayment', 'f.resource_kinds'],
        (cache.services || []).map(function (s) {
          return [text(s.name), t('minutes', { n: s.duration_minutes }), formatMoney(s.price), t('modality.' + s.modality),
            prepaymentText(s.prepayment, s.price.currency), (s.resource_kinds || []).join(', ')];
        }), 'services.empty'));
      var kinds = [];
      (cache.resources || []).forEach(function (r) { if (kinds.indexOf(r.kind) < 0) kinds.push(r.kind); });
      $('#s-kinds-known').textContent = kinds.length ? t('f.resource_kinds.known', { kinds: kinds.join(', ') }) : '';
      prepayKind();
    }
  };

  function prepayKind() {
    var k = val('s-pre-kind');
    $('#s-pre-amount-field').hidden = k !== 'fixed';
    $('#s-pre-percent-field').hidden = k !== 'percent';
  }
  $('#s-pre-kind').addEventListener('change', prepayKind);

  bindForm($('#form-service'), function () {
    var cur = currency();
    var body = {
      name: { ru: val('s-name-ru'), en: val('s-name-en') },
      duration_minutes: intOrRaw(val('s-duration')),
      price: { amount: parseMoney(val('s-price'), cur, 'price.amount'), currency: cur },
      modality: val('s-modality'),
      resource_kinds: val('s-kinds').split(/[,;\s]+/).filter(Boolean)
    };
    var kind = val('s-pre-kind');
    body.prepayment = { kind: kind };
    if (kind === 'fixed') body.prepayment.amount = { amount: parseMoney(val('s-pre-amount'), cur, 'prepayment.amount.amount'), currency: cur };
    if (kind === 'percent') body.prepayment.percent = intOrRaw(val('s-pre-percent'));
    if (val('s-prep-ru') || val('s-prep-en')) body.preparation = { ru: val('s-prep-ru'), en: val('s-prep-en') };
    if (val('s-specialty')) body.specialty = val('s-specialty');
    if (val('s-recall')) body.recall_after_days = intOrRaw(val('s-recall'));
    return api('POST', C('/services'), body).then(function (s) {
      $('#form-service').reset();
      prepayKind();
      announce('services.added', { name: text(s.name), price: formatMoney(s.price) }, 'ok');
      return screens.services.load();
    });
  });

  // ---- doctors, invitations, schedules
  function buildDays() {
    var box = $('#t-days');
    WEEKDAYS.forEach(function (d, i) {
      box.appendChild(el('label', {}, [
        el('input', { type: 'checkbox', name: 'weekday', value: d, checked: i < 5 ? 'checked' : null }), ' ',
        el('span', { 'data-i18n': 'day.' + d })
      ]));
    });
  }

  screens.doctors = {
    load: function () {
      return Promise.all([api('GET', C('/invitations')), api('GET', C('/doctors')), api('GET', C('/branches'))])
        .then(function (r) {
          cache.invitations = r[0].items;
          cache.doctors = r[1].items;
          cache.branches = r[2].items;
          screens.doctors.render();
          return loadSchedule();
        });
    },
    render: function () {
      fill($('#invitation-list'), table('doctors.invitations.caption', ['f.role', 'f.invitation_status', 'f.sent', 'f.expires'],
        (cache.invitations || []).slice().reverse().map(function (i) {
          return [t('role.' + i.role), t('invitation.' + i.status), dateTime(i.created_at), dateTime(i.expires_at)];
        }), 'doctors.invitations.empty'));
      var doctors = cache.doctors || [];
      fill($('#doctor-list'), table('doctors.caption', ['f.doctor', 'f.specialties', 'f.since'],
        doctors.map(function (d) { return [doctorName(d), (d.specialties || []).join(', '), dateTime(d.created_at)]; }),
        'doctors.empty'));
      setOptions($('#t-doctor'), doctors.map(function (d) { return { value: d.doctor_id, label: doctorName(d) }; }), true);
      setOptions($('#t-branch'), (cache.branches || []).map(function (b) {
        return { value: b.branch_id, label: text(b.name) + ' (' + b.time_zone + ')' };
      }), true);
      $('#form-template').hidden = !doctors.length;
      $('#h-schedule').hidden = !doctors.length;
      $('#schedule-list').hidden = !doctors.length;
      renderSchedule();
    }
  };

  function loadSchedule() {
    var did = val('t-doctor');
    if (!did) { cache.schedule = null; renderSchedule(); return null; }
    return api('GET', C('/doctors/' + encodeURIComponent(did) + '/schedule')).then(function (s) {
      cache.schedule = { doctor: did, templates: s.templates };
      renderSchedule();
    });
  }

  function renderSchedule() {
    var sch = cache.schedule;
    var names = {};
    (cache.branches || []).forEach(function (b) { names[b.branch_id] = text(b.name); });
    var items = sch ? sch.templates.slice().sort(function (a, b) {
      return WEEKDAYS.indexOf(a.weekday) - WEEKDAYS.indexOf(b.weekday) || (a.start < b.start ? -1 : 1);
    }) : [];
    fill($('#schedule-list'), table('schedule.caption', ['f.weekday', 'f.hours', 'f.branch', 'f.modality', 'f.valid', ''],
      items.map(function (it) {
        var btn = el('button', { type: 'button', class: 'link danger', 'data-delete': it.item_id,
          'aria-label': t('schedule.delete.label', { day: dayName(it.weekday), start: hm(it.start), end: hm(it.end) }),
          text: t('delete') });
        var valid = it.valid_from || it.valid_until ? (it.valid_from || '…') + ' – ' + (it.valid_until || '…') : t('schedule.always');
        return [dayName(it.weekday), hm(it.start) + '–' + hm(it.end) + ' (' + it.time_zone + ')', names[it.branch_id] || '',
          t('modality.' + it.modality), valid, btn];
      }), 'schedule.empty'));
  }

  $('#t-doctor').addEventListener('change', function () {
    loadSchedule().catch(function (err) { showError($('#form-template'), err); });
  });

  $('#schedule-list').addEventListener('click', function (ev) {
    var btn = ev.target.closest('[data-delete]');
    if (!btn) return;
    var did = cache.schedule.doctor;
    api('DELETE', C('/doctors/' + encodeURIComponent(did) + '/templates/' + encodeURIComponent(btn.getAttribute('data-delete'))))
      .then(function () { announce('schedule.deleted', null, 'ok'); return loadSchedule(); })
      .then(function () { $('#t-doctor').focus(); })
      .catch(function (err) { showError($('#form-template'), err); });
  });

  $('#doctors-reload').addEventListener('click', function () {
    screens.doctors.load().then(function () { announce('doctors.reloaded', { n: (cache.doctors || []).length }, 'ok'); })
      .catch(function (err) { showError($('#form-invite'), err); });
  });

  bindForm($('#form-invite'), function () {
    return api('POST', C('/invitations'), { role: val('i-role'), phone: val('i-phone') }).then(function () {
      announce('doctors.invited', { phone: val('i-phone') }, 'ok');
      $('#i-phone').value = '';
      return screens.doctors.load();
    });
  });

  bindForm($('#form-template'), function () {
    var did = val('t-doctor');
    var days = $$('#t-days input:checked').map(function (cb) { return cb.value; });
    if (!days.length) throw clientError('weekday', 'schedule.no_days');
    var base = { branch_id: val('t-branch'), modality: val('t-modality'), start: val('t-start'), end: val('t-end') };
    if (val('t-from')) base.valid_from = val('t-from');
    if (val('t-until')) base.valid_until = val('t-until');
    var added = 0;
    var chain = Promise.resolve();
    days.forEach(function (d) {
      chain = chain.then(function () {
        return api('POST', C('/doctors/' + encodeURIComponent(did) + '/templates'), Object.assign({ weekday: d }, base))
          .then(function () { added++; });
      });
    });
    return chain.then(function () {
      announce('schedule.added', { n: added }, 'ok');
      return loadSchedule();
    }, function (err) {
      return loadSchedule().then(function () {
        if (added) announce('schedule.partial', { n: added }, 'warn');
        throw err;
      });
    });
  });

  // ---- policies
  var POLICY_FIELDS = [['p-cancel', 'cancellation_window_hours'], ['p-notice', 'minimum_notice_minutes'],
    ['p-hold', 'hold_minutes'], ['p-noshow', 'no_show_limit'], ['p-noshow-days', 'no_show_window_days'],
    ['p-cashback', 'cashback_percent']];

  screens.policies = {
    load: function () {
      return api('GET', C()).then(function (c) {
        cache.clinic = c;
        var p = c.policies || {};
        POLICY_FIELDS.forEach(function (f) { $('#' + f[0]).value = p[f[1]] !== undefined ? p[f[1]] : ''; });
        $('#p-cap').value = p.cashback_cap ? majorText(p.cashback_cap) : '';
        $('#p-feedback').checked = p.feedback_after_visit !== false;
        screens.policies.render();
      });
    },
    render: function () { renderCurrency(); }
  };

  bindForm($('#form-policies'), function () {
    var body = { version: cache.clinic.version, feedback_after_visit: $('#p-feedback').checked };
    POLICY_FIELDS.forEach(function (f) { body[f[1]] = intOrRaw(val(f[0])); });
    if (val('p-cap')) body.cashback_cap = { amount: parseMoney(val('p-cap'), currency(), 'cashback_cap.amount'), currency: currency() };
    return api('PUT', C('/policies'), body).then(function (c) {
      cache.clinic = c;
      announce('policies.saved', null, 'ok');
    }, function (err) {
      if (err.status === 409) return screens.policies.load().then(function () { throw err; });
      throw err;
    });
  });

  // ---- payouts
  screens.payouts = {
    load: function () {
      return api('GET', C('/payouts')).then(function (p) {
        cache.payouts = p;
        screens.payouts.render();
      });
    },
    render: function () {
      var p = cache.payouts || {};
      var facts = $('#payout-facts');
      facts.textContent = '';
      var yes = function (b) { return t(b ? 'yes' : 'no'); };
      [['payouts.status', t('payouts.status.' + (p.status || 'not_started'))],
        ['payouts.charges', yes(p.charges_enabled)], ['payouts.payouts', yes(p.payouts_enabled)]]
        .concat(p.account_id ? [['payouts.account', p.account_id]] : [])
        .forEach(function (pair) {
          facts.appendChild(el('dt', { text: t(pair[0]) }));
          facts.appendChild(el('dd', { text: pair[1], class: pair[0] === 'payouts.charges' ? (p.charges_enabled ? 'yes' : 'no') : null }));
        });
      var btn = $('#payouts-start');
      btn.textContent = t(p.status === 'onboarding' ? 'payouts.continue' : 'payouts.start');
      $('#form-payouts').hidden = !!p.charges_enabled;
    }
  };

  bindForm($('#form-payouts'), function () {
    return api('POST', C('/payouts/onboarding'), {}).then(function (res) {
      if (!/^https?:\/\//.test(res.onboarding_url)) throw new ApiError(0, { title: t('err.unexpected') });
      announce('payouts.redirect', null, 'ok');
      window.location.assign(res.onboarding_url);
    });
  });

  // ------------------------------------------------------------------ start

  $$('[data-lang]').forEach(function (b) {
    b.addEventListener('click', function () { setLanguage(b.getAttribute('data-lang')); });
  });

  $('#signout').addEventListener('click', function () {
    var done = function () {
      session.clear();
      state = { me: null, clinics: null, clinicId: null, enrolling: false };
      cache = {};
      login.challenge = null;
      announce('signout.done', null, 'ok');
      go('signin');
    };
    api('POST', '/auth/logout', {}, { retry: false }).then(done, done);
  });

  $('a.skip').addEventListener('click', function (ev) {
    ev.preventDefault();
    $('#main').focus();
  });

  // ------------------------------------------------------------------ pages in files of their own

  // Each entry of window.PORTAL_PAGES is function (P) -> {name, screen: {load, render}}; P is the kit below,
  // so a page uses the same API client, errors, texts and tables as the rest of the portal.
  var kit = {
    $: $, $$: $$, api: api, t: t, has: has, el: el, table: table, fill: fill, text: text, announce: announce,
    bindForm: bindForm, showError: showError, clearErrors: clearErrors, val: val, C: C, go: go,
    allPages: allPages, download: download, clientError: clientError, doctorName: doctorName,
    clinicDoctors: clinicDoctors, doctorLabel: doctorLabel,
    formatMoney: formatMoney, parseMoney: parseMoney, majorText: majorText, intOrRaw: intOrRaw,
    dateTime: dateTime, zonedTime: zonedTime, locale: locale, lang: function () { return lang; }, setOptions: setOptions,
    ApiError: ApiError, clinic: function () { return (state.clinics || []).filter(function (c) { return c.clinic_id === state.clinicId; })[0] || null; },
    clinicId: function () { return state.clinicId; }, me: function () { return state.me; }
  };
  (window.PORTAL_PAGES || []).forEach(function (factory) {
    var page = factory(kit);
    if (SCREENS.indexOf(page.name) < 0) SCREENS.push(page.name);
    screens[page.name] = page.screen;
  });

  buildHours();
  buildDays();
  buildZones();
  applyI18n();
  window.addEventListener('hashchange', route);
  route();
})();
