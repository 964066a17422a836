/* The feedback page (clinic administrators only, as the API allows): patients' answers after their visits.
   - NPS for a period, per doctor and for the clinic, from the analytics counters
     (GET /clinics/{id}/analytics?period=custom&date_from&date_to);
   - the answers of that period themselves with their comments, newest first, a page at a time, for the clinic
     or one doctor, with the all-time counts beside them (GET /clinics/{id}/feedback?date_from&date_to&doctor_id&limit&cursor).
   Doctors are shown by name (the clinic's doctor list). Uses the portal's kit (app.js, "pages"). */
(function () {
  'use strict';
  var PAGE = 20;

  (window.PORTAL_PAGE_I18N = window.PORTAL_PAGE_I18N || []).push({
    ru: {
      'nav.feedback': 'Отзывы', 'fb.title': 'Отзывы пациентов',
      'fb.lead': 'Оценки после визитов (NPS: насколько вероятно, что пациент порекомендует клинику, от 0 до 10) и комментарии. Их видят только администраторы клиники, врачи комментариев не видят.',
      'fb.from': 'С даты', 'fb.to': 'По дату (включительно)', 'fb.doctor': 'Врач', 'fb.all': 'Все врачи',
      'fb.show': 'Показать', 'fb.period': 'NPS за период', 'fb.period.clinic': 'Клиника в целом',
      'fb.col.doctor': 'Врач', 'fb.col.answers': 'Ответов', 'fb.col.nps': 'NPS', 'fb.col.avg': 'Средняя оценка',
      'fb.col.promoters': 'Промоутеры (9–10)', 'fb.col.detractors': 'Критики (0–6)',
      'fb.period.caption': 'NPS по врачам за период', 'fb.period.empty': 'За эти дни ответов нет.',
      'fb.answers': 'Ответы пациентов', 'fb.answers.lead': 'Ответы за выбранный период, новые сверху.',
      'fb.answers.caption': 'Ответы пациентов, новые сверху', 'fb.answers.empty': 'За этот период ответов нет.',
      'fb.col.when': 'Когда', 'fb.col.score': 'Оценка', 'fb.col.comment': 'Комментарий',
      'fb.nocomment': 'без комментария', 'fb.band.promoters': 'промоутер', 'fb.band.passives': 'нейтрал',
      'fb.band.detractors': 'критик', 'fb.more': 'Показать ещё', 'fb.shown': 'Показано {n} из {total}.',
      'fb.alltime': 'За всё время: ответов {n}, NPS {nps}, средняя оценка {avg}.',
      'fb.alltime.doctor': '{name}, за всё время: ответов {n}, NPS {nps}, средняя оценка {avg}.',
      'fb.range.required': 'Укажите обе даты.', 'fb.range.order': 'Дата окончания раньше даты начала.'
    },
    en: {
      'nav.feedback': 'Feedback', 'fb.title': 'Patient feedback',
      'fb.lead': 'Scores after visits (NPS: how likely a patient is to recommend the clinic, 0 to 10) and comments. Only the clinic\'s administrators see them; doctors never see the comments.',
      'fb.from': 'From', 'fb.to': 'To (inclusive)', 'fb.doctor': 'Doctor', 'fb.all': 'All doctors',
      'fb.show': 'Show', 'fb.period': 'NPS for the period', 'fb.period.clinic': 'The clinic as a whole',
      'fb.col.doctor': 'Doctor', 'fb.col.answers': 'Answers', 'fb.col.nps': 'NPS', 'fb.col.avg': 'Average score',
      'fb.col.promoters': 'Promoters (9–10)', 'fb.col.detractors': 'Detractors (0–6)',
      'fb.period.caption': 'NPS per doctor for the period', 'fb.period.empty': 'No answers on these days.',
      'fb.answers': 'Patients\' answers', 'fb.answers.lead': 'Answers given in the chosen period, newest first.',
      'fb.answers.caption': 'Patients\' answers, newest first', 'fb.answers.empty': 'No answers in this period.',
      'fb.col.when': 'When', 'fb.col.score': 'Score', 'fb.col.comment': 'Comment',
      'fb.nocomment': 'no comment', 'fb.band.promoters': 'promoter', 'fb.band.passives': 'passive',
      'fb.band.detractors': 'detractor', 'fb.more': 'Show more', 'fb.shown': '{n} of {total} shown.',
      'fb.alltime': 'All time: {n} answers, NPS {nps}, average score {avg}.',
      'fb.alltime.doctor': '{name}, all time: {n} answers, NPS {nps}, average score {avg}.',
      'fb.range.required': 'Give both dates.', 'fb.range.order': 'The end date is before the start date.'
    }
  });

  function band(score) { return score >= 9 ? 'promoters' : score >= 7 ? 'passives' : 'detractors'; }
  function dash(x) { return x === null || x === undefined ? '—' : String(x); }
  function day(offset) { var d = new Date(); d.setDate(d.getDate() + offset); return d.toISOString().slice(0, 10); }

  (window.PORTAL_PAGES = window.PORTAL_PAGES || []).push(function (P) {
    var $ = P.$, t = P.t, el = P.el;
    var data = { period: null, doctors: {}, items: [], summary: null, doctorSummary: null, cursor: null, doctor: '' };

    function range() {
      var from = P.val('fb-from'), to = P.val('fb-to');
      if (!from) throw P.clientError('date_from', 'fb.range.required');
      if (!to) throw P.clientError('date_to', 'fb.range.required');
      if (to < from) throw P.clientError('date_to', 'fb.range.order');
      return '?period=custom&date_from=' + encodeURIComponent(from) + '&date_to=' + encodeURIComponent(to);
    }

    function answersPath(cursor) {
      // the answers of the period the form shows, as the NPS beside them
      var q = '?limit=' + PAGE + '&date_from=' + encodeURIComponent(data.from) + '&date_to=' + encodeURIComponent(data.to) +
        (data.doctor ? '&doctor_id=' + encodeURIComponent(data.doctor) : '');
      return P.C('/feedback' + q + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
    }

    function takeAnswers(r, append) {
      data.items = append ? data.items.concat(r.items) : r.items;
      data.summary = r.clinic;
      data.doctorSummary = r.doctor || null;
      data.cursor = r.next_cursor || null;
    }

    var loads = 0;  // answers of an older load that arrive after a newer one are dropped

    function load() {
      var mine = ++loads;
      if (!$('#fb-from').value) { $('#fb-from').value = day(-29); $('#fb-to').value = day(0); }
      var q = range();
      data.from = P.val('fb-from');
      data.to = P.val('fb-to');
      data.doctor = P.val('fb-doctor');
      return Promise.all([P.api('GET', P.C('/analytics' + q)), P.clinicDoctors(), P.api('GET', answersPath(null))])
        .then(function (r) {
        if (mine !== loads) return;  // a later load (the form sent again) wins
          data.period = r[0];
          data.doctors = r[1];
          takeAnswers(r[2], false);
          var chosen = data.doctor;
          P.setOptions($('#fb-doctor'), [{ value: '', label: t('fb.all') }].concat(Object.keys(data.doctors).map(function (id) {
            return { value: id, label: P.doctorName(data.doctors[id]) };
          }).sort(function (a, b) { return a.label.localeCompare(b.label); })));
          $('#fb-doctor').value = chosen;
          render();
        });
    }

    function more() {
      var btn = $('#fb-more');
      btn.setAttribute('aria-disabled', 'true');
      var mine = loads;
      return P.api('GET', answersPath(data.cursor)).then(function (r) {
        if (mine !== loads) return;  // the list was loaded afresh meanwhile
        var first = data.items.length;
        takeAnswers(r, true);
        render();
        // keep the keyboard where the new rows start
        var row = $$rows()[first];
        if (row) { row.setAttribute('tabindex', '-1'); row.focus(); }
      }).catch(function (err) { P.showError($('#form-feedback'), err); })
        .finally(function () { btn.removeAttribute('aria-disabled'); });
    }

    function $$rows() { return P.$$('#fb-list tbody tr'); }

    // in the clinic's zone (the analytics answer names it), with the zone said
    function when(at) { return P.zonedTime(at, data.period.period.time_zone); }

    function npsRow(label, n) {
      return [label, n.answers, dash(n.nps), dash(n.average), dash(n.promoters), dash(n.detractors)];
    }

    function render() {
      if (!data.period) return;
      var sel = $('#fb-doctor').options[0];
      if (sel && sel.value === '') sel.textContent = t('fb.all');
      var rows = data.period.doctors.filter(function (d) { return d.nps.answers > 0; }).map(function (d) {
        return npsRow(P.doctorLabel(data.doctors, d.doctor_id), d.nps);
      });
      if (rows.length) rows.push(npsRow(t('fb.period.clinic'), data.period.clinic.nps));
      P.fill($('#fb-period'), P.table('fb.period.caption', ['fb.col.doctor', 'fb.col.answers', 'fb.col.nps', 'fb.col.avg',
        'fb.col.promoters', 'fb.col.detractors'], rows, 'fb.period.empty'));
      var s = data.doctor ? data.doctorSummary : data.summary;
      // how many answers the period holds: the analytics counters of the same local days
      var inPeriod = data.doctor
        ? (data.period.doctors.filter(function (d) { return d.doctor_id === data.doctor; })[0] || { nps: { answers: 0 } }).nps
        : data.period.clinic.nps;
      var total = Math.max(inPeriod.answers || 0, data.items.length);
      $('#fb-alltime').textContent = !s ? '' : data.doctor
        ? t('fb.alltime.doctor', { name: P.doctorLabel(data.doctors, data.doctor), n: s.answers, nps: dash(s.nps), avg: dash(s.average) })
        : t('fb.alltime', { n: s.answers, nps: dash(s.nps), avg: dash(s.average) });
      P.fill($('#fb-list'), P.table('fb.answers.caption', ['fb.col.when', 'fb.col.doctor', 'fb.col.score', 'fb.col.comment'],
        data.items.map(function (i) {
          var comment = i.comment ? el('span', { text: i.comment }) : el('span', { class: 'muted', text: t('fb.nocomment') });
          return [when(i.created_at), P.doctorLabel(data.doctors, i.doctor_id),
            i.score + ' (' + t('fb.band.' + band(i.score)) + ')', comment];
        }), 'fb.answers.empty'));
      $('#fb-shown').textContent = data.items.length ? t('fb.shown', { n: data.items.length, total: total }) : '';
      $('#fb-more').hidden = !data.cursor;
    }

    P.bindForm($('#form-feedback'), function () { return load(); });
    $('#fb-more').addEventListener('click', function () {
      if (this.getAttribute('aria-disabled') !== 'true') more();
    });

    return { name: 'feedback', screen: { load: function () {
      return Promise.resolve().then(load).catch(function (err) { P.showError($('#form-feedback'), err); });
    }, render: render } };
  });
})();
