"""Which rule an order follows, and the steps it asks for."""

import json

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import cint, get_datetime, now_datetime

from sales_automation.constants import (
	DELIVERY_NOTE,
	PAY_AGAINST_INVOICE,
	PAY_IN_ADVANCE,
	PAYMENT_ENTRY,
	SALES_INVOICE,
)
from sales_automation.documents import rows_of


def find_rule(sales_order, candidate: Document | None = None) -> tuple[str | None, str | None]:
	"""The first enabled rule, by priority, whose conditions the order meets, and why it matched.

	`candidate`: a rule as edited on its form, saved or not (the simulator), tried in the place its
	priority gives it instead of its saved version."""
	for rule in rules_in_order(candidate):
		reason = rule.match(sales_order)
		if reason is not None:
			return rule.name, reason
	return None, None


def rules_in_order(candidate: Document | None = None):
	"""The enabled rules as find_rule tries them: highest priority first, then the oldest.

	Read whole in one query (a rule has no child table): an order tries them in turn until one matches,
	and a cached document each would cost a Redis round trip per rule tried, per order."""
	rows = rows_of(
		"Sales Automation Rule",
		filters={"enabled": 1},
		fields=["*"],
		order_by="priority desc, creation asc",
	)
	if candidate is not None:
		rows = [row for row in rows if row.name != candidate.name]
		if cint(candidate.enabled):
			# the order by above, as a sort key (a new rule is the newest)
			place = (-cint(candidate.priority), get_datetime(candidate.creation or now_datetime()))
			index = next(
				(i for i, row in enumerate(rows) if (-cint(row.priority), row.creation) > place), len(rows)
			)
			rows.insert(index, candidate)
	for row in rows:
		yield row if row is candidate else frappe.get_doc({**row, "doctype": "Sales Automation Rule"})


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
	"bank_account",
	"reference_no_pattern",
	"submit_payment_entry",
	"continue_when_stock_arrives",
	"continue_for_days",
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


def default_reason() -> str:
	"""Why a run follows the default plan (api.orders.default_rule): the one call and bulk say it alike."""
	return _("No rule matched; the default applies: deliver, invoice from the Delivery Note, pay in full")
