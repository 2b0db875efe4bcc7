"""The whole sales cycle, or one step of it, in one call: atomic, idempotent, with a dry run, or handed
to the background (`"async": true` / `Prefer: respond-async`: 202 and a run to follow with get_run).

Every endpoint validates its input (naming the field), checks the caller's permissions, then hands
the order to the engine (same-transaction mode, or a queued run); nothing here implements a step."""

import frappe
from frappe import _
from frappe.utils import cint, flt

from sales_automation import engine, gate
from sales_automation.api.answers import accepted, answer, preview, step_answer
from sales_automation.api.contract import endpoint
from sales_automation.api.handling import handle
from sales_automation.api.orders import (
	create_order,
	default_rule,
	delivery_note_order,
	existing_document,
	existing_order,
	invoice_of_delivery_note,
	load_rule,
	lock_order,
	order_is_done,
)
from sales_automation.api.validation import (
	check_payment,
	check_received_amount,
	check_receiving_account,
	check_steps,
	invalid,
	json_argument,
	raise_state,
)
from sales_automation.constants import API, PAYMENT_ENTRY, SALES_INVOICE, STEP
from sales_automation.rules import default_reason, plan_steps


@endpoint(methods=["POST"])
def run_sales_cycle(
	order: dict | str | None = None,
	sales_order: str | None = None,
	rule: str | None = None,
	steps: list | str | None = None,
	payment: dict | str | None = None,
	idempotency_key: str | None = None,
	dry_run: bool = False,
) -> dict:
	"""Deliver, invoice and pay a Sales Order (given as a payload or by name) in one atomic call.

	Asked to respond asynchronously, the call validates the request, creates and submits the order (or
	takes the existing one), queues its run and answers 202 at once (get_run follows the run)."""
	respond_async = asked_to_respond_async()
	# a form post (the desk's frappe.call) carries objects and lists as JSON text
	order = json_argument("order", order)
	steps = json_argument("steps", steps)
	payment = json_argument("payment", payment)
	if bool(order) == bool(sales_order):
		invalid("order", _("give either order (a new Sales Order) or sales_order (an existing one)"))
	request = {
		"order": order,
		"sales_order": sales_order,
		"rule": rule,
		"steps": steps,
		"payment": payment,
		"dry_run": cint(dry_run),
	}
	if respond_async:
		if request["dry_run"]:
			invalid("async", _("a dry run answers at once; it cannot be asynchronous"))
		request["async"] = 1  # part of the request's fingerprint: a key used synchronously is refused
	result = handle("run_sales_cycle", request, idempotency_key, lambda: cycle(request))
	if respond_async:
		frappe.local.response["http_status_code"] = 202
		frappe.local.flags.sales_automation_location = result["status_url"]
		if result.get("replayed"):
			# the same run as the first call, as it stands now
			result["status"] = frappe.db.get_value("Sales Automation Run", result["run"], "status")
	return result


def asked_to_respond_async() -> bool:
	"""`"async": true` in the request, or RFC 7240's `Prefer: respond-async` header."""
	if not getattr(frappe.local, "request", None):
		return False
	value = frappe.form_dict.get("async")
	if value in (None, ""):
		prefer = (frappe.get_request_header("Prefer") or "").lower()
		return "respond-async" in (token.strip() for token in prefer.replace(";", ",").split(","))
	if value in (True, 1, "1", "true", "True"):
		return True
	if value in (False, 0, "0", "false", "False"):
		return False
	invalid("async", _("must be true or false"))


