"""Submitted orders that a rule says should be delivered, billed or paid by now, and are not."""

import frappe
from frappe import _
from frappe.utils import getdate, now_datetime

from sales_automation import engine, gate, progress
from sales_automation.constants import CANCELLED, FAILED, PARTIALLY_COMPLETED, QUEUED

# The step an order waits for, as the report names it
STUCK_AT = {
	engine.DELIVERY_NOTE: "Delivery",
	engine.SALES_INVOICE: "Billing",
	engine.PAYMENT_ENTRY: "Payment",
}
ORDER_LIMIT = 2000


def execute(filters=None):
	filters = frappe._dict(filters or {})
	return columns(), rows(filters)


def columns() -> list[dict]:
	return [
		{
			"label": _("Sales Order"),
			"fieldname": "sales_order",
			"fieldtype": "Link",
			"options": "Sales Order",
		},
		# Waiting: the run waits for stock or a supplier's delivery and continues by itself on arrival;
		# Stuck: anything else (failed, retrying, no run, or waiting past the rule's limit)
		{"label": _("State"), "fieldname": "state", "fieldtype": "Data", "width": 90},
		{"label": _("Customer"), "fieldname": "customer", "fieldtype": "Link", "options": "Customer"},
		{"label": _("Date"), "fieldname": "transaction_date", "fieldtype": "Date", "width": 100},
		{"label": _("Stuck At"), "fieldname": "stuck_at", "fieldtype": "Data", "width": 90},
		{"label": _("Waiting Since"), "fieldname": "waiting_since", "fieldtype": "Datetime", "width": 160},
		{
			"label": _("Grand Total"),
			"fieldname": "grand_total",
			"fieldtype": "Currency",
			"options": "currency",
		},
		{"label": _("% Delivered"), "fieldname": "per_delivered", "fieldtype": "Percent", "width": 100},
		{"label": _("% Billed"), "fieldname": "per_billed", "fieldtype": "Percent", "width": 100},
		{
			"label": _("Outstanding"),
			"fieldname": "outstanding",
			"fieldtype": "Currency",
			"options": "currency",
		},
		{
			"label": _("Rule"),
			"fieldname": "rule",
			"fieldtype": "Link",
			"options": "Sales Automation Rule",
			"width": 160,
		},
		{
			"label": _("Run"),
			"fieldname": "run",
			"fieldtype": "Link",
			"options": "Sales Automation Run",
			"width": 160,
		},
		{"label": _("Run Status"), "fieldname": "run_status", "fieldtype": "Data", "width": 130},
		{"label": _("Error Class"), "fieldname": "error_class", "fieldtype": "Data", "width": 120},
		{"label": _("Error"), "fieldname": "error", "fieldtype": "Data", "width": 300},
		{
			"label": _("Currency"),
			"fieldname": "currency",
			"fieldtype": "Link",
			"options": "Currency",
			"hidden": 1,
		},
	]


def rows(filters) -> list[dict]:
	# the gate's own conditions, in the query where it can (the rest per order below)
	order_filters = {"docstatus": 1, "status": ["not in", list(gate.HELD_STATUSES)]}
	for field in ("company", "customer"):
		if filters.get(field):
			order_filters[field] = filters[field]
	if filters.get("from_date") and filters.get("to_date"):
		order_filters["transaction_date"] = [
			"between",
			[getdate(filters.from_date), getdate(filters.to_date)],
		]
	sales_orders = frappe.get_list(
		"Sales Order",
		filters=order_filters,
		fields=[
			*gate.FIELDS,
			"customer",
			"transaction_date",
			"creation",
			"currency",
			"grand_total",
			"rounded_total",
			"advance_paid",
			"per_delivered",
			"per_billed",
			"delivery_status",
			"billing_status",
		],
		order_by="transaction_date desc, creation desc",
		limit_page_length=ORDER_LIMIT,
	)
	runs = latest_runs([sales_order.name for sales_order in sales_orders])
	stuck_before = engine.stuck_before()
	data = []
	for sales_order in sales_orders:
		if gate.refusal(sales_order):
			continue  # not an order the cycle may act on
		run = runs.get(sales_order.name)
		waiting_since = run.creation if run else sales_order.creation
		if waiting_since > stuck_before:
			continue
		if run:
			rule = engine.rule_of(run)
		else:
			rule_name, _reason = engine.find_rule(frappe.get_doc("Sales Order", sales_order.name))
			if not rule_name:
				continue  # no rule says this order should move along
			rule = frappe.get_cached_doc("Sales Automation Rule", rule_name)
		totals = engine.order_totals(sales_order)
		step = first_step_not_done(sales_order, rule)
		if not step or (filters.get("stuck_at") and STUCK_AT[step] != filters.stuck_at):
			continue
		waiting = is_waiting(run)
		if filters.get("state") and filters.state != (WAITING if waiting else STUCK):
			continue
		data.append(
			{
				"sales_order": sales_order.name,
				"state": _(WAITING if waiting else STUCK),
				"customer": sales_order.customer,
				"transaction_date": sales_order.transaction_date,
				"stuck_at": _(STUCK_AT[step]),
				"waiting_since": waiting_since,
				"grand_total": totals["grand_total"],
				"per_delivered": sales_order.per_delivered,
				"per_billed": sales_order.per_billed,
				"outstanding": totals["outstanding"],
				"rule": rule.name if run is None else run.rule,
				"run": run.name if run else None,
				"run_status": run.status if run else "No Run",
				"error_class": error_class_of(run),
				"error": (run.waiting_for if waiting else run.error) if run else None,
				"currency": sales_order.currency,
			}
		)
	return data


