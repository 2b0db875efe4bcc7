"""Which rule an order follows, and the steps it asks for."""

import json

import frappe
from frappe import _
from frappe.model.document import Document

from sales_automation.constants import (
	DELIVERY_NOTE,
	PAY_AGAINST_INVOICE,
	PAY_IN_ADVANCE,
	PAYMENT_ENTRY,
	SALES_INVOICE,
)


def find_rule(sales_order) -> tuple[str | None, str | None]:
	"""The first enabled rule, by priority, whose conditions the order meets, and why it matched."""
	for rule_name in frappe.get_all(
		"Sales Automation Rule",
		filters={"enabled": 1},
		order_by="priority desc, creation asc",
		pluck="name",
	):
		reason = frappe.get_cached_doc("Sales Automation Rule", rule_name).match(sales_order)
		if reason is not None:
			return rule_name, reason
	return None, None


RULE_ACTION_FIELDS = (
	"create_delivery_note",
	"submit_delivery_note",
	"shortage_policy",
	"create_sales_invoice",
	"invoice_source",
	"submit_sales_invoice",
	"drop_ship_invoicing",
	"email_invoice",
	"create_payment_entry",
	"payment_against",
	"mode_of_payment",
	"reference_no_pattern",
	"submit_payment_entry",
)


def plan_steps(rule) -> list[str]:
	"""The steps a rule asks for, in the order they must run."""
	steps = []
	if rule.create_payment_entry and rule.payment_against == PAY_IN_ADVANCE:
		steps.append(PAYMENT_ENTRY)
	if rule.create_delivery_note:
		steps.append(DELIVERY_NOTE)
	if rule.create_sales_invoice:
		steps.append(SALES_INVOICE)
	if rule.create_payment_entry and rule.payment_against == PAY_AGAINST_INVOICE:
		steps.append(PAYMENT_ENTRY)
	return steps


def rule_of(run: Document) -> Document:
	"""The rule a run follows: the snapshot taken when it started (so retries follow the same rule)."""
	if run.rule_snapshot:
		rule = frappe.new_doc("Sales Automation Rule")
		rule.update(json.loads(run.rule_snapshot))
		rule.rule_name = run.rule
		return rule
	return frappe.get_doc("Sales Automation Rule", run.rule)
