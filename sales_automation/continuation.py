"""Orders that wait continue by themselves: a run left Partially Completed goes on, through the same
engine and under the order's lock, when what its order waits for arrives.

What the order waits for is derived from its documents and ledgers, never stored as a promise: stock
for an undelivered line in its warehouse (Bin), a drop-ship line's supplier delivery (the Sales Order
row's delivered_qty, which ERPNext sets when the Purchase Order is marked delivered by the supplier), or
a document a person made by hand (a Delivery Note to invoice, an invoice to pay, or everything done).

How it is triggered:
- doc events collect, per transaction, the items whose stock rose (every Stock Ledger Entry is inserted
  and submitted through the Document API, cancellations of outgoing ones included) and the orders a
  person's Delivery Note, invoice, payment or a supplier's delivery touched; after commit, when a waiting
  run may be concerned (one query), the site's one continuation job is queued (deduplicated: at most one
  queued and one running per site, whatever the number of receipts, items or orders);
- that job takes the site's continuation lock, reads every waiting run oldest order first (delivery
  date, then order date) and continues those whose order can now make progress, one after the other,
  so the first order in line gets the stock first; an event that arrives while it works marks the
  site dirty and the job goes round again;
- the scheduler's sweep (every five minutes) does the same: the safety net for an event missed (a
  worker killed, a Bin written without events, a repost).

A continuation that makes nothing and changes nothing is rolled back: the run's record only grows by
continuations that did something. Its steps are appended to the run (one record across continuations),
its attempts start again, and it ends as any run ends (status, totals, events, realtime)."""

import frappe
from frappe import _
from frappe.utils import add_days, cint, flt, now_datetime

from sales_automation import gate, locks
from sales_automation.constants import (
	DROP_SHIP_AT_ONCE,
	PARTIALLY_COMPLETED,
	PENDING,
)
from sales_automation.documents import order_state, stock_on_hand, undelivered_stock_rows
from sales_automation.exceptions import OrderBusyError
from sales_automation.progress import unpaid, what_is_left

DIRTY_KEY = "sales_automation:continuation_dirty"
SKIP_DELIVERY = "Skip Delivery"


# -- what a run waits for ---------------------------------------------------------------------------


def note_waiting(run, rule, sales_order, left_open: list[dict]) -> None:
	"""On a run that ends: what its order waits for (Partially Completed), or nothing (any other end)."""
	if run.status != PARTIALLY_COMPLETED or not sales_order:
		run.waiting_for = run.waiting_since = run.wait_until = None
		return
	run.waiting_for = waiting_for(sales_order, left_open) or None
	if not run.waiting_since:
		run.waiting_since = now_datetime()
		days = cint(rule.get("continue_for_days"))
		run.wait_until = add_days(run.waiting_since, days) if days > 0 else None


def waiting_for(sales_order, left_open: list[dict]) -> str:
	"""In words: 3 x DEMO-WIDGET at Stores - DSC; supplier delivery on PUR-ORD-2026-00001; ..."""
	parts = []
	for row in undelivered_stock_rows(sales_order.lines):
		qty = flt(row.qty) - flt(row.delivered_qty)
		parts.append(_("{0} x {1} at {2}").format(f"{qty:g}", row.item_code, row.warehouse))
	drop_ship = [
		row
		for row in sales_order.lines
		if row.delivered_by_supplier and flt(row.delivered_qty) < flt(row.qty)
	]
	if drop_ship:
		orders = frappe.get_all(
			"Purchase Order Item",
			filters={"sales_order_item": ["in", [row.name for row in drop_ship]], "docstatus": 1},
			pluck="parent",
			distinct=True,
		)
		parts.append(
			_("supplier delivery on {0}").format(", ".join(sorted(orders)))
			if orders
			else _("a Purchase Order for the drop-ship lines {0}").format(
				", ".join(row.item_code for row in drop_ship)
			)
		)
	if not parts:
		parts = [item["why"] for item in left_open]
	return _("waiting for {0}").format("; ".join(parts)) if parts else ""


def progress_possible(sales_order, rule) -> str | None:
	"""Why the order can now get further than its run got, or None: the one test the job and the sweep
	apply before continuing a waiting run."""
	left = {item["what"] for item in what_is_left(sales_order, rule)}
	if not left:
		return _("the order was completed by hand")
	rows = undelivered_stock_rows(sales_order.lines)
	if "delivery" in left and rows and cint(rule.get("continue_when_stock_arrives")):
		on_hand = stock_on_hand({(row.item_code, row.warehouse) for row in rows})
		needed = {
			row.name: (flt(row.qty) - flt(row.delivered_qty)) * flt(row.conversion_factor or 1)
			for row in rows
		}
		available = {row.name: on_hand[(row.item_code, row.warehouse)] for row in rows}
		if rule.get("shortage_policy") == SKIP_DELIVERY:
			if all(available[name] >= needed[name] for name in needed):
				return _("the stock the order waits for has arrived")
		elif any(available[name] > 0 for name in needed):
			return _("stock the order waits for has arrived")
	if "billing" in left and rule.get("create_sales_invoice"):
		for row in sales_order.lines:
			billable_qty = flt(row.delivered_qty)
			if row.delivered_by_supplier and rule.get("drop_ship_invoicing") == DROP_SHIP_AT_ONCE:
				billable_qty = flt(row.qty)
			if billable_qty * flt(row.rate) > flt(row.billed_amt) + 0.005:
				return _("delivered lines are left to invoice")
	if "payment" in left and "billing" not in left and unpaid(sales_order, rule) > 0.005:
		return _("an invoice is left to pay")
	return None