def latest_runs(sales_order_names: list[str]) -> dict:
	runs = {}
	if not sales_order_names:
		return runs
	for run in frappe.get_all(
		"Sales Automation Run",
		filters={"sales_order": ["in", sales_order_names], "status": ["!=", CANCELLED]},
		fields=[
			"name",
			"sales_order",
			"status",
			"rule",
			"rule_snapshot",
			"error",
			"creation",
			"waiting_for",
			"waiting_since",
			"wait_until",
		],
		order_by="creation desc",
	):
		runs.setdefault(run.sales_order, run)
	if not runs:
		return runs
	# an empty "in" list would become ifnull(parent, '') in (''), a scan of every step
	failed_steps = frappe.get_all(
		"Sales Automation Run Step",
		filters={
			"parent": ["in", [run.name for run in runs.values()]],
			"parenttype": "Sales Automation Run",
			"status": FAILED,
		},
		fields=["parent", "error_class"],
	)
	error_classes = {step.parent: step.error_class for step in failed_steps}
	for run in runs.values():
		run.error_class = error_classes.get(run.name)
	return runs


WAITING, STUCK = "Waiting", "Stuck"


def is_waiting(run) -> bool:
	"""A Partially Completed run waiting within its rule's limit (continuation.py continues it)."""
	return bool(
		run
		and run.status == PARTIALLY_COMPLETED
		and run.waiting_since
		and (not run.wait_until or run.wait_until > now_datetime())
	)


def error_class_of(run) -> str | None:
	"""How the run's last error was classed (errors.classify), and what became of it: retried or not."""
	if not run or not run.error_class:
		return None
	if run.status == QUEUED:
		return _("{0} (retrying)").format(_(run.error_class))
	return _(run.error_class)


def first_step_not_done(sales_order, rule) -> str | None:
	"""The first step of the rule whose outcome is missing: nothing left of it (progress.what_is_left)
	where the rule submits, at least a draft where it leaves drafts."""
	left = {item["what"] for item in progress.what_is_left(engine.order_state(sales_order.name), rule)}
	for step in engine.plan_steps(rule):
		if step == engine.DELIVERY_NOTE:
			if rule.submit_delivery_note:
				done = "delivery" not in left
			else:
				done = has_linked(engine.DELIVERY_NOTE, "against_sales_order", sales_order.name)
		elif step == engine.SALES_INVOICE:
			if rule.submit_sales_invoice:
				done = "billing" not in left
			else:
				done = has_linked(engine.SALES_INVOICE, "sales_order", sales_order.name)
		elif rule.submit_payment_entry:
			done = "payment" not in left and "billing" not in left
		else:
			done = has_payment(sales_order.name)
		if not done:
			return step
	return None


NOT_CANCELLED = ["<", 2]


def has_linked(doctype: str, link_field: str, sales_order_name: str) -> bool:
	return bool(engine.linked_names(doctype, link_field, sales_order_name, docstatus=NOT_CANCELLED))


def has_payment(sales_order_name: str) -> bool:
	invoices = engine.linked_names(engine.SALES_INVOICE, "sales_order", sales_order_name, NOT_CANCELLED)
	return bool(
		frappe.get_all(
			"Payment Entry Reference",
			filters={
				"reference_name": ["in", [sales_order_name, *invoices]],
				"docstatus": NOT_CANCELLED,
				"parenttype": "Payment Entry",
			},
			limit=1,
		)
	)
