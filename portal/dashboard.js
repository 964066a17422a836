// The director's dashboard: fill rate over time, visits per doctor, NPS trend and revenue by week, each an
// inline SVG chart built with DOM calls (the CSP allows no inline script or style: classes only) with a table
// beside it that says the same. Texts in Russian and English.
(function () {
  'use strict';
  var SVG = 'http://www.w3.org/2000/svg';
  var texts = {
    ru: {
      'nav.dashboard': 'Аналитика', 'dash.title': 'Аналитика клиники', 'dash.month': 'Месяц',
      'dash.show': 'Показать', 'dash.fill': 'Заполненность расписания по дням', 'dash.visits': 'Визиты по врачам',
      'dash.nps': 'NPS по неделям', 'dash.revenue': 'Выручка по неделям', 'dash.day': 'День',
      'dash.rate': 'Заполненность, %', 'dash.doctor': 'Врач', 'dash.count': 'Визиты', 'dash.sum': 'Сумма',
      'dash.week': 'Неделя с', 'dash.answers': 'Ответов', 'dash.score': 'NPS', 'dash.amount': 'Выручка',
      'dash.noshows': 'Неявки', 'dash.c24': 'Заключения за 24 ч, %', 'dash.empty': 'Нет данных за период.',
      'dash.na': 'Пока недоступно: платежей ещё не было.', 'dash.summary': 'Итоги периода',
      'dash.total.visits': 'Визитов', 'dash.total.fill': 'Заполненность', 'dash.total.nps': 'NPS',
      'dash.chart.table': 'Те же данные таблицей'
    },
    en: {
      'nav.dashboard': 'Analytics', 'dash.title': 'Clinic analytics', 'dash.month': 'Month', 'dash.show': 'Show',
      'dash.fill': 'Schedule fill by day', 'dash.visits': 'Visits per doctor', 'dash.nps': 'NPS by week',
      'dash.revenue': 'Revenue by week', 'dash.day': 'Day', 'dash.rate': 'Fill, %', 'dash.doctor': 'Doctor',
      'dash.count': 'Visits', 'dash.sum': 'Sum', 'dash.week': 'Week from', 'dash.answers': 'Answers',
      'dash.score': 'NPS', 'dash.amount': 'Revenue', 'dash.noshows': 'No-shows', 'dash.c24': 'Conclusions in 24 h, %',
      'dash.empty': 'No data for the period.', 'dash.na': 'Not available yet: no payments so far.',
      'dash.summary': 'The period', 'dash.total.visits': 'Visits', 'dash.total.fill': 'Fill',
      'dash.total.nps': 'NPS', 'dash.chart.table': 'The same data as a table'
    }
  };
  Object.keys(texts).forEach(function (l) {
    Object.keys(texts[l]).forEach(function (k) { window.PORTAL_I18N[l][k] = texts[l][k]; });
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

  window.PORTAL_PAGES = window.PORTAL_PAGES || [];
  window.PORTAL_PAGES.push(function (P) {
    var state = { data: null };

    function doctorName(id) {
      var c = P.clinic && P.clinic();
      var found = ((c && c.doctors) || []).filter(function (d) { return d.doctor_id === id; })[0];
      return found ? [found.first_name, found.last_name].join(' ') : id.slice(-6);
    }

    function render() {
      var out = P.$('#dash-out'), d = state.data;
      if (!d) return;
      var cur = (d.doctors[0] && d.doctors[0].sum.currency) || 'RUB';
      var c = d.clinic, parts = [];
      parts.push(P.el('section', { class: 'card' }, [P.el('h2', { text: P.t('dash.summary') }), P.el('dl', { class: 'dash-totals' }, [
        P.el('dt', { text: P.t('dash.total.visits') }), P.el('dd', { text: String(c.visits) }),
        P.el('dt', { text: P.t('dash.total.fill') }), P.el('dd', { text: pct(c.fill.rate) }),
        P.el('dt', { text: P.t('dash.total.nps') }), P.el('dd', { text: c.nps.nps === null ? '—' : String(c.nps.nps) })
      ])]));
      var fillRows = d.series.filter(function (r) { return r.scheduled_minutes > 0; });
      parts.push(block(P, 'dash.fill',
        bars(P, 'dash.fill', fillRows.map(function (r) { return r.date.slice(8); }),
          fillRows.map(function (r) { return Math.min(1, r.fill_rate || 0); }), 1),
        P.table('dash.fill', ['dash.day', 'dash.rate'], fillRows.map(function (r) { return [r.date, pct(r.fill_rate)]; }),
          'dash.empty')));
      parts.push(block(P, 'dash.visits',
        bars(P, 'dash.visits', d.doctors.map(function (x) { return doctorName(x.doctor_id).split(' ')[0]; }),
          d.doctors.map(function (x) { return x.visits.total; })),
        P.table('dash.visits', ['dash.doctor', 'dash.count', 'dash.sum', 'dash.noshows', 'dash.c24', 'dash.score'],
          d.doctors.map(function (x) {
            return [doctorName(x.doctor_id), x.visits.total, P.formatMoney(x.sum), x.no_shows,
              pct(x.conclusions.share_within_24h), x.nps.nps === null ? '—' : x.nps.nps];
          }), 'dash.empty')));
      var weeks = byWeek(d.series, ['nps_answers', 'nps_score_sum', 'revenue', 'refunded']);
      var npsWeeks = weeks.filter(function (w) { return w.nps_answers > 0; });
      parts.push(block(P, 'dash.nps',
        bars(P, 'dash.nps', npsWeeks.map(function (w) { return w.week.slice(5); }),
          npsWeeks.map(function (w) { return w.nps_score_sum / w.nps_answers; }), 10),
        P.table('dash.nps', ['dash.week', 'dash.answers', 'dash.score'], npsWeeks.map(function (w) {
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

    function load() {
      var month = P.$('#dash-month');
      if (!month.value) month.value = new Date().toISOString().slice(0, 7);
      return P.api('GET', P.C('/analytics?period=month&date=' + month.value + '-01')).then(function (data) {
        state.data = data;
        render();
      });
    }

    P.$('#form-dashboard').addEventListener('submit', function (e) {
      e.preventDefault();
      load().catch(function (err) { P.showError(P.$('#form-dashboard'), err); });
    });

    return { name: 'dashboard', screen: { load: load, render: render } };
  });
})();