def cycle(request: dict) -> dict:
	check_payment(request["payment"])
	step_names = check_steps(request["steps"])
	rule = load_rule(request["rule"]) if request["rule"] else None
	if request["order"]:
		sales_order = create_order(request["order"], request["payment"])
		if sales_order.get("is_internal_customer"):
			raise_state("order.customer", gate.out_of_scope_reason(sales_order.name))
	else:
		sales_order = existing_order(request["sales_order"], submit_draft=True)
		check_receiving_account(request["payment"], sales_order.company)
	if rule:
		reason = _("Rule {0} was chosen by the caller").format(rule.name)
	else:
		rule_name, reason = engine.find_rule(sales_order)
		if rule_name:
			rule = frappe.get_doc("Sales Automation Rule", rule_name)
		else:
			rule = default_rule()
			reason = default_reason()
	if not request["order"] and order_is_done(sales_order):
		raise_state(
			"sales_order",
			_("Sales Order {0} is already delivered, billed and paid").format(sales_order.name),
		)
	check_plan(sales_order, rule, step_names, request["payment"])
	if request.get("async"):
		return queue_run(sales_order, rule, reason, step_names, request["payment"])
	return run_engine(
		sales_order,
		rule,
		reason,
		step_names,
		request["payment"],
		request["dry_run"],
		new_order=bool(request["order"]),
	)


def check_plan(sales_order, rule, step_names: list[str] | None, payment: dict | None):
	"""Refuse, before any step runs, a plan that cannot be done: a payment against an invoice the call
	will not make and the order does not have, or more than the order still owes. `sales_order`: the
	order as read under its lock (or just made), which holds what both are read from."""
	steps = [step for step in plan_steps(rule) if step_names is None or step in step_names]
	if PAYMENT_ENTRY not in steps:
		return
	check_received_amount(payment, rule, sales_order)
	if (
		rule.payment_against == engine.PAY_AGAINST_INVOICE
		and SALES_INVOICE not in steps
		and not flt(sales_order.per_billed)
	):
		invalid(
			"steps",
			_(
				"payment_entry pays the order's Sales Invoice, which this call does not make (sales_invoice is not among the steps) and the order does not have yet"
			),
		)
	amount = (payment or {}).get("amount")
	if amount is not None:
		outstanding = engine.order_totals(sales_order)["outstanding"]
		if flt(amount) > outstanding + 0.005:
			invalid(
				"payment.amount",
				_("{0} is more than the {1} {2} still owed on Sales Order {3}").format(
					amount, sales_order.currency, outstanding, sales_order.name
				),
			)


# --- step endpoints ----------------------------------------------------------------------------------


@endpoint(methods=["POST"])
def deliver(sales_order: str, submit: bool = True, idempotency_key: str | None = None) -> dict:
	"""Map, insert and (by default) submit a Delivery Note for what is left to deliver on the order."""
	request = {"sales_order": sales_order, "submit": cint(submit)}

	def step():
		order = existing_order(sales_order)
		rule = default_rule(
			create_delivery_note=1,
			submit_delivery_note=cint(submit),
			create_sales_invoice=0,
			create_payment_entry=0,
		)
		return one_step(order, rule, engine.DELIVERY_NOTE)

	return handle("deliver", request, idempotency_key, step)


@endpoint(methods=["POST"])
def invoice(
	sales_order: str | None = None,
	delivery_note: str | None = None,
	update_stock: bool = False,
	submit: bool = True,
	idempotency_key: str | None = None,
) -> dict:
	"""Map, insert and (by default) submit a Sales Invoice from a Sales Order or a Delivery Note."""
	if bool(sales_order) == bool(delivery_note):
		invalid("sales_order", _("give either sales_order or delivery_note"))
	if delivery_note and cint(update_stock):
		invalid("update_stock", _("an invoice from a Delivery Note cannot update stock again"))
	request = {
		"sales_order": sales_order,
		"delivery_note": delivery_note,
		"update_stock": cint(update_stock),
		"submit": cint(submit),
	}

	def step():
		source = {engine.INVOICE_FROM_ORDER: sales_order}
		if delivery_note:
			order_name = delivery_note_order(delivery_note)
			lock_order(order_name)  # before reading whether the note is billed
			existing = invoice_of_delivery_note(delivery_note)
			if existing:
				return step_answer(existing, created=False)
			source = {engine.INVOICE_FROM_DELIVERY_NOTE: order_name}
		invoice_source, order_name = next(iter(source.items()))
		if cint(update_stock):
			invoice_source = engine.INVOICE_UPDATING_STOCK
		rule = default_rule(
			create_delivery_note=0,
			create_sales_invoice=1,
			invoice_source=invoice_source,
			submit_sales_invoice=cint(submit),
			create_payment_entry=0,
		)
		return one_step(existing_order(order_name), rule, engine.SALES_INVOICE, delivery_note=delivery_note)

	return handle("invoice", request, idempotency_key, step)