# -- events -------------------------------------------------------------------------------------------


def on_stock_ledger_entry(doc, method=None):
	"""Stock Ledger Entry on_submit: stock of an item rose in a warehouse (a receipt, a stock entry, a
	cancelled outgoing document) or was set (a reconciliation, whose actual_qty can be 0). Collected for
	the after-commit check; the Bin is written after this event, so quantities are read after commit."""
	if flt(doc.actual_qty) > 0 or doc.voucher_type == "Stock Reconciliation":
		pending().setdefault("items", set()).add(doc.item_code)


def on_order_document(doc, method=None):
	"""Delivery Note, Sales Invoice, Payment Entry on_submit: a document made outside a run (a person's)
	may let a waiting run go on. Documents the engine makes are made under an order lock and skipped."""
	if locks.held():
		return
	orders = set()
	for row in doc.get("items") or []:
		orders.add(row.get("against_sales_order") or row.get("sales_order"))
	for row in doc.get("references") or []:
		if row.reference_doctype == "Sales Order":
			orders.add(row.reference_name)
		elif row.reference_doctype == "Sales Invoice":
			orders.update(
				frappe.get_all(
					"Sales Invoice Item",
					filters={"parent": row.reference_name},
					pluck="sales_order",
					distinct=True,
				)
			)
	orders.discard(None)
	if orders:
		pending().setdefault("orders", set()).update(orders)


def on_purchase_order_change(doc, method=None):
	"""Purchase Order on_change (ERPNext marks a drop-ship order Delivered through db_set, which fires
	on_change only, twice): the Sales Orders of its lines may bill their drop-ship lines now."""
	if doc.docstatus != 1 or doc.status != "Delivered":
		return
	orders = {row.sales_order for row in doc.items if row.get("sales_order")}
	if orders:
		pending().setdefault("orders", set()).update(orders)


def pending() -> dict:
	"""What this transaction's events collected; the after-commit check is registered once."""
	collected = getattr(frappe.local, "sales_automation_arrivals", None)
	if collected is None:
		collected = frappe.local.sales_automation_arrivals = {}
		frappe.db.after_commit.add(queue_if_waiting)
		frappe.db.after_rollback.add(forget)
	return collected


def forget():
	frappe.local.sales_automation_arrivals = None


def queue_if_waiting():
	"""After commit: queue the continuation job when a waiting run may be concerned (one query)."""
	collected = getattr(frappe.local, "sales_automation_arrivals", None) or {}
	forget()
	items, orders = collected.get("items") or set(), collected.get("orders") or set()
	try:
		if (items or orders) and waiting_runs_exist(items, orders):
			queue_continuation()
	except Exception:
		# the transaction has committed: a receipt never fails for this; the sweep continues the orders
		frappe.logger("sales_automation").exception("could not queue the continuation job")


def waiting_runs_exist(items: set[str], orders: set[str]) -> bool:
	Run, Order = frappe.qb.DocType("Sales Automation Run"), frappe.qb.DocType("Sales Order Item")
	query = (
		frappe.qb.from_(Run)
		.select(Run.name)
		.where(Run.status == PARTIALLY_COMPLETED)
		.where(Run.waiting_since.isnotnull())
		.limit(1)
	)
	conditions = []
	if orders:
		conditions.append(Run.sales_order.isin(orders))
	if items:
		conditions.append(
			Run.sales_order.isin(
				frappe.qb.from_(Order)
				.select(Order.parent)
				.where(Order.item_code.isin(items))
				.where(Order.delivered_qty < Order.qty)
			)
		)
	condition = conditions[0] if len(conditions) == 1 else conditions[0] | conditions[1]
	return bool(query.where(condition).run())


def queue_continuation():
	"""The site's one continuation job, deduplicated; a job already running sees the dirty mark."""
	frappe.cache.set_value(DIRTY_KEY, 1)
	frappe.enqueue(
		"sales_automation.continuation.continue_waiting_orders",
		# one job may continue many orders, one after the other: the queue with Frappe's longest timeout
		queue="long",
		job_id=f"sales_automation_continue::{frappe.local.site}",
		deduplicate=True,
	)


# -- the job and the sweep ----------------------------------------------------------------------------


