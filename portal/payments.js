/* The payments page: the clinic's transactions with filters and daily totals; record a desk payment,
   send a payment link by SMS, refund part of a payment; hand back a refund owed at the reception (a policy
   refund of a desk payment: "Paid out" on its row). Refunds say who made them (staff, the cancellation rules,
   Stripe's dashboard) and, once handed back, by whom and when in the clinic's zone. Uses the portal's kit
   (app.js, "pages"). */
(function () {
  'use strict';

  (window.PORTAL_PAGE_I18N = window.PORTAL_PAGE_I18N || []).push({
    ru: {
      'nav.payments': 'Платежи', 'pay.title': 'Платежи', 'pay.lead': 'Оплаты пациентов, возвраты и итоги по дням.',
      'pay.from': 'С даты', 'pay.to': 'По дату', 'pay.status': 'Статус', 'pay.method': 'Способ', 'pay.any': 'Любой',
      'pay.show': 'Показать', 'pay.caption': 'Транзакции', 'pay.empty': 'За эти дни платежей нет.',
      'pay.col.when': 'Когда', 'pay.col.kind': 'Что', 'pay.col.method': 'Способ', 'pay.col.status': 'Статус',
      'pay.col.amount': 'Сумма', 'pay.col.refunded': 'Возвращено', 'pay.col.id': 'Платёж',
      'pay.kind.payment': 'Оплата', 'pay.kind.refund': 'Возврат',
      'pay.m.online': 'В приложении', 'pay.m.link': 'По ссылке', 'pay.m.cash': 'Наличные', 'pay.m.card_terminal': 'Терминал',
      'pay.s.succeeded': 'Оплачен', 'pay.s.refunded': 'Возвращён', 'pay.s.partially_refunded': 'Возвращён частично',
      'pay.s.refund': 'Возвраты', 'pay.s.pending': 'Ожидает', 'pay.s.failed': 'Не прошёл', 'pay.s.cancelled': 'Отменён',
      'pay.daily': 'Итоги по дням', 'pay.daily.empty': 'Итогов нет.', 'pay.col.date': 'День', 'pay.col.count': 'Платежей',
      'pay.col.paid': 'Получено', 'pay.col.net': 'Итого',
      'pay.desk': 'Оплата на ресепшене', 'pay.booking': 'Номер записи', 'pay.amount': 'Сумма', 'pay.who': 'Кто принял',
      'pay.desk.save': 'Записать оплату', 'pay.desk.done': 'Оплата записана, запись подтверждена.',
      'pay.link': 'Ссылка на оплату по SMS', 'pay.link.send': 'Отправить ссылку', 'pay.link.done': 'Ссылка отправлена пациенту.',
      'pay.refund': 'Возврат', 'pay.payment': 'Номер платежа', 'pay.reason': 'Причина', 'pay.refund.send': 'Вернуть',
      'pay.refund.done': 'Возврат записан: наличные и терминал — сразу, оплата картой — через Stripe.',
      'pay.rs.pending': 'Выполняется', 'pay.rs.succeeded': 'Выполнен', 'pay.rs.failed': 'Не прошёл',
      'pay.doctor': 'Врач', 'pay.anydoctor': 'Все врачи', 'pay.col.doctor': 'Врач', 'pay.col.service': 'Услуга',
      'pay.col.actions': 'Действия', 'pay.refund.this': 'Вернуть…', 'pay.refund.label': 'Вернуть платёж {id}',
      'pay.export': 'Скачать CSV', 'pay.export.done': 'Файл {name} скачан.', 'pay.more': 'Показать ещё',
      'pay.shown': 'Показано {n}.', 'pay.shown.more': 'Показано {n}, есть ещё.',
      'pay.range.hint': 'Не больше 92 дней.', 'pay.range.required': 'Укажите обе даты.',
      'pay.range.order': 'Дата окончания раньше даты начала.', 'pay.range.long': 'Не больше 92 дней за раз.',
      'pay.refund.prefilled': 'Платёж {id}: можно вернуть до {left}. Укажите сумму и причину.',
      'pay.refund.exceeds': 'Можно вернуть не больше {left}.',
      'problem.exceeds_paid': 'Больше, чем было оплачено', 'problem.already_paid': 'Запись уже оплачена',
      'problem.hold_lapsed': 'Бронь уже истекла', 'problem.no_prepayment': 'Эта запись без предоплаты',
      'problem.payment_changed': 'Платёж изменился, обновите и повторите',
      'pay.s.refund_owed': 'Возвраты к выдаче на ресепшене', 'pay.col.owed': 'К выдаче на ресепшене',
      'pay.rs.owed_at_reception': 'К выдаче на ресепшене', 'pay.rs.paid_out': 'Выдан на ресепшене: {who}, {when}',
      'pay.o.clinic': 'сотрудником клиники', 'pay.o.policy': 'по правилам отмены', 'pay.o.provider': 'сделан в Stripe',
      'pay.why.cancelled_in_time': 'отмена вовремя', 'pay.why.clinic_cancelled': 'отменено клиникой',
      'pay.why.late_cancel': 'поздняя отмена', 'pay.why.no_show': 'неявка', 'pay.why.no_visit': 'приёма нет',
      'pay.payout': 'Выдан', 'pay.payout.label': 'Выдан: возврат {amount} по платежу {id}',
      'pay.payout.done': 'Возврат {amount} выдан на ресепшене: {who}.', 'pay.by.staff': 'сотрудник клиники',
      'problem.refund_not_owed': 'Этот возврат не выдаётся на ресепшене',
      'verr.range_too_long': 'Слишком длинный период', 'verr.end_before_start': 'Дата окончания раньше даты начала'
    },
    en: {
      'nav.payments': 'Payments', 'pay.title': 'Payments', 'pay.lead': 'Patients\' payments, refunds and daily totals.',
      'pay.from': 'From', 'pay.to': 'To', 'pay.status': 'Status', 'pay.method': 'Method', 'pay.any': 'Any',
      'pay.show': 'Show', 'pay.caption': 'Transactions', 'pay.empty': 'No payments on these days.',
      'pay.col.when': 'When', 'pay.col.kind': 'What', 'pay.col.method': 'Method', 'pay.col.status': 'Status',
      'pay.col.amount': 'Amount', 'pay.col.refunded': 'Refunded', 'pay.col.id': 'Payment',
      'pay.kind.payment': 'Payment', 'pay.kind.refund': 'Refund',
      'pay.m.online': 'In the app', 'pay.m.link': 'By link', 'pay.m.cash': 'Cash', 'pay.m.card_terminal': 'Card terminal',
      'pay.s.succeeded': 'Paid', 'pay.s.refunded': 'Refunded', 'pay.s.partially_refunded': 'Partly refunded',
      'pay.s.refund': 'Refunds', 'pay.s.pending': 'Pending', 'pay.s.failed': 'Failed', 'pay.s.cancelled': 'Cancelled',
      'pay.daily': 'Daily totals', 'pay.daily.empty': 'No totals.', 'pay.col.date': 'Day', 'pay.col.count': 'Payments',
      'pay.col.paid': 'Received', 'pay.col.net': 'Net',
      'pay.desk': 'Payment at the desk', 'pay.booking': 'Booking number', 'pay.amount': 'Amount', 'pay.who': 'Taken by',
      'pay.desk.save': 'Record the payment', 'pay.desk.done': 'Payment recorded; the booking is confirmed.',
      'pay.link': 'Payment link by SMS', 'pay.link.send': 'Send the link', 'pay.link.done': 'The link is sent to the patient.',
      'pay.refund': 'Refund', 'pay.payment': 'Payment number', 'pay.reason': 'Reason', 'pay.refund.send': 'Refund',
      'pay.refund.done': 'The refund is recorded: cash and terminal at once, card payments through Stripe.',
      'pay.rs.pending': 'In progress', 'pay.rs.succeeded': 'Done', 'pay.rs.failed': 'Failed',
      'pay.doctor': 'Doctor', 'pay.anydoctor': 'All doctors', 'pay.col.doctor': 'Doctor', 'pay.col.service': 'Service',
      'pay.col.actions': 'Actions', 'pay.refund.this': 'Refund…', 'pay.refund.label': 'Refund payment {id}',
      'pay.export': 'Download CSV', 'pay.export.done': 'File {name} downloaded.', 'pay.more': 'Show more',
      'pay.shown': '{n} shown.', 'pay.shown.more': '{n} shown; there are more.',
      'pay.range.hint': 'At most 92 days.', 'pay.range.required': 'Give both dates.',
      'pay.range.order': 'The end date is before the start date.', 'pay.range.long': 'At most 92 days at once.',
      'pay.refund.prefilled': 'Payment {id}: up to {left} can be refunded. Give the amount and the reason.',
      'pay.refund.exceeds': 'At most {left} can still be refunded.',
      'problem.exceeds_paid': 'More than was paid', 'problem.already_paid': 'This booking is paid already',
      'problem.hold_lapsed': 'The hold has lapsed', 'problem.no_prepayment': 'This booking needs no prepayment',
      'problem.payment_changed': 'The payment changed; reload and retry',
      'pay.s.refund_owed': 'Refunds owed at the reception', 'pay.col.owed': 'Owed at the reception',
      'pay.rs.owed_at_reception': 'Owed at the reception', 'pay.rs.paid_out': 'Paid out at the reception by {who}, {when}',
      'pay.o.clinic': 'by the clinic\'s staff', 'pay.o.policy': 'by the cancellation rules', 'pay.o.provider': 'made in Stripe',
      'pay.why.cancelled_in_time': 'cancelled in time', 'pay.why.clinic_cancelled': 'cancelled by the clinic',
      'pay.why.late_cancel': 'late cancellation', 'pay.why.no_show': 'no-show', 'pay.why.no_visit': 'no visit',
      'pay.payout': 'Paid out', 'pay.payout.label': 'Paid out: refund of {amount} for payment {id}',
      'pay.payout.done': 'The refund of {amount} is paid out at the reception by {who}.', 'pay.by.staff': 'a staff member',
      'problem.refund_not_owed': 'This refund is not one to hand back at the reception'
    }
  });

  var PAGE = 25;
  var MAX_DAYS = 92;  // daily totals and the CSV export take at most 92 days (payments/models.py TotalsQuery)

  (window.PORTAL_PAGES = window.PORTAL_PAGES || []).push(function (P) {
    var $ = P.$, t = P.t, el = P.el;
    var data = { items: [], daily: [], cursor: null, doctors: {}, query: '', totals: '', zones: {}, branchZone: {} };

    function today() { return new Date().toISOString().slice(0, 10); }
    function currency() { var c = P.clinic(); return (c && c.currency) || data.currency || 'EUR'; }
    function days(from, to) { return Math.round((Date.parse(to) - Date.parse(from)) / 86400000); }
    function range() {  // checked here so each mistake is named at its field before anything is sent
      var from = P.val('pay-from'), to = P.val('pay-to');
      if (!from) throw P.clientError('date_from', 'pay.range.required');
      if (!to) throw P.clientError('date_to', 'pay.range.required');
      if (to < from) throw P.clientError('date_to', 'pay.range.order');
      if (days(from, to) > MAX_DAYS) throw P.clientError('date_to', 'pay.range.long');
      return '?date_from=' + encodeURIComponent(from) + '&date_to=' + encodeURIComponent(to);
    }
    function query() {
      var q = range();
      if (P.val('pay-status')) q += '&status=' + encodeURIComponent(P.val('pay-status'));
      if (P.val('pay-method')) q += '&method=' + encodeURIComponent(P.val('pay-method'));
      if (P.val('pay-doctor')) q += '&doctor_id=' + encodeURIComponent(P.val('pay-doctor'));
      return q + '&limit=' + PAGE;
    }
    var loads = 0;  // answers of an older load that arrive after a newer one are dropped
    function remember(items) {  // each payment's zone, for its refunds (they carry none)
      items.forEach(function (i) { if (i.kind === 'payment' && i.time_zone) data.zones[i.payment_id] = i.time_zone; });
    }

    function load() {
      var mine = ++loads;
      if (!$('#pay-from').value) { $('#pay-from').value = today(); $('#pay-to').value = today(); }
      var q = query(), totals = range();
      return Promise.all([P.api('GET', P.C('/payments' + q)), P.api('GET', P.C('/payments/daily' + totals)),
        P.clinicDoctors(), P.api('GET', P.C()), branchZone()]).then(function (r) {
        if (mine !== loads) return;  // a later load (the form sent again) wins
        data.query = q;
        data.totals = totals;
        data.items = r[0].items;
        remember(data.items);
        data.cursor = r[0].next_cursor || null;
        data.daily = r[1].items;
        data.doctors = r[2];
        data.currency = r[3].currency;
        var chosen = P.val('pay-doctor');
        P.setOptions($('#pay-doctor'), [{ value: '', label: t('pay.anydoctor') }].concat(Object.keys(data.doctors).map(function (id) {
          return { value: id, label: P.doctorName(data.doctors[id]) };
        })));
        $('#pay-doctor').value = chosen;
        render();
      });
    }
    function more() {
      var mine = loads;
      return P.api('GET', P.C('/payments' + data.query + '&cursor=' + encodeURIComponent(data.cursor))).then(function (r) {
        if (mine !== loads) return;  // the list was loaded afresh meanwhile
        var first = data.items.length;
        data.items = data.items.concat(r.items);
        remember(r.items);
        data.cursor = r.next_cursor || null;
        render();
        var row = P.$$('#pay-list tbody tr')[first];
        if (row) { row.setAttribute('tabindex', '-1'); row.focus(); }
      });
    }
    function branchZone() {  // the clinic's zone, for refunds whose payment is not in view (read once a clinic)
      var cid = P.clinicId();
      if (data.branchZone[cid] !== undefined) return Promise.resolve(data.branchZone[cid]);
      return P.allPages(P.C('/branches?limit=100')).then(function (list) {
        data.branchZone[cid] = list.length ? list[0].time_zone : '';
        return data.branchZone[cid];
      });
    }
    function zoneOf(i) {  // payments carry their visit's zone; a refund takes its payment's, else the clinic's
      return i.time_zone || data.zones[i.payment_id] || data.branchZone[P.clinicId()] || undefined;
    }
    function when(i) { return P.zonedTime(i.paid_at || i.created_at, zoneOf(i)); }  // the clinic's zone
    function kindCell(i) {  // a refund says who made it (staff, the rules and why, Stripe's dashboard)
      if (i.kind !== 'refund' || !i.origin) return t('pay.kind.' + i.kind);
      var why = i.origin === 'policy' && P.has('pay.why.' + i.reason) ? ': ' + t('pay.why.' + i.reason) : '';
      return el('span', {}, [t('pay.kind.refund'), el('br'), el('small', { class: 'muted', text: t('pay.o.' + i.origin) + why })]);
    }
    function paidOutBy(r) {
      var by = r.paid_out_by || {}, me = P.me();
      if (by.name) return by.name;
      if (me && by.user_id === me.user_id) return [me.first_name, me.last_name].filter(Boolean).join(' ');
      return t('pay.by.staff');
    }
    function statusText(i) {
      if (i.kind !== 'refund') return t('pay.s.' + i.status);
      if (i.status === 'succeeded' && i.paid_out_at) {
        return t('pay.rs.paid_out', { who: paidOutBy(i), when: P.zonedTime(i.paid_out_at, zoneOf(i)) });
      }
      return t('pay.rs.' + i.status);
    }
    function actions(i) {
      if (i.kind === 'refund') {
        if (i.status !== 'owed_at_reception') return '';
        return el('button', { type: 'button', class: 'link', 'data-payout': i.refund_id, 'data-payment': i.payment_id,
          'aria-label': t('pay.payout.label', { amount: P.formatMoney(i.amount), id: i.payment_id }), text: t('pay.payout') });
      }
      return refundButton(i);
    }
    function left(i) { return { amount: i.amount.amount - (i.refunded ? i.refunded.amount : 0), currency: i.amount.currency }; }
    function refundButton(i) {
      if (i.kind !== 'payment' || ['succeeded', 'partially_refunded'].indexOf(i.status) < 0) return '';
      return el('button', { type: 'button', class: 'link', 'data-refund': i.payment_id,
        'aria-label': t('pay.refund.label', { id: i.payment_id }), text: t('pay.refund.this') });
    }
    function render() {
      P.$$('.currency-code', $('[data-screen="payments"]')).forEach(function (n) { n.textContent = currency(); });
      var sel = $('#pay-doctor').options[0];
      if (sel && sel.value === '') sel.textContent = t('pay.anydoctor');
      P.fill($('#pay-list'), P.table('pay.caption', ['pay.col.when', 'pay.col.kind', 'pay.col.method', 'pay.col.status',
        'pay.col.amount', 'pay.col.refunded', 'pay.col.doctor', 'pay.col.service', 'pay.col.id', 'pay.col.actions'],
      data.items.map(function (i) {
        return [when(i), kindCell(i), t('pay.m.' + i.method),
          statusText(i), P.formatMoney(i.amount), i.refunded && i.refunded.amount ? P.formatMoney(i.refunded) : '',
          P.doctorLabel(data.doctors, i.doctor_id), P.text(i.service_name), i.payment_id, actions(i)];
      }), 'pay.empty'));
      $('#pay-shown').textContent = data.items.length ? t(data.cursor ? 'pay.shown.more' : 'pay.shown', { n: data.items.length }) : '';
      $('#pay-more').hidden = !data.cursor;
      P.fill($('#pay-daily'), P.table('pay.daily', ['pay.col.date', 'pay.col.count', 'pay.col.paid',
        'pay.col.refunded', 'pay.col.owed', 'pay.col.net'], data.daily.map(function (d) {
        return [d.date, d.payments, P.formatMoney(d.paid), P.formatMoney(d.refunded),
          P.formatMoney(d.owed_at_reception || { amount: 0, currency: d.paid.currency }), P.formatMoney(d.net)];
      }), 'pay.daily.empty'));
    }
    function done(form, key) {
      form.reset();
      P.announce(key, null, 'ok');
      return load();
    }

    P.bindForm($('#form-pay-filter'), function () { return load(); });
    $('#pay-more').addEventListener('click', function () {
      more().catch(function (err) { P.showError($('#form-pay-filter'), err); });
    });
    $('#pay-export').addEventListener('click', function () {
      var form = $('#form-pay-filter');
      P.clearErrors(form);
      Promise.resolve().then(function () { return P.download(P.C('/payments/export' + range()), 'text/csv'); })
        .then(function (file) { P.announce('pay.export.done', { name: file.filename }, 'ok'); })
        .catch(function (err) { P.showError(form, err); });
    });
    function payOut(btn) {  // the refund is handed back at the desk: recorded, its row and the day's totals updated
      var rid = btn.getAttribute('data-payout'), pid = btn.getAttribute('data-payment'), mine = loads;
      var me = P.me(), form = $('#form-pay-filter');
      var who = me ? [me.first_name, me.last_name].filter(Boolean).join(' ') : '';
      btn.disabled = true;
      P.clearErrors(form);
      return P.api('POST', P.C('/payments/' + encodeURIComponent(pid) + '/refunds/' + encodeURIComponent(rid) + '/payout'),
        who ? { paid_out_by: who } : {}).then(function (r) {
        return P.api('GET', P.C('/payments/daily' + data.totals)).then(function (daily) {
          if (mine !== loads) return;  // the list was loaded afresh meanwhile: it shows the payout already
          var at = -1;
          data.items = data.items.map(function (i, n) {
            if (i.kind === 'refund' && i.refund_id === r.refund_id) { at = n; return r; }
            return i;
          });
          data.daily = daily.items;
          render();
          P.announce('pay.payout.done', { amount: P.formatMoney(r.amount), who: paidOutBy(r) }, 'ok');
          var row = P.$$('#pay-list tbody tr')[at];
          if (row) { row.setAttribute('tabindex', '-1'); row.focus(); }
        });
      }).catch(function (err) {
        btn.disabled = false;
        P.showError(form, err);
      });
    }
    $('#pay-list').addEventListener('click', function (ev) {
      var out = ev.target.closest('[data-payout]');
      if (out) { payOut(out); return; }
      var btn = ev.target.closest('[data-refund]');
      if (!btn) return;
      var item = data.items.filter(function (i) { return i.kind === 'payment' && i.payment_id === btn.getAttribute('data-refund'); })[0];
      $('#pay-refund-payment').value = item.payment_id;
      $('#pay-refund-amount').value = P.majorText(left(item));
      P.announce('pay.refund.prefilled', { id: item.payment_id, left: P.formatMoney(left(item)) }, 'ok');
      $('#pay-refund-amount').focus();
    });
    P.bindForm($('#form-pay-desk'), function (form) {
      var cur = currency();
      var body = { booking_id: P.val('pay-desk-booking'), method: P.val('pay-desk-method'),
        amount: { amount: P.parseMoney(P.val('pay-desk-amount'), cur, 'amount.amount'), currency: cur } };
      if (P.val('pay-desk-who')) body.received_by = P.val('pay-desk-who');
      return P.api('POST', P.C('/payments/reception'), body).then(function () { return done(form, 'pay.desk.done'); });
    });
    P.bindForm($('#form-pay-link'), function (form) {
      return P.api('POST', P.C('/payments/links'), { booking_id: P.val('pay-link-booking') })
        .then(function () { return done(form, 'pay.link.done'); });
    });
    P.bindForm($('#form-pay-refund'), function (form) {
      var body = { amount: P.parseMoney(P.val('pay-refund-amount'), currency(), 'amount'), reason: P.val('pay-refund-reason') };
      return P.api('POST', P.C('/payments/' + encodeURIComponent(P.val('pay-refund-payment')) + '/refunds'), body)
        .then(function () { return done(form, 'pay.refund.done'); }, function (err) {
          // the server says what is left in minor units ("at most 4000 ..."): said in money here
          ((err.problem && err.problem.errors) || []).forEach(function (e) {
            var m = e.code === 'exceeds_paid' && /(\d+)/.exec(e.message || '');
            if (m) { e.code = 'client'; e.message = t('pay.refund.exceeds', { left: P.formatMoney({ amount: parseInt(m[1], 10), currency: currency() }) }); }
          });
          throw err;
        });
    });
    return { name: 'payments', screen: { load: function () {
      return Promise.resolve().then(load).catch(function (err) { P.showError($('#form-pay-filter'), err); });
    }, render: render } };
  });
})();