@endpoint(methods=["POST"])
def pay(
	sales_invoice: str | None = None,
	sales_order: str | None = None,
	mode_of_payment: str | None = None,
	reference_no: str | None = None,
	reference_date: str | None = None,
	amount: float | None = None,
	bank_account: str | None = None,
	received_amount: float | None = None,
	submit: bool = True,
	idempotency_key: str | None = None,
) -> dict:
	"""A Payment Entry against a submitted Sales Invoice, or an advance against a Sales Order.

	`bank_account`: the Bank or Cash account that receives it (by default the mode of payment's);
	`received_amount`: what reached it, when that account is in another currency than the customer's."""
	if bool(sales_invoice) == bool(sales_order):
		invalid("sales_invoice", _("give either sales_invoice or sales_order (for an advance)"))
	payment = {
		key: value
		for key, value in {
			"mode_of_payment": mode_of_payment,
			"reference_no": reference_no,
			"reference_date": reference_date,
			"amount": amount,
			"bank_account": bank_account,
			"received_amount": received_amount,
		}.items()
		if value not in (None, "")
	}
	request = {
		"sales_invoice": sales_invoice,
		"sales_order": sales_order,
		"payment": payment,
		"submit": cint(submit),
	}

	def step():
		check_payment(payment, prefix="")
		if sales_invoice:
			invoice_doc = existing_document("Sales Invoice", sales_invoice, "sales_invoice")
			# the order an invoice bills never changes; what is paid is read under the order's lock
			order_name = next((row.sales_order for row in invoice_doc.items if row.sales_order), None)
			if order_name:
				lock_order(order_name)
				invoice_doc.reload()
			if invoice_doc.docstatus != 1:
				raise_state("sales_invoice", _("Sales Invoice {0} is not submitted").format(sales_invoice))
			if flt(invoice_doc.outstanding_amount) <= 0:
				paid_by = engine.payment_of(sales_invoice)
				if paid_by:
					return step_answer(paid_by, created=False)
				raise_state("sales_invoice", _("Sales Invoice {0} is already paid").format(sales_invoice))
			if not order_name:
				invalid(
					"sales_invoice",
					_("Sales Invoice {0} is not linked to a Sales Order").format(sales_invoice),
				)
			against = engine.PAY_AGAINST_INVOICE
		else:
			order_name, against = sales_order, engine.PAY_IN_ADVANCE
		order = existing_order(order_name)  # under its lock: what is owed is read from it
		owed = (
			flt(invoice_doc.outstanding_amount)
			if sales_invoice
			else engine.order_totals(order)["outstanding"]
		)
		if amount is not None and flt(amount) > owed + 0.005:
			invalid("amount", _("{0} is more than the {1} still owed").format(amount, owed))
		rule = default_rule(
			create_delivery_note=0,
			create_sales_invoice=0,
			create_payment_entry=1,
			payment_against=against,
			submit_payment_entry=cint(submit),
		)
		check_receiving_account(payment, order.company, prefix="")
		check_received_amount(payment, rule, invoice_doc if sales_invoice else order, prefix="")
		return one_step(order, rule, engine.PAYMENT_ENTRY, payment, sales_invoice=sales_invoice)

	return handle("pay", request, idempotency_key, step)


