"""What the desk's Sales Order form, run list and bulk action ask the server."""

import frappe
from frappe import _

from sales_automation import engine, gate, health, locks
from sales_automation.constants import FAILED, FINAL_STATUSES
from sales_automation.exceptions import InvalidRequestError, InvalidStateError


@frappe.whitelist()
def order_automation(sales_order: str) -> dict:
	"""The order's newest run, the documents its runs made and what the form may offer; whether the run's
	retry is overdue and whether the scheduler retries runs at all (`scheduler`, health.scheduler_health)."""
	frappe.has_permission("Sales Order", "read", sales_order, throw=True)
	run = frappe.db.get_value(
		"Sales Automation Run",
		{"sales_order": sales_order},
		["name", "status", "trigger", "rule", "error", "modified", "next_retry_at", "waiting_for"],
		order_by="creation desc",
		as_dict=True,
	)
	if run:
		run.failed_step = frappe.db.get_value(
			"Sales Automation Run Step",
			{"parent": run.name, "parenttype": "Sales Automation Run", "status": FAILED},
			"step",
		)
		run.retry_overdue = health.is_retry_overdue(run.status, run.next_retry_at)
	# in the cycle's order (Delivery Note, Sales Invoice, Payment Entry), oldest first
	documents = [
		{"doctype": doctype, "name": name, "docstatus": docstatus}
		for doctype, names in reversed(engine.cycle_documents(sales_order, docstatuses=(0, 1)).items())
		for name, docstatus in reversed(names.items())
	]
	if engine.get_settings().enabled:
		run_blocker = gate.start_refusal(sales_order)
	else:
		run_blocker = _("sales automation is switched off")
	matching_rule = None
	if not run_blocker:
		matching_rule, _reason = engine.find_rule(frappe.get_doc("Sales Order", sales_order))
	return {
		"sales_order": sales_order,
		"run": run,
		"documents": documents,
		"matching_rule": matching_rule,
		"can_run": not run_blocker,
		"run_blocker": run_blocker,
		"can_cancel": any(document["docstatus"] == 1 for document in documents)
		and bool(frappe.has_permission("Sales Order", "write", sales_order)),
		# not scheduler_health(): whoever reads the order is told, whether or not they may read runs
		"scheduler": health.scheduler_state(),
	}


@frappe.whitelist(methods=["POST"])
def run_for_order(sales_order: str, rule: str | None = None) -> dict:
	"""The form's Run Sales Cycle button: start a run for one submitted order, the rule's way."""
	frappe.has_permission("Sales Order", "submit", sales_order, throw=True)
	gate.check_can_start(rule)
	locks.take(sales_order, timeout=engine.order_lock_wait())  # before its state is read
	reason = gate.start_refusal(sales_order)
	if reason:
		frappe.throw(
			_("Cannot run the sales cycle for {0}: {1}").format(sales_order, reason), exc=InvalidStateError
		)
	run = engine.start_for_order(frappe.get_doc("Sales Order", sales_order), trigger="Manual", rule_name=rule)
	if not run:
		frappe.throw(
			_("No enabled Sales Automation Rule matches {0}; pick a rule").format(sales_order),
			exc=InvalidRequestError,
			title=_("No Rule"),
		)
	return order_automation(sales_order)


@frappe.whitelist()
def stuck_run_filters() -> list:
	"""List filters for runs not done within the Settings' stuck time."""
	return [
		["Sales Automation Run", "status", "not in", list(FINAL_STATUSES)],
		# in the system's datetime format to the second: the desk's filter control accepts nothing else
		# (microseconds made it refuse the value on every site, with any date format)
		["Sales Automation Run", "creation", "<", engine.stuck_before().strftime("%Y-%m-%d %H:%M:%S")],
	]
