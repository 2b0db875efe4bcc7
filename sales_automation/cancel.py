"""Cancelling a cycle: what the order's runs made, in reverse, all or nothing."""

import frappe
from frappe import _

from sales_automation import locks
from sales_automation.constants import (
	ACTIVE_STATUSES,
	CANCELLED,
	COMPLETED,
	DELIVERY_NOTE,
	FAILED,
	PAYMENT_ENTRY,
	SALES_INVOICE,
)
from sales_automation.exceptions import CycleNotCancellableError
from sales_automation.run_log import end_run, error_message, order_for_totals, save_run
from sales_automation.settings import order_lock_wait


def cancel_cycle(sales_order_name: str, cancel_order: bool = False) -> list[tuple[str, str]]:
	"""Cancel what the order's runs created, in reverse (Payment Entry, Sales Invoice, Delivery Note,
	then the order when asked), all or nothing: stock and ledgers end as before the cycle.

	Refuses, changing nothing, when a document cannot be cancelled, e.g. a payment that is also
	allocated to an invoice outside the cycle. Returns the cancelled (doctype, name) pairs."""
	locks.take(sales_order_name, timeout=order_lock_wait())
	documents = cycle_documents(sales_order_name)
	if not any(documents.values()) and not cancel_order:
		frappe.throw(
			_("Sales Order {0} has no submitted document made by sales automation").format(sales_order_name),
			exc=CycleNotCancellableError,
			title=_("Nothing to Cancel"),
		)
	cycle_references = {sales_order_name, *documents[SALES_INVOICE]}
	for payment_name in documents[PAYMENT_ENTRY]:
		outside = [
			reference
			for reference in frappe.get_all(
				"Payment Entry Reference", filters={"parent": payment_name}, pluck="reference_name"
			)
			if reference not in cycle_references
		]
		if outside:
			frappe.throw(
				_("Payment Entry {0} is also allocated to {1}; unreconcile it first.").format(
					payment_name, ", ".join(outside)
				),
				exc=CycleNotCancellableError,
				title=_("Cannot Cancel the Cycle"),
			)
	order = [
		(doctype, name)
		for doctype in (PAYMENT_ENTRY, SALES_INVOICE, DELIVERY_NOTE)
		for name in documents[doctype]
	]
	if cancel_order:
		order.append(("Sales Order", sales_order_name))
	for doctype, name in order:
		# a 403 before anything is cancelled, rather than a refusal of the cycle found halfway
		frappe.has_permission(doctype, "cancel", name, throw=True)
	frappe.db.savepoint("sales_automation_cancel")
	for doctype, name in order:
		try:
			frappe.get_doc(doctype, name).cancel()
		except Exception as exc:
			frappe.db.rollback(save_point="sales_automation_cancel")
			frappe.local.message_log = []
			frappe.throw(
				_("Could not cancel {0} {1}, so nothing was cancelled: {2}").format(
					_(doctype), name, error_message(exc)
				),
				exc=CycleNotCancellableError,
				title=_("Cannot Cancel the Cycle"),
			)
	cancel_runs_of_order(sales_order_name, statuses=None)
	return order


def cycle_documents(sales_order_name: str, docstatuses=(1,)) -> dict[str, dict[str, int]]:
	"""The documents the order's runs made, by doctype, newest first, with their docstatus (only
	those in `docstatuses`)."""
	runs = frappe.get_all("Sales Automation Run", filters={"sales_order": sales_order_name}, pluck="name")
	documents = {PAYMENT_ENTRY: {}, SALES_INVOICE: {}, DELIVERY_NOTE: {}}
	for row in frappe.get_all(
		"Sales Automation Run Step",
		filters={
			"parent": ["in", runs or [""]],
			"parenttype": "Sales Automation Run",
			"status": COMPLETED,  # skipped steps may point at documents the cycle did not make
			"reference_name": ["is", "set"],
		},
		fields=["reference_doctype", "reference_name"],
		order_by="creation desc",
	):
		if row.reference_name in documents[row.reference_doctype]:
			continue
		docstatus = frappe.db.get_value(row.reference_doctype, row.reference_name, "docstatus")
		if docstatus in docstatuses:
			documents[row.reference_doctype][row.reference_name] = docstatus
	return documents


def cancel_runs_of_order(sales_order_name: str, statuses=(*ACTIVE_STATUSES, FAILED)):
	"""Mark the order's runs (those in `statuses`, or all not Cancelled yet) Cancelled: each one ends and
	is saved in full, as every run that ends is, so Webhooks on the run hear of it once."""
	filters = {"sales_order": sales_order_name, "status": ["in", statuses] if statuses else ["!=", CANCELLED]}
	run_names = frappe.get_all("Sales Automation Run", filters=filters, pluck="name")
	if not run_names:
		return
	sales_order = order_for_totals(sales_order_name)
	for run_name in run_names:
		run = frappe.get_doc("Sales Automation Run", run_name)
		end_run(run, CANCELLED, sales_order)
		save_run(run)