def one_step(sales_order, rule, step: str, payment=None, **links) -> dict:
	"""Run one step in the caller's transaction. Its run is recorded (and its ending sent to Webhooks)
	only when the step changed something: a call that finds its document already in place answers it
	with `created: false`, no run and no event."""
	run = engine.create_run(
		sales_order, rule, _("Step endpoint"), STEP, engine.SAME_TRANSACTION, payment=payment
	)
	for fieldname, value in links.items():
		if value:
			run.set(fieldname, value)
	check_permissions(run, rule)
	run.flags.recorded_by_caller = True  # the engine leaves it unwritten: recorded below, or never
	outcome = engine.execute(run, engine.Mode.ATOMIC, rule=rule, permissions_checked=True)
	row = run.steps[0]
	if not row.reference_name:
		raise_state(frappe.scrub(step), row.message or _("Nothing to do"))
	document = frappe.get_doc(row.reference_doctype, row.reference_name)
	created = document.name in outcome.created
	# a Completed step that made nothing submitted a draft it found (a skipped one found its document
	# done, and a draft left a draft is as it was): that is a change, and a document of the cycle
	if not created and not (row.status == engine.COMPLETED and document.docstatus == 1):
		return step_answer(document, created=False)
	run.flags.recorded_by_caller = False
	engine.save_run(run)
	return step_answer(document, created=created, run=run.name)


def run_engine(
	sales_order, rule, reason: str, step_names, payment, dry_run: bool, new_order: bool = False
) -> dict:
	run = engine.create_run(
		sales_order, rule, reason, API, engine.SAME_TRANSACTION, steps=step_names, payment=payment
	)
	check_permissions(run, rule)
	# an order made by this call: nothing else links to it
	context = {"rule": rule, "order_is_new": new_order, "permissions_checked": True}
	if dry_run:
		engine.execute(run, engine.Mode.WITHOUT_RETRIES, **context)
		return preview(run, rule, reason)
	outcome = engine.execute(run, engine.Mode.ATOMIC, **context)
	if new_order:
		set_erpnext_status(sales_order, outcome.order.status if outcome.order else None)
	return answer(outcome)


def queue_run(sales_order, rule, reason: str, step_names, payment) -> dict:
	"""The run recorded now and queued after commit, for the same engine in a background job."""
	run = engine.create_run(
		sales_order, rule, reason, API, engine.BACKGROUND, steps=step_names, payment=payment
	)
	check_permissions(run, rule)
	set_erpnext_status(sales_order, sales_order.status)  # nothing of the cycle has run yet
	engine.enqueue_run(run)
	return accepted(run)


def set_erpnext_status(sales_order, status: str | None):
	"""ERPNext sets a new document's status only on a later save (submit() of an unsaved order inserts
	and submits it in one), so an order the call made whose cycle touched nothing else (no delivery, no
	invoice) would show as Draft while submitted; the cycle's documents otherwise set it themselves.
	`status`: the order's as last read (read here when not known)."""
	status = status or frappe.db.get_value("Sales Order", sales_order.name, "status")
	if status == "Draft":
		sales_order.set_status(update=True, update_modified=False)


def check_permissions(run, rule):
	"""403 before any document is made when the caller may not create (or submit) one the call needs
	(`rule`: the rule the run was recorded from)."""
	submits = {
		engine.DELIVERY_NOTE: rule.submit_delivery_note,
		engine.SALES_INVOICE: rule.submit_sales_invoice,
		engine.PAYMENT_ENTRY: rule.submit_payment_entry,
	}
	for row in run.steps:
		for ptype in ("create", "submit") if submits[row.step] else ("create",):
			if not frappe.has_permission(row.step, ptype):
				try:
					frappe.throw(
						_("You may not {0} a {1}, which this call needs").format(_(ptype), _(row.step)),
						frappe.PermissionError,
					)
				except frappe.PermissionError as error:
					error.step = frappe.scrub(row.step)
					raise