def sweep():
	"""Scheduler (every five minutes): the safety net for events missed."""
	continue_waiting_orders()


def continue_waiting_orders() -> list[str]:
	"""Continue every waiting run whose order can now make progress, oldest order first, one at a time
	(the site's continuation lock). Returns the runs continued."""
	lock = continuation_lock_name()
	if frappe.db.sql("select get_lock(%s, 0)", (lock,))[0][0] != 1:  # nosemgrep - a user lock
		frappe.cache.set_value(DIRTY_KEY, 1)  # the holder goes round again
		return []
	continued = []
	try:
		for _round in range(10):
			frappe.cache.delete_value(DIRTY_KEY)
			stop_waiting_past_limit()
			for run_name, sales_order_name in waiting_runs():
				if continue_run(run_name, sales_order_name):
					continued.append(run_name)
			if not frappe.cache.get_value(DIRTY_KEY):
				break
	finally:
		frappe.db.sql("select release_lock(%s)", (lock,))  # nosemgrep - a user lock
	return continued


def continuation_lock_name() -> str:
	return f"sales_automation_continue:{frappe.conf.db_name}"


def waiting_runs() -> list[tuple[str, str]]:
	"""Waiting runs (Partially Completed, within their wait) of open orders, oldest order first."""
	Run, Order = frappe.qb.DocType("Sales Automation Run"), frappe.qb.DocType("Sales Order")
	return (
		frappe.qb.from_(Run)
		.join(Order)
		.on(Order.name == Run.sales_order)
		.select(Run.name, Run.sales_order)
		.where(Run.status == PARTIALLY_COMPLETED)
		.where(Run.waiting_since.isnotnull())
		.where(Run.wait_until.isnull() | (Run.wait_until > now_datetime()))
		.where(Order.docstatus == 1)
		.where(Order.status.notin(gate.HELD_STATUSES))
		.orderby(Order.delivery_date)
		.orderby(Order.transaction_date)
		.orderby(Order.creation)
		.run()
	)


def continue_run(run_name: str, sales_order_name: str) -> bool:
	"""Continue one waiting run under its order's lock when its order can now get further; True when
	the continuation was kept (it made something or ended the run otherwise)."""
	from sales_automation.engine import Mode, execute
	from sales_automation.rules import plan_steps, rule_of

	try:
		locks.take(sales_order_name, timeout=0, scope=locks.SESSION)
	except OrderBusyError:
		frappe.local.message_log = []
		return False  # another actor works on the order; the next round or sweep sees it
	job_user = frappe.session.user
	try:
		run = frappe.get_doc("Sales Automation Run", run_name)
		if run.status != PARTIALLY_COMPLETED or not run.waiting_since:
			return False
		if gate.refusal(gate.order_facts(sales_order_name)):
			return False
		rule = rule_of(run)
		reason = progress_possible(order_state(sales_order_name), rule)
		if not reason:
			return False
		if run.owner != frappe.session.user:
			frappe.set_user(run.owner)
		for step in plan_steps(rule):
			run.append(
				"steps", {"step": step, "status": PENDING, "message": _("Continued: {0}").format(reason)}
			)
		run.attempts = 0
		run.continuations = cint(run.continuations) + 1
		run.continued_at = now_datetime()
		outcome = execute(run, Mode.WITH_RETRIES, rule=rule)
		if outcome.created or run.status != PARTIALLY_COMPLETED:
			frappe.db.commit()  # nosemgrep - each continuation is its own unit of work
			return True
		frappe.db.rollback()  # nothing made, nothing changed: the run stays as it was
		return False
	except Exception:
		frappe.db.rollback()
		frappe.log_error(_("Sales automation could not continue run {0}").format(run_name))
		return False
	finally:
		locks.release(sales_order_name)
		if frappe.session.user != job_user:
			frappe.set_user(job_user)


def stop_waiting_past_limit() -> None:
	"""Runs whose rule's Stop Waiting After has passed: left to a person, with a desk notification."""
	from sales_automation.notifications import notify

	for run_name in frappe.get_all(
		"Sales Automation Run",
		# a list: Frappe reads a dict's "<" on a Datetime with ifnull(..., 0001-01-01), which takes NULL
		# (no limit) for a limit long past
		filters=[
			["status", "=", PARTIALLY_COMPLETED],
			["waiting_since", "is", "set"],
			["wait_until", "is", "set"],
			["wait_until", "<", now_datetime()],
		],
		pluck="name",
	):
		run = frappe.get_doc("Sales Automation Run", run_name)
		message = _("{0}; stopped waiting on {1}: left to a person").format(
			run.waiting_for or _("waiting"), frappe.format(run.wait_until, {"fieldtype": "Datetime"})
		)
		run.db_set({"waiting_since": None, "waiting_for": message}, update_modified=False)
		notify(run, _("Sales automation for {0} stopped waiting").format(run.sales_order), message)
		frappe.db.commit()  # nosemgrep - one run at a time
