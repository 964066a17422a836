// The director's dashboard: fill rate over time, visits per doctor, NPS trend and revenue by week, each an
// inline SVG chart built with DOM calls (the CSP allows no inline script or style: classes only) with a table
// beside it that says the same. A month or a custom period (from/to, in the clinic's local days); doctors by
// name from the clinic's doctor list. Texts in Russian and English.
(function () {
  'use strict';
  var SVG = 'http://www.w3.org/2000/svg';

  (window.PORTAL_PAGE_I18N = window.PORTAL_PAGE_I18N || []).push({
    ru: {
      'nav.dashboard': 'Аналитика', 'dash.title': 'Аналитика клиники', 'dash.month': 'Месяц',
      'dash.period': 'Период', 'dash.period.month': 'Месяц', 'dash.period.custom': 'Свои даты',
      'dash.from': 'С даты', 'dash.to': 'По дату (включительно)', 'dash.range.hint': 'Не больше 366 дней.',
      'dash.show': 'Показать', 'dash.fill': 'Заполненность расписания по дням', 'dash.visits': 'Визиты по врачам',
      'dash.nps': 'NPS по неделям', 'dash.revenue': 'Выручка по неделям', 'dash.day': 'День',
      'dash.rate': 'Заполненность, %', 'dash.doctor': 'Врач', 'dash.count': 'Визиты', 'dash.sum': 'Сумма',
      'dash.week': 'Неделя с', 'dash.answers': 'Ответов', 'dash.score': 'NPS', 'dash.avg': 'Средняя оценка',
      'dash.amount': 'Выручка',
      'dash.noshows': 'Неявки', 'dash.c24': 'Заключения за 24 ч, %', 'dash.empty': 'Нет данных за период.',
      'dash.na': 'Пока недоступно: платежей ещё не было.', 'dash.summary': 'Итоги периода',
      'dash.total.period': 'Период', 'dash.total.visits': 'Визитов', 'dash.total.noshows': 'Неявок',
      'dash.total.fill': 'Заполненность', 'dash.total.nps': 'NPS', 'dash.total.revenue': 'Выручка',
      'dash.chart.table': 'Те же данные таблицей', 'dash.range.required': 'Укажите обе даты.',
      'dash.range.order': 'Дата окончания раньше даты начала.'
    },
    en: {
      'nav.dashboard': 'Analytics', 'dash.title': 'Clinic analytics', 'dash.month': 'Month',
      'dash.period': 'Period', 'dash.period.month': 'A month', 'dash.period.custom': 'Own dates',
      'dash.from': 'From', 'dash.to': 'To (inclusive)', 'dash.range.hint': 'At most 366 days.', 'dash.show': 'Show',
      'dash.fill': 'Schedule fill by day', 'dash.visits': 'Visits per doctor', 'dash.nps': 'NPS by week',
      'dash.revenue': 'Revenue by week', 'dash.day': 'Day', 'dash.rate': 'Fill, %', 'dash.doctor': 'Doctor',
      'dash.count': 'Visits', 'dash.sum': 'Sum', 'dash.week': 'Week from', 'dash.answers': 'Answers',
      'dash.score': 'NPS', 'dash.avg': 'Average score', 'dash.amount': 'Revenue', 'dash.noshows': 'No-shows',
      'dash.c24': 'Conclusions in 24 h, %',
      'dash.empty': 'No data for the period.', 'dash.na': 'Not available yet: no payments so far.',
      'dash.summary': 'The period', 'dash.total.period': 'Period', 'dash.total.visits': 'Visits',
      'dash.total.noshows': 'No-shows', 'dash.total.fill': 'Fill', 'dash.total.nps': 'NPS',
      'dash.total.revenue': 'Revenue', 'dash.chart.table': 'The same data as a table',
      'dash.range.required': 'Give both dates.', 'dash.range.order': 'The end date is before the start date.'
    }
  });

  function svg(tag, attrs, children) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  // A bar chart: values in [0, max]; the chart is an image with a title, the table beside it is the alternative.
  function bars(P, titleKey, labels, values, max) {
    var w = 640, h = 200, pad = 24, n = Math.max(values.length, 1);
    var step = (w - 2 * pad) / n, top = max || Math.max.apply(null, values.concat([1]));
    var id = 'chart-' + titleKey.replace(/\W/g, '-');
    var chart = svg('svg', { viewBox: '0 0 ' + w + ' ' + h, role: 'img', 'aria-labelledby': id, class: 'chart' }, [
      svg('title', { id: id }),
      svg('line', { x1: pad, y1: h - pad, x2: w - pad, y2: h - pad, class: 'chart-axis' })
    ]);
    chart.firstChild.textContent = P.t(titleKey);
    values.forEach(function (v, i) {
      var bh = Math.max(0, (h - 2 * pad) * (v / top));
      chart.appendChild(svg('rect', { x: (pad + i * step + step * 0.15).toFixed(1), y: (h - pad - bh).toFixed(1),
        width: (step * 0.7).toFixed(1), height: bh.toFixed(1), class: 'chart-bar' }));
      if (n <= 12) {
        var label = svg('text', { x: (pad + i * step + step / 2).toFixed(1), y: h - 6, class: 'chart-label' });
        label.textContent = labels[i];
        chart.appendChild(label);
      }
    });
    return chart;
  }

  function weekOf(day) {  // the Monday of an ISO date's week
    var d = new Date(day + 'T00:00:00Z');
    d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
    return d.toISOString().slice(0, 10);
  }

  function byWeek(series, fields) {
    var weeks = {}, order = [];
    series.forEach(function (r) {
      var k = weekOf(r.date);
      if (!weeks[k]) { weeks[k] = {}; order.push(k); fields.forEach(function (f) { weeks[k][f] = 0; }); }
      fields.forEach(function (f) { weeks[k][f] += r[f] || 0; });
    });
    return order.map(function (k) { return Object.assign({ week: k }, weeks[k]); });
  }

  function pct(x) { return x === null || x === undefined ? '—' : Math.round(x * 100) + '%'; }

  function block(P, titleKey, chart, tableNode) {
    return P.el('section', { class: 'card dash-chart' }, [
      P.el('h2', { text: P.t(titleKey) }), chart,
      P.el('details', {}, [P.el('summary', { text: P.t('dash.chart.table') }), tableNode])
    ]);
  }

  function localDay(P, iso) {  // a calendar day as people read it, without moving it through a time zone
    return new Intl.DateTimeFormat(P.locale(), { dateStyle: 'medium', timeZone: 'UTC' }).format(new Date(iso + 'T00:00:00Z'));
  }

  window.PORTAL_PAGES = window.PORTAL_PAGES || [];
  window.PORTAL_PAGES.push(function (P) {
    var state = { data: null, doctors: {} };
    var $ = P.$;

    function shortName(id) {  // "L. Vogel" under a bar; the table has the full name
      var d = state.doctors[id];
      if (!d || !d.last_name) return P.doctorLabel(state.doctors, id).slice(0, 14);
      return (d.first_name ? d.first_name.charAt(0) + '. ' : '') + d.last_name;
    }

    function render() {
      var out = $('#dash-out'), d = state.data;
      if (!d) return;
      var c = d.clinic, parts = [];
      var cur = (c.revenue.online && c.revenue.online.currency) || (d.doctors[0] && d.doctors[0].sum.currency) || 'EUR';
      var totals = [
        ['dash.total.period', localDay(P, d.period.date_from) + ' – ' + localDay(P, d.period.date_to) +
          ' (' + d.period.time_zone + ')'],
        ['dash.total.visits', String(c.visits)], ['dash.total.noshows', String(c.no_shows)],
        ['dash.total.fill', pct(c.fill.rate)], ['dash.total.nps', c.nps.nps === null ? '—' : String(c.nps.nps)]
      ];
      if (c.revenue.available) {
        totals.push(['dash.total.revenue', P.formatMoney({ amount: c.revenue.online.amount + c.revenue.reception.amount -
          c.revenue.refunded.amount, currency: cur })]);
      }
      var dl = P.el('dl', { class: 'dash-totals' });
      totals.forEach(function (pair) {
        dl.appendChild(P.el('dt', { text: P.t(pair[0]) }));
        dl.appendChild(P.el('dd', { text: pair[1] }));
      });
      parts.push(P.el('section', { class: 'card' }, [P.el('h2', { text: P.t('dash.summary') }), dl]));
      var fillRows = d.series.filter(function (r) { return r.scheduled_minutes > 0; });
      parts.push(block(P, 'dash.fill',
        bars(P, 'dash.fill', fillRows.map(function (r) { return r.date.slice(8); }),
          fillRows.map(function (r) { return Math.min(1, r.fill_rate || 0); }), 1),
        P.table('dash.fill', ['dash.day', 'dash.rate'], fillRows.map(function (r) { return [r.date, pct(r.fill_rate)]; }),
          'dash.empty')));
      parts.push(block(P, 'dash.visits',
        bars(P, 'dash.visits', d.doctors.map(function (x) { return shortName(x.doctor_id); }),
          d.doctors.map(function (x) { return x.visits.total; })),
        P.table('dash.visits', ['dash.doctor', 'dash.count', 'dash.sum', 'dash.noshows', 'dash.c24', 'dash.score',
          'dash.answers'],
        d.doctors.map(function (x) {
          return [P.doctorLabel(state.doctors, x.doctor_id), x.visits.total, P.formatMoney(x.sum), x.no_shows,
            pct(x.conclusions.share_within_24h), x.nps.nps === null ? '—' : x.nps.nps, x.nps.answers];
        }), 'dash.empty')));
      var weeks = byWeek(d.series, ['nps_answers', 'nps_score_sum', 'revenue', 'refunded']);
      var npsWeeks = weeks.filter(function (w) { return w.nps_answers > 0; });
      parts.push(block(P, 'dash.nps',
        bars(P, 'dash.nps', npsWeeks.map(function (w) { return w.week.slice(5); }),
          npsWeeks.map(function (w) { return w.nps_score_sum / w.nps_answers; }), 10),
        P.table('dash.nps', ['dash.week', 'dash.answers', 'dash.avg'], npsWeeks.map(function (w) {
          return [w.week, w.nps_answers, (w.nps_score_sum / w.nps_answers).toFixed(1)];
        }), 'dash.empty')));
      if (c.revenue.available) {
        parts.push(block(P, 'dash.revenue',
          bars(P, 'dash.revenue', weeks.map(function (w) { return w.week.slice(5); }),
            weeks.map(function (w) { return w.revenue - w.refunded; })),
          P.table('dash.revenue', ['dash.week', 'dash.amount'], weeks.map(function (w) {
            return [w.week, P.formatMoney({ amount: w.revenue - w.refunded, currency: cur })];
          }), 'dash.empty')));
      } else {
        parts.push(P.el('section', { class: 'card dash-chart' }, [P.el('h2', { text: P.t('dash.revenue') }),
          P.el('p', { class: 'muted', text: P.t('dash.na') })]));
      }
      out.textContent = '';
      parts.forEach(function (p) { out.appendChild(p); });
    }

    function showPeriod() {
      var custom = P.val('dash-period') === 'custom';
      $('#dash-month-field').hidden = custom;
      $('#dash-range').hidden = !custom;
    }

    function query() {
      if (P.val('dash-period') !== 'custom') {
        var month = $('#dash-month');
        if (!month.value) month.value = new Date().toISOString().slice(0, 7);
        return '?period=month&date=' + encodeURIComponent(month.value + '-01');
      }
      var from = P.val('dash-from'), to = P.val('dash-to');
      if (!from) throw P.clientError('date_from', 'dash.range.required');
      if (!to) throw P.clientError('date_to', 'dash.range.required');
      if (to < from) throw P.clientError('date_to', 'dash.range.order');
      return '?period=custom&date_from=' + encodeURIComponent(from) + '&date_to=' + encodeURIComponent(to);
    }

    var loads = 0;  // answers of an older load that arrive after a newer one are dropped

    function load() {
      var mine = ++loads;
      showPeriod();
      var q = query();
      return Promise.all([P.api('GET', P.C('/analytics' + q)), P.clinicDoctors()]).then(function (r) {
        if (mine !== loads) return;  // a later load (the form sent again) wins
        state.data = r[0];
        state.doctors = r[1];
        render();
      });
    }

    $('#dash-period').addEventListener('change', showPeriod);
    P.bindForm($('#form-dashboard'), function () { return load(); });

    return { name: 'dashboard', screen: { load: function () {
      return Promise.resolve().then(load).catch(function (err) { P.showError($('#form-dashboard'), err); });
    }, render: render } };
  });
})();
