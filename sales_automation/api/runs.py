import frappe
from frappe import _

from sales_automation import engine, gate, locks
from sales_automation.api.answers import run_answer
from sales_automation.api.contract import endpoint
from sales_automation.api.handling import retrying_transient_errors
from sales_automation.api.orders import default_rule, existing_document
from sales_automation.api.validation import check_filters, check_names, invalid, json_argument
from sales_automation.constants import (
	ACTIVE_STATUSES,
	BULK,
	FAILED,
	MANAGER_ROLES,
)
from sales_automation.exceptions import OrderBusyError

RESUME_ROLES = MANAGER_ROLES


def require_role(roles: tuple[str, ...]):
	"""Like frappe.only_for, which does nothing while tests run, so this restriction stays tested."""
	if not set(roles) & set(frappe.get_roles()):
		frappe.throw(
			_("Only these roles may do this: {0}").format(", ".join(_(role) for role in roles)),
			frappe.PermissionError,
		)


@endpoint(methods=["GET"])
def get_run(run: str) -> dict:
	"""A run as it stands: what the one call answers once it has ended, and the step under way before
	(the status URL of an asynchronous run_sales_cycle)."""
	if not isinstance(run, str) or not frappe.db.exists("Sales Automation Run", run):
		invalid("run", _("Sales Automation Run {0} does not exist").format(run))
	sales_automation_run = frappe.get_doc("Sales Automation Run", run)
	sales_automation_run.check_permission("read")
	return run_answer(sales_automation_run)


@endpoint(methods=["POST"])
def resume_run(run: str) -> dict:
	"""Retry / Resume a Sales Automation Run from its first step not done."""
	require_role(RESUME_ROLES)

	def attempt():
		sales_automation_run = frappe.get_doc("Sales Automation Run", run)
		sales_automation_run.check_permission("write")
		engine.resume(sales_automation_run)
		return sales_automation_run

	# a deadlock with another order's work rolls this attempt back whole: it is tried again, as every
	# endpoint's call is (api.handling), and answers 503 only when the database stays busy
	sales_automation_run = retrying_transient_errors(attempt)
	return {
		"run": sales_automation_run.name,
		"status": sales_automation_run.status,
		"sales_order": sales_automation_run.sales_order,
		"delivery_note": sales_automation_run.delivery_note,
		"sales_invoice": sales_automation_run.sales_invoice,
		"payment_entry": sales_automation_run.payment_entry,
		"error": sales_automation_run.error,
		"steps": [
			{"step": row.step, "status": row.status, "document": row.reference_name, "message": row.message}
			for row in sales_automation_run.steps
		],
	}


@endpoint(methods=["POST"])
def cancel_cycle(sales_order: str, cancel_order: bool = False) -> dict:
	"""Cancel the documents the order's runs created, in reverse, all or nothing."""
	existing_document("Sales Order", sales_order, "sales_order")  # 404 naming it, and read permission
	frappe.has_permission("Sales Order", "cancel" if cancel_order else "write", sales_order, throw=True)
	cancelled = retrying_transient_errors(
		lambda: engine.cancel_cycle(sales_order, cancel_order=bool(cancel_order))
	)
	return {"sales_order": sales_order, "cancelled": [{"doctype": d, "name": n} for d, n in cancelled]}


BULK_LIMIT = 500


@endpoint(methods=["POST"])
def run_bulk(
	sales_orders: list | str | None = None,
	filters: list | dict | str | None = None,
	rule: str | None = None,
) -> dict:
	"""Start the cycle in the background for the given (or filtered) submitted orders.

	Orders that are not submitted, closed, on hold or completed, already have a run under way or done,
	or match no rule (when none is given) are skipped with the reason. Returns the runs started; poll
	bulk_status with them for progress and the summary."""
	require_role(RESUME_ROLES)
	# the desk's frappe.call sends lists and filters as JSON text in a form
	sales_orders = check_names("sales_orders", json_argument("sales_orders", sales_orders))
	filters = check_filters("filters", "Sales Order", json_argument("filters", filters))
	gate.check_can_start(rule)
	if sales_orders is None:
		sales_orders = frappe.get_list(
			"Sales Order",
			filters=filters or {},
			pluck="name",
			limit_page_length=BULK_LIMIT,
			order_by="creation asc",
		)
	started, skipped = [], []
	for sales_order_name in sales_orders[:BULK_LIMIT]:
		reason = order_lock_refusal(sales_order_name) or gate.start_refusal(sales_order_name)
		run = None
		if not reason:
			sales_order = frappe.get_doc("Sales Order", sales_order_name)
			# no rule matching: the one call's default plan, as run_sales_cycle applies it
			run = engine.start_for_order(
				sales_order,
				trigger=BULK,
				rule_name=rule,
				execution_mode=engine.BACKGROUND,
				fallback_rule=default_rule(),
			)
			reason = None if run else _("sales automation does not act on it")
		if run:
			started.append(run.name)
		else:
			skipped.append({"sales_order": sales_order_name, "reason": reason})
		# each order's run stands on its own, and the commit frees the order's lock for its job
		frappe.db.commit()  # nosemgrep - one order at a time, as a bulk run promises
	return {"runs": started, "skipped": skipped}


def order_lock_refusal(sales_order_name) -> str | None:
	"""Take the order's lock (no wait: a bulk run skips busy orders) before reading its state."""
	if not isinstance(sales_order_name, str) or not sales_order_name:
		return _("it is not an order name")
	try:
		locks.take(sales_order_name)
	except OrderBusyError:
		frappe.local.message_log = []
		frappe.local.flags.disable_traceback = False
		return _("another request or job is working on it right now")
	return None


@endpoint(methods=["GET", "POST"])
def bulk_status(runs: list | str) -> dict:
	"""Progress of a bulk run: counts by status, done when nothing is queued or running, failures."""
	runs = check_names("runs", json_argument("runs", runs))
	rows = frappe.get_list(
		"Sales Automation Run",
		filters={"name": ["in", runs or [""]]},
		fields=["name", "sales_order", "status", "error"],
		limit_page_length=0,
	)
	counts = {}
	for row in rows:
		counts[row.status] = counts.get(row.status, 0) + 1
	pending = sum(counts.get(status, 0) for status in ACTIVE_STATUSES)
	return {
		"total": len(rows),
		"done": len(rows) - pending,
		"finished": pending == 0,
		"by_status": counts,
		"failed": [
			{"run": row.name, "sales_order": row.sales_order, "error": row.error}
			for row in rows
			if row.status == FAILED
		],
	}
