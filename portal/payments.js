/* The payments page: the clinic's transactions with filters and daily totals; record a desk payment,
   send a payment link by SMS, refund part of a payment. Uses the portal's kit (app.js, "pages"). */
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
      'pay.refund.done': 'Возврат отправлен в Stripe.',
      'problem.exceeds_paid': 'Больше, чем было оплачено', 'problem.already_paid': 'Запись уже оплачена',
      'problem.hold_lapsed': 'Бронь уже истекла', 'problem.no_prepayment': 'Эта запись без предоплаты',
      'problem.payment_changed': 'Платёж изменился, обновите и повторите'
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
      'pay.refund.done': 'The refund is on its way to Stripe.',
      'problem.exceeds_paid': 'More than was paid', 'problem.already_paid': 'This booking is paid already',
      'problem.hold_lapsed': 'The hold has lapsed', 'problem.no_prepayment': 'This booking needs no prepayment',
      'problem.payment_changed': 'The payment changed; reload and retry'
    }
  });

  (window.PORTAL_PAGES = window.PORTAL_PAGES || []).push(function (P) {
    var $ = P.$, t = P.t, el = P.el;
    var data = { items: [], daily: [] };

    function today() { return new Date().toISOString().slice(0, 10); }
    function currency() { var c = P.clinic(); return (c && c.currency) || 'EUR'; }
    function query() {
      var q = '?date_from=' + encodeURIComponent(P.val('pay-from') || today()) +
        '&date_to=' + encodeURIComponent(P.val('pay-to') || today());
      if (P.val('pay-status')) q += '&status=' + encodeURIComponent(P.val('pay-status'));
      if (P.val('pay-method')) q += '&method=' + encodeURIComponent(P.val('pay-method'));
      return q;
    }
    function load() {
      if (!$('#pay-from').value) { $('#pay-from').value = today(); $('#pay-to').value = today(); }
      var q = query();
      var days = '?date_from=' + encodeURIComponent(P.val('pay-from')) + '&date_to=' + encodeURIComponent(P.val('pay-to'));
      return Promise.all([P.api('GET', P.C('/payments' + q)), P.api('GET', P.C('/payments/daily' + days))])
        .then(function (r) { data.items = r[0].items; data.daily = r[1].items; render(); });
    }
    function render() {
      P.fill($('#pay-list'), P.table('pay.caption', ['pay.col.when', 'pay.col.kind', 'pay.col.method', 'pay.col.status',
        'pay.col.amount', 'pay.col.refunded', 'pay.col.id'], data.items.map(function (i) {
        return [P.dateTime(i.paid_at || i.created_at), t('pay.kind.' + i.kind), t('pay.m.' + i.method),
          i.kind === 'refund' ? t('pay.s.' + i.status) : t('pay.s.' + i.status), P.formatMoney(i.amount),
          i.refunded ? P.formatMoney(i.refunded) : '', i.payment_id];
      }), 'pay.empty'));
      P.fill($('#pay-daily'), P.table('pay.daily', ['pay.col.date', 'pay.col.count', 'pay.col.paid',
        'pay.col.refunded', 'pay.col.net'], data.daily.map(function (d) {
        return [d.date, d.payments, P.formatMoney(d.paid), P.formatMoney(d.refunded), P.formatMoney(d.net)];
      }), 'pay.daily.empty'));
    }
    function done(form, key) {
      form.reset();
      P.announce(key);
      return load();
    }

    P.bindForm($('#form-pay-filter'), function () { return load(); });
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
        .then(function () { return done(form, 'pay.refund.done'); });
    });
    return { name: 'payments', screen: { load: load, render: render } };
  });
})();
